"""Curves clinicians read beside the headline numbers: ROC, precision-recall, reliability, decision curve.

Inputs as in ``core.models.metrics``: ``is_positive`` (N,) bool and ``scores`` (N,) in [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_curve

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

