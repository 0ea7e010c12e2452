"""The node's index: one row per received instance, in SQLite under ``$LUCIDDX_HOME/dicom/index.sqlite``.

The node process writes it (the receiving thread inserts, the worker updates); the ``worklist``
command and a page read it, from other processes, at any time. A row holds no patient field: an
instance is named by its SOP Instance UID, the sender by its AE title.

Files:
    dicom/incoming/<sop uid>.dcm     what was received, as received (written atomically)
    dicom/results/<sop uid>/         the Secondary Capture and the SR built from it

Why plain ``sqlite3`` and not the access store's SQLAlchemy: the index lives beside the received files
under one LUCIDDX_HOME and is written several times per film by the node's threads; keeping it out of
the accounts/audit database means a PACS burst never contends with sign-ins and audit appends. Several
machines sharing one node index would need it in the shared (PostgreSQL) store instead.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
import threading
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from core import config

STATUSES = ("queued", "scoring", "done", "failed", "refused")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT PRIMARY KEY,
    received TEXT NOT NULL,
    modality TEXT,
    sop_class TEXT,
    calling_aet TEXT,
    status TEXT NOT NULL,
    label TEXT,
    probabilities TEXT,
    out_of_distribution INTEGER,
    model TEXT,
    results TEXT NOT NULL DEFAULT '[]',
    reason TEXT,
    finished TEXT
)
"""
_LOCK = threading.Lock()


@dataclass
class Entry:
    """One received instance and what became of it (the worklist's row; CLI.md "dicom-node")."""

    sop_instance_uid: str
    received: str
    modality: str | None = None
    sop_class: str | None = None
    calling_aet: str | None = None
    status: str = "queued"
    label: str | None = None
    probabilities: dict[str, float] | None = None
    out_of_distribution: bool | None = None
    model: str | None = None
    results: list[str] = field(default_factory=list)
    reason: str | None = None
    finished: str | None = None

    def public(self) -> dict:
        return asdict(self)


def now_text() -> str:
    """UTC now, ISO 8601 with microseconds and a Z, so text order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_uid(text: object) -> bool:
    """A DICOM UID (digits and dots, at most 64 characters): the only thing we name files by."""
    return isinstance(text, str) and 0 < len(text) <= 64 and bool(_UID.match(text))


def dicom_dir(home: Path | None = None) -> Path:
    return (home or config.luciddx_home()) / "dicom"


def incoming_path(uid: str, home: Path | None = None) -> Path:
    if not is_uid(uid):
        raise ValueError("not a DICOM UID; files are named only by SOP Instance UID")
    return dicom_dir(home) / "incoming" / f"{uid}.dcm"


def results_dir(uid: str, home: Path | None = None) -> Path:
    if not is_uid(uid):
        raise ValueError("not a DICOM UID; files are named only by SOP Instance UID")
    return dicom_dir(home) / "results" / uid


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _connect(home: Path | None) -> sqlite3.Connection:
    folder = dicom_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / "index.sqlite", timeout=30)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)
    return db


def put(entry: Entry, home: Path | None = None) -> None:
    """Insert or replace the row of ``entry.sop_instance_uid`` (a re-sent instance starts over)."""
    row = entry.public()
    row["probabilities"] = json.dumps(row["probabilities"]) if row["probabilities"] is not None else None
    row["results"] = json.dumps(row["results"])
    row["out_of_distribution"] = None if row["out_of_distribution"] is None else int(row["out_of_distribution"])
    names = ", ".join(row)
    marks = ", ".join(f":{key}" for key in row)
    with _LOCK, closing(_connect(home)) as db, db:
        db.execute(f"INSERT OR REPLACE INTO instances ({names}) VALUES ({marks})", row)


def update(uid: str, home: Path | None = None, **fields: object) -> None:
    """Change some fields of one row (status, label, results...)."""
    unknown = set(fields) - set(Entry.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown index fields {sorted(unknown)}")
    values = dict(fields)
    for key in ("probabilities", "results"):
        if key in values and values[key] is not None:
            values[key] = json.dumps(values[key])
    if values.get("out_of_distribution") is not None:
        values["out_of_distribution"] = int(bool(values["out_of_distribution"]))
    assignments = ", ".join(f"{key} = :{key}" for key in values)
    with _LOCK, closing(_connect(home)) as db, db:
        db.execute(f"UPDATE instances SET {assignments} WHERE sop_instance_uid = :uid", values | {"uid": uid})


def _entry(row: sqlite3.Row) -> Entry:
    values = dict(row)
    values["probabilities"] = json.loads(values["probabilities"]) if values["probabilities"] else None
    values["results"] = json.loads(values["results"] or "[]")
    ood = values["out_of_distribution"]
    values["out_of_distribution"] = None if ood is None else bool(ood)
    return Entry(**values)


def get(uid: str, home: Path | None = None) -> Entry | None:
    with _LOCK, closing(_connect(home)) as db:
        row = db.execute("SELECT * FROM instances WHERE sop_instance_uid = ?", (uid,)).fetchone()
    return _entry(row) if row else None


def all_entries(home: Path | None = None) -> list[Entry]:
    """Every row, newest first."""
    if not (dicom_dir(home) / "index.sqlite").is_file():
        return []
    with _LOCK, closing(_connect(home)) as db:
        rows = db.execute("SELECT * FROM instances ORDER BY received DESC").fetchall()
    return [_entry(row) for row in rows]


def unfinished(home: Path | None = None) -> list[Entry]:
    """Rows accepted but never finished (queued, or scoring when the node stopped), oldest first."""
    if not (dicom_dir(home) / "index.sqlite").is_file():
        return []
    with _LOCK, closing(_connect(home)) as db:
        rows = db.execute(
            "SELECT * FROM instances WHERE status IN ('queued', 'scoring') ORDER BY received ASC"
        ).fetchall()
    return [_entry(row) for row in rows]
