"""The audit key: the secret, kept outside the database, that keys the audit chain and signs checkpoints.

Where it comes from, first match wins:

* ``LUCIDDX_AUDIT_KEY``: the key itself (at least 32 characters), e.g. from the service manager's secrets;
* ``LUCIDDX_AUDIT_KEY_FILE``: a file that holds it (never created for you: a missing file is an error,
  because a new key would make every record written so far fail verification);
* otherwise ``$LUCIDDX_HOME/audit.key``, created on first use with 64 random hex digits and permissions 0600.

Every server that writes to one shared database (PostgreSQL) must use the same key. Purpose-bound keys
are derived from it (:func:`derived`), so a record's hash can never pass for a checkpoint's signature.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from core.config import luciddx_home
from core.errors import AuditKeyError
from core.i18n import _

MIN_LENGTH = 32
FILE_NAME = "audit.key"


def default_path() -> Path:
    return luciddx_home() / FILE_NAME


def source() -> str:
    """Where the key in force comes from, for messages (never the key): the variable's name or the file."""
    if os.environ.get("LUCIDDX_AUDIT_KEY", "").strip():
        return "LUCIDDX_AUDIT_KEY"
    return os.environ.get("LUCIDDX_AUDIT_KEY_FILE", "").strip() or str(default_path())


def _checked(text: str, where: str) -> bytes:
    text = text.strip()
    if len(text) < MIN_LENGTH:
        raise AuditKeyError(
            _(
                "The audit key in {where} is shorter than {n} characters; use a long random value, "
                "e.g. the output of 'openssl rand -hex 32'."
            ).format(where=where, n=MIN_LENGTH)
        )
    return text.encode("utf-8")


def _read(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyError(
                _(
                    "The audit key file {path} can be read or changed by other users; "
                    "restrict it with 'chmod 600 {path}'."
                ).format(path=path)
            )
        return _checked(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditKeyError(
            _(
                "The audit key file {path} cannot be read ({reason}). Restore it from your backup, or "
                "set LUCIDDX_AUDIT_KEY_FILE to where it is kept."
            ).format(path=path, reason=type(exc).__name__)
        ) from exc


def _create(path: Path) -> None:
    """Write a new random key to ``path`` (0600) unless another process got there first (atomic link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)  # fails if the file exists: the first writer's key stands
        except FileExistsError:
            pass
    finally:
        partial.unlink(missing_ok=True)


def secret() -> bytes:
    """The key in force (bytes); :class:`AuditKeyError` with what to do when it cannot be had."""
    inline = os.environ.get("LUCIDDX_AUDIT_KEY", "").strip()
    if inline:
        return _checked(inline, "LUCIDDX_AUDIT_KEY")
    named = os.environ.get("LUCIDDX_AUDIT_KEY_FILE", "").strip()
    if named:
        return _read(Path(named))
    path = default_path()
    if not path.exists():
        try:
            _create(path)
        except OSError as exc:
            raise AuditKeyError(
                _(
                    "The audit key file {path} cannot be created ({reason}); check that LUCIDDX_HOME "
                    "is writable, or set LUCIDDX_AUDIT_KEY_FILE."
                ).format(path=path, reason=type(exc).__name__)
            ) from exc
    return _read(path)


def derived(purpose: str, key: bytes | None = None) -> bytes:
    """A key for one purpose ("chain", "checkpoint", "sign-in"), derived from the audit key by HMAC-SHA256."""
    return hmac.new(
        secret() if key is None else key, b"luciddx-audit/" + purpose.encode("ascii"), hashlib.sha256
    ).digest()


def key_id(key: bytes | None = None) -> str:
    """A short public name of the key in force (16 hex digits), to tell two keys apart without revealing either."""
    return derived("key-id", key).hex()[:16]
