"""API keys: each belongs to an account, acts with that account's role, and is shown only once.

A key looks like ``ldx_<prefix>_<secret>``; the database keeps the prefix (to find it) and the SHA-256
of the whole key (keys are 256-bit random, so a fast hash is enough; a password needs Argon2, a key
does not).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa

from core.access import accounts, store
from core.access.store import accounts as accounts_table
from core.access.store import api_keys as table
from core.errors import AccountError, AuthenticationError
from core.i18n import _

SCHEME = "ldx"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create(name: str) -> str:
    """A new key for account ``name``: returned once, stored only as a hash."""
    accounts.get(name)  # a helpful error for an unknown account
    prefix = secrets.token_hex(6)
    key = f"{SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    with store.begin() as db:
        account_id = db.execute(sa.select(accounts_table.c.id).where(accounts_table.c.name == name)).scalar_one()
        db.execute(
            table.insert().values(
                account_id=account_id, prefix=prefix, key_sha256=_digest(key), created=datetime.now(UTC), revoked=False
            )
        )
    return key


def authenticate(key: str) -> accounts.Account:
    """The enabled account a key belongs to, or :class:`AuthenticationError`."""
    refused = AuthenticationError(
        _(
            "This API key is not valid (unknown, revoked, or its account is disabled). "
            "Ask an administrator for a new one."
        )
    )
    parts = key.split("_", 2) if isinstance(key, str) else []
    if len(parts) != 3 or parts[0] != SCHEME:
        raise refused
    with store.begin() as db:
        row = db.execute(
            sa.select(table, accounts_table.c.name, accounts_table.c.disabled)
            .join(accounts_table, accounts_table.c.id == table.c.account_id)
            .where(table.c.prefix == parts[1])
        ).first()
        if row is None or row.revoked or row.disabled or not hmac.compare_digest(row.key_sha256, _digest(key)):
            raise refused
        db.execute(table.update().where(table.c.id == row.id).values(last_used=datetime.now(UTC)))
    return accounts.get(row.name)


def revoke(prefix: str) -> bool:
    """Revoke the key whose prefix is ``prefix``; whether one was found."""
    with store.begin() as db:
        return bool(db.execute(table.update().where(table.c.prefix == prefix).values(revoked=True)).rowcount)


def revoke_matching(text: str) -> dict:
    """Revoke the key that ``text`` names: its prefix (as ``list_keys`` shows it) or the whole key.

    Returns ``{"prefix", "user", "revoked": True}``; AccountError when no key matches (the text is not echoed
    in full: it may be a secret).
    """
    text = (text or "").strip()
    parts = text.split("_", 2)
    prefix = parts[1] if len(parts) == 3 and parts[0] == SCHEME else text
    with store.begin() as db:
        row = db.execute(
            sa.select(table.c.id, table.c.prefix, table.c.key_sha256, accounts_table.c.name)
            .join(accounts_table, accounts_table.c.id == table.c.account_id)
            .where(table.c.prefix == prefix)
        ).first()
        whole_key_wrong = row is not None and prefix != text and not hmac.compare_digest(row.key_sha256, _digest(text))
        if row is None or whole_key_wrong:
            raise AccountError(
                _("No API key has the prefix {prefix}; 'python -m core apikeys list' shows every key's prefix.").format(
                    prefix=prefix[:16]
                )
            )
        db.execute(table.update().where(table.c.id == row.id).values(revoked=True))
    return {"prefix": row.prefix, "user": row.name, "revoked": True}


def list_keys(name: str | None = None) -> list[dict]:
    """Keys (prefix, account, created, last used, revoked), never the key itself."""
    query = (
        sa.select(table.c.prefix, table.c.created, table.c.last_used, table.c.revoked, accounts_table.c.name)
        .join(accounts_table, accounts_table.c.id == table.c.account_id)
        .order_by(table.c.id)
    )
    if name:
        query = query.where(accounts_table.c.name == name)
    with store.begin() as db:
        return [
            {
                "prefix": r.prefix,
                "user": r.name,
                "created": r.created.isoformat(),
                "last_used": r.last_used.isoformat() if r.last_used else None,
                "revoked": bool(r.revoked),
            }
            for r in db.execute(query)
        ]
