"""What the image decoders share: the decoded-frame record, size limits, and in-place normalisation.

Every function takes and returns (H, W) float32 arrays in [0, 1] unless it says otherwise; row
blocks keep the temporaries of a 50-megapixel frame small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import UnsupportedImageError
from core.i18n import N_, _, ngettext

SUPPORTED_FORMATS = N_("PNG, JPEG, BMP, TIFF or DICOM")
MAX_PIXELS = 50_000_000
"""Largest decoded frame (rows x columns); a 50 MP frame as float32 is 200 MB; with the upload and decode buffers one upload stays under ~1 GB."""
# ITU-R BT.601 luma, the weights Pillow's convert("L") uses, so RGB and L inputs agree.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_BLOCK_PIXELS = 1 << 20


@dataclass
class Decoded:
    """What a decoder hands to the door: grey pixels (H, W) float32 in [0, 1] plus what was said about them."""

    pixels: np.ndarray
    format: str
    metadata: dict[str, str]
    frame_index: int | None
    n_frames: int
    notes: list[str]
    # A monochrome DICOM frame's core.imaging.windowing.Levels (same decode), else None. Typed Any: windowing
    # builds on this module's row blocks, so naming its class here would make an import cycle.
    levels: Any = None


def by_rows(src: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an element-wise ``convert`` to row blocks of ``src`` (H, W, ...) -> new (H, W) float32.

    Whole-frame float64 temporaries of a 60-megapixel image would be ~0.5 GB each; blocks of about
    a megapixel keep the peak near the size of the output.
    """
    out = np.empty(src.shape[:2], dtype=np.float32)
    step = max(1, _BLOCK_PIXELS // max(int(src.shape[1]), 1))
    for top in range(0, src.shape[0], step):
        out[top : top + step] = convert(src[top : top + step])
    return out


def min_max_inplace(values: np.ndarray) -> np.ndarray:
    """Stretch a float32 array's finite values to [0, 1] in place; non-finite -> 0, flat -> all 0."""
    finite = np.isfinite(values)
    if not finite.all():
        if not finite.any():
            values[...] = 0.0
            return values
        values[~finite] = np.nan
    return scale_inplace(values, float(np.nanmin(values)), float(np.nanmax(values)))


def scale_inplace(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly onto [0, 1] in place, clipping; NaN becomes 0."""
    span = hi - lo
    if not span > 0:
        values[...] = 0.0
        return values
    values -= np.float32(lo)
    values *= np.float32(1.0 / span)
    np.clip(values, 0.0, 1.0, out=values)
    return np.nan_to_num(values, copy=False, nan=0.0)


def float_to_unit(values: np.ndarray, notes: list[str]) -> np.ndarray:
    """32-bit float data (owned, changed in place): kept if already in [0, 1], else stretched by min..max."""
    finite = np.isfinite(values)
    if not finite.all():
        notes.append(_("Some pixels were not numbers (NaN/infinite) and were set to black."))
        values[~finite] = np.nan
    if finite.any() and np.nanmin(values) >= 0.0 and np.nanmax(values) <= 1.0:
        return np.nan_to_num(values, copy=False, nan=0.0)
    return min_max_inplace(values)


def check_pixel_count(width: int, height: int, display_name: str) -> None:
    if width * height > MAX_PIXELS:
        raise too_large_error(display_name, width, height)


def too_large_error(display_name: str, width: int | None = None, height: int | None = None) -> UnsupportedImageError:
    size = f" ({width} x {height} pixels)" if width and height else ""
    return UnsupportedImageError(
        f"{display_name}: the image is too large{size}; the limit is {MAX_PIXELS // 1_000_000} megapixels. "
        "Export a smaller copy (a radiograph needs no more than about 4000 x 4000 pixels)."
    )


def check_frame_index(index: int, n_frames: int, display_name: str, unit: str) -> None:
    if not 0 <= index < n_frames:
        if unit == "page":
            template = ngettext(
                "{display_name}: page {index} does not exist; the file has {n} page (numbered 0 to {last}).",
                "{display_name}: page {index} does not exist; the file has {n} pages (numbered 0 to {last}).",
                n_frames,
            )
        else:
            template = ngettext(
                "{display_name}: frame {index} does not exist; the file has {n} frame (numbered 0 to {last}).",
                "{display_name}: frame {index} does not exist; the file has {n} frames (numbered 0 to {last}).",
                n_frames,
            )
        raise UnsupportedImageError(
            template.format(display_name=display_name, index=index, n=n_frames, last=n_frames - 1)
        )
