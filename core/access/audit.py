"""The audit trail: who did what, with which model, on which (de-identified) input, and how it ended.

Records are appended, never changed. Each carries an HMAC-SHA256, keyed with the audit key kept outside
the database (:mod:`core.access.auditkey`), of the previous record's hash and its own fields, so
:func:`verify` finds a record that was edited, deleted, inserted or moved -- and someone who can write the
database but does not hold the key cannot recompute the chain after a forgery. A record holds no file name
and no patient field: the input is named only by the SHA-256 of its de-identified bytes (:func:`sha256_of`).

Cutting records off the *end* leaves a shorter chain that is still valid, and whoever holds both the key
and the database can rewrite it: a signed checkpoint of the head (:func:`checkpoint`), kept away from the
server, bounds both -- ``verify(read_checkpoint(path))`` says when records it saw are gone or differ.

Logs from before the key (revision 0003) keep their unkeyed SHA-256 chain up to one marked switch record
(:data:`KEY_ACTION`), written keyed by the upgrade; its HMAC covers the last unkeyed hash, so the old
records cannot be rewritten without the key either. docs/access.md says what this does not protect against.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from core.access import auditkey, store
from core.access.store import audit_log as table
from core.errors import AccessStoreError, AuditCheckpointError
from core.i18n import _

GENESIS = "0" * 64
# "gate-passed" / "override": an activation that passed the quality gate, or one an administrator forced with a
# typed reason (the reason itself is kept in the activation record whose SHA-256 the audit record carries).
# "refused": the request was turned away at the door before its content was judged (too large, or not
# what the API's schema accepts); "bad-input": the file or fields were read and found unusable.
OUTCOMES = ("ok", "failed", "denied", "bad-input", "refused", "locked", "gate-passed", "override")
FIELDS = ("seq", "time", "user", "role", "action", "model", "input_sha256", "outcome")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$")
_RETRIES = 20
_BUSY_RETRIES = 3
# The record the upgrade to keyed hashes appends to a log that already had unkeyed records (revision 0003):
# records before the first such record are checked as the unkeyed chain they were written as.
KEY_ACTION, SYSTEM_USER, SYSTEM_ROLE = "audit-key", "luciddx", "system"
CHECKPOINT_FORMAT = "luciddx-audit-checkpoint/1"


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
            "seq": self.seq
        }


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    head: str
    broken: int | None = None  # seq of the first record that fails
    reason: str | None = None
    checkpoint: str | None = None  # the time of the checkpoint the log was also checked against

    def as_dict(self) -> dict:
        return asdict(self)


def sha256_of(data: bytes) -> str:
    """The SHA-256 (hex) by which the audit log names an input: pass the de-identified bytes."""
    return hashlib.sha256(data).hexdigest()


def time_text(moment: datetime) -> str:
    """UTC, fixed width, so text order is time order: 2026-11-29T21:05:03.123456Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_hash(prev_hash: str, fields: dict, key: bytes | None = None) -> str:
    """The link of one record: HMAC-SHA256 with ``key`` (the derived chain key), or with ``key=None`` the
    unkeyed SHA-256 that records written before revision 0003 carry."""
    body = json.dumps({name: fields.get(name) for name in FIELDS}, sort_keys=True, separators=(",", ":"))
    message = (prev_hash + "\n" + body).encode("utf-8")
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def chain_key() -> bytes:
    """The key records are hashed with (derived from the audit key; AuditKeyError when it cannot be had)."""
    return auditkey.derived("chain")


