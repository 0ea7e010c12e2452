"""Simulated acquisition changes (blur, noise, exposure...) used to choose a threshold that holds up."""

from __future__ import annotations

import numpy as np

PERTURBATIONS = (
    "clean",
    "blur",
    "sharpen",
    "noise",
    "low_resolution",
    "overexposed",
    "underexposed",
    "low_contrast",
    "wide_field",
    "tight_field",
    "tilted",
)
"""The last three are positioning and collimation: the chest smaller in a wider field, cropped
tighter, or rotated; equalisation undoes exposure curves but not these."""


def perturb(raw: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Acquisition changes a scanner or department may introduce: (N, S, S) in [0, 1] -> same.

    Raises:
        KeyError: ``kind`` is not one of PERTURBATIONS (a programming error, never a user's).
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    if kind == "clean":
        return raw
    if kind == "blur":
        return ndimage.gaussian_filter(raw, sigma=(0, 1.5, 1.5))
    if kind == "sharpen":
        return np.clip(raw + 1.0 * (raw - ndimage.gaussian_filter(raw, sigma=(0, 1.5, 1.5))), 0, 1)
    if kind == "noise":
        return np.clip(raw + rng.normal(0, 0.04, raw.shape), 0, 1).astype(np.float32)
    if kind == "low_resolution":
        small = ndimage.zoom(raw, (1, 0.4, 0.4), order=1)
        return np.clip(
            ndimage.zoom(small, (1, raw.shape[1] / small.shape[1], raw.shape[2] / small.shape[2]), order=1), 0, 1
        )
    if kind == "overexposed":
        return np.clip(raw**0.6 * 1.15, 0, 1)
    if kind == "underexposed":
        return np.clip(raw**1.6 * 0.85, 0, 1)
    if kind == "low_contrast":
        return 0.3 + 0.4 * raw
    if kind == "wide_field":
        return _refit(ndimage.zoom(raw, (1, 0.8, 0.8), order=1), raw.shape)
    if kind == "tight_field":
        h, w = raw.shape[1:]
        crop = raw[:, int(h * 0.08) : h - int(h * 0.08), int(w * 0.08) : w - int(w * 0.08)]
        return _refit(ndimage.zoom(crop, (1, h / crop.shape[1], w / crop.shape[2]), order=1), raw.shape)
    if kind == "tilted":
        return np.clip(ndimage.rotate(raw, 7.0, axes=(1, 2), reshape=False, order=1, mode="constant"), 0, 1)
    raise KeyError(f"unknown perturbation {kind!r}; one of {PERTURBATIONS}")


def _refit(images: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``images`` centred in a black canvas of ``shape`` (cut where larger), clipped to [0, 1]."""
    out = np.zeros(shape, dtype=np.float32)
    h, w = min(shape[1], images.shape[1]), min(shape[2], images.shape[2])
    top, left = (shape[1] - h) // 2, (shape[2] - w) // 2
    out[:, top : top + h, left : left + w] = images[:, :h, :w]
    return np.clip(out, 0, 1)
