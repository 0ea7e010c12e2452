"""The one door every image comes through: decode, validate, normalise to greyscale in [0, 1].

(Minimal first version: PIL formats only. DICOM and the full set of refusals arrive with issue 2.)
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import UnsupportedImageError


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image. ``pixels``: (H, W) float32 in [0, 1], greyscale, bright = dense tissue."""

    pixels: np.ndarray
    source_name: str
    format: str
    metadata: dict[str, str] = field(default_factory=dict)
    frame_index: int | None = None
    n_frames: int = 1
    notes: list[str] = field(default_factory=list)


def load_image(source: str | Path | bytes, name: str | None = None, frame: int | None = None) -> LoadedImage:
    """Decode ``source`` (a path or the bytes of an upload) into a LoadedImage.

    Raises:
        UnsupportedImageError: the file is empty, unreadable, or not an image we support.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    display_name = name or (Path(source).name if not isinstance(source, bytes) else "upload")
    if not data:
        raise UnsupportedImageError(f"{display_name}: the file is empty.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            fmt = img.format or "unknown"
            grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    except Exception as exc:  # PIL raises many types; all mean "not a readable image"
        raise UnsupportedImageError(f"{display_name}: not a readable image ({exc}).") from exc
    return LoadedImage(pixels=grey, source_name=display_name, format=fmt)
