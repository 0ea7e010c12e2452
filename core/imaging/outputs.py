"""What an image model's answer is made of, readable without TensorFlow: the prediction, its explanation, and
the pictures drawn from them (colour map, overlay, PNG).

A process whose films are scored by a Ray Serve replica (``core.engine.serving``) receives these objects
pickled; keeping them here rather than beside the network means that process never imports TensorFlow.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Prediction:
    """What the model says about one image."""

    model: str
    label: str | None
    """The class a reader may read, at the threshold in force; None when the film is not assessable."""
    probabilities: dict[str, float]
    threshold: float | None
    positive_class: str | None
    out_of_distribution: bool
    ood_score: float | None
    threshold_source: str = "stored"
    """Where ``threshold`` comes from: "stored" (the version's own) or "site:<validation id>" (adopted)."""
    decision: str | None = None
    """The class the probabilities point to at the threshold, assessable or not: what an explanation
    explains unless told otherwise. Never a finding: it is not in ``as_dict`` and no table shows it."""

    def __post_init__(self) -> None:
        # The one place every prediction passes (built, or re-decided at a site threshold by
        # dataclasses.replace): a film that is not assessable carries no label, whoever reads it.
        if self.label is not None:
            object.__setattr__(self, "decision", self.label)
        elif self.decision is None and self.probabilities:
            object.__setattr__(self, "decision", max(self.probabilities, key=self.probabilities.__getitem__))
        if self.out_of_distribution:
            object.__setattr__(self, "label", None)

    @property
    def assessable(self) -> bool:
        """False when the image is unlike the training films: no diagnosis should be read from it."""
        return not self.out_of_distribution

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "label": self.label,
            "probabilities": self.probabilities,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "positive_class": self.positive_class,
            "out_of_distribution": self.out_of_distribution,
            "ood_score": self.ood_score,
            "assessable": self.assessable,
        }


@dataclass(frozen=True)
class Explanation:
    """A heatmap and what it explains. ``heatmap``: (S, S) float32 in [0, 1]."""

    method: str
    class_name: str
    heatmap: np.ndarray


# A perceptually ordered blue -> cyan -> yellow -> red ramp (jet-like), so hot means "mattered most".
_COLORMAP_STOPS = np.array([0.0, 0.125, 0.375, 0.625, 0.875, 1.0])
_COLORMAP_RGB = np.array(
    [[0, 0, 128], [0, 0, 255], [0, 255, 255], [255, 255, 0], [255, 0, 0], [128, 0, 0]], dtype=np.float32
)


_COLORMAP_LUT = (
    np.stack([np.interp(np.linspace(0.0, 1.0, 256), _COLORMAP_STOPS, _COLORMAP_RGB[:, c]) for c in range(3)], axis=-1)
    .round()
    .astype(np.uint8)
)


def colorize(heatmap: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8 RGB colour map (256-step lookup table)."""
    levels = (np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return _COLORMAP_LUT[levels]


def upsample(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(S, S) heatmap -> ``shape`` (H, W) float32 in [0, 1], bilinear (the model squashed the image)."""
    image = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F")
    resized = image.resize((int(shape[1]), int(shape[0])), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def overlay(pixels: np.ndarray, heatmap: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Blend a heatmap over the original image.

    Args:
        pixels: (H, W) greyscale float in [0, 1], the image as decoded.
        heatmap: (S, S) float in [0, 1]; upsampled to (H, W).
        opacity: 0 shows only the image, 1 only the heatmap.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    opacity = float(np.clip(opacity, 0.0, 1.0))
    grey = np.clip(np.asarray(pixels, dtype=np.float32), 0.0, 1.0)
    base = np.repeat((grey * 255.0)[..., np.newaxis], 3, axis=-1)
    colours = colorize(upsample(heatmap, grey.shape)).astype(np.float32)
    return ((1.0 - opacity) * base + opacity * colours).round().clip(0, 255).astype(np.uint8)


def heatmap_png(heatmap: np.ndarray, shape: tuple[int, int] | None = None) -> bytes:
    """The colour-mapped heatmap as PNG bytes, at ``shape`` (H, W) or the model's size."""
    values = upsample(heatmap, shape) if shape is not None else np.asarray(heatmap, dtype=np.float32)
    buffer = io.BytesIO()
    # Fast zlib level: a 2048 px map encodes in a fraction of the default's time, a little larger.
    Image.fromarray(colorize(values), mode="RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
