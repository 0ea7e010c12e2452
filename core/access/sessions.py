"""Browser sessions the server keeps, so a signed-in person survives a reload, a bookmark or a second tab.

The life of one session:

1. :func:`open_session` after a successful sign-in: a row with a one-time hand-over code (60 s, one use).
2. The browser posts that code to the dashboard's ``/auth/session`` route; :func:`exchange` turns it into
   the cookie's value: a random 32-byte token and its HMAC under a key derived from the audit key (kept
   outside the database), set as an HttpOnly, SameSite=Strict cookie.
3. Every page run :func:`resume`\\ s the cookie (or checks the tab's session by id with :func:`alive`): a
   forged or altered cookie is refused by its HMAC before the database is asked; an unknown, ended, idle
   (``LUCIDDX_SESSION_IDLE_MINUTES``) or expired (``LUCIDDX_SESSION_MAX_HOURS``) session, or a disabled
   account, is no session.
4. :func:`end` on sign-out, idle expiry or a disabled account: the cookie is then worth nothing anywhere.

Only SHA-256 digests of the token and of the code are stored: a copy of the database signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from core.access import accounts, auditkey, settings, store
from core.access.store import browser_sessions as table

COOKIE_NAME = "luciddx_session"
HANDOFF_LIFETIME = timedelta(seconds=60)
TOUCH_EVERY = timedelta(seconds=15)  # last_seen is written at most this often: a page run is not a write
EndReason = Literal["signed-out", "idle", "expired", "disabled"]


@dataclass(frozen=True)
class Session:
    """A live browser session: its public id (never the token) and the account it signs in."""

    id: str
    account: str
    expires: datetime


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mac(token: str) -> str:
    return hmac.new(auditkey.derived("browser-session"), token.encode("ascii"), hashlib.sha256).hexdigest()


def _unsigned(cookie: str | None) -> str | None:
    """The token inside a cookie value, if its HMAC holds; None for anything else (never an error)."""
    if not isinstance(cookie, str):
        return None
    token, dot, mac = cookie.strip().partition(".")
    if not dot or len(token) != 43 or len(mac) != 64:
        return None
    try:
        token.encode("ascii")
        return token if hmac.compare_digest(_mac(token), mac) else None
    except UnicodeEncodeError:
        return None


def open_session(account: str, now: datetime | None = None) -> tuple[Session, str]:
    """A new session for ``account`` and the one-time code that hands its cookie to the browser."""
    now = now or accounts.utcnow()
    code = secrets.token_urlsafe(32)
    session = Session(secrets.token_hex(16), account, now + settings.session_max())
    with store.begin() as db:
        db.execute(
            table.insert().values(
                id=session.id,
                account=account,
                handoff_sha256=_digest(code),
                handoff_expires=now + HANDOFF_LIFETIME,
                created=now,
                last_seen=now,
                expires=session.expires,
            )
        )
    return session, code


def exchange(code: str, now: datetime | None = None) -> tuple[str, Session] | None:
    """The cookie value for a hand-over code (used up here), with its session; None if the code is unknown,
    used, older than a minute, or its session is no longer alive."""
    now = now or accounts.utcnow()
    if not code or len(code) > 128:
        return None
    token = secrets.token_urlsafe(32)
    with store.begin() as db:  # the code is used up whatever follows: it can never be tried twice
        row = db.execute(sa.select(table).where(table.c.handoff_sha256 == _digest(code))).first()
        if row is None:
            return None
        used = db.execute(
            table.update()
            .where(table.c.id == row.id, table.c.handoff_sha256 == row.handoff_sha256)
            .values(handoff_sha256=None, handoff_expires=None)
        )
        if used.rowcount != 1:  # two requests raced with one code: only the one that used it up goes on
            return None
    if accounts._aware(row.handoff_expires) < now or _ending(row, now) is not None:
        return None
    with store.begin() as db:
        db.execute(
            table.update().where(table.c.id == row.id, table.c.ended.is_(None)).values(token_sha256=_digest(token))
        )
    return f"{token}.{_mac(token)}", Session(row.id, row.account, accounts._aware(row.expires))


def _ending(row, now: datetime) -> EndReason | None:
    """Why the session in ``row`` is over ("idle", "expired", "disabled", or how it was ended); None if alive."""
    if row.ended is not None:
        return "signed-out"  # ended for whatever reason: over
    if now >= accounts._aware(row.expires):
        return "expired"
    if accounts.session_expired(accounts._aware(row.last_seen), now):
        return "idle"
    account = accounts.find(row.account)
    if account is None or account.disabled:
        return "disabled"
    return None


def _check(where: sa.ColumnElement[bool], now: datetime | None) -> Session | None:
    now = now or accounts.utcnow()
    with store.begin() as db:
        row = db.execute(sa.select(table).where(where)).first()
    if row is None:
        return None
    reason = _ending(row, now)
    if reason is not None:
        if row.ended is None:
            end(row.id, reason, now)
        return None
    if now - accounts._aware(row.last_seen) >= TOUCH_EVERY:
        with store.begin() as db:
            db.execute(table.update().where(table.c.id == row.id).values(last_seen=now))
    return Session(row.id, row.account, accounts._aware(row.expires))


def resume(cookie: str | None, now: datetime | None = None) -> Session | None:
    """The live session a cookie value names (its activity noted), or None."""
    token = _unsigned(cookie)
    if token is None:
        return None
    return _check(table.c.token_sha256 == _digest(token), now)


def alive(session_id: str, now: datetime | None = None) -> Session | None:
    """The session with this id if it is still alive (its activity noted), or None."""
    return _check(table.c.id == session_id, now) if session_id else None


def end(session_id: str, reason: EndReason = "signed-out", now: datetime | None = None) -> None:
    """End one session (a no-op for an unknown or already ended one)."""
    with store.begin() as db:
        db.execute(
            table.update()
            .where(table.c.id == session_id, table.c.ended.is_(None))
            .values(ended=now or accounts.utcnow(), end_reason=reason, handoff_sha256=None, token_sha256=None)
        )


def end_all(account: str, reason: EndReason = "disabled", now: datetime | None = None) -> int:
    """End every live session of ``account`` (disabling it, or an administrator's request); how many."""
    with store.begin() as db:
        result = db.execute(
            table.update()
            .where(table.c.account == account, table.c.ended.is_(None))
            .values(ended=now or accounts.utcnow(), end_reason=reason, handoff_sha256=None, token_sha256=None)
        )
    return int(result.rowcount or 0)


def max_age(session: Session, now: datetime | None = None) -> int:
    """Seconds the cookie may live: what is left of the session's absolute lifetime."""
    return max(0, int((session.expires - (now or accounts.utcnow())).total_seconds()))
