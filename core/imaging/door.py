"""The one door every image comes through: sniff, decode, validate, normalise to greyscale in [0, 1].

Training, prediction, the pages and the CLI call only :func:`load_image`. Its journey, one function
per step:

1. ``_open_source``    bytes or path -> a readable binary stream, refusing empty and oversized files
2. ``_sniff_format``   first bytes + extension -> "raster" / "dicom", refusing text, ZIP and unknowns
3. ``_decode_raster``  PNG / JPEG / BMP / TIFF via Pillow, with our own pixel limit (bomb-safe)
   ``_decode_dicom``   header first (size checks, whitelisted metadata), then ONE frame's pixels,
                       modality LUT, VOI LUT / window, MONOCHROME1 inversion
4. ``_raster_to_grey`` / ``_dicom_to_grey``   any mode -> (H, W) float32 in [0, 1], bright = dense
5. ``_validate``       the result is a finite 2-D image of a usable size

Patient privacy: DICOM headers are read, but only the whitelisted technical fields in
``_DICOM_SAFE_FIELDS`` are ever copied out. Library error texts are never put in our messages (they can
quote element values); the original exception stays chained for developers.
"""

from __future__ import annotations

import io
import logging
import string
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, ImageOps

from core.errors import UnsupportedImageError

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 512 * 1024**2
"""Uploads larger than this are refused before anything is read."""
_EXIF_ORIENTATION = 0x0112
MAX_PIXELS = 50_000_000
"""Largest decoded frame (rows x columns); a 50 MP frame as float32 is 200 MB; with the upload and decode buffers one upload stays under ~1 GB."""
MAX_DICOM_PIXEL_BYTES = 2 * 1024**3
"""Largest pixel data a DICOM header may claim over all its frames (checked before decoding)."""
MIN_SIDE = 8
"""Smaller than this on either side cannot be a radiograph."""

SUPPORTED_FORMATS = "PNG, JPEG, BMP, TIFF or DICOM"
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
_DICOM_EXTENSIONS = {".dcm", ".dicom", ".dic"}
_RASTER_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
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
# ITU-R BT.601 luma, the weights Pillow's convert("L") uses, so RGB and L inputs agree.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Technical DICOM fields that say nothing about who the patient is. Everything else stays inside.
_DICOM_SAFE_FIELDS = (
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "WindowCenter",
    "WindowWidth",
    "PixelSpacing",
)
_MAX_METADATA_CHARS = 64
_BLOCK_PIXELS = 1 << 20


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
    """

    pixels: np.ndarray = field(repr=False)
    source_name: str
    format: str
    metadata: dict[str, str] = field(default_factory=dict)
    frame_index: int | None = None
    n_frames: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))


@dataclass
class _Decoded:
    """What a decoder hands to the common tail: grey pixels plus everything said about them."""

    pixels: np.ndarray
    format: str
    metadata: dict[str, str]
    frame_index: int | None
    n_frames: int
    notes: list[str]


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
                decoded = _decode_dicom(stream, display_name, frame, force=suffix in _DICOM_EXTENSIONS or not suffix)
            else:
                decoded = _decode_raster(stream, display_name, frame)
    except (UnsupportedImageError, MemoryError):
        raise
    except Exception as exc:
        # Decoders fail on damaged files in ways no list of exception types covers (TypeError from a
        # TIFF without dimensions, NotImplementedError from a DICOM with a garbled header...). The
        # library's own text may quote header values, so it never goes into our message.
        raise UnsupportedImageError(
            f"{display_name}: the file is damaged or uses a layout we cannot decode ({type(exc).__name__}); "
            "export it again from the source system."
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
        raise UnsupportedImageError(f"{display_name}: the file could not be opened; check that it exists.") from exc
    with handle:
        yield handle


def _check_size(size: int, display_name: str) -> None:
    if size == 0:
        raise UnsupportedImageError(f"{display_name}: the file is empty (0 bytes); export or upload it again.")
    if size > MAX_FILE_BYTES:
        raise UnsupportedImageError(
            f"{display_name}: the file is {size / 1024**2:.0f} MB, more than the {MAX_FILE_BYTES // 1024**2} MB "
            "limit; export a single image, or a smaller or compressed copy."
        )


# --------------------------------------------------------------------------- step 2: sniff


def _sniff_format(stream: BinaryIO, suffix: str, display_name: str) -> str:
    """Return "dicom" or "raster" from the file's first bytes (and its extension for DICOM)."""
    head = stream.read(_SNIFF_BYTES)
    stream.seek(0)
    if head[128:132] == b"DICM":
        return "dicom"
    if any(head.startswith(magic) for magic in _RASTER_MAGIC):
        return "raster"
    for magic, what in _OTHER_MAGIC.items():
        if head.startswith(magic):
            raise UnsupportedImageError(
                f"{display_name}: this is {what}, not an image; upload a {SUPPORTED_FORMATS} file."
            )
    if _looks_like_text(head):
        raise UnsupportedImageError(
            f"{display_name}: this is a text file, not an image; upload a {SUPPORTED_FORMATS} file."
        )
    if suffix in _DICOM_EXTENSIONS or not suffix:
        return "dicom"  # DICOM without the 128-byte preamble, as some PACS exports write it
    raise UnsupportedImageError(
        f"{display_name}: not a recognised image format; upload a {SUPPORTED_FORMATS} file."
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


# --------------------------------------------------------------------------- step 3a: raster


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


def _decode_raster(stream: BinaryIO, display_name: str, frame: int | None) -> _Decoded:
    """Decode a PNG/JPEG/BMP/TIFF with Pillow: header and size checks first, then the pixels."""
    try:
        with _pil_bomb_guard(), Image.open(stream, formats=_PIL_FORMATS) as img:
            fmt = img.format or "image"
            _check_pixel_count(img.width, img.height, display_name)
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
        raise _too_large_error(display_name) from exc
    except Image.UnidentifiedImageError as exc:
        raise UnsupportedImageError(
            f"{display_name}: not a readable image (the contents do not match any {SUPPORTED_FORMATS} "
            "layout); export it again."
        ) from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError) as exc:
        # Pillow signals truncated or corrupt streams with these.
        raise UnsupportedImageError(
            f"{display_name}: the {_format_word(stream)} file is damaged or incomplete (truncated); "
            "upload the original file again."
        ) from exc
    if rotated:
        notes.append("Rotated upright using the orientation stored in the file.")
    if n_frames > 1:
        metadata["n_frames"] = str(n_frames)
        notes.append(f"Page {index + 1} of {n_frames} was used.")
    return _Decoded(pixels, fmt, metadata, index if n_frames > 1 else None, n_frames, notes)


