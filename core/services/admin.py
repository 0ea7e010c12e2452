"""Running the installation: accounts, API keys and the audit log, each change checked and recorded.

Every function takes the acting account first, checks its role (``users``, ``apikeys``, ``audit``) and
appends an audit record of the change; the admin page and the command line share these steps.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

from core.access import accounts, apikeys, roles, sessions
from core.access import audit as audit_log
from core.errors import LucidDxError
from core.exports import csv_text
from core.i18n import _, format_threshold
from core.models import gate, site_validation
from core.services.audit import Who, authorize, record

AUDIT_COLUMNS = ("seq", "time", "user", "role", "action", "model", "change", "input_sha256", "outcome")
ROLES = roles.ROLES
role_name = roles.role_name  # "clinician" as a reader sees it, in their language
AUDIT_ACTIONS = ("login", "logout", *roles.PERMISSIONS)  # what the audit log can be filtered by


def list_accounts(actor: Who | None) -> list[dict]:
    authorize(actor, "users")
    return [a.as_dict() for a in accounts.list_accounts()]


def add_account(actor: Who | None, name: str, role: str, password: str) -> accounts.Account:
    authorize(actor, "users")
    try:
        account = accounts.add(name, role, password)
    except LucidDxError:
        record(actor, "users", outcome="failed")
        raise
    record(actor, "users", outcome="ok")
    return account


def set_role(actor: Who | None, name: str, role: str) -> accounts.Account:
    authorize(actor, "users")
    account = accounts.set_role(name, role)
    record(actor, "users")
    return account


def set_enabled(actor: Who | None, name: str, enabled: bool) -> accounts.Account:
    """Disable (sessions and API keys stop at once) or enable and unlock ``name``."""
    authorize(actor, "users")
    account = accounts.enable(name) if enabled else accounts.disable(name)
    if not enabled:
        sessions.end_all(name, "disabled")  # every browser's cookie for this account stops signing in at once
    record(actor, "users")
    return account


def create_api_key(actor: Who | None, name: str) -> str:
    """A new key for account ``name``: returned once, stored only as its digest."""
    authorize(actor, "apikeys")
    key = apikeys.create(name)
    record(actor, "apikeys")
    return key


def list_api_keys(actor: Who | None, user: str | None = None) -> list[dict]:
    """Every key (or ``user``'s): prefix, user, created, revoked; never the key itself."""
    authorize(actor, "apikeys")
    return apikeys.list_keys(user)


def revoke_api_key_matching(actor: Who | None, key_or_prefix: str) -> dict:
    """Revoke the key named by its prefix or the whole key: ``{"prefix", "user", "revoked"}``; AccountError
    (recorded as bad input) when none matches."""
    authorize(actor, "apikeys")
    try:
        revoked = apikeys.revoke_matching(key_or_prefix)
    except LucidDxError:
        record(actor, "apikeys", outcome="bad-input")
        raise
    record(actor, "apikeys")
    return revoked


def revoke_api_key(actor: Who | None, prefix: str) -> bool:
    authorize(actor, "apikeys")
    found = apikeys.revoke(prefix)
    record(actor, "apikeys", outcome="ok" if found else "bad-input")
    return found


def audit_records(
    actor: Who | None,
    since: datetime | None = None,
    user: str | None = None,
    action: str | None = None,
    recorded: bool = False,
) -> list[dict]:
    """The audit log, filtered, as the contract's fields (oldest first) and ``change``: what the action changed.

    ``recorded``: the reading itself is recorded (a command run once); a page that redraws on every click
    records its export and verification instead.
    """
    authorize(actor, "audit")
    rows = with_changes([r.public() for r in audit_log.records(since, user or None, action or None)])
    if recorded:
        record(actor, "audit")
    return rows


def with_changes(rows: list[dict]) -> list[dict]:
    """Each row with ``change`` in words: an activation's "previous -> new" version, a threshold's "old -> new".

    The record of the change is a file whose SHA-256 the (hash-chained) audit record carries, so what is
    shown is what the chain vouches for; a row whose file is gone says nothing rather than guess.
    """
    known: dict[str, str] = {}
    for name in sorted({row["model"].partition(":")[0] for row in rows if row.get("model")}):
        for path in sorted(gate.activations_dir(name).glob("*.json")) if gate.activations_dir(name).is_dir() else []:
            body = path.read_bytes()
            entry = json.loads(body)
            known[hashlib.sha256(body).hexdigest()] = _("{previous} -> {model}").format(
                previous=entry.get("previous") or _("none active"), model=entry["model"]
            )
        for digest, entry in site_validation.threshold_changes(name).items():
            before = entry["previous"]
            known[digest] = _("threshold {old} ({old_source}) -> {new} ({new_source})").format(
                old=_threshold_text(before.get("threshold")),
                old_source=before.get("source"),
                new=_threshold_text(entry.get("threshold")),
                new_source=entry.get("source"),
            )
    return [{**row, "change": known.get(row.get("input_sha256") or "", "")} for row in rows]


def _threshold_text(value: float | None) -> str:
    return _("none") if value is None else format_threshold(value)


def audit_csv(rows: list[dict]) -> str:
    """Audit rows as CSV text for a spreadsheet (formula-injection safe)."""
    return csv_text(AUDIT_COLUMNS, rows)


def verify_audit(actor: Who | None, checkpoint: str | Path | None = None) -> audit_log.Verification:
    """Check the keyed hash chain, and with ``checkpoint`` (a file from :func:`write_audit_checkpoint`) that
    the log still holds what it saw; the check itself is recorded with its outcome. A checkpoint file
    that is not signed with this installation's key is refused (AuditCheckpointError, recorded as bad input)."""
    authorize(actor, "audit")
    try:
        seen = audit_log.read_checkpoint(checkpoint) if checkpoint else None
    except LucidDxError:
        record(actor, "audit", outcome="bad-input")
        raise
    result = audit_log.verify(seen)
    record(actor, "audit", outcome="ok" if result.ok else "failed")
    return result


def action_name(action: str) -> str:
    """An audited action as a reader sees it ("predict" -> "Predicting on images"), in their language."""
    if action in ("login", "logout"):
        return _("Sign-in") if action == "login" else _("Sign-out")
    return roles.action_name(action)


def write_audit_checkpoint(actor: Who | None, path: str | Path) -> dict:
    """Write a signed checkpoint of the audit log's head to ``path`` (to keep away from the server)."""
    authorize(actor, "audit")
    try:
        written = audit_log.write_checkpoint(path)
    except LucidDxError:
        record(actor, "audit", outcome="failed")
        raise
    record(actor, "audit")
    return written