def append(db, fields: dict, key: bytes) -> dict:
    """Append ``fields`` as the next record on connection ``db`` (inside its transaction); the row written."""
    last = db.execute(sa.select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    row = fields | {"seq": seq, "prev_hash": prev, "hash": record_hash(prev, fields | {"seq": seq}, key)}
    db.execute(table.insert().values(**row))
    return row


def _check(value: str | None, what: str, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _WORD.match(value):
        raise ValueError(f"audit {what} must be a short name without spaces, got {str(value)[:40]!r}")
    return value


def record(
    user: str,
    role: str,
    action: str,
    *,
    model: str | None = None,
    input_sha256: str | None = None,
    outcome: str = "ok",
    now: datetime | None = None,
) -> AuditRecord:
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
    fields = {
        "time": time_text(now or datetime.now(UTC)),
        "user": user,
        "role": role,
        "action": action,
        "model": model,
        "input_sha256": input_sha256,
        "outcome": outcome,
    }
    key = chain_key()
    for attempt in range(_RETRIES):
        try:
            with store.begin() as db:
                row = append(db, fields, key)
            return AuditRecord(**row)
        except sa.exc.IntegrityError:  # another writer took this seq first: chain onto its record
            continue
        except store.StoreBusyError:
            # Twenty sign-ins on two cores starved by their browsers held SQLite's lock past its timeout (bench
            # _sessions): the action is not lost for that, it waits its turn a little longer.
            if attempt >= _BUSY_RETRIES:
                raise
            time.sleep(0.5 * (attempt + 1))
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


def _switch(db) -> int | None:
    """The seq of the upgrade's switch record (the first :data:`KEY_ACTION` record), or None: all keyed."""
    return db.execute(
        sa.select(sa.func.min(table.c.seq)).where(table.c.action == KEY_ACTION, table.c.user == SYSTEM_USER)
    ).scalar()


def verify(checkpoint: dict | None = None) -> Verification:
    """Walk the chain from the first record; the first one whose position, link or keyed hash does not
    match is reported by its ``seq`` (or the position where a record is missing).

    With ``checkpoint`` (from :func:`read_checkpoint`), an intact chain must also still hold the record the
    checkpoint ended at, unchanged: fewer records means the end was cut off, another hash that it was rewritten.
    """
    key = chain_key()
    prev, count, at_checkpoint = GENESIS, 0, None
    with store.begin() as db:
        switch = _switch(db)
        for expected, row in enumerate(db.execute(sa.select(table).order_by(table.c.seq)), start=1):
            entry = _row(row)
            count = expected
            if entry.seq != expected:
                return Verification(
                    False,
                    count,
                    prev,
                    expected,
                    _("record {n} is missing (the next one is {seq}): records were deleted.").format(
                        n=expected, seq=entry.seq
                    ),
                )
            if entry.prev_hash != prev:
                return Verification(
                    False,
                    count,
                    prev,
                    entry.seq,
                    _(
                        "record {seq} does not follow the record before it: records were deleted, inserted or "
                        "reordered."
                    ).format(seq=entry.seq),
                )
            fields = {name: getattr(entry, name) for name in FIELDS}
            keyed = switch is None or entry.seq >= switch
            if not hmac.compare_digest(record_hash(prev, fields, key if keyed else None), entry.hash):
                if keyed and entry.seq == (switch or 1):
                    return Verification(
                        False,
                        count,
                        prev,
                        entry.seq,
                        _(
                            "record {seq} does not match its keyed hash: it was changed after it was written, or the "
                            "audit key in force ({source}) is not the one the log was written with."
                        ).format(seq=entry.seq, source=auditkey.source()),
                    )
                return Verification(
                    False,
                    count,
                    prev,
                    entry.seq,
                    _("record {seq} was changed after it was written.").format(seq=entry.seq),
                )
            if checkpoint is not None and entry.seq == checkpoint["count"]:
                at_checkpoint = entry.hash
            prev = entry.hash
    if checkpoint is None:
        return Verification(True, count, prev)
    seen, when = checkpoint["count"], checkpoint["time"]
    if count < seen:
        return Verification(
            False,
            count,
            prev,
            count + 1,
            _(
                "the log ends at record {n}, but the checkpoint of {time} counted {count}: records {first} to {count} "
                "were deleted."
            ).format(n=count, time=when, count=seen, first=count + 1),
            when,
        )
    if seen and at_checkpoint != checkpoint["head"]:
        return Verification(
            False,
            count,
            prev,
            seen,
            _(
                "record {seq} is not the record the checkpoint of {time} ended at: the log was rewritten since (by "
                "someone holding the audit key)."
            ).format(seq=seen, time=when),
            when,
        )
    return Verification(True, count, prev, checkpoint=when)


def _signature(body: dict, key: bytes | None = None) -> str:
    fields = {name: body[name] for name in ("format", "count", "head", "time", "key_id")}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hmac.new(auditkey.derived("checkpoint", key), text, hashlib.sha256).hexdigest()


def checkpoint(now: datetime | None = None) -> dict:
    """A signed statement of the log's head now: ``{format, count, head, time, key_id, signature}``.

    Kept away from the server (a ticket, another machine), it lets :func:`verify` detect a later truncation
    or rewrite. Refused (AuditCheckpointError) while the chain is broken: it would vouch for the damage.
    """
    result = verify()
    if not result.ok:
        raise AuditCheckpointError(
            _("The audit log is broken at record {seq} ({reason}); no checkpoint is made of a broken log.").format(
                seq=result.broken, reason=result.reason
            )
        )
    body = {
        "format": CHECKPOINT_FORMAT,
        "count": result.records,
        "head": result.head,
        "time": time_text(now or datetime.now(UTC)),
        "key_id": auditkey.key_id(),
    }
    return body | {"signature": _signature(body)}


def write_checkpoint(path: str | Path, now: datetime | None = None) -> dict:
    """:func:`checkpoint` written to ``path`` as JSON (whole or not at all); the checkpoint."""
    body = checkpoint(now)
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise AuditCheckpointError(
            _("The checkpoint cannot be written to {path} ({reason}); choose another file.").format(
                path=target, reason=type(exc).__name__
            )
        ) from exc
    return body


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint in ``path`` if its signature holds under this installation's key; AuditCheckpointError
    (the file refused, saying why) otherwise."""
    name = Path(path).name
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise AuditCheckpointError(
            _("{file}: not a readable audit checkpoint ({reason}).").format(file=name, reason=type(exc).__name__)
        ) from exc
    shaped = (
        isinstance(body, dict)
        and body.get("format") == CHECKPOINT_FORMAT
        and isinstance(body.get("count"), int)
        and not isinstance(body.get("count"), bool)
        and body["count"] >= 0
        and all(isinstance(body.get(k), str) for k in ("head", "time", "key_id", "signature"))
    )
    if not shaped:
        raise AuditCheckpointError(
            _("{file}: not an audit checkpoint written by 'python -m core audit checkpoint'.").format(file=name)
        )
    if not hmac.compare_digest(_signature(body), body["signature"]):
        raise AuditCheckpointError(
            _(
                "{file}: the checkpoint's signature does not match this installation's audit "
                "key: it was edited, or made with another key. It is refused."
            ).format(file=name)
        )
    return body
