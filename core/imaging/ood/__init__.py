"""Out-of-distribution detection: is this input like the images the model was trained on?

Mahalanobis distance of the model's pooled features from the training features' distribution
(Lee et al., NeurIPS 2018), with a Ledoit-Wolf shrunk covariance so a few hundred images suffice.

The flagging threshold is the 99th percentile of *out-of-fold* training distances: each training
image is scored by a detector fitted without it. (Scoring the training images against a detector
fitted on themselves is optimistic: they sit closer to their own mean than new films do, and on the
dev model a 99% quantile of in-sample distances flagged 28% of the validation films.)

This module is the detector object only (fit, score, save, load): it needs no classifier. The
rates the detector gives are measured, not assumed, by ``core.imaging.ood.measure`` (which needs the
classifier): on the model's validation chest X-rays (should be rare) and on every non-chest image
shipped inside our installed packages (should be nearly all). ``python -m core.imaging.ood measure
NAME:VERSION`` writes them into the model's meta.json "ood" section atomically; cards read only that.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import KFold

from core.errors import InvalidModelError
from core.i18n import _

OOD_FILE = "ood.npz"
DEFAULT_QUANTILE = 0.99
OOF_FOLDS = 5
METHOD = (
    "Mahalanobis distance of pooled CNN features (Ledoit-Wolf covariance); threshold = 99th percentile "
    "of 5-fold out-of-fold training distances"
)


@dataclass
class OodDetector:
    """Fitted on (N, F) training features; ``score`` gives distances, ``is_out`` applies the threshold."""

    mean_: np.ndarray
    precision_: np.ndarray
    threshold_: float

    @classmethod
    def fit(cls, train_features: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> OodDetector:
        """Fit mean and shrunk precision on all features; threshold from out-of-fold distances."""
        features = np.asarray(train_features, dtype=np.float64)
        estimator = LedoitWolf().fit(features)
        detector = cls(estimator.location_, estimator.precision_, 0.0)
        detector.threshold_ = float(np.quantile(_out_of_fold_distances(features), quantile))
        return detector

    def score(self, features: np.ndarray) -> np.ndarray:
        """(N, F) features -> (N,) Mahalanobis distances (bigger = less like training data)."""
        centred = np.asarray(features, dtype=np.float64) - self.mean_
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, self.precision_, centred), 0.0))

    def is_out(self, score: float | None) -> bool:
        return score is not None and score > self.threshold_

    def save(self, model_dir: Path) -> None:
        np.savez(model_dir / OOD_FILE, mean=self.mean_, precision=self.precision_, threshold=self.threshold_)

    @classmethod
    def load(cls, model_dir: Path) -> OodDetector | None:
        path = Path(model_dir) / OOD_FILE
        if not path.exists():
            return None
        try:
            with np.load(path) as data:
                return cls(data["mean"], data["precision"], float(data["threshold"]))
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidModelError(
                _(
                    "{name}: its out-of-distribution statistics ({file}) are damaged; refit them with `python -m "
                    "core.imaging.ood refit MODEL_DIR`, or retrain this model."
                ).format(name=Path(model_dir).name, file=OOD_FILE)
            ) from exc


def _out_of_fold_distances(features: np.ndarray) -> np.ndarray:
    """(N,) distance of each row from a detector fitted on the other folds."""
    distances = np.zeros(len(features))
    folds = KFold(n_splits=min(OOF_FOLDS, len(features)), shuffle=True, random_state=0)
    for fit_idx, held_idx in folds.split(features):
        estimator = LedoitWolf().fit(features[fit_idx])
        centred = features[held_idx] - estimator.location_
        distances[held_idx] = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", centred, estimator.precision_, centred), 0.0))
    return distances
