"""De-identify DICOM files with the PS3.15 Annex E Basic Application Level Confidentiality Profile.

The profile's per-attribute actions (remove, empty, replace with a dummy, replace UIDs consistently)
come from the maintained library dicom-anonymizer (KitwareMedical), using its newest bundled edition of
Table E.1-1; private tags are removed. We then mark the result as de-identified
(PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence, DCM 113100) and report
BurnedInAnnotation: the profile cleans the header, not the pixels, so text burned into the image
(``YES`` or ``unknown``) needs a person's look before the file leaves the site.

The library applies the table's individual attributes to the top level only; we apply the same table
to every sequence item at every depth ourselves (:func:`_apply_profile`), as PS3.15 E.1 requires of
attributes nested in sequences: a sequence the table removes or empties goes, one it replaces (D) has
every value in it replaced with a dummy, and every other sequence (kept, or X/Z/U* references) keeps its
items with the profile applied to their content. Beyond the table, we remove the whole overlay plane
(repeating groups 60xx): the table removes Overlay Data and Overlay Comments, which leaves the plane's
free text (Overlay Description, Label, Subtype...) without the bitmap it describes; and Procedure Code
Sequence (0008,1032), whose Code Meaning is free text a site may type a patient's detail into.

A file is de-identified only once it has been read completely (every element decoded) and holds a SOP
Class and SOP Instance UID and the pixel data its header describes: random bytes after a DICOM preamble,
or a truncated file, are refused with the reason, never written as a bogus copy.

The output file is named by its new SOP Instance UID, never by the input's name (which may carry a
patient's name).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import UnsupportedImageError
from core.i18n import _

PROFILE_EDITION = "dicomfields_2026c"
METHOD = "DICOM PS3.15 Annex E Basic Profile (dicom-anonymizer 2026c)"  # LO: 64 characters at most
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
# Beyond Table E.1-1 (see the module's docstring): removed wherever they are, at any depth.
EXTRA_REMOVED = {0x00081032}  # Procedure Code Sequence: free-text Code Meaning
OVERLAY_GROUPS = (0x6000, 0x601E)  # the even repeating groups of the Overlay Plane module
_TEXT_VRS = {"AE", "AS", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"}


@dataclass(frozen=True)
class DeidResult:
    """One de-identified file: where it went, how many attributes were removed/blanked/replaced,
    whether text may be burned into its pixels, and the SHA-256 of the written bytes (for the audit log)."""

    file: str
    out: str
    removed: int
    burned_in_annotation: str  # "YES" | "NO" | "unknown"
    sha256: str

    def as_dict(self) -> dict:
        return asdict(self)


def _flatten(dataset, prefix: str = "") -> dict[str, str]:
    """Every attribute, nested ones included, as path -> value text (pixel data left out)."""
    found: dict[str, str] = {}
    for element in dataset:
        if int(element.tag) in PIXEL_TAGS:
            continue
        path = f"{prefix}{int(element.tag):08X}"
        if element.VR == "SQ":
            found[path] = f"SQ[{len(element.value)}]"
            for index, item in enumerate(element.value):
                found.update(_flatten(item, f"{path}[{index}]."))
        else:
            found[path] = repr(element.value)
    return found


def _burned_in(dataset) -> str:
    value = str(dataset.get("BurnedInAnnotation", "") or "").strip().upper()
    return value if value in ("YES", "NO") else "unknown"


def _profile_rules() -> tuple[dict, list]:
    """The library's Table E.1-1 actions: (individual tag -> action, [(group, element, masks) -> action])."""
    from dicomanonymizer.simpledicomanonymizer import initialize_actions

    single, ranges = {}, []
    for tag, action in initialize_actions(PROFILE_EDITION).items():
        if len(tag) > 2:
            ranges.append((tag, action))
        else:
            single[(tag[0] << 16) | tag[1]] = action
    return single, ranges


def _action_for(tag: int, single: dict, ranges: list):
    action = single.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for (g, e, group_mask, element_mask), ranged in ranges:
        if group & group_mask == g & group_mask and element & element_mask == e & element_mask:
            return ranged
    return None


