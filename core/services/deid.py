"""De-identified copies for sharing: a DICOM upload as the PS3.15 Basic Profile leaves it (nothing stored)."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

from core.access import deidentify
from core.errors import LucidDxError
from core.imaging import dicom
from core.services.audit import Who, authorize, record


@dataclass(frozen=True)
class DeidentifiedFile:
    data: bytes
    file_name: str  # the new SOP Instance UID, never the upload's name
    changed: int
    burned_in_annotation: str  # "YES" | "NO" | "unknown": text may be in the pixels unless "NO"


def deidentified(data: bytes, label: str, actor: Who | None = None) -> DeidentifiedFile:
    """A de-identified copy of DICOM ``data`` in memory; UnsupportedImageError (naming ``label``) otherwise.

    A failure is recorded in the audit log for ``actor`` (``bad-input``, or ``failed`` for an error of ours);
    a success is recorded by the front end when the copy is handed over.
    """
    try:
        dicom.check_inflated_size(io.BytesIO(data), label)  # a deflate bomb is refused before pydicom inflates it
        out, changed, burned_in, uid = deidentify.deidentify_bytes(data, label)
    except Exception as exc:
        record(actor, "deidentify", data=data, outcome="bad-input" if isinstance(exc, LucidDxError) else "failed")
        raise
    return DeidentifiedFile(out, f"{uid or 'deidentified'}.dcm", changed, burned_in)


def deidentify_file(actor: Who | None, path: str | os.PathLike, out_dir: str | os.PathLike) -> deidentify.DeidResult:
    """Write a de-identified copy of the DICOM file ``path`` into ``out_dir``, authorized and audited here
    (the record holds the input's SHA-256, never its name).

    Raises:
        UnsupportedImageError: ``path`` is missing or not DICOM; nothing is written (recorded as bad input).
        Anything else (an error of ours, an ``out_dir`` that cannot be written) is recorded as failed first.
    """
    authorize(actor, "deidentify")
    try:
        with contextlib.suppress(OSError), open(path, "rb") as handle:  # a missing file: deidentify_file says so
            dicom.check_inflated_size(handle, Path(path).name)
        done = deidentify.deidentify_file(path, out_dir)
    except LucidDxError:
        record(actor, "deidentify", outcome="bad-input")
        raise
    except Exception:
        record(actor, "deidentify", outcome="failed")
        raise
    record(actor, "deidentify", digest=done.sha256)
    return done
