"""De-identified copies for sharing: a DICOM upload as the PS3.15 Basic Profile leaves it (nothing stored)."""

from __future__ import annotations

from dataclasses import dataclass

from core.access import deidentify
from core.errors import LucidDxError
from core.services import audit


@dataclass(frozen=True)
class DeidentifiedFile:
    data: bytes
    file_name: str  # the new SOP Instance UID, never the upload's name
    changed: int
    burned_in_annotation: str  # "YES" | "NO" | "unknown": text may be in the pixels unless "NO"


def deidentified(data: bytes, label: str, actor: audit.Actor | None = None) -> DeidentifiedFile:
    """A de-identified copy of DICOM ``data`` in memory; UnsupportedImageError (naming ``label``) otherwise.

    A failure is recorded in the audit log for ``actor`` (``bad-input``, or ``failed`` for an error of ours);
    a success is recorded by the front end when the copy is handed over.
    """
    try:
        out, changed, burned_in, uid = deidentify.deidentify_bytes(data, label)
    except Exception as exc:
        audit.record(actor, "deidentify", data=data, outcome="bad-input" if isinstance(exc, LucidDxError) else "failed")
        raise
    return DeidentifiedFile(out, f"{uid or 'deidentified'}.dcm", changed, burned_in)