def _format_word(stream: BinaryIO) -> str:
    """The raster format named by the stream's magic bytes, for messages."""
    stream.seek(0)
    head = stream.read(8)
    return next((fmt for magic, fmt in _RASTER_MAGIC.items() if head.startswith(magic)), "image")


def _choose_raster_frame(frame: int | None, n_frames: int, display_name: str) -> int:
    """Page of a multi-page TIFF to decode: the requested one, else the first."""
    index = 0 if frame is None else frame
    _check_frame_index(index, n_frames, display_name, unit="page")
    return index


def _raster_to_grey(img: Image.Image) -> tuple[np.ndarray, list[str]]:
    """Any Pillow mode -> ((H, W) float32 in [0, 1], notes).

    8-bit data is divided by 255 (keeps exposure as acquired); 16-/32-bit integer data is scaled by
    its own min..max, because a 12-bit detector stored in 16 bits would otherwise look black.
    """
    mode = img.mode
    notes: list[str] = []
    if mode == "1":
        return _by_rows(np.asarray(img), lambda block: block), notes
    if mode == "L":
        return _by_rows(np.asarray(img), lambda block: block * np.float32(1 / 255)), notes
    if mode.startswith("I;16") or mode == "I":
        return _min_max_inplace(_by_rows(np.asarray(img), lambda block: block)), notes
    if mode == "F":
        return _float_to_unit(_by_rows(np.asarray(img), lambda block: block), notes), notes
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode not in ("RGB", "RGBA", "LA"):
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV...: Pillow knows their colour maths
        notes.append(f"Converted from {mode} colour to greyscale.")
    return _colour_to_grey(np.asarray(img), img.mode, notes), notes


def _colour_to_grey(arr: np.ndarray, mode: str, notes: list[str]) -> np.ndarray:
    """(H, W, C) uint8 RGB/RGBA/LA -> (H, W) float32 in [0, 1]; alpha composited over black.

    Black, because in a radiograph black means "nothing there" (air): a transparent border must not
    read as dense tissue.
    """
    if mode != "LA" and _is_coloured(arr[..., :3]):
        notes.append("The image has colour; it was converted to greyscale. Radiographs are normally grey.")
    if mode in ("LA", "RGBA") and int(arr[..., -1].min()) < 255:
        notes.append("Transparent areas were treated as black (empty).")
    return _by_rows(arr, lambda block: _composite_block(block, mode))