def _dummy_values(dataset) -> None:
    """Replace every value in ``dataset`` (an item of a sequence the table replaces, D) with a dummy."""
    from dicomanonymizer import simpledicomanonymizer as lib

    for element in list(dataset):
        if element.VR == "SQ":
            for item in element.value:
                _dummy_values(item)
        elif element.VR in _TEXT_VRS | {"UI", "UR", "DA", "DT", "TM", "DS", "IS", "FD", "FL", "SS", "US", "SL", "UL"}:
            lib.replace_element(element)
        elif element.VR != "AT":  # binary values (OW, OF, UN...) have no meaningful dummy: they go
            del dataset[element.tag]


def _apply_profile(dataset, single: dict, ranges: list) -> None:
    """Table E.1-1 applied to ``dataset`` and, recursively, to every item of every sequence it holds."""
    from dicomanonymizer import simpledicomanonymizer as lib
    from pydicom.sequence import Sequence

    for element in list(dataset):  # a snapshot: actions delete as we go
        tag = int(element.tag)
        if tag in EXTRA_REMOVED or (OVERLAY_GROUPS[0] <= tag >> 16 <= OVERLAY_GROUPS[1] and not (tag >> 16) % 2):
            del dataset[tag]
            continue
        action = _action_for(tag, single, ranges)
        if element.VR != "SQ":
            if action is None or action is lib.keep:
                continue
            if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN", "SV", "UV") and action is not lib.replace_UID:
                del dataset[tag]  # the library has no dummy for every binary VR; removing is always allowed
                continue
            action(dataset, (tag >> 16, tag & 0xFFFF))
            continue
        if action in (lib.delete,):
            del dataset[tag]
        elif action in (lib.empty, lib.delete_or_empty):
            element.value = Sequence()  # Z: a zero-length sequence
        elif action in (lib.replace, lib.empty_or_replace, lib.delete_or_replace, lib.delete_or_empty_or_replace):
            for item in element.value:
                _dummy_values(item)
        else:  # kept (no entry, K) or X/Z/U*: the items stay, their content goes through the profile
            for item in element.value:
                _apply_profile(item, single, ranges)


