"""De-identified copies for sharing: a DICOM upload as the PS3.15 Basic Profile leaves it (nothing stored)."""

from __future__ import annotations

from dataclasses import dataclass

from core.access import deidentify


@dataclass(frozen=True)
class DeidentifiedFile:
    data: bytes
    file_name: str  # the new SOP Instance UID, never the upload's name
    changed: int
    burned_in_annotation: str  # "YES" | "NO" | "unknown": text may be in the pixels unless "NO"


def deidentified(data: bytes, label: str) -> DeidentifiedFile:
    """A de-identified copy of DICOM ``data`` in memory; UnsupportedImageError (naming ``label``) otherwise."""
    out, changed, burned_in, uid = deidentify.deidentify_bytes(data, label)
    return DeidentifiedFile(out, f"{uid or 'deidentified'}.dcm", changed, burned_in)
