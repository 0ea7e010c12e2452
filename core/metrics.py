"""Metrics clinicians read, with uncertainty: pure numpy (and scikit-learn for curves).

Inputs are the arrays a model stores as ``validation_predictions.npz``: ``labels`` (N,) ints in
0..K-1 and ``probabilities`` (N, K) rows summing to 1. Binary metrics take ``is_positive`` (N,) bool
and ``scores`` (N,) in [0, 1] (the positive class's probability) and a decision threshold
(``score >= threshold`` means positive). Every interval is a 95% percentile bootstrap, resampled
within each class (stratified) with a fixed seed, so a card rebuilt from the same predictions
carries the same numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve, roc_curve

BINARY_METRICS = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy", "f1", "brier")
METRIC_LABELS = {
    "auc": "AUC (ROC)",
    "sensitivity": "Sensitivity (recall)",
    "specificity": "Specificity",
    "ppv": "PPV (precision)",
    "npv": "NPV",
    "accuracy": "Accuracy",
    "f1": "F1 score",
    "brier": "Brier score (lower is better)",
}
METRIC_DESCRIPTIONS = {
    "auc": "Probability that a random positive case scores higher than a random negative one; threshold-free.",
    "sensitivity": "Of the patients who have the condition, the share the model flags.",
    "specificity": "Of the patients who do not have the condition, the share the model clears.",
    "ppv": "Of the flagged patients, the share who have the condition (depends on prevalence).",
    "npv": "Of the cleared patients, the share who do not have the condition (depends on prevalence).",
    "accuracy": "Share of all patients classified correctly (misleading when classes are imbalanced).",
    "f1": "Harmonic mean of PPV and sensitivity.",
    "brier": "Mean squared error of the predicted probabilities (0 is perfect; calibration and sharpness).",
}
DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20190129  # the date Mitchell et al.'s model cards paper was presented (FAT* 2019)


def _safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def auc_score(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; NaN when only one class is present."""
    is_positive = np.asarray(is_positive, dtype=bool)
    n_pos, n_neg = int(is_positive.sum()), int((~is_positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[is_positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _batched_auc(is_positive: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUC of each row of (B, N) resampled labels/scores: (B,)."""
    ranks = rankdata(scores, axis=1)
    n_pos = is_positive.sum(1).astype(np.float64)
    n_neg = is_positive.shape[1] - n_pos
    return _safe_div((ranks * is_positive).sum(1) - n_pos * (n_pos + 1) / 2.0, n_pos * n_neg)


def _binary_from_arrays(is_positive: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Every binary metric for (B, N) arrays at once (B resamples): name -> (B,)."""
    said = scores >= threshold
    tp = (said & is_positive).sum(1)
    fp = (said & ~is_positive).sum(1)
    fn = (~said & is_positive).sum(1)
    tn = (~said & ~is_positive).sum(1)
    n = is_positive.shape[1]
    sens, ppv = _safe_div(tp, tp + fn), _safe_div(tp, tp + fp)
    return {
        "auc": _batched_auc(is_positive, scores),
        "sensitivity": sens,
        "specificity": _safe_div(tn, tn + fp),
        "ppv": ppv,
        "npv": _safe_div(tn, tn + fn),
        "accuracy": (tp + tn) / n,
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "brier": ((scores - is_positive) ** 2).mean(1),
    }


def binary_metrics(is_positive: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Point estimates of BINARY_METRICS at ``threshold``; NaN where undefined (e.g. no positives)."""
    is_positive = np.asarray(is_positive, dtype=bool)[np.newaxis]
    scores = np.asarray(scores, dtype=np.float64)[np.newaxis]
    return {k: float(v[0]) for k, v in _binary_from_arrays(is_positive, scores, threshold).items()}


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> list[list[int]]:
    """counts[true][predicted] for classes 0..K-1."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    return counts.tolist()


def stratified_indices(labels: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """(B, N) bootstrap indices that keep each class's count (resampling within each class)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.empty((n_resamples, len(labels)), dtype=np.int64)
    start = 0
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        out[:, start : start + len(members)] = rng.choice(members, size=(n_resamples, len(members)), replace=True)
        start += len(members)
    return out


def percentile_interval(samples: np.ndarray) -> list[float | None]:
    """[2.5th, 97.5th] percentile of the finite samples; [None, None] when there are none."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return [None, None]
    low, high = np.percentile(finite, [2.5, 97.5])
    return [float(low), float(high)]


def _with_intervals(point: dict[str, float], samples: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {
        k: {"value": _finite_or_none(point[k]), "ci95": percentile_interval(samples[k]) if np.isfinite(point[k]) else [None, None]}
        for k in point
    }


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def binary_metrics_with_ci(
    is_positive: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, dict[str, Any]]:
    """Each metric as ``{"value": point, "ci95": [low, high]}`` (stratified percentile bootstrap)."""
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    point = binary_metrics(is_positive, scores, threshold)
    idx = stratified_indices(is_positive, n_resamples, seed)
    samples = _binary_from_arrays(is_positive[idx], scores[idx], threshold)
    return _with_intervals(point, samples)


def _multiclass_from_arrays(labels: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """Macro one-vs-rest metrics for (B, N) labels and (B, N, K) probabilities, argmax decisions."""
    predicted = probs.argmax(-1)
    per_class: dict[str, list[np.ndarray]] = {k: [] for k in BINARY_METRICS if k not in ("brier", "accuracy")}
    for k in range(n_classes):
        pos, said = labels == k, predicted == k
        tp, fp = (said & pos).sum(1), (said & ~pos).sum(1)
        fn, tn = (~said & pos).sum(1), (~said & ~pos).sum(1)
        per_class["auc"].append(_batched_auc(pos, probs[..., k]))
        per_class["sensitivity"].append(_safe_div(tp, tp + fn))
        per_class["specificity"].append(_safe_div(tn, tn + fp))
        per_class["ppv"].append(_safe_div(tp, tp + fp))
        per_class["npv"].append(_safe_div(tn, tn + fn))
        per_class["f1"].append(_safe_div(2 * tp, 2 * tp + fp + fn))
    with np.errstate(invalid="ignore"):
        result = {k: np.nanmean(np.stack(v), axis=0) for k, v in per_class.items()}
    onehot = np.eye(n_classes)[labels]
    result["accuracy"] = (predicted == labels).mean(1)
    result["brier"] = ((probs - onehot) ** 2).sum(-1).mean(1)
    return {k: result[k] for k in BINARY_METRICS}


def multiclass_metrics_with_ci(
    labels: np.ndarray, probs: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, dict[str, Any]]:
    """Macro-averaged (one-vs-rest) metrics for K classes with argmax decisions, with 95% CIs.

    The multi-class Brier score is the mean over cases of the summed squared error across classes.
    """
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = probs.shape[1]
    point_arrays = _multiclass_from_arrays(labels[np.newaxis], probs[np.newaxis], n_classes)
    point = {k: float(v[0]) for k, v in point_arrays.items()}
    idx = stratified_indices(labels, n_resamples, seed)
    samples = _multiclass_from_arrays(labels[idx], probs[idx], n_classes)
    return _with_intervals(point, samples)


def _thin(points: dict[str, np.ndarray], max_points: int) -> dict[str, list[float]]:
    """Keep at most ``max_points`` evenly spaced points (always the first and last)."""
    n = len(next(iter(points.values())))
    keep = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
    return {k: [float(x) for x in np.asarray(v)[keep]] for k, v in points.items()}


def roc_points(is_positive: np.ndarray, scores: np.ndarray, max_points: int = 200) -> dict[str, list[float]]:
    """ROC curve: fpr, tpr and the score threshold at each point (thresholds capped at 1)."""
    fpr, tpr, thresholds = roc_curve(np.asarray(is_positive, dtype=bool), scores)
    return _thin({"fpr": fpr, "tpr": tpr, "threshold": np.minimum(thresholds, 1.0)}, max_points)


def pr_points(is_positive: np.ndarray, scores: np.ndarray, max_points: int = 200) -> dict[str, Any]:
    """Precision-recall curve (recall descending) and average precision."""
    is_positive = np.asarray(is_positive, dtype=bool)
    precision, recall, _ = precision_recall_curve(is_positive, scores)
    average_precision = float(-np.sum(np.diff(recall) * precision[:-1]))
    curve: dict[str, Any] = _thin({"recall": recall, "precision": precision}, max_points)
    curve["average_precision"] = average_precision
    curve["prevalence"] = float(is_positive.mean())
    return curve


def reliability_bins(is_positive: np.ndarray, scores: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Calibration: equal-width probability bins with mean predicted, observed rate and count.

    Also the expected calibration error (count-weighted mean |observed - predicted|). Empty bins
    are left out.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    which = np.minimum((scores * n_bins).astype(int), n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = which == b
        if not members.any():
            continue
        bins.append(
            {
                "low": b / n_bins,
                "high": (b + 1) / n_bins,
                "mean_predicted": float(scores[members].mean()),
                "observed": float(is_positive[members].mean()),
                "count": int(members.sum()),
            }
        )
    ece = sum(abs(x["observed"] - x["mean_predicted"]) * x["count"] for x in bins) / max(len(scores), 1)
    return {"bins": bins, "n_bins": n_bins, "expected_calibration_error": float(ece)}


def threshold_at_sensitivity(is_positive: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The highest threshold whose sensitivity is at least ``target``."""
    positives = np.sort(np.asarray(scores, dtype=np.float64)[np.asarray(is_positive, dtype=bool)])
    if positives.size == 0:
        return 0.0
    allowed_misses = int(np.floor((1.0 - target) * positives.size + 1e-9))
    return float(positives[min(allowed_misses, positives.size - 1)])


def threshold_at_specificity(is_positive: np.ndarray, scores: np.ndarray, target: float) -> float:
    """The lowest threshold whose specificity is at least ``target`` (just above that negative score)."""
    negatives = np.sort(np.asarray(scores, dtype=np.float64)[~np.asarray(is_positive, dtype=bool)])
    if negatives.size == 0:
        return 1.0
    needed = int(np.ceil(target * negatives.size - 1e-9))
    if needed <= 0:
        return 0.0
    return float(np.nextafter(negatives[needed - 1], np.inf))


def threshold_table(
    is_positive: np.ndarray, scores: np.ndarray, chosen: float | None, grid: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
) -> list[dict[str, Any]]:
    """Sensitivity/specificity/PPV/NPV at several thresholds, the chosen one marked.

    Rows: the fixed ``grid``, the chosen threshold, and the thresholds that reach 95% sensitivity and
    95% specificity on these data (each with a ``note``), sorted by threshold.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    rows: dict[float, str] = {float(t): "" for t in grid}
    rows[float(threshold_at_sensitivity(is_positive, scores, 0.95))] = "reaches 95% sensitivity"
    rows[float(threshold_at_specificity(is_positive, scores, 0.95))] = "reaches 95% specificity"
    if chosen is not None:
        rows[float(chosen)] = "chosen operating threshold"
    table = []
    for threshold in sorted(rows):
        point = binary_metrics(is_positive, scores, threshold)
        table.append(
            {
                "threshold": threshold,
                "chosen": chosen is not None and threshold == float(chosen),
                "note": rows[threshold],
                **{k: _finite_or_none(point[k]) for k in ("sensitivity", "specificity", "ppv", "npv")},
                "flagged": int((np.asarray(scores) >= threshold).sum()),
            }
        )
    return table


def net_benefit(is_positive: np.ndarray, scores: np.ndarray, threshold_probability: float) -> float:
    """Vickers & Elkin (2006): TP/N - FP/N * pt / (1 - pt), treating where score >= pt."""
    is_positive = np.asarray(is_positive, dtype=bool)
    said = np.asarray(scores) >= threshold_probability
    n = len(is_positive)
    odds = threshold_probability / (1.0 - threshold_probability)
    return float((said & is_positive).sum() / n - (said & ~is_positive).sum() / n * odds)


def decision_curve(is_positive: np.ndarray, scores: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, list[float]]:
    """Net benefit of the model, of treating everyone and of treating no one, per threshold probability."""
    is_positive = np.asarray(is_positive, dtype=bool)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds)
    prevalence = float(is_positive.mean())
    return {
        "threshold_probability": [float(t) for t in grid],
        "model": [net_benefit(is_positive, scores, float(t)) for t in grid],
        "treat_all": [float(prevalence - (1 - prevalence) * t / (1 - t)) for t in grid],
        "treat_none": [0.0 for _ in grid],
    }


def subgroup_metrics(
    is_positive: np.ndarray,
    scores: np.ndarray,
    subgroups: np.ndarray,
    threshold: float,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    """Binary metrics within each subgroup, with CIs, for the metrics the subgroup can define.

    A subgroup holding only positives (e.g. "viral pneumonia") also gets ``auc_vs_all_negatives``:
    its positives ranked against every negative case, i.e. how well the model separates that kind of
    case from the normals.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    subgroups = np.asarray(subgroups).astype(str)
    rows = []
    for group in sorted(np.unique(subgroups)):
        members = subgroups == group
        entry: dict[str, Any] = {
            "subgroup": str(group),
            "n": int(members.sum()),
            "positives": int(is_positive[members].sum()),
            "negatives": int((~is_positive[members]).sum()),
            "metrics": binary_metrics_with_ci(is_positive[members], scores[members], threshold, n_resamples, seed),
        }
        if entry["negatives"] == 0 and (~is_positive).any():
            pooled = members | ~is_positive
            entry["auc_vs_all_negatives"] = binary_metrics_with_ci(
                is_positive[pooled], scores[pooled], threshold, n_resamples, seed
            )["auc"]
        rows.append(entry)
    return rows


def metric_samples(
    labels: np.ndarray, probs: np.ndarray, positive: int | None, threshold: float | None, idx: np.ndarray
) -> dict[str, np.ndarray]:
    """Metrics of each resample ``idx`` (B, N): binary at ``threshold`` if ``positive`` is set, else macro."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if positive is not None and threshold is not None:
        return _binary_from_arrays(labels[idx] == positive, probs[idx, positive], threshold)
    return _multiclass_from_arrays(labels[idx], probs[idx], probs.shape[1])


def delta_with_ci(
    a: dict[str, Any], b: dict[str, Any], n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, dict[str, Any]]:
    """Metric differences (b - a) between two model versions, with 95% bootstrap intervals.

    ``a`` and ``b``: ``{"labels": (N,), "probabilities": (N, K), "positive": int | None,
    "threshold": float | None}``. When both were evaluated on the same cases (equal labels), the
    resampling is paired (the same indices for both); otherwise each side is resampled on its own.
    """
    labels_a, labels_b = np.asarray(a["labels"]), np.asarray(b["labels"])
    paired = labels_a.shape == labels_b.shape and bool(np.all(labels_a == labels_b))
    idx_a = stratified_indices(labels_a, n_resamples, seed)
    idx_b = idx_a if paired else stratified_indices(labels_b, n_resamples, seed + 1)
    samples = []
    points = []
    for side, idx in ((a, idx_a), (b, idx_b)):
        args = (side["labels"], side["probabilities"], side.get("positive"), side.get("threshold"))
        samples.append(metric_samples(*args, idx))
        points.append({k: float(v[0]) for k, v in metric_samples(*args, np.arange(len(side["labels"]))[np.newaxis]).items()})
    result = {}
    for k in BINARY_METRICS:
        delta = points[1][k] - points[0][k]
        result[k] = {
            "a": _finite_or_none(points[0][k]),
            "b": _finite_or_none(points[1][k]),
            "delta": _finite_or_none(delta),
            "ci95": percentile_interval(samples[1][k] - samples[0][k]) if np.isfinite(delta) else [None, None],
            "paired": paired,
        }
    return result
