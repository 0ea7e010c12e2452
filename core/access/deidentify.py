"""De-identify DICOM files with the PS3.15 Annex E Basic Application Level Confidentiality Profile.

The profile's per-attribute actions (remove, empty, replace with a dummy, replace UIDs consistently)
come from the maintained library dicom-anonymizer (KitwareMedical), using its newest bundled edition of
Table E.1-1; private tags are removed. We then mark the result as de-identified
(PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence, DCM 113100) and report
BurnedInAnnotation: the profile cleans the header, not the pixels, so text burned into the image
(``YES`` or ``unknown``) needs a person's look before the file leaves the site.

The output file is named by its new SOP Instance UID, never by the input's name (which may carry a
patient's name).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import UnsupportedImageError
from core.i18n import _

PROFILE_EDITION = "dicomfields_2026c"
METHOD = "DICOM PS3.15 Annex E Basic Profile (dicom-anonymizer 2026c)"  # LO: 64 characters at most
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


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


def deidentify_dataset(dataset) -> tuple[int, str]:
    """De-identify a pydicom Dataset in place; returns (attributes removed or changed, BurnedInAnnotation)."""
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset, initialize_actions
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    burned_in = _burned_in(dataset)
    before = _flatten(dataset)
    # The library prints notes on stdout; stdout belongs to the CLI's one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        anonymize_dataset(dataset, None, True, lambda: initialize_actions(PROFILE_EDITION))
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


def deidentify_bytes(data: bytes, label: str) -> tuple[bytes, int, str, str]:
    """A de-identified copy of the DICOM ``data``: (bytes, attributes changed, BurnedInAnnotation, SOP UID).

    Raises:
        UnsupportedImageError: ``data`` is not DICOM, or cannot be de-identified; ``label`` names it.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnsupportedImageError(
            _("{file}: not a readable DICOM file ({reason}); only DICOM can be de-identified here.")
            .format(file=label, reason=type(exc).__name__)) from exc
    try:
        removed, burned_in = deidentify_dataset(dataset)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=False)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
        raise UnsupportedImageError(
            _("{file}: this DICOM file could not be de-identified ({reason}); it was not written.")
            .format(file=label, reason=type(exc).__name__)) from exc
    return buffer.getvalue(), removed, burned_in, str(dataset.get("SOPInstanceUID", "") or "")


def deidentify_file(path: str | os.PathLike, out_dir: str | os.PathLike) -> DeidResult:
    """Write a de-identified copy of the DICOM file ``path`` into ``out_dir`` (created if needed).

    Raises:
        UnsupportedImageError: ``path`` is missing or not DICOM; nothing is written.
    """
    path, out_dir = Path(path), Path(out_dir)
    if not path.is_file():
        raise UnsupportedImageError(_("{file}: not found (or not a file).").format(file=path.name))
    data, removed, burned_in, uid = deidentify_bytes(path.read_bytes(), path.name)
    digest = hashlib.sha256(data).hexdigest()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{uid or digest[:32]}.dcm"
    partial = target.with_suffix(".dcm.partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return DeidResult(file=str(path), out=str(target), removed=removed, burned_in_annotation=burned_in, sha256=digest)