def deidentify_dataset(dataset) -> tuple[int, str]:
    """De-identify a pydicom Dataset in place; returns (attributes removed or changed, BurnedInAnnotation).

    Every sequence item at every depth goes through the profile (see the module's docstring)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    burned_in = _burned_in(dataset)
    before = _flatten(dataset)
    single, ranges = _profile_rules()
    # The library prints notes on stdout; stdout belongs to the CLI's one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        _apply_profile(dataset, single, ranges)
        file_meta = getattr(dataset, "file_meta", None)
        if file_meta is not None:
            _apply_profile(file_meta, single, ranges)
    dataset.remove_private_tags()  # every depth (pydicom walks the sequences)
    after = _flatten(dataset)
    removed = sum(1 for path, value in before.items() if after.get(path) != value)

    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE_CODE
    dataset.DeidentificationMethodCodeSequence = Sequence([code])
    if "SOPInstanceUID" in dataset and getattr(dataset, "file_meta", None) is not None:
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return removed, burned_in


def _unreadable(label: str, reason: str) -> UnsupportedImageError:
    return UnsupportedImageError(
        _(
            "{file}: not a readable DICOM file ({reason}); only complete DICOM files can be de-identified; "
            "export it again."
        ).format(file=label, reason=reason)
    )


def _pixel_data_problem(dataset) -> str | None:
    """Why the pixel data cannot be what the header describes (truncated, malformed), or None."""
    from pydicom.encaps import generate_fragments

    value = dataset.get("PixelData")
    if value is None:
        return None
    file_meta = getattr(dataset, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is not None and syntax.is_encapsulated:
        try:
            if not any(True for _fragment in generate_fragments(value)):
                return _("its compressed pixel data holds no frame")
        except (ValueError, KeyError, TypeError, EOFError, OSError):
            return _("its compressed pixel data is damaged or truncated")
        return None
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        bits, samples = int(dataset.BitsAllocated), int(dataset.get("SamplesPerPixel") or 1)
        frames = int(dataset.get("NumberOfFrames") or 1)
    except (AttributeError, TypeError, ValueError):
        return _("its pixel data has no readable size (Rows, Columns, Bits Allocated)")
    expected = -(-rows * columns * samples * frames * bits // 8)
    if len(value) < expected:
        return _("its pixel data is truncated")
    return None


def read_complete(data: bytes, label: str):
    """``data`` parsed completely as DICOM (force=False, every element decoded), with SOP Class and
    Instance UIDs and the pixel data its header describes.

    Raises:
        UnsupportedImageError: anything else (not DICOM, random bytes after a preamble, truncated); the
            reason is ours, never the library's text (which can quote values), and names ``label``.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings can quote element values
            dataset = pydicom.dcmread(io.BytesIO(data), force=False)
            for part in (getattr(dataset, "file_meta", None) or [], dataset):
                for element in part.iterall():  # pydicom decodes lazily: a damaged value must fail here
                    element.value  # noqa: B018
    except InvalidDicomError as exc:
        raise _unreadable(label, _("no DICOM preamble and header")) from exc
    except Exception as exc:  # a damaged file makes pydicom raise many types (struct.error, NotImplementedError...)
        raise _unreadable(label, _("damaged or truncated: {error}").format(error=type(exc).__name__)) from exc
    for keyword in ("SOPClassUID", "SOPInstanceUID"):
        value = str(dataset.get(keyword, "") or "")
        if not UID(value).is_valid:
            raise _unreadable(label, _("its {attribute} is missing or not a valid UID").format(attribute=keyword))
    problem = _pixel_data_problem(dataset)
    if problem is not None:
        raise _unreadable(label, problem)
    return dataset


def deidentify_bytes(data: bytes, label: str) -> tuple[bytes, int, str, str]:
    """A de-identified copy of the DICOM ``data``: (bytes, attributes changed, BurnedInAnnotation, SOP UID).

    Raises:
        UnsupportedImageError: ``data`` is not complete DICOM, or cannot be de-identified; ``label`` names it.
    """
    dataset = read_complete(data, label)
    try:
        removed, burned_in = deidentify_dataset(dataset)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=False)
    except Exception as exc:  # the profile on an unusual file: that file fails with its reason, the batch goes on
        raise UnsupportedImageError(
            _("{file}: this DICOM file could not be de-identified ({reason}); it was not written.").format(
                file=label, reason=type(exc).__name__
            )
        ) from exc
    return buffer.getvalue(), removed, burned_in, str(dataset.get("SOPInstanceUID", "") or "")


def deidentify_file(path: str | os.PathLike, out_dir: str | os.PathLike) -> DeidResult:
    """Write a de-identified copy of the DICOM file ``path`` into ``out_dir`` (created if needed).

    Raises:
        UnsupportedImageError: ``path`` is missing or not DICOM; nothing is written.
    """
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise UnsupportedImageError(_("{file}: not found (or not a file).").format(file=path.name))
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise UnsupportedImageError(
            _("{file}: could not be read ({error}).").format(file=path.name, error=exc.strerror or type(exc).__name__)
        ) from exc
    data, removed, burned_in, uid = deidentify_bytes(source, path.name)
    digest = hashlib.sha256(data).hexdigest()
    target = out_dir / f"{uid or digest[:32]}.dcm"
    partial = target.with_suffix(".dcm.partial")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, target)
    except OSError as exc:  # a full disk or a read-only folder: this file fails, the batch goes on
        with contextlib.suppress(OSError):
            partial.unlink()
        raise UnsupportedImageError(
            _("{file}: its de-identified copy could not be written to {folder} ({error}).").format(
                file=path.name, folder=out_dir, error=exc.strerror or type(exc).__name__
            )
        ) from exc
    return DeidResult(file=str(path), out=str(target), removed=removed, burned_in_annotation=burned_in, sha256=digest)
