"""Metrics clinicians read, with uncertainty: pure numpy (and scikit-learn for curves).

Inputs are the arrays a model stores as ``validation_predictions.npz``: ``labels`` (N,) ints in
0..K-1 and ``probabilities`` (N, K) rows summing to 1. Binary metrics take ``is_positive`` (N,) bool
and ``scores`` (N,) in [0, 1] (the positive class's probability) and a decision threshold
(``score >= threshold`` means positive). Every interval is a 95% percentile bootstrap, resampled
within each class (stratified) with a fixed seed, so a card rebuilt from the same predictions
carries the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr

from core.i18n import N_

BINARY_METRICS = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy", "f1", "brier")
METRIC_LABELS = {
    "auc": N_("AUC (ROC)"),
    "sensitivity": N_("Sensitivity (recall)"),
    "specificity": N_("Specificity"),
    "ppv": N_("PPV (precision)"),
    "npv": N_("NPV"),
    "accuracy": N_("Accuracy"),
    "f1": N_("F1 score"),
    "brier": N_("Brier score (lower is better)"),
}
METRIC_DESCRIPTIONS = {
    "auc": N_("Probability that a random positive case scores higher than a random negative one; threshold-free."),
    "sensitivity": N_("Of the patients who have the condition, the share the model flags."),
    "specificity": N_("Of the patients who do not have the condition, the share the model clears."),
    "ppv": N_("Of the flagged patients, the share who have the condition (depends on prevalence)."),
    "npv": N_("Of the cleared patients, the share who do not have the condition (depends on prevalence)."),
    "accuracy": N_("Share of all patients classified correctly (misleading when classes are imbalanced)."),
    "f1": N_("Harmonic mean of PPV and sensitivity."),
    "brier": N_("Mean squared error of the predicted probabilities (0 is perfect; calibration and sharpness)."),
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


def multiclass_auc(labels: np.ndarray, probs: np.ndarray, positive: int | None = None) -> float:
    """The positive class's AUC for a binary model, else the macro one-vs-rest AUC over the K classes.

    Args:
        labels: (N,) ints in 0..K-1. probs: (N, K) class probabilities. positive: the positive class index.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    if probs.shape[1] == 2 and positive is not None:
        return auc_score(labels == positive, probs[:, positive])
    return float(np.nanmean([auc_score(labels == k, probs[:, k]) for k in range(probs.shape[1])]))


def auc_with_ci(
    is_positive: np.ndarray, scores: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """``{"value": AUC, "ci95": [low, high]}`` with the stratified percentile bootstrap used everywhere."""
    is_positive = np.asarray(is_positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    idx = stratified_indices(is_positive, n_resamples, seed)
    point = auc_score(is_positive, scores)
    return {"value": finite_or_none(point), "ci95": percentile_interval(_batched_auc(is_positive[idx], scores[idx]))}


def paired_auc_difference(
    is_positive: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> list[float | None]:
    """[AUC(b) - AUC(a), 2.5%, 97.5%]: two scores of the same cases, resampled together (paired)."""
    is_positive = np.asarray(is_positive, dtype=bool)
    idx = stratified_indices(is_positive, n_resamples, seed)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    diffs = _batched_auc(is_positive[idx], b[idx]) - _batched_auc(is_positive[idx], a[idx])
    return [auc_score(is_positive, b) - auc_score(is_positive, a), *percentile_interval(diffs)]


def calibration_fit(is_positive: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the logistic recalibration of ``probabilities``: (1, 0) is perfect calibration."""
    from sklearn.linear_model import LogisticRegression

    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    logit = np.log(p / (1 - p))
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(logit[:, None], np.asarray(is_positive, dtype=int))
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


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


def bootstrap_means(
    values: dict[str, np.ndarray],
    n: int,
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    statistic: Callable[..., np.ndarray] = np.nanmean,
) -> dict[str, list]:
    """95% percentile interval of each metric's ``statistic`` (mean; or ``np.nanmedian``) over ``n`` cases
    (films, patients), the same resamples for every metric so differences between them are paired."""
    if n < 2:
        return {key: [None, None] for key in values}
    idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    return {
        key: percentile_interval(statistic(np.asarray(v, dtype=np.float64)[idx], axis=1)) for key, v in values.items()
    }


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps or attribution vectors; 0 when either is constant (no ranking)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    value = spearmanr(a, b).statistic
    return float(value) if np.isfinite(value) else 0.0


def _with_intervals(point: dict[str, float], samples: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    return {
        k: {"value": finite_or_none(point[k]), "ci95": percentile_interval(samples[k]) if np.isfinite(point[k]) else [None, None]}
        for k in point
    }


def finite_or_none(value: float) -> float | None:
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


def multiclass_point_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """Point estimates of the macro one-vs-rest metrics with argmax decisions (no intervals)."""
    labels = np.asarray(labels, dtype=np.int64)[np.newaxis]
    probs = np.asarray(probs, dtype=np.float64)[np.newaxis]
    return {k: float(v[0]) for k, v in _multiclass_from_arrays(labels, probs, probs.shape[-1]).items()}


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
            "a": finite_or_none(points[0][k]),
            "b": finite_or_none(points[1][k]),
            "delta": finite_or_none(delta),
            "ci95": percentile_interval(samples[1][k] - samples[0][k]) if np.isfinite(delta) else [None, None],
            "paired": paired,
        }
    return result
