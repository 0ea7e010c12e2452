"""Window/level for the film viewer: a DICOM frame's modality values, presets, and the windowed image.

The door (``core.imaging.door``) hands every front end a display-ready (H, W) image in [0, 1]; a
reader also wants to re-window a CT or DR frame. ``read_levels`` keeps what that needs: the frame's
modality values (after the rescale / modality LUT, e.g. Hounsfield units), the file's own window
(WindowCenter/Width, or the range its VOI LUT maps) and whether it is MONOCHROME1. ``window`` then
maps values to [0, 1] with the linear DICOM window (PS3.3 C.11.2.1.2).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.i18n import _
from core.errors import UnsupportedImageError

PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
}
"""(centre, width) in Hounsfield units, the usual chest CT presets."""


@dataclass(frozen=True)
class Levels:
    """One monochrome DICOM frame ready to be re-windowed.

    Attributes:
        values: (H, W) float32 modality values (Hounsfield units for CT).
        file_window: (centre, width) from the file (WindowCenter/Width or its VOI LUT's span), or None.
        invert: True for MONOCHROME1 (low values bright), so windowed images keep bright = dense.
    """

    values: np.ndarray = field(repr=False)
    file_window: tuple[float, float] | None
    invert: bool

    @property
    def value_range(self) -> tuple[float, float]:
        return float(np.min(self.values)), float(np.max(self.values))

    @property
    def full_window(self) -> tuple[float, float]:
        """The window spanning every value in the frame."""
        lo, hi = self.value_range
        return (lo + hi) / 2.0, max(hi - lo, 1.0)


def read_levels(source: bytes | Path, frame: int | None = None) -> Levels | None:
    """The modality values and file window of one monochrome DICOM frame; None for colour or non-DICOM.

    ``source`` has already passed the door (``load_image``), so only its pixel data is decoded here.
    """
    import pydicom
    from pydicom.pixels import apply_modality_lut

    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source).open("rb")
    try:
        with stream:
            ds = pydicom.dcmread(stream, force=True)
            if int(ds.get("SamplesPerPixel") or 1) != 1 or "PixelData" not in ds:
                return None
            n_frames = int(ds.get("NumberOfFrames") or 1)
            index = (n_frames // 2 if frame is None else frame) if n_frames > 1 else None
            arr = ds.pixel_array if index is None else pydicom.pixels.pixel_array(ds, index=index)
            values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    except (pydicom.errors.InvalidDicomError, ValueError, AttributeError, TypeError) as exc:
        raise UnsupportedImageError(_("The DICOM frame could not be read again for windowing.")) from exc
    if values.ndim != 2:
        return None
    invert = str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    return Levels(values, _file_window(ds, values), invert)


def _first(value: object) -> float:
    """WindowCenter/Width may hold several values; the first is the default view."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        value = list(value)[0]  # type: ignore[arg-type]
    return float(value)  # type: ignore[arg-type]


def _file_window(ds: object, values: np.ndarray) -> tuple[float, float] | None:
    """(centre, width) the file asks for: its WindowCenter/Width, else the input span of its VOI LUT."""
    try:
        if "WindowCenter" in ds and "WindowWidth" in ds:  # type: ignore[operator]
            width = _first(ds.WindowWidth)  # type: ignore[attr-defined]
            if width > 0:
                return _first(ds.WindowCenter), width  # type: ignore[attr-defined]
        if "VOILUTSequence" in ds:  # type: ignore[operator]
            item = ds.VOILUTSequence[0]  # type: ignore[attr-defined]
            entries, first = int(item.LUTDescriptor[0] or 65536), float(item.LUTDescriptor[1])
            return first + entries / 2.0, float(entries)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    return None


def window(values: np.ndarray, centre: float, width: float, invert: bool = False) -> np.ndarray:
    """(H, W) modality values -> (H, W) float32 in [0, 1] through the linear window (centre, width).

    Raises:
        ValueError: ``width`` below 1 (a window must span at least one value).
    """
    if width < 1:
        raise ValueError(_("window width must be at least 1, got {width}").format(width=width))
    low = centre - 0.5 - (width - 1) / 2.0
    out = (np.asarray(values, dtype=np.float32) - np.float32(low)) / np.float32(width - 1 or 1)
    np.clip(out, 0.0, 1.0, out=out)
    if invert:
        np.subtract(np.float32(1.0), out, out=out)
    return out


def preset_window(levels: Levels, preset: str) -> tuple[float, float]:
    """(centre, width) of ``preset``: "file", "full", or a key of PRESETS; "file" falls back to "full"."""
    if preset == "file":
        return levels.file_window or levels.full_window
    if preset == "full":
        return levels.full_window
    if preset not in PRESETS:
        raise ValueError(_("unknown window preset {preset!r}; choose file, full or one of {items}").format(preset=preset, items=', '.join(PRESETS)))
    return PRESETS[preset]
