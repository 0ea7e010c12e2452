"""Temperature scaling (Guo et al. 2017): one scalar T so that softmax(logits / T) means what it says.

T is fitted by minimising the negative log-likelihood on films that did not train the network; it
never changes which of two films scores higher (ranking, AUC), only how confident the scores are.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

_EPS = 1e-12


def _log_probs(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(probabilities, _EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def rescale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) probabilities -> softmax(log p / T): what the model gives after scaling by ``temperature``."""
    return np.exp(_log_probs(np.asarray(probabilities, dtype=np.float64), temperature))


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    log_p = _log_probs(np.asarray(probabilities, dtype=np.float64), temperature)
    return float(-log_p[np.arange(len(labels)), np.asarray(labels, dtype=int)].mean())


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the NLL of ``labels`` (N,) under ``probabilities`` (N, K) / T."""
    result = minimize_scalar(lambda log_t: negative_log_likelihood(probabilities, labels, float(np.exp(log_t))),
                             bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(is_positive: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by the bin's share."""
    is_positive, scores = np.asarray(is_positive, dtype=float), np.asarray(scores, dtype=float)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(is_positive[inside].mean() - scores[inside].mean())
    return float(total)
