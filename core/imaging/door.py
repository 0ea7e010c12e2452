"""The one door every image comes through: sniff, decode, validate, normalise to greyscale in [0, 1].

Training, prediction, the pages and the CLI call only :func:`load_image`. Its journey, one step
per function, each in its own room:

1. ``_open_source``    bytes or path -> a readable binary stream, refusing empty and oversized files
2. ``_sniff_format``   first bytes + extension -> "raster" / "dicom", refusing text, ZIP and unknowns
3. ``raster.decode_raster``  PNG / JPEG / BMP / TIFF via Pillow, with our own pixel limit (bomb-safe)
   ``dicom.decode_dicom``    header first (size checks, whitelisted metadata), then ONE frame's pixels,
                             modality LUT, VOI LUT / window, MONOCHROME1 inversion
4. both decoders hand back (H, W) float32 in [0, 1], bright = dense (``decoding`` holds the shared helpers)
5. ``_validate``       the result is a finite 2-D image of a usable size

Patient privacy: DICOM headers are read, but only the whitelisted technical fields in
``dicom.SAFE_FIELDS`` are ever copied out. Library error texts are never put in our messages (they can
quote element values); the original exception stays chained for developers.
"""

from __future__ import annotations

import io
import logging
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from core.errors import UnsupportedImageError
from core.i18n import _
from core.imaging import dicom, raster
from core.imaging.decoding import MAX_PIXELS, SUPPORTED_FORMATS
from core.imaging.dicom import MAX_DICOM_PIXEL_BYTES

if TYPE_CHECKING:
    from core.imaging.windowing import Levels

__all__ = [
    "LoadedImage",
    "load_image",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_DICOM_PIXEL_BYTES",
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
]

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 512 * 1024**2
"""Uploads larger than this are refused before anything is read (the page's uploader states the same)."""
MIN_SIDE = 8
"""Smaller than this on either side cannot be a radiograph."""

_OTHER_MAGIC = {
    b"PK\x03\x04": "a ZIP archive",
    b"PK\x05\x06": "an empty ZIP archive",
    b"%PDF": "a PDF document",
    b"GIF8": "a GIF image (not supported)",
    b"\x1f\x8b": "a gzip archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"Rar!": "a RAR archive",
}
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    Attributes:
        pixels: (H, W) float32 in [0, 1], greyscale, bright = dense tissue (bone white, air black).
        source_name: the file name shown to the user (never a DICOM patient field).
        format: "PNG", "JPEG", "BMP", "TIFF" or "DICOM".
        metadata: a whitelisted, patient-free summary of the header (str -> str).
        frame_index: which frame/page was decoded (0-based), or None for a single-frame file.
        n_frames: how many frames/pages the file holds.
        notes: plain-language remarks about what was done (frame chosen, colour removed, ...).
        levels: a monochrome DICOM frame's values and the file's windows, for re-windowing without a
            second decode (``core.imaging.windowing``); None for other images.
    """

    pixels: np.ndarray = field(repr=False)
    source_name: str
    format: str
    metadata: dict[str, str] = field(default_factory=dict)
    frame_index: int | None = None
    n_frames: int = 1
    notes: list[str] = field(default_factory=list)
    levels: Levels | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))


def load_image(source: str | Path | bytes, name: str | None = None, frame: int | None = None) -> LoadedImage:
    """Decode ``source`` (a path or the bytes of an upload) into a LoadedImage.

    Args:
        source: a file path, or the raw bytes of an upload.
        name: the name to show in messages (defaults to the file name, or "upload" for bytes).
        frame: 0-based frame of a multi-frame DICOM / page of a multi-page TIFF. None = the middle
            DICOM frame, or the first TIFF page.

    Returns:
        LoadedImage with pixels (H, W) float32 in [0, 1], bright = dense tissue.

    Raises:
        UnsupportedImageError: empty, too large, truncated, not an image, a format or compression we
            cannot decode, or a frame that does not exist. The message starts with the file name.
    """
    display_name = _display_name(source, name)
    suffix = Path(name or ("" if isinstance(source, bytes) else str(source))).suffix.lower()
    try:
        with _open_source(source, display_name) as stream:
            kind = _sniff_format(stream, suffix, display_name)
            if kind == "dicom":
                decoded = dicom.decode_dicom(
                    stream, display_name, frame, force=suffix in dicom.DICOM_EXTENSIONS or not suffix
                )
            else:
                decoded = raster.decode_raster(stream, display_name, frame)
    except (UnsupportedImageError, MemoryError):
        raise
    except Exception as exc:
        # Decoders fail on damaged files in ways no list of exception types covers (TypeError from a
        # TIFF without dimensions, NotImplementedError from a DICOM with a garbled header...). The
        # library's own text may quote header values, so it never goes into our message.
        raise UnsupportedImageError(
            _(
                "{display_name}: the file is damaged or uses a layout we cannot decode ({error_type}); export it "
                "again from the source system."
            ).format(display_name=display_name, error_type=type(exc).__name__)
        ) from exc
    _validate(decoded.pixels, display_name)
    log.debug("decoded %s: %s %s", display_name, decoded.format, decoded.pixels.shape)
    return LoadedImage(
        pixels=decoded.pixels,
        source_name=display_name,
        format=decoded.format,
        metadata=decoded.metadata,
        frame_index=decoded.frame_index,
        n_frames=decoded.n_frames,
        notes=decoded.notes,
        levels=decoded.levels,
    )


# --------------------------------------------------------------------------- step 1: open


def _display_name(source: str | Path | bytes, name: str | None) -> str:
    """The name messages start with: the given name as is, else the path's file name, else "upload"."""
    if name:
        return name
    return "upload" if isinstance(source, (bytes, bytearray)) else Path(source).name


