"""Signing in and out, as the dashboard's gate sees it: one door to accounts, browser sessions and their records.

The gate (``ui/auth.py``) and the dashboard's cookie routes (``ui/session_routes.py``) call only these
verbs. Each one that changes who is signed in writes its audit record here; a record that cannot be
written raises :class:`~core.errors.AccessStoreError` (or another ``LucidDxError``), which the gate logs
and shows, never drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from core.access import accounts, audit, roles, sessions, sso
from core.access.accounts import Account
from core.access.sessions import COOKIE_NAME, EndReason, Session
from core.errors import AccountLockedError, AuthenticationError
from core.services.audit import Who

__all__ = [
    "COOKIE_NAME",
    "Account",
    "EndReason",
    "Session",
    "alive",
    "allowed",
    "end_cookie_session",
    "end_session",
    "exchange",
    "find",
    "has_admin",
    "max_age",
    "name_pattern_ok",
    "open_after_sso",
    "record_denied",
    "record_sso_refusal",
    "remember_language",
    "require",
    "resume",
    "session_expired",
    "sign_in",
    "sso_account",
    "sso_configured",
    "sso_provider",
]


def has_admin() -> bool:
    return accounts.has_admin()


def find(name: str) -> Account | None:
    return accounts.find(name)


def name_pattern_ok(name: str) -> bool:
    return bool(accounts.NAME_PATTERN.match(name or "-"))


def _login_record(name: str, outcome: str) -> None:
    """A failed sign-in names the account only if the typed name is one (a password typed in the name box
    is never recorded)."""
    known = accounts.find(name) if name_pattern_ok(name) else None
    audit.record(known.name if known else "unknown", known.role if known else "none", "login", outcome=outcome)


def sign_in(name: str, password: str, client: str) -> tuple[Account, Session, str]:
    """The account, its new browser session and the one-time code that hands the session's cookie to the
    browser; recorded as a login.

    Raises:
        AuthenticationError / AccountLockedError: the one message for every failure (recorded as failed/locked).
    """
    name = name.strip()
    try:
        account = accounts.authenticate(name, password, client=client)
    except AuthenticationError as exc:
        _login_record(name, "locked" if isinstance(exc, AccountLockedError) else "failed")
        raise
    return account, *_opened_and_recorded(account)


def _opened_and_recorded(account: Account) -> tuple[Session, str]:
    """A new session recorded as a login; if the record cannot be written the session is ended again
    before the error goes up, so nobody holds a session the audit log does not show."""
    session, code = sessions.open_session(account.name)
    try:
        audit.record(account.name, account.role, "login", outcome="ok")
    except Exception:
        sessions.end(session.id, "signed-out")
        raise
    return session, code


def open_after_sso(account: Account) -> tuple[Session, str]:
    """A browser session for an account the hospital's identity provider signed in; recorded as a login."""
    return _opened_and_recorded(account)


def exchange(code: str, now: datetime | None = None) -> tuple[str, Session] | None:
    """The cookie value for a one-time hand-over code, or None (see core.access.sessions.exchange)."""
    return sessions.exchange(code, now)


def resume(cookie: str | None) -> tuple[Account, Session] | None:
    """The enabled account and live session a browser's cookie names, or None."""
    session = sessions.resume(cookie)
    if session is None:
        return None
    account = accounts.find(session.account)
    return (account, session) if account is not None and not account.disabled else None


def alive(session_id: str | None) -> Session | None:
    """The tab's server session if it is still alive (sign-out elsewhere, idle, shift over, account disabled
    end it), or None."""
    return sessions.alive(session_id) if session_id else None


def end_session(account_name: str, role: str, session_id: str | None, reason: EndReason | None) -> None:
    """End the browser session (``reason`` None: the person signed out, which is recorded; otherwise
    "idle", "expired" or "disabled")."""
    if session_id:
        sessions.end(session_id, reason or "signed-out")
    if reason is None:
        audit.record(account_name, role, "logout", outcome="ok")


def end_cookie_session(cookie: str | None) -> None:
    """End the session a cookie names, if it is alive (the browser's own sign-out; the gate records it)."""
    session = sessions.resume(cookie)
    if session is not None:
        sessions.end(session.id, "signed-out")


def max_age(session: Session) -> int:
    return sessions.max_age(session)


def session_expired(last_seen: datetime, now: datetime | None = None) -> bool:
    return accounts.session_expired(last_seen, now)


def remember_language(name: str, code: str) -> None:
    accounts.set_language(name, code)


def allowed(account: Who | None, action: str) -> bool:
    return account is not None and not getattr(account, "disabled", False) and roles.allowed(account.role, action)


def require(account: Account | None, action: str) -> None:
    """PermissionDeniedError with the message to show unless ``account`` may ``action``; a signed-in person's
    refusal is recorded as denied."""
    from core.errors import PermissionDeniedError

    try:
        roles.require(account, action)
    except PermissionDeniedError:
        if account is not None:
            record_denied(account, action)
        raise


def record_denied(account: Account, action: str) -> None:
    audit.record(account.name, account.role, action, outcome="denied")


def sso_configured(auth_section: Mapping[str, object] | None, library_present: bool) -> bool:
    return sso.configured(auth_section, library_present)


def sso_provider() -> str | None:
    return sso.provider()


def sso_account(claims: Mapping[str, object]) -> Account:
    """The enabled local account of a hospital identity; AuthenticationError with the message to show otherwise."""
    return sso.account_for(claims)


def record_sso_refusal() -> None:
    """A hospital identity with no enabled account: a failed login that never names the identity."""
    audit.record("unknown", "none", "login", outcome="failed")