def _composite_block(block: np.ndarray, mode: str) -> np.ndarray:
    """(h, W, C) uint8 -> (h, W) float32 luminance times alpha, in [0, 1]."""
    values = block.astype(np.float32) * np.float32(1 / 255)
    if mode == "LA":
        return values[..., 0] * values[..., 1]
    grey = values[..., :3] @ _LUMA
    return grey * values[..., 3] if mode == "RGBA" else grey


def _is_coloured(rgb: np.ndarray) -> bool:
    """True if the channels differ noticeably (checked on a sub-sample, for speed)."""
    sample = rgb[::7, ::7].astype(np.int16)
    spread = np.abs(sample[..., 0] - sample[..., 1]) + np.abs(sample[..., 1] - sample[..., 2])
    return bool(np.mean(spread > 24) > 0.01)


# --------------------------------------------------------------------------- step 3b: DICOM


def _decode_dicom(stream: BinaryIO, display_name: str, frame: int | None, force: bool) -> _Decoded:
    """Decode one frame of a DICOM file: header and size checks first, then only that frame."""
    ds = _read_dicom_header(stream, display_name, force)
    n_frames = _check_dicom_size(ds, display_name)
    index = n_frames // 2 if frame is None else frame
    _check_frame_index(index, n_frames, display_name, unit="frame")
    syntax = _dicom_transfer_syntax(ds)
    _check_decoder(syntax, display_name)
    raw = _read_dicom_frame(stream, ds, syntax, index if n_frames > 1 else None, display_name)
    pixels, notes = _dicom_to_grey(raw, ds)
    metadata = _dicom_metadata(ds, syntax)
    if n_frames > 1:
        which = "the middle frame" if frame is None else "the requested frame"
        notes.insert(0, f"Frame {index + 1} of {n_frames} ({which}) was used.")
    return _Decoded(pixels, "DICOM", metadata, index if n_frames > 1 else None, n_frames, notes)


def _read_dicom_header(stream: BinaryIO, display_name: str, force: bool) -> "Dataset":
    """Parse every element before the pixel data (patient fields stay in here, never copied out)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=True, force=force)
    except InvalidDicomError as exc:
        raise UnsupportedImageError(
            f"{display_name}: not a recognised image format; upload a {SUPPORTED_FORMATS} file."
        ) from exc
    except Exception as exc:  # pydicom raises many types for a damaged header; all mean the same
        raise UnsupportedImageError(
            f"{display_name}: the DICOM header is damaged or incomplete (truncated); export the study again."
        ) from exc
    finally:
        stream.seek(0)
    if "Rows" not in ds or "Columns" not in ds:
        if "SOPClassUID" in ds or "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
            raise UnsupportedImageError(
                f"{display_name}: this DICOM file holds no image (it may be a report or a directory); "
                "upload the image series itself."
            )
        raise UnsupportedImageError(
            f"{display_name}: not a recognised image format; upload a {SUPPORTED_FORMATS} file."
        )
    return ds


def _check_dicom_size(ds: "Dataset", display_name: str) -> int:
    """Refuse absurd sizes from the header alone; return the number of frames."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 16)
    except (TypeError, ValueError) as exc:
        raise UnsupportedImageError(
            f"{display_name}: the DICOM header gives an unreadable image size; export the study again."
        ) from exc
    if rows < 1 or cols < 1 or n_frames < 1:
        raise UnsupportedImageError(f"{display_name}: the DICOM header says the image is empty ({rows} x {cols}).")
    _check_pixel_count(cols, rows, display_name)
    claimed = rows * cols * samples * max(bits, 8) // 8 * n_frames
    if claimed > MAX_DICOM_PIXEL_BYTES:
        raise UnsupportedImageError(
            f"{display_name}: the DICOM header claims {n_frames} frames of {rows} x {cols} pixels "
            f"({claimed / 1024**3:.1f} GB of pixel data), more than LucidDx can safely open; "
            "export the single image you want to analyse."
        )
    return n_frames


def _dicom_transfer_syntax(ds: "Dataset") -> "object":
    """The file's transfer syntax UID; files without file meta are implicit VR little endian."""
    from pydicom.uid import UID, ImplicitVRLittleEndian

    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    return UID(syntax) if syntax else ImplicitVRLittleEndian


