"""Raster uploads (PNG, JPEG, BMP, TIFF) through Pillow: bomb-safe, oriented, to greyscale in [0, 1]."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from core.errors import UnsupportedImageError
from core.i18n import _
from core.imaging import decoding

PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
RASTER_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
_EXIF_ORIENTATION = 0x0112


@contextmanager
def _pil_bomb_guard() -> Iterator[None]:
    """Turn Pillow's decompression-bomb warning into an exception inside this block.

    Pillow warns (rather than raises) between its own limit and twice that, at open() time, before
    our MAX_PIXELS check can run. catch_warnings is process-wide; a concurrent decode at worst sees
    the same "error" filter, which only makes its own bomb warning an error too.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def decode_raster(stream: BinaryIO, display_name: str, frame: int | None) -> decoding.Decoded:
    """Decode a PNG/JPEG/BMP/TIFF with Pillow: header and size checks first, then the pixels."""
    try:
        with _pil_bomb_guard(), Image.open(stream, formats=PIL_FORMATS) as img:
            fmt = img.format or "image"
            decoding.check_pixel_count(img.width, img.height, display_name)
            n_frames = int(getattr(img, "n_frames", 1))
            index = _choose_raster_frame(frame, n_frames, display_name)
            if index:
                img.seek(index)
            img.load()
            # Pillow's exif_transpose returns a copy even when there is nothing to turn, so read the tag.
            rotated = img.getexif().get(_EXIF_ORIENTATION, 1) not in (0, 1)
            oriented = ImageOps.exif_transpose(img) if rotated else img
            metadata = {"format": fmt, "mode": img.mode, "width": str(img.width), "height": str(img.height)}
            pixels, notes = _raster_to_grey(oriented)
    except UnsupportedImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise decoding.too_large_error(display_name) from exc
    except Image.UnidentifiedImageError as exc:
        raise UnsupportedImageError(
            _(
                "{display_name}: not a readable image (the contents do not match any {formats} "
                "layout); export it again."
            ).format(display_name=display_name, formats=_(decoding.SUPPORTED_FORMATS))
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
        # Pillow signals truncated or corrupt streams with these.
        raise UnsupportedImageError(
            _(
                "{display_name}: the {format_word} file is damaged or incomplete (truncated); upload the "
                "original file again."
            ).format(display_name=display_name, format_word=_format_word(stream))
        ) from exc
    if rotated:
        notes.append(_("Rotated upright using the orientation stored in the file."))
    if n_frames > 1:
        metadata["n_frames"] = str(n_frames)
        notes.append(_("Page {page} of {n_frames} was used.").format(page=index + 1, n_frames=n_frames))
    return decoding.Decoded(pixels, fmt, metadata, index if n_frames > 1 else None, n_frames, notes)


def _format_word(stream: BinaryIO) -> str:
    """The raster format named by the stream's magic bytes, for messages."""
    stream.seek(0)
    head = stream.read(8)
    return next((fmt for magic, fmt in RASTER_MAGIC.items() if head.startswith(magic)), _("image"))


def _choose_raster_frame(frame: int | None, n_frames: int, display_name: str) -> int:
    """Page of a multi-page TIFF to decode: the requested one, else the first."""
    index = 0 if frame is None else frame
    decoding.check_frame_index(index, n_frames, display_name, unit="page")
    return index


def _raster_to_grey(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    """Any Pillow mode -> ((H, W) float32 in [0, 1], notes).

    8-bit data is divided by 255 (keeps exposure as acquired); 16-/32-bit integer data is scaled by
    its own min..max, because a 12-bit detector stored in 16 bits would otherwise look black.
    """
    mode = img.mode
    notes: list[str] = []
    if mode == "1":
        return decoding.by_rows(np.asarray(img), lambda block: block), notes
    if mode == "L":
        return decoding.by_rows(np.asarray(img), lambda block: block * np.float32(1 / 255)), notes
    if mode.startswith("I;16") or mode == "I":
        return decoding.min_max_inplace(decoding.by_rows(np.asarray(img), lambda block: block)), notes
    if mode == "F":
        return decoding.float_to_unit(decoding.by_rows(np.asarray(img), lambda block: block), notes), notes
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "LA"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV...: Pillow knows their colour maths
        notes.append(_("Converted from {mode} colour to greyscale.").format(mode=mode))
    return _colour_to_grey(np.asarray(img), img.mode, notes), notes


def _colour_to_grey(arr: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    """(H, W, C) uint8 RGB/RGBA/LA -> (H, W) float32 in [0, 1]; alpha composited over black.

    Black, because in a radiograph black means "nothing there" (air): a transparent border must not
    read as dense tissue.
    """
    if mode != "LA" and _is_coloured(arr[..., :3]):
        notes.append(_("The image has colour; it was converted to greyscale. Radiographs are normally grey."))
    if mode in ("LA", "RGBA") and int(arr[..., -1].min()) < 255:
        notes.append(_("Transparent areas were treated as black (empty)."))
    return decoding.by_rows(arr, lambda block: _composite_block(block, mode))


def _composite_block(block: np.ndarray, mode: str) -> np.ndarray:
    """(h, W, C) uint8 -> (h, W) float32 luminance times alpha, in [0, 1]."""
    values = block.astype(np.float32) * np.float32(1 / 255)
    if mode == "LA":
        return values[..., 0] * values[..., 1]
    grey = values[..., :3] @ decoding.LUMA
    return grey * values[..., 3] if mode == "RGBA" else grey


def _is_coloured(rgb: np.ndarray) -> bool:
    """True if the channels differ noticeably (checked on a sub-sample, for speed)."""
    sample = rgb[::7, ::7].astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    return bool(np.mean(spread > 24) > 0.01)
