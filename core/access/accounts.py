"""Accounts: add, list, disable, change role, sign in (with back-off), and the idle-session rule.

An account is a name, a role (:mod:`core.access.roles`) and an Argon2 password hash. Every failed
sign-in says the same thing; after ``LUCIDDX_MAX_FAILED_LOGINS`` failures for one name from one client,
that client backs off exponentially (:mod:`core.access.backoff`), and the account itself is never locked.
There is no default account and no default password: the first administrator is created with
``python -m core users add NAME --role admin``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import sqlalchemy as sa

from core import i18n
from core.access import backoff, passwords, roles, settings, store
from core.access.store import accounts as table
from core.errors import AccountError, AccountLockedError, AuthenticationError
from core.i18n import _, ngettext

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True)
class Account:
    """What may be known about an account (never its password hash)."""

    name: str
    role: str
    disabled: bool
    created: datetime
    last_login: datetime | None = None
    locked_until: datetime | None = None
    language: str | None = None  # the language this person chose in the dashboard; None: the browser's

    def as_dict(self) -> dict:
        iso = lambda t: t.isoformat() if t else None  # noqa: E731
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created": iso(self.created),
            "last_login": iso(self.last_login),
            "locked_until": iso(self.locked_until),
            "language": self.language,
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def _aware(t: datetime) -> datetime: ...
@overload
def _aware(t: None) -> None: ...
def _aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return t.replace(tzinfo=UTC) if t is not None and t.tzinfo is None else t


def _account(row) -> Account:
    return Account(
        row.name,
        row.role,
        bool(row.disabled),
        _aware(row.created),
        _aware(row.last_login),
        _aware(row.locked_until),
        row.language,
    )


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise AccountError(
            _(
                "{name!r} cannot be an account name: use 1-64 letters, digits, '.', '_', '-' or '@', "
                "starting with a letter or digit."
            ).format(name=str(name)[:80])
        )
    return name


def _role(role: str) -> str:
    try:
        return roles.check_role(role)
    except ValueError as exc:
        raise AccountError(str(exc)) from exc


def add(name: str, role: str, password: str) -> Account:
    """Create an enabled account; raises :class:`AccountError` if the name is taken or the password weak."""
    check_name(name)
    _role(role)
    password_hash = passwords.hash_password(password, (name,))
    now = utcnow()
    try:
        with store.begin() as db:
            db.execute(
                table.insert().values(
                    name=name, role=role, password_hash=password_hash, disabled=False, failed_logins=0, created=now
                )
            )
    except sa.exc.IntegrityError as exc:
        raise AccountError(
            _(
                "An account named {name} already exists; choose another name, or use "
                "'users set-role' to change its role."
            ).format(name=name)
        ) from exc
    return get(name)


def find(name: str) -> Account | None:
    with store.begin() as db:
        row = db.execute(sa.select(table).where(table.c.name == name)).first()
    return _account(row) if row else None


def get(name: str) -> Account:
    account = find(name)
    if account is None:
        raise AccountError(
            _("There is no account named {name}; 'python -m core users list' shows them.").format(name=str(name)[:80])
        )
    return account


def list_accounts() -> list[Account]:
    with store.begin() as db:
        return [_account(row) for row in db.execute(sa.select(table).order_by(table.c.name))]


def has_admin() -> bool:
    """Whether an enabled administrator exists (if not, the dashboard shows the set-up instruction)."""
    with store.begin() as db:
        query = (
            sa.select(sa.func.count()).select_from(table).where(table.c.role == "admin", table.c.disabled.is_(False))
        )
        return bool(db.execute(query).scalar())


def _update(name: str, **values) -> Account:
    with store.begin() as db:
        done = db.execute(table.update().where(table.c.name == name).values(**values)).rowcount
    if not done:
        get(name)  # raises the helpful "no such account"
    return get(name)


def disable(name: str) -> Account:
    return _update(name, disabled=True)


def enable(name: str) -> Account:
    """Enable ``name`` and forget every client's failed sign-ins for it."""
    account = _update(name, disabled=False, failed_logins=0, locked_until=None)
    backoff.clear(name)
    return account


def set_role(name: str, role: str) -> Account:
    return _update(name, role=_role(role))


def set_language(name: str, code: str) -> Account:
    """Remember the language ``name`` chose (a code of ``core.i18n.LANGUAGES``) for their next sign-in."""
    if code not in i18n.LANGUAGES:
        raise AccountError(
            _("{code} is not a language LucidDx speaks; choose one of {choices}.").format(
                code=str(code)[:16], choices=", ".join(i18n.LANGUAGES)
            )
        )
    return _update(name, language=code)


def set_password(name: str, password: str) -> Account:
    return _update(name, password_hash=passwords.hash_password(password, (name,)), failed_logins=0, locked_until=None)


def failure_message(pause: timedelta | None = None) -> str:
    """What every failed sign-in says, whatever went wrong (unknown name, wrong password, disabled account,
    back-off): only the wait, which depends on the attempts alone, is added."""
    message = _(
        "The name or password is not right, or this account may not sign in. Check both and try again; "
        "if it still fails, ask an administrator."
    )
    if pause is None:
        return message
    seconds = max(1, math.ceil(pause.total_seconds()))
    return (
        message
        + " "
        + ngettext(
            "Too many tries for this name from here: wait {n} second before the next one.",
            "Too many tries for this name from here: wait {n} seconds before the next one.",
            seconds,
        ).format(n=seconds)
    )


def authenticate(name: str, password: str, now: datetime | None = None, client: str = "local") -> Account:
    """The account if ``password`` is right and it is enabled; otherwise :class:`AuthenticationError` with
    :func:`failure_message` -- the same for an unknown name, a wrong password and a disabled account -- or,
    while ``client`` must wait for ``name`` (:mod:`core.access.backoff`), :class:`AccountLockedError` with
    that same message, without checking the password. No failure locks the account for anyone else.

    ``client``: who is trying, as the front end knows it (the browser's address, else its session).
    The slow, memory-hard check runs outside any transaction: under SQLite every write transaction holds
    the database's one write lock, and twenty people signing in at once on a busy server queued behind
    each other's Argon2 until "database is locked" (bench/bench_sessions.py).
    """
    now = now or utcnow()
    pause = backoff.wait(name, client, now)
    if pause is not None:
        raise AccountLockedError(failure_message(pause))
    with store.begin() as db:
        row = db.execute(sa.select(table).where(table.c.name == name)).first()
    if row is None or row.disabled:
        passwords.burn_time(password)
    elif passwords.verify(row.password_hash, password):
        _record_success(row, password, now)
        backoff.succeeded(name, client)
        return get(name)
    raise AuthenticationError(failure_message(backoff.failed(name, client, now)))


def _record_success(row: Any, password: str, now: datetime) -> None:
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login": now}
    if passwords.needs_rehash(row.password_hash):
        values["password_hash"] = passwords.hasher().hash(password)  # before the transaction: it is slow
    with store.begin() as db:
        db.execute(table.update().where(table.c.id == row.id).values(**values))


def session_expired(last_activity: datetime, now: datetime | None = None) -> bool:
    """Whether a session idle since ``last_activity`` has passed ``LUCIDDX_SESSION_IDLE_MINUTES``."""
    return (now or utcnow()) - _aware(last_activity) > settings.session_idle()