def _check_decoder(syntax: "object", display_name: str) -> None:
    """Refuse, naming the syntax, if no installed plugin can decode this compression."""
    from pydicom.pixels import get_decoder

    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = getattr(syntax, "name", str(syntax))
        raise UnsupportedImageError(
            f"{display_name}: the image is compressed as '{name}', which LucidDx cannot decode; "
            "export it as uncompressed DICOM, or as PNG."
        )


def _read_dicom_frame(
    stream: BinaryIO, ds: "Dataset", syntax: object, index: int | None, display_name: str
) -> np.ndarray:
    """Decode only frame ``index`` (None = the single frame) -> (rows, cols) or (rows, cols, samples)."""
    import pydicom
    from pydicom.pixels import pixel_array
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    try:
        if syntax == DeflatedExplicitVRLittleEndian:
            # The whole dataset is zlib-compressed, so it must be inflated before any frame can be found.
            arr = pixel_array(pydicom.dcmread(stream, force=True), index=index)
        else:
            # On a stream, pixel_array reads only the requested frame's bytes, not all the pixel data.
            arr = pixel_array(stream, index=index, transfer_syntax_uid=syntax)
    except Exception as exc:  # truncated or corrupt pixel data: decoders raise many types
        raise _damaged_pixels_error(syntax, display_name) from exc
    if arr.ndim == 3 and arr.shape[0] == 1 and int(ds.get("SamplesPerPixel") or 1) == 1:
        arr = arr[0]  # "NumberOfFrames 1" can still come back with a frame axis
    return arr


def _damaged_pixels_error(syntax: object, display_name: str) -> UnsupportedImageError:
    """The message for pixel data that would not decode, naming the compression if there is one."""
    if getattr(syntax, "is_compressed", False):
        return UnsupportedImageError(
            f"{display_name}: the DICOM image data (compressed as '{getattr(syntax, 'name', syntax)}') could not "
            "be decoded: it is damaged, truncated, or a variant LucidDx cannot read; export it again as "
            "uncompressed DICOM, or as PNG."
        )
    return UnsupportedImageError(
        f"{display_name}: the DICOM image data is damaged or incomplete (truncated); export the study again."
    )


def _dicom_to_grey(arr: np.ndarray, ds: "Dataset") -> tuple[np.ndarray, list[str]]:
    """One decoded frame -> ((H, W) float32 in [0, 1], notes), bright = dense.

    Monochrome: modality LUT (rescale), then VOI LUT or window centre/width, then MONOCHROME1 is
    inverted. Colour (RGB/YBR, already RGB after decoding) and palette colour: luminance.
    """
    from pydicom.pixels import apply_color_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    notes: list[str] = []
    if photometric == "PALETTE COLOR":
        notes.append("Palette colour image converted to greyscale.")
        return _by_rows(arr, lambda block: _luma_block(apply_color_lut(block, ds))), notes
    if arr.ndim == 3:
        notes.append(f"{photometric} colour image converted to greyscale.")
        bits = int(ds.get("BitsStored") or 8)
        return _by_rows(arr, lambda block: _luma_block(block, bits)), notes
    grey = _apply_dicom_voi(arr, ds, notes)
    if photometric == "MONOCHROME1":
        np.subtract(np.float32(1.0), grey, out=grey)
        notes.append("MONOCHROME1 image inverted so that dense tissue is bright.")
    return grey, notes


def _luma_block(block: np.ndarray, bits: int | None = None) -> np.ndarray:
    """(h, W, 3) unsigned RGB samples -> (h, W) float32 luminance in [0, 1], by bit depth."""
    top = float(2**bits - 1) if bits else float(np.iinfo(block.dtype).max)
    return np.clip((block.astype(np.float32) * np.float32(1 / top)) @ _LUMA, 0.0, 1.0)


