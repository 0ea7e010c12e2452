"""Operating thresholds: Youden's J (on one or several versions of the same cases), sensitivity or
specificity targets, and the threshold table a card shows.

Scores are the positive class's probability; ``score >= threshold`` means positive.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.i18n import N_
from core.models.metrics import finite_or_none, binary_metrics

ROBUST_YOUDEN = "robust-youden"
CENTRED_YOUDEN = "centred-youden"
THRESHOLD_RULES = {
    ROBUST_YOUDEN: N_("maximise Youden's J averaged over clean and perturbed validation images"),
    CENTRED_YOUDEN: N_("the log-odds midpoint of the cuts within 0.01 of the best Youden's J averaged over clean and "
                       "perturbed tuning images"),
}


def rule_threshold(rule: str, is_positive: np.ndarray, scores: np.ndarray) -> float:
    """The cut ``rule`` (a THRESHOLD_RULES key) picks on (C, N) cases under C conditions."""
    if rule == CENTRED_YOUDEN:
        return centred_youden_threshold(is_positive, scores)
    return robust_youden_threshold(is_positive, scores)


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
    rows[float(threshold_at_sensitivity(is_positive, scores, 0.95))] = N_("reaches 95% sensitivity")
    rows[float(threshold_at_specificity(is_positive, scores, 0.95))] = N_("reaches 95% specificity")
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
                **{k: finite_or_none(point[k]) for k in ("sensitivity", "specificity", "ppv", "npv")},
                "flagged": int((np.asarray(scores) >= threshold).sum()),
            }
        )
    return table



def youden_threshold(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """The score cut that maximises sensitivity + specificity - 1 on one set of scores (N,)."""
    return robust_youden_threshold(np.asarray(is_positive, dtype=bool)[np.newaxis], np.asarray(scores)[np.newaxis])


def robust_youden_threshold(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """One cut for several conditions: maximise Youden's J averaged over the rows.

    Args:
        is_positive, scores: (C, N), the same N cases under C conditions (clean, blurred, ...).

    Candidate cuts are the midpoints between consecutive distinct scores, so any separation the
    scores allow is reachable however tightly they cluster (a fixed grid is not). The middle of the
    best plateau is returned: it keeps a margin on both sides for cases unlike these.
    """
    distinct = np.unique(scores)
    if len(distinct) == 1:
        return float(distinct[0])
    candidates = (distinct[:-1] + distinct[1:]) / 2.0
    j_mean = _mean_youden(is_positive, scores, candidates)
    best = candidates[j_mean >= j_mean.max() - 1e-9]
    return float(np.median(best))


def _mean_youden(is_positive: np.ndarray, scores: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    j_total = np.zeros(len(cuts))
    for pos, sc in zip(is_positive, scores):
        positives, negatives = np.sort(sc[pos]), np.sort(sc[~pos])
        sensitivity = 1.0 - np.searchsorted(positives, cuts, "left") / max(len(positives), 1)
        specificity = np.searchsorted(negatives, cuts, "left") / max(len(negatives), 1)
        j_total += sensitivity + specificity - 1.0
    return j_total / max(len(scores), 1)


def centred_youden_threshold(is_positive: np.ndarray, scores: np.ndarray, tolerance: float = 0.01) -> float:
    """The log-odds midpoint of all cuts whose mean Youden's J is within ``tolerance`` of the best.

    A well-separated validation set leaves a wide band of near-best cuts; the best-J rule lands at
    whichever end the validation films happen to crowd. Films from elsewhere move both classes'
    scores, so the cut that keeps the widest margin on both sides (in log-odds, where shifts are
    roughly symmetric) is the one least likely to fall off the edge.
    """
    is_positive, scores = np.asarray(is_positive, dtype=bool), np.asarray(scores, dtype=np.float64)
    eps = 1e-6
    logits = np.log(np.clip(scores, eps, 1 - eps) / (1 - np.clip(scores, eps, 1 - eps)))
    distinct = np.unique(logits)
    if len(distinct) == 1:
        return float(scores.ravel()[0])
    cuts = (distinct[:-1] + distinct[1:]) / 2.0
    j = _mean_youden(is_positive, logits, cuts)
    near = cuts[j >= j.max() - tolerance]
    centre = (near.min() + near.max()) / 2.0
    return float(1.0 / (1.0 + np.exp(-centre)))
