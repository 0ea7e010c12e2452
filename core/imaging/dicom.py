"""DICOM uploads through pydicom: header first (size checks, whitelisted fields), then ONE frame.

Patient privacy: only the technical fields in ``SAFE_FIELDS`` are ever copied out of a header, and
library error texts (which can quote element values) never go into our messages.
"""

from __future__ import annotations

import re
import zlib
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from core.errors import UnsupportedImageError
from core.i18n import N_, _
from core.imaging import decoding, windowing

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

DICOM_EXTENSIONS = {".dcm", ".dicom", ".dic"}
MAX_DICOM_PIXEL_BYTES = 2 * 1024**3
"""Largest pixel data a DICOM header may claim over all its frames (checked before decoding)."""
# Technical DICOM fields that say nothing about who the patient is. Everything else stays inside.
SAFE_FIELDS = (
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
MAX_INFLATED_BYTES = 256 * 1024**2
"""Largest dataset a Deflated Explicit VR file may inflate to; counted while inflating (a deflate bomb
of a few MB can hold gigabytes)."""
MAX_ELEMENT_BYTES = 64 * 1024**2
"""Largest single header element (pixel data aside): no technical field needs more; a huge private
element is a way to exhaust memory."""
_INFLATE_CHUNK = 1024**2
_MAX_METADATA_CHARS = 64
PIXEL_SLACK = 1.25
"""Pixel data may exceed what the header describes by this factor (trailing padding) before it is refused."""
# Coded-string fields are shown only when they hold a code: a free-text value (a patient's name typed
# into BodyPartExamined, say) never reaches the screen. Body parts: defined terms of PS3.16 Annex L.
CODED_FIELDS = ("Modality", "BodyPartExamined", "ViewPosition", "PhotometricInterpretation")
_CODE = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
COLOUR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT"})
BODY_PARTS = frozenset(
    """
ABDOMEN ABDOMENPELVIS ANKLE ARM BRAIN BREAST CHEST CHESTABDOMEN CHESTABDPELVIS CLAVICLE COCCYX CSPINE ELBOW
EXTREMITY FEMUR FINGER FOOT FOREARM HAND HEAD HEADNECK HEART HIP HUMERUS JAW KNEE LEG LSPINE LUNG NECK ORBIT
PELVIS RIB SACRUM SHOULDER SINUS SKULL SPINE SSPINE TIBIA TMJ THORAX TOE TSPINE WHOLEBODY WRIST ZYGOMA
""".split()
)


def decode_dicom(stream: BinaryIO, display_name: str, frame: int | None, force: bool) -> decoding.Decoded:
    """Decode one frame of a DICOM file: header and size checks first, then only that frame."""
    check_inflated_size(stream, display_name, force)
    ds = _read_dicom_header(stream, display_name, force)
    check_element_sizes(ds, display_name)
    n_frames = _check_dicom_size(ds, display_name)
    index = n_frames // 2 if frame is None else frame
    decoding.check_frame_index(index, n_frames, display_name, unit="frame")
    syntax = _dicom_transfer_syntax(ds)
    _check_decoder(syntax, display_name)
    _check_pixel_length(stream, ds, syntax, n_frames, display_name)
    raw = _read_dicom_frame(stream, ds, syntax, index if n_frames > 1 else None, display_name)
    pixels, notes = _dicom_to_grey(raw, ds)
    levels = (
        windowing.levels_of(raw, ds)
        if str(ds.get("PhotometricInterpretation", "")).upper() != "PALETTE COLOR"
        else None
    )
    metadata = _dicom_metadata(ds, syntax)
    if n_frames > 1:
        which = "the middle frame" if frame is None else "the requested frame"
        notes.insert(0, f"Frame {index + 1} of {n_frames} ({which}) was used.")
    return decoding.Decoded(pixels, "DICOM", metadata, index if n_frames > 1 else None, n_frames, notes, levels)


def check_inflated_size(stream: BinaryIO, display_name: str, force: bool = True) -> None:
    """Refuse a Deflated Explicit VR file whose dataset inflates past MAX_INFLATED_BYTES.

    pydicom inflates such a dataset whole, in memory, before it parses one element. This counts the
    inflated bytes as they stream (output discarded, at most a megabyte at a time) and stops at the
    limit, so a deflate bomb is refused having cost a megabyte, not gigabytes. Other syntaxes: no-op.
    """
    from pydicom.filereader import _read_file_meta_info, read_preamble
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    try:
        read_preamble(stream, force)
        meta = _read_file_meta_info(stream)
        deflated = meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
        if deflated:
            _count_inflated(stream, display_name)
    except UnsupportedImageError:
        raise
    except Exception:  # an unreadable meta or stream is the header reader's to report, with its own message
        return
    finally:
        stream.seek(0)


def _count_inflated(stream: BinaryIO, display_name: str) -> None:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    while not inflater.eof and (pending := inflater.unconsumed_tail or stream.read(_INFLATE_CHUNK)):
        total += len(inflater.decompress(pending, _INFLATE_CHUNK))
        if total > MAX_INFLATED_BYTES:
            raise UnsupportedImageError(
                _(
                    "{display_name}: the deflate-compressed DICOM data expands to more than the {limit_mb} MB "
                    "limit; LucidDx stopped inflating it. Export the image uncompressed, or as a single frame."
                ).format(display_name=display_name, limit_mb=MAX_INFLATED_BYTES // 1024**2)
            )


def check_element_sizes(ds: Dataset, display_name: str) -> None:
    """Refuse a header with an element (pixel data aside) longer than MAX_ELEMENT_BYTES, naming the limit."""
    for tag in list(ds.keys()):
        element = ds.get_item(tag)  # raw: a deferred value keeps its length and stays unread
        length = getattr(element, "length", None)
        if length is None:
            length = len(element.value) if isinstance(element.value, (bytes, bytearray, str)) else 0
        if element.tag != 0x7FE00010 and length != 0xFFFFFFFF and length > MAX_ELEMENT_BYTES:
            raise UnsupportedImageError(
                _(
                    "{display_name}: a DICOM header element holds {size_mb:.0f} MB, more than the {limit_mb} MB limit "
                    "for one element; the file is damaged or padded. Export the image again."
                ).format(display_name=display_name, size_mb=length / 1024**2, limit_mb=MAX_ELEMENT_BYTES // 1024**2)
            )


def _read_dicom_header(stream: BinaryIO, display_name: str, force: bool) -> Dataset:
    """Parse every element before the pixel data (patient fields stay in here, never copied out)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # Large values stay unread (deferred): their lengths are checked before anything loads them.
        ds = pydicom.dcmread(stream, stop_before_pixels=True, force=force, defer_size=_INFLATE_CHUNK)
    except InvalidDicomError as exc:
        raise UnsupportedImageError(
            _("{display_name}: not a recognised image format; upload a {formats} file.").format(
                display_name=display_name, formats=_(decoding.SUPPORTED_FORMATS)
            )
        ) from exc
    except Exception as exc:  # pydicom raises many types for a damaged header; all mean the same
        raise UnsupportedImageError(
            _("{display_name}: the DICOM header is damaged or incomplete (truncated); export the study again.").format(
                display_name=display_name
            )
        ) from exc
    finally:
        stream.seek(0)
    if "Rows" not in ds or "Columns" not in ds:
        if "SOPClassUID" in ds or "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
            raise UnsupportedImageError(
                _(
                    "{display_name}: this DICOM file holds no image (it may be a report or a directory); upload the "
                    "image series itself."
                ).format(display_name=display_name)
            )
        raise UnsupportedImageError(
            _("{display_name}: not a recognised image format; upload a {formats} file.").format(
                display_name=display_name, formats=_(decoding.SUPPORTED_FORMATS)
            )
        )
    return ds


def _check_dicom_size(ds: Dataset, display_name: str) -> int:
    """Refuse absurd sizes from the header alone; return the number of frames."""
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        n_frames = int(ds.get("NumberOfFrames") or 1)
        samples = int(ds.get("SamplesPerPixel") or 1)
        bits = int(ds.get("BitsAllocated") or 16)
    except (TypeError, ValueError) as exc:
        raise UnsupportedImageError(
            _("{display_name}: the DICOM header gives an unreadable image size; export the study again.").format(
                display_name=display_name
            )
        ) from exc
    if rows < 1 or cols < 1 or n_frames < 1:
        raise UnsupportedImageError(
            _("{display_name}: the DICOM header says the image is empty ({rows} x {cols}).").format(
                display_name=display_name, rows=rows, cols=cols
            )
        )
    decoding.check_pixel_count(cols, rows, display_name)
    claimed = rows * cols * samples * max(bits, 8) // 8 * n_frames
    if claimed > MAX_DICOM_PIXEL_BYTES:
        raise UnsupportedImageError(
            _(
                "{display_name}: the DICOM header claims {n_frames} frames of {rows} x {cols} pixels "
                "({size_gb:.1f} GB of pixel data), more than LucidDx can safely open; export the single image you "
                "want to analyse."
            ).format(display_name=display_name, n_frames=n_frames, rows=rows, cols=cols, size_gb=claimed / 1024**3)
        )
    return n_frames


def _check_pixel_length(stream: BinaryIO, ds: Dataset, syntax: object, n_frames: int, display_name: str) -> None:
    """Refuse uncompressed pixel data longer than the header describes: the file is damaged or mislabelled."""
    import pydicom

    if getattr(syntax, "is_compressed", True):
        return  # encapsulated frames have their own lengths; their decoders check them
    try:
        element = pydicom.dcmread(stream, force=True, defer_size=1024).get_item("PixelData")
    except Exception:  # the decoder below reports a damaged file with its own message
        return
    finally:
        stream.seek(0)
    bits, samples = int(ds.get("BitsAllocated") or 16), int(ds.get("SamplesPerPixel") or 1)
    expected = -(-int(ds.Rows) * int(ds.Columns) * samples * n_frames * bits // 8)
    if element is None:
        return
    length = getattr(element, "length", None)  # a deferred (raw) element knows its length unread
    if length is None and isinstance(element.value, (bytes, bytearray)):
        length = len(element.value)
    # Some writers pad the pixel data a little (pydicom's MR_small_padded: +1.6%); a file with far more
    # bytes than its header describes holds something else, and reading only the start would hide that.
    if length not in (None, 0xFFFFFFFF) and length > expected * PIXEL_SLACK + 1:
        raise UnsupportedImageError(
            _(
                "{display_name}: its pixel data holds {length:,} bytes where the header describes {expected:,} "
                "({ratio:.1f} times as many); the file is damaged or mislabelled. Export the study again."
            ).format(display_name=display_name, length=length, expected=expected, ratio=length / expected)
        )


def _dicom_transfer_syntax(ds: Dataset) -> object:
    """The file's transfer syntax UID; files without file meta are implicit VR little endian."""
    from pydicom.uid import UID, ImplicitVRLittleEndian

    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    return UID(syntax) if syntax else ImplicitVRLittleEndian


def syntax_name(syntax: object) -> str:
    """A transfer syntax's dictionary name; a value the header made up is never quoted (it can be free text)."""
    from pydicom.uid import UID

    text = str(syntax)
    if _UID.fullmatch(text) and len(text) <= 64 and UID(text).is_transfer_syntax:
        return UID(text).name
    return _("an unknown transfer syntax")


def _check_decoder(syntax: object, display_name: str) -> None:
    """Refuse, naming the syntax, if no installed plugin can decode this compression."""
    from pydicom.pixels import get_decoder

    try:
        # A made-up syntax never reaches pydicom, whose warning about it would quote it into the log.
        available = bool(_UID.fullmatch(str(syntax))) and get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = syntax_name(syntax)
        raise UnsupportedImageError(
            _(
                "{display_name}: the image is compressed as '{name}', which LucidDx cannot decode; export it as "
                "uncompressed DICOM, or as PNG."
            ).format(display_name=display_name, name=name)
        )


def _read_dicom_frame(
    stream: BinaryIO, ds: Dataset, syntax: object, index: int | None, display_name: str
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
            f"{display_name}: the DICOM image data (compressed as '{syntax_name(syntax)}') could not "
            "be decoded: it is damaged, truncated, or a variant LucidDx cannot read; export it again as "
            "uncompressed DICOM, or as PNG."
        )
    return UnsupportedImageError(
        f"{display_name}: the DICOM image data is damaged or incomplete (truncated); export the study again."
    )


def _dicom_to_grey(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, list[str]]:
    """One decoded frame -> ((H, W) float32 in [0, 1], notes), bright = dense.

    Monochrome: modality LUT (rescale), then VOI LUT or window centre/width, then MONOCHROME1 is
    inverted. Colour (RGB/YBR, already RGB after decoding) and palette colour: luminance.
    """
    from pydicom.pixels import apply_color_lut

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    notes: list[str] = []
    if photometric == "PALETTE COLOR":
        notes.append(_("Palette colour image converted to greyscale."))
        return decoding.by_rows(arr, lambda block: _luma_block(apply_color_lut(block, ds))), notes
    if arr.ndim == 3:
        if photometric in COLOUR_PHOTOMETRICS:  # a defined term; free text in the header is never quoted
            notes.append(_("{photometric} colour image converted to greyscale.").format(photometric=photometric))
        else:
            notes.append(_("Colour image converted to greyscale."))
        bits = int(ds.get("BitsStored") or 8)
        return decoding.by_rows(arr, lambda block: _luma_block(block, bits)), notes
    grey = _apply_dicom_voi(arr, ds, notes)
    if photometric == "MONOCHROME1":
        np.subtract(np.float32(1.0), grey, out=grey)
        notes.append(_("MONOCHROME1 image inverted so that dense tissue is bright."))
    return grey, notes


def _luma_block(block: np.ndarray, bits: int | None = None) -> np.ndarray:
    """(h, W, 3) unsigned RGB samples -> (h, W) float32 luminance in [0, 1], by bit depth."""
    top = float(2**bits - 1) if bits else float(np.iinfo(block.dtype).max)
    return np.clip((block.astype(np.float32) * np.float32(1 / top)) @ decoding.LUMA, 0.0, 1.0)


def _apply_dicom_voi(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray:
    """Stored values -> modality LUT -> the file's VOI LUT or window -> (H, W) float32 in [0, 1].

    Without a VOI, the modality values are stretched by their own min..max. Row blocks keep the
    float64 temporaries of pydicom's LUT functions small on a 60-megapixel frame.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    has_lut = "VOILUTSequence" in ds
    has_window = "WindowCenter" in ds and "WindowWidth" in ds
    if has_lut or has_window:
        try:
            windowed = decoding.by_rows(arr, lambda block: apply_voi_lut(apply_modality_lut(block, ds), ds, index=0))
            if has_lut:
                notes.append(_("Display VOI LUT from the file applied."))
                return decoding.min_max_inplace(windowed)
            # The window's output range, found by pushing the extremes through the same window.
            lo, hi = apply_voi_lut(np.array([-1e12, 1e12]), ds, index=0)
            notes.append(_("Display window from the file applied."))
            return decoding.scale_inplace(windowed, float(lo), float(hi))
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):  # malformed VOI: say so
            notes.append(_("The display window in the file is unreadable; the full value range was used."))
    return decoding.min_max_inplace(decoding.by_rows(arr, lambda block: apply_modality_lut(block, ds)))


def _is_code(keyword: str, text: str) -> bool:
    parts = text.split("\\")
    if not all(_CODE.match(part) for part in parts):
        return False
    return keyword != "BodyPartExamined" or all(part.strip() in BODY_PARTS for part in parts)


def _dicom_metadata(ds: Dataset, syntax: object) -> dict[str, str]:
    """Whitelisted technical header fields as short strings; nothing that identifies a patient."""
    from pydicom.multival import MultiValue

    metadata: dict[str, str] = {}
    for keyword in SAFE_FIELDS:
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        text = "\\".join(str(v) for v in value) if isinstance(value, (list, tuple, MultiValue)) else str(value)
        if keyword in CODED_FIELDS and not _is_code(keyword, text):
            text = N_("(not shown: not a standard code)")  # translated where it is shown
        metadata[keyword] = text[:_MAX_METADATA_CHARS]
    metadata["TransferSyntax"] = syntax_name(syntax)[:_MAX_METADATA_CHARS]
    return metadata