@contextmanager
def _open_source(source: str | Path | bytes, display_name: str) -> Iterator[BinaryIO]:
    """Yield a seekable binary stream over ``source``; refuse empty and oversized files up front."""
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
        _check_size(size, display_name)
        yield io.BytesIO(source)
        return
    path = Path(source)
    try:
        size = path.stat().st_size  # before reading: a 5 GB file must never be pulled into memory
        _check_size(size, display_name)
        handle = path.open("rb")
    except OSError as exc:
        raise UnsupportedImageError(
            _("{display_name}: the file could not be opened; check that it exists.").format(display_name=display_name)
        ) from exc
    with handle:
        yield handle


def _check_size(size: int, display_name: str) -> None:
    if size == 0:
        raise UnsupportedImageError(
            _("{display_name}: the file is empty (0 bytes); export or upload it again.").format(
                display_name=display_name
            )
        )
    if size > MAX_FILE_BYTES:
        raise UnsupportedImageError(
            _(
                "{display_name}: the file is {size_mb:.0f} MB, more than the {limit_mb} MB limit; export a single "
                "image, or a smaller or compressed copy."
            ).format(display_name=display_name, size_mb=size / 1024**2, limit_mb=MAX_FILE_BYTES // 1024**2)
        )


# --------------------------------------------------------------------------- step 2: sniff


def _sniff_format(stream: BinaryIO, suffix: str, display_name: str) -> str:
    """Return "dicom" or "raster" from the file's first bytes (and its extension for DICOM)."""
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    if head[128:132] == b"DICM":
        return "dicom"
    if any(head.startswith(magic) for magic in raster.RASTER_MAGIC):
        return "raster"
    for magic, what in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedImageError(
                _("{display_name}: this is {what}, not an image; upload a {formats} file.").format(
                    display_name=display_name, what=what, formats=_(SUPPORTED_FORMATS)
                )
            )
    if _looks_like_text(head):
        raise UnsupportedImageError(
            _("{display_name}: this is a text file, not an image; upload a {formats} file.").format(
                display_name=display_name, formats=_(SUPPORTED_FORMATS)
            )
        )
    if suffix in dicom.DICOM_EXTENSIONS or not suffix:
        return "dicom"  # DICOM without the 128-byte preamble, as some PACS exports write it
    raise UnsupportedImageError(
        _("{display_name}: not a recognised image format; upload a {formats} file.").format(
            display_name=display_name, formats=_(SUPPORTED_FORMATS)
        )
    )


def _looks_like_text(head: bytes) -> bool:
    """True if the sample is printable text (ASCII/UTF-8) rather than binary data."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a character cut at the end of the sample is still text
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(ch in string.printable or ch.isprintable() for ch in text)
    return printable >= 0.95 * max(len(text), 1)


def _validate(pixels: np.ndarray, display_name: str) -> None:
    """The decoded result is a 2-D, finite image of a usable size (checked once, here)."""
    if pixels.ndim != 2:
        raise UnsupportedImageError(
            _("{display_name}: the image has an unexpected shape {shape}.").format(
                display_name=display_name, shape=pixels.shape
            )
        )
    height, width = pixels.shape
    if min(height, width) < MIN_SIDE:
        raise UnsupportedImageError(
            _(
                "{display_name}: the image is only {width} x {height} pixels, too small to read; upload the "
                "full-resolution image (at least {min_side} pixels a side)."
            ).format(display_name=display_name, width=width, height=height, min_side=MIN_SIDE)
        )
