"""Out-of-distribution detection: is this input like the images the model was trained on?

Mahalanobis distance of the model's pooled features from the training features' distribution
(Lee et al., NeurIPS 2018), with a Ledoit-Wolf shrunk covariance so a few hundred images suffice.
The flagging threshold is a high quantile of the training images' own distances, stored with the
model; the rates it gives on validation and on non-chest images are measured and put on the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf

OOD_FILE = "ood.npz"
DEFAULT_QUANTILE = 0.99


@dataclass
class OodDetector:
    mean_: np.ndarray
    precision_: np.ndarray
    threshold_: float

    @classmethod
    def fit(cls, train_features: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> "OodDetector":
        estimator = LedoitWolf().fit(train_features)
        detector = cls(estimator.location_, estimator.precision_, 0.0)
        detector.threshold_ = float(np.quantile(detector.score(train_features), quantile))
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
    def load(cls, model_dir: Path) -> "OodDetector | None":
        path = model_dir / OOD_FILE
        if not path.exists():
            return None
        with np.load(path) as data:
            return cls(data["mean"], data["precision"], float(data["threshold"]))
