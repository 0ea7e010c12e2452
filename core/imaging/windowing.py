"""Window/level for the film viewer: a DICOM frame's modality values, the views that fit it, the windowed image.

The door (``core.imaging.door``) decodes a monochrome DICOM frame once and keeps, beside its
display-ready pixels, a :class:`Levels`: the frame's stored values and the few header elements that
turn them into modality values (rescale / modality LUT: Hounsfield units for CT, detector units for
CR/DX), every window the file itself proposes (WindowCenter/Width, or the span of its VOI LUT), and
whether it is MONOCHROME1. Nothing is decoded a second time; the modality values are computed only
when a reader re-windows. ``window`` maps values to [0, 1] with the linear DICOM window (PS3.3
C.11.2.1.2).

Which views fit depends on the film's units: Hounsfield presets (lung, mediastinum) mean something
only for CT. A radiograph's values are detector units that differ by vendor and exposure, so its
views come from the frame's own histogram (percentiles): a soft-tissue view over the lower part of
the range and a bone view over the upper part.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from core.i18n import N_, _

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

CT_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
}
"""(centre, width) in Hounsfield units, the usual chest CT presets; offered for CT only."""

RADIOGRAPH_PERCENTILES: dict[str, tuple[float, float]] = {
    "soft-tissue": (5.0, 75.0),
    "bone": (55.0, 99.5),
}
"""(low, high) percentiles of the frame's own values that span each view of a radiograph (or any non-CT film)."""

PRESET_NAMES = {
    "file": N_("The file's own window"),
    "lung": N_("Lung (CT)"),
    "mediastinum": N_("Mediastinum (CT)"),
    "soft-tissue": N_("Soft tissue"),
    "bone": N_("Bone"),
    "full": N_("Full range"),
}
# Header elements that turn stored values into modality values and say how to show them (no patient field).
_WINDOWING_KEYWORDS = (
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "ModalityLUTSequence",
    "WindowCenter",
    "WindowWidth",
    "WindowCenterWidthExplanation",
    "VOILUTSequence",
    "PhotometricInterpretation",
    "Modality",
    "BitsStored",
    "BitsAllocated",
    "PixelRepresentation",
    "SamplesPerPixel",
)


@dataclass(eq=False)
class Levels:
    """One monochrome DICOM frame, ready to be re-windowed.

    Attributes:
        stored: (H, W) the frame's stored values, as decoded once by the door.
        header: a copy of the windowing elements of the header only (no patient field).
        file_windows: every (centre, width) the file proposes, in its order; the first is its default view.
        invert: True for MONOCHROME1 (low values bright), so windowed images keep bright = dense.
        modality: the DICOM Modality code ("CT", "CR", "DX", ...), or "" when absent.
    """

    stored: np.ndarray = field(repr=False)
    header: Dataset = field(repr=False)
    file_windows: tuple[tuple[float, float], ...]
    invert: bool
    modality: str

    @functools.cached_property
    def values(self) -> np.ndarray:
        """(H, W) float32 modality values (Hounsfield units for CT), computed on first use."""
        from pydicom.pixels import apply_modality_lut

        from core.imaging import decoding

        return decoding.by_rows(self.stored, lambda block: apply_modality_lut(block, self.header))

    @property
    def file_window(self) -> tuple[float, float] | None:
        return self.file_windows[0] if self.file_windows else None

    @property
    def value_range(self) -> tuple[float, float]:
        return float(np.min(self.values)), float(np.max(self.values))

    @property
    def full_window(self) -> tuple[float, float]:
        """The window spanning every value in the frame."""
        lo, hi = self.value_range
        return (lo + hi) / 2.0, max(hi - lo, 1.0)

    @functools.cached_property
    def _percentiles(self) -> dict[float, float]:
        wanted = sorted({p for pair in RADIOGRAPH_PERCENTILES.values() for p in pair})
        step = max(1, int(np.sqrt(self.values.size / 250_000)))  # a quarter-megapixel sample is plenty
        found = np.percentile(self.values[::step, ::step], wanted)
        return dict(zip(wanted, (float(v) for v in found), strict=True))

    def percentile_window(self, low: float, high: float) -> tuple[float, float]:
        lo, hi = self._percentiles[low], self._percentiles[high]
        return (lo + hi) / 2.0, max(hi - lo, 1.0)


def levels_of(stored: np.ndarray, ds: Dataset) -> Levels | None:
    """The :class:`Levels` of one decoded frame (None for colour or palette frames).

    Args:
        stored: (H, W) the frame's stored values as the door decoded them.
        ds: the file's header (read without pixel data); only its windowing elements are kept.
    """
    from pydicom.dataset import Dataset

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if stored.ndim != 2 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    header = Dataset()
    for keyword in _WINDOWING_KEYWORDS:
        if keyword in ds:
            setattr(header, keyword, ds[keyword].value)
    return Levels(stored, header, _file_windows(ds), photometric == "MONOCHROME1", str(ds.get("Modality", "")).upper())


def _values(value: object) -> list[float]:
    """WindowCenter/Width may hold several values (several views the file proposes)."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [float(v) for v in value]  # type: ignore[union-attr]
    return [float(value)]  # type: ignore[arg-type]


def _file_windows(ds: Dataset) -> tuple[tuple[float, float], ...]:
    """Every (centre, width) the file asks for: its WindowCenter/Width pairs, else the span of its VOI LUT."""
    try:
        if "WindowCenter" in ds and "WindowWidth" in ds:
            pairs = zip(_values(ds.WindowCenter), _values(ds.WindowWidth), strict=False)
            windows = tuple((c, w) for c, w in pairs if w > 0)
            if windows:
                return windows
        if "VOILUTSequence" in ds:
            item = ds.VOILUTSequence[0]
            entries, first = int(item.LUTDescriptor[0] or 65536), float(item.LUTDescriptor[1])
            return ((first + entries / 2.0, float(entries)),)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return ()
    return ()


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


def presets(levels: Levels) -> dict[str, tuple[float, float]]:
    """The views that fit this film, in the order to offer them -> (centre, width).

    The file's own windows first ("file", then "file-2", ...), then Hounsfield presets for CT or
    histogram views for any other film, then the full range.
    """
    views: dict[str, tuple[float, float]] = {}
    for i, pair in enumerate(levels.file_windows):
        views["file" if i == 0 else f"file-{i + 1}"] = pair
    if levels.modality == "CT":
        views.update(CT_PRESETS)
    else:
        views.update({name: levels.percentile_window(*span) for name, span in RADIOGRAPH_PERCENTILES.items()})
    views["full"] = levels.full_window
    return views


def preset_name(preset: str) -> str:
    """A view's name in the reader's language ("file-2" is the file's second window)."""
    if preset.startswith("file-"):
        return _("The file's window {n}").format(n=preset.split("-", 1)[1])
    return _(PRESET_NAMES.get(preset, preset))


def preset_window(levels: Levels, preset: str) -> tuple[float, float]:
    """(centre, width) of ``preset`` (a key of :func:`presets`); "file" falls back to "full" when the file has none.

    Raises:
        ValueError: ``preset`` does not fit this film (e.g. "lung" for a radiograph).
    """
    views = presets(levels)
    if preset == "file" and preset not in views:
        return views["full"]
    if preset not in views:
        raise ValueError(
            _("the window {preset!r} does not fit this film; choose one of {items}").format(
                preset=preset, items=", ".join(views)
            )
        )
    return views[preset]
