"""The audit trail: who did what, with which model, on which (de-identified) input, and how it ended.

Records are appended, never changed. Each carries the SHA-256 of the previous record's hash and its
own fields, so :func:`verify` finds a record that was edited, deleted, inserted or moved. A record
holds no file name and no patient field: the input is named only by the SHA-256 of its de-identified
bytes (:func:`sha256_of`).

Cutting records off the *end* leaves a shorter chain that is still valid; to detect that, keep the
``head`` that ``audit verify`` prints somewhere else (a ticket, a printout) and compare later.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from core.access import store
from core.access.store import audit_log as table
from core.errors import AccessStoreError
from core.i18n import _

GENESIS = "0" * 64
# "gate-passed" / "override": an activation that passed the quality gate, or one an administrator forced with a
# typed reason (the reason itself is kept in the activation record whose SHA-256 the audit record carries).
OUTCOMES = ("ok", "failed", "denied", "bad-input", "locked", "gate-passed", "override")
FIELDS = ("seq", "time", "user", "role", "action", "model", "input_sha256", "outcome")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")
_RETRIES = 20


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    user: str
    role: str
    action: str
    model: str | None
    input_sha256: str | None
    outcome: str
    prev_hash: str
    hash: str

    def public(self) -> dict:
        """The contract's fields (CLI.md): time, user, role, action, model, input_sha256, outcome."""
        return {key: value for key, value in asdict(self).items() if key not in ("prev_hash", "hash", "seq")} | {
            "seq": self.seq}


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head: str
    broken: int | None = None  # seq of the first record that fails
    reason: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_of(data: bytes) -> str:
    """The SHA-256 (hex) by which the audit log names an input: pass the de-identified bytes."""
    return hashlib.sha256(data).hexdigest()


def time_text(moment: datetime) -> str:
    """UTC, fixed width, so text order is time order: 2026-11-29T21:05:03.123456Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, fields: dict) -> str:
    body = json.dumps({key: fields.get(key) for key in FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def _check(value: str | None, what: str, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _WORD.match(value):
        raise ValueError(f"audit {what} must be a short name without spaces, got {str(value)[:40]!r}")
    return value


def record(user: str, role: str, action: str, *, model: str | None = None, input_sha256: str | None = None,
           outcome: str = "ok", now: datetime | None = None) -> AuditRecord:
    """Append one record and return it.

    Args:
        user, role: who acted (an account, or the operating-system user for the CLI, role "os-user").
        action: a :data:`core.access.roles.PERMISSIONS` action or "login"/"logout".
        model: "NAME:VERSION" or None.
        input_sha256: :func:`sha256_of` the de-identified input, or None. Anything else is refused, so a
            file name or patient field can never slip in.
        outcome: one of :data:`OUTCOMES`.
    """
    _check(user, "user", optional=False), _check(role, "role", optional=False)
    _check(action, "action", optional=False), _check(model, "model")
    if input_sha256 is not None and not _SHA256.match(input_sha256):
        raise ValueError("input_sha256 must be the 64-hex-digit SHA-256 of the de-identified input")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
    fields = {"time": time_text(now or datetime.now(timezone.utc)), "user": user, "role": role, "action": action,
              "model": model, "input_sha256": input_sha256, "outcome": outcome}
    for _attempt in range(_RETRIES):
        try:
            with store.begin() as db:
                last = db.execute(sa.select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
                seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
                row = fields | {"seq": seq, "prev_hash": prev, "hash": record_hash(prev, fields | {"seq": seq})}
                db.execute(table.insert().values(**row))
            return AuditRecord(**row)
        except sa.exc.IntegrityError:  # another writer took this seq first: chain onto its record
            continue
    raise AccessStoreError(_("The audit log is too busy to record this action; try again."))


def _row(row) -> AuditRecord:
    return AuditRecord(**{key: getattr(row, key) for key in AuditRecord.__dataclass_fields__})


def records(since: datetime | None = None, user: str | None = None, action: str | None = None) -> list[AuditRecord]:
    """Records in order, filtered by time (at or after ``since``), user and action."""
    query = sa.select(table).order_by(table.c.seq)
    if since is not None:
        query = query.where(table.c.time >= time_text(since))
    if user:
        query = query.where(table.c.user == user)
    if action:
        query = query.where(table.c.action == action)
    with store.begin() as db:
        return [_row(row) for row in db.execute(query)]


def verify() -> Verification:
    """Walk the chain from the first record; the first one whose position, link or content does not
    match is reported by its ``seq`` (or the position where a record is missing)."""
    prev, count = GENESIS, 0
    with store.begin() as db:
        for expected, row in enumerate(db.execute(sa.select(table).order_by(table.c.seq)), start=1):
            entry = _row(row)
            count = expected
            if entry.seq != expected:
                return Verification(False, count, prev, expected, _(
                    "record {n} is missing (the next one is {seq}): records were deleted.").format(
                    n=expected, seq=entry.seq))
            if entry.prev_hash != prev:
                return Verification(False, count, prev, entry.seq, _(
                    "record {seq} does not follow the record before it: records were deleted, inserted or "
                    "reordered.").format(seq=entry.seq))
            fields = {key: getattr(entry, key) for key in FIELDS}
            if record_hash(prev, fields) != entry.hash:
                return Verification(False, count, prev, entry.seq, _(
                    "record {seq} was changed after it was written.").format(seq=entry.seq))
            prev = entry.hash
    return Verification(True, count, prev)
