"""The worklist: every instance the DICOM node received and what became of it, for the CLI and a page.

:func:`entries` gives the contract's fields (CLI.md "dicom-node") plus ``reason``, ``model``,
``calling_aet`` and ``finished``; :func:`describe` one line a person reads, in their language. No
patient field is ever stored, so none can be shown.
"""

from __future__ import annotations

from pathlib import Path

from core.i18n import _
from core.imaging import dicom_index as index

STATUSES = index.STATUSES
CONTRACT_FIELDS = (
    "sop_instance_uid",
    "received",
    "modality",
    "status",
    "label",
    "probabilities",
    "out_of_distribution",
    "results",
)


def entries(home: Path | None = None, status: str | None = None) -> list[dict]:
    """Every received instance, newest first (optionally only those with ``status``), as plain dicts."""
    rows = [_no_label_when_unlike(entry.public()) for entry in index.all_entries(home)]
    return [row for row in rows if status is None or row["status"] == status]


def _no_label_when_unlike(row: dict) -> dict:
    """A film that is not assessable carries no label (rows indexed before that rule included)."""
    return {**row, "label": None} if row.get("out_of_distribution") else row


def status_text(status: str) -> str:
    """A status word in the reader's language."""
    words = {
        "queued": _("queued"),
        "scoring": _("scoring"),
        "done": _("done"),
        "failed": _("failed"),
        "refused": _("refused"),
    }
    return words.get(status, status)


def describe(row: dict) -> str:
    """One line for a person: time, UID, modality, status, and the call or the reason."""
    head = _("{received}  {uid}  {modality}  {status}").format(
        received=row["received"],
        uid=row["sop_instance_uid"],
        modality=row["modality"] or "-",
        status=status_text(row["status"]),
    )
    if row["label"] is not None and row["probabilities"]:
        head += "  " + _("{label} (probability {probability:.3f})").format(
            label=row["label"], probability=row["probabilities"].get(row["label"], 0.0)
        )
    if row["out_of_distribution"]:
        head += "  " + _("Not assessable: unlike the training images")
    if row["reason"] and row["status"] in ("failed", "refused"):
        head += "  " + _("reason: {reason}").format(reason=row["reason"])
    return head


def summary(rows: list[dict]) -> str:
    """The whole worklist for a terminal."""
    if not rows:
        return _("No DICOM instances received yet.")
    return "\n".join(describe(row) for row in rows)
