"""Image -> model input. The recipe is named and stored with each model, so nothing is hard-coded.

``histeq-v1``: squash-resize to (size, size) like the training data, then global histogram
equalisation. Equalisation maps every image's grey levels to their rank, so the model input is the
same whatever monotonic exposure, contrast or gamma curve a scanner applied: that is what keeps a
model trained on one hospital's films from reading another's brighter films as disease.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.errors import InvalidModelError
from core.i18n import _

HISTEQ_V1 = "histeq-v1"
SUPPORTED_PREPROCESSING = (HISTEQ_V1,)
_HISTOGRAM_BINS = 1024


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """(H, W) float32 in [0, 1] -> (size, size) float32 in [0, 1], antialiased when shrinking."""
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.float32), mode="F")
    resized = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def equalize_histogram(pixels: np.ndarray) -> np.ndarray:
    """Map each grey level to its mid-rank in the image: (H, W) in [0, 1] -> (H, W) in (0, 1)."""
    levels = np.clip((pixels * (_HISTOGRAM_BINS - 1)).round().astype(np.int32), 0, _HISTOGRAM_BINS - 1)
    counts = np.bincount(levels.ravel(), minlength=_HISTOGRAM_BINS).astype(np.float64)
    mid_rank = (np.cumsum(counts) - counts / 2.0) / max(levels.size, 1)
    return mid_rank[levels].astype(np.float32)


def check_recipe(method: str, model: str = "this model") -> None:
    """Raises InvalidModelError if ``method`` is not a recipe this build knows."""
    if method not in SUPPORTED_PREPROCESSING:
        raise InvalidModelError(
            _(
                "Model '{model}': its meta.json names the preprocessing recipe '{method}', which this version of "
                "LucidDx does not know (it knows {items}); pick another model version or upgrade LucidDx."
            ).format(model=model, method=method, items=", ".join(SUPPORTED_PREPROCESSING))
        )


def finish(resized: np.ndarray, method: str = HISTEQ_V1) -> np.ndarray:
    """The recipe's step after resizing: (S, S) float32 in [0, 1] -> (S, S) float32 in [0, 1]."""
    check_recipe(method)
    return equalize_histogram(resized)


def prepare(pixels: np.ndarray, size: int, method: str = HISTEQ_V1) -> np.ndarray:
    """Greyscale image (H, W) in [0, 1] -> model input (size, size, 1) float32 in [0, 1]."""
    return finish(resize_square(pixels, size), method)[..., np.newaxis]