def _apply_dicom_voi(arr: np.ndarray, ds: "Dataset", notes: list[str]) -> np.ndarray:
    """Stored values -> modality LUT -> the file's VOI LUT or window -> (H, W) float32 in [0, 1].

    Without a VOI, the modality values are stretched by their own min..max. Row blocks keep the
    float64 temporaries of pydicom's LUT functions small on a 60-megapixel frame.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    has_lut = "VOILUTSequence" in ds
    has_window = "WindowCenter" in ds and "WindowWidth" in ds
    if has_lut or has_window:
        try:
            windowed = _by_rows(arr, lambda block: apply_voi_lut(apply_modality_lut(block, ds), ds, index=0))
            if has_lut:
                notes.append("Display VOI LUT from the file applied.")
                return _min_max_inplace(windowed)
            # The window's output range, found by pushing the extremes through the same window.
            lo, hi = apply_voi_lut(np.array([-1e12, 1e12]), ds, index=0)
            notes.append("Display window from the file applied.")
            return _scale_inplace(windowed, float(lo), float(hi))
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):  # malformed VOI: say so
            notes.append("The display window in the file is unreadable; the full value range was used.")
    return _min_max_inplace(_by_rows(arr, lambda block: apply_modality_lut(block, ds)))


def _dicom_metadata(ds: "Dataset", syntax: object) -> dict[str, str]:
    """Whitelisted technical header fields as short strings; nothing that identifies a patient."""
    from pydicom.multival import MultiValue

    metadata: dict[str, str] = {}
    for keyword in _DICOM_SAFE_FIELDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple, MultiValue)) else str(value)
        metadata[keyword] = text[:_MAX_METADATA_CHARS]
    metadata["TransferSyntax"] = str(getattr(syntax, "name", syntax))[:_MAX_METADATA_CHARS]
    return metadata


# --------------------------------------------------------------------------- step 4: normalise


def _by_rows(src: np.ndarray, convert: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an element-wise ``convert`` to row blocks of ``src`` (H, W, ...) -> new (H, W) float32.

    Whole-frame float64 temporaries of a 60-megapixel image would be ~0.5 GB each; blocks of about
    a megapixel keep the peak near the size of the output.
    """
    out = np.empty(src.shape[:2], dtype=np.float32)
    step = max(1, _BLOCK_PIXELS // max(int(src.shape[1]), 1))
    for top in range(0, src.shape[0], step):
        out[top : top + step] = convert(src[top : top + step])
    return out


def _min_max_inplace(values: np.ndarray) -> np.ndarray:
    """Stretch a float32 array's finite values to [0, 1] in place; non-finite -> 0, flat -> all 0."""
    finite = np.isfinite(values)
    if not finite.all():
        if not finite.any():
            values[...] = 0.0
            return values
        values[~finite] = np.nan
    return _scale_inplace(values, float(np.nanmin(values)), float(np.nanmax(values)))


def _scale_inplace(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly onto [0, 1] in place, clipping; NaN becomes 0."""
    span = hi - lo
    if not span > 0:
        values[...] = 0.0
        return values
    values -= np.float32(lo)
    values *= np.float32(1.0 / span)
    np.clip(values, 0.0, 1.0, out=values)
    return np.nan_to_num(values, copy=False, nan=0.0)


def _float_to_unit(values: np.ndarray, notes: list[str]) -> np.ndarray:
    """32-bit float data (owned, changed in place): kept if already in [0, 1], else stretched by min..max."""
    finite = np.isfinite(values)
    if not finite.all():
        notes.append("Some pixels were not numbers (NaN/infinite) and were set to black.")
        values[~finite] = np.nan
    if finite.any() and np.nanmin(values) >= 0.0 and np.nanmax(values) <= 1.0:
        return np.nan_to_num(values, copy=False, nan=0.0)
    return _min_max_inplace(values)


# --------------------------------------------------------------------------- step 5: validate


def _check_pixel_count(width: int, height: int, display_name: str) -> None:
    if width * height > MAX_PIXELS:
        raise _too_large_error(display_name, width, height)


def _too_large_error(display_name: str, width: int | None = None, height: int | None = None) -> UnsupportedImageError:
    size = f" ({width} x {height} pixels)" if width and height else ""
    return UnsupportedImageError(
        f"{display_name}: the image is too large{size}; the limit is {MAX_PIXELS // 1_000_000} megapixels. "
        "Export a smaller copy (a radiograph needs no more than about 4000 x 4000 pixels)."
    )


def _check_frame_index(index: int, n_frames: int, display_name: str, unit: str) -> None:
    if not 0 <= index < n_frames:
        raise UnsupportedImageError(
            f"{display_name}: {unit} {index} does not exist; the file has {n_frames} {unit}"
            f"{'s' if n_frames != 1 else ''} (numbered 0 to {n_frames - 1})."
        )


def _validate(pixels: np.ndarray, display_name: str) -> None:
    """The decoded result is a 2-D, finite image of a usable size (checked once, here)."""
    if pixels.ndim != 2:
        raise UnsupportedImageError(f"{display_name}: the image has an unexpected shape {pixels.shape}.")
    height, width = pixels.shape
    if min(height, width) < MIN_SIDE:
        raise UnsupportedImageError(
            f"{display_name}: the image is only {width} x {height} pixels, too small to read; "
            f"upload the full-resolution image (at least {MIN_SIDE} pixels a side)."
        )
