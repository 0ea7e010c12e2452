"""The film viewer's pictures: a film shrunk for the screen, re-windowed, with its heatmap over it,
and the header summary beside it. Nothing here knows about Streamlit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from PIL import Image

from core.errors import LucidDxError
from core.i18n import N_, _
from core.imaging import outputs, windowing
from core.imaging.door import LoadedImage
from core.imaging.outputs import Explanation
from core.imaging.windowing import preset_name


class Diagnosed(Protocol):
    """What the viewer reads of a diagnosed file (``core.services.imaging.FileResult``)."""

    @property
    def name(self) -> str: ...
    @property
    def image(self) -> LoadedImage | None: ...
    @property
    def error(self) -> str | None: ...


DISPLAY_MAX_SIDE = 768


def display_image(image: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> np.ndarray:
    """Shrink (H, W) float [0, 1] or (H, W, 3) uint8 for the screen; returns uint8, aspect kept."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    height, width = array.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return array
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.LANCZOS))


HEADER_FIELDS = {
    "Modality": N_("Modality"),
    "BodyPartExamined": N_("Body part examined"),
    "ViewPosition": N_("View position"),
    "Rows": N_("Rows"),
    "Columns": N_("Columns"),
    "BitsAllocated": N_("Bits allocated"),
    "BitsStored": N_("Bits stored"),
    "PixelRepresentation": N_("Pixel representation"),
    "SamplesPerPixel": N_("Samples per pixel"),
    "PhotometricInterpretation": N_("Photometric interpretation"),
    "NumberOfFrames": N_("Number of frames"),
    "RescaleSlope": N_("Rescale slope"),
    "RescaleIntercept": N_("Rescale intercept"),
    "WindowCenter": N_("Window centre"),
    "WindowWidth": N_("Window width"),
    "PixelSpacing": N_("Pixel spacing (mm)"),
    "TransferSyntax": N_("Transfer syntax"),
    "format": N_("Format"),
    "mode": N_("Colour mode"),
    "width": N_("Width"),
    "height": N_("Height"),
    "n_frames": N_("Pages"),
}
"""The header summary's field names as a reader sees them (the DICOM keyword stays in any export)."""


def header_rows(image: LoadedImage) -> list[dict[str, str]]:
    """The safe header summary (no patient fields: core.images whitelists them) plus size, as rows."""
    rows = [{"field": _("Size (pixels)"), "value": f"{image.shape[1]} × {image.shape[0]}"}]
    rows += [
        {
            "field": _(HEADER_FIELDS[key]) if key in HEADER_FIELDS else key,
            "value": _(value) if value.startswith("(not shown") else value,
        }
        for key, value in image.metadata.items()
    ]
    if image.n_frames > 1:
        shown = "" if image.frame_index is None else _(" (showing frame {frame})").format(frame=image.frame_index + 1)
        rows.append({"field": _("Frames"), "value": f"{image.n_frames}{shown}"})
    return rows


FULL_MAX_SIDE = 4096
"""Full resolution on demand, capped so one film stays a few megabytes on the wire."""


@dataclass(frozen=True)
class FilmView:
    """What the film viewer draws: the windowed film and its overlay at display size.

    Attributes:
        original: (h, w) uint8 greyscale, the (windowed) film as shown.
        overlay: (h, w, 3) uint8, the same film with the heatmap blended over it.
        shape: (H, W) of the film itself; the viewer's axes count its pixels.
        window: (centre, width) in modality values when a DICOM was re-windowed, else None.
    """

    original: np.ndarray = field(repr=False)
    overlay: np.ndarray = field(repr=False)
    shape: tuple[int, int]
    window: tuple[float, float] | None = None


def film_levels(result: Diagnosed) -> windowing.Levels | None:
    """The re-windowable values of a diagnosed monochrome DICOM frame, from the door's one decode; None for
    other files."""
    if result.image is None or result.image.levels is None or result.image.levels.stored.shape != result.image.shape:
        return None
    return result.image.levels


def window_presets(levels: windowing.Levels) -> dict[str, str]:
    """The views that fit this film (key -> name in the reader's language), in the order to offer them:
    the file's own windows, Hounsfield presets for CT or histogram views for a radiograph, the full range."""
    return {key: preset_name(key) for key in windowing.presets(levels)}


def film_view(
    result: Diagnosed,
    explanation: Explanation,
    opacity: float,
    levels: windowing.Levels | None = None,
    window: tuple[float, float] | None = None,
    full_resolution: bool = False,
) -> FilmView:
    """The film (re-windowed at ``window`` = (centre, width) when ``levels`` are given) and its overlay.

    Display size: at most DISPLAY_MAX_SIDE pixels a side, or FULL_MAX_SIDE with ``full_resolution``.
    """
    if result.image is None:
        raise LucidDxError(
            _("{name}: there is no film to show ({reason}).").format(
                name=result.name, reason=result.error or _("not diagnosed")
            )
        )
    pixels = result.image.pixels
    if levels is not None and window is not None:
        pixels = windowing.window(levels.values, window[0], window[1], levels.invert)
    shown = display_image(pixels, FULL_MAX_SIDE if full_resolution else DISPLAY_MAX_SIDE)
    blended = outputs.overlay(shown.astype(np.float32) / 255.0, explanation.heatmap, opacity)
    height, width = pixels.shape[:2]
    return FilmView(shown, blended, (height, width), window if levels is not None else None)
