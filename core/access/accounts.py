"""Accounts: add, list, disable, change role, sign in (with lockout), and the idle-session rule.

An account is a name, a role (:mod:`core.access.roles`) and an Argon2 password hash. After
``LUCIDDX_MAX_FAILED_LOGINS`` failed sign-ins in a row the account is locked for
``LUCIDDX_LOCKOUT_MINUTES``. There is no default account and no default password: the first
administrator is created with ``python -m core users add NAME --role admin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from datetime import datetime, timezone

import sqlalchemy as sa

from core.access import passwords, roles, settings, store
from core.access.store import accounts as table
from core.errors import AccountError, AccountLockedError, AuthenticationError, LucidDxError
from core import i18n
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
        return {"name": self.name, "role": self.role, "disabled": self.disabled, "created": iso(self.created),
                "last_login": iso(self.last_login), "locked_until": iso(self.locked_until), "language": self.language}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(t: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything we store is UTC."""
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def _account(row) -> Account:
    return Account(row.name, row.role, bool(row.disabled), _aware(row.created), _aware(row.last_login),
                   _aware(row.locked_until), row.language)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise AccountError(_("{name!r} cannot be an account name: use 1-64 letters, digits, '.', '_', '-' or '@', "
                             "starting with a letter or digit.").format(name=str(name)[:80]))
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
    password_hash = passwords.hash_password(password)
    now = utcnow()
    try:
        with store.begin() as db:
            db.execute(table.insert().values(name=name, role=role, password_hash=password_hash, disabled=False,
                                             failed_logins=0, created=now))
    except sa.exc.IntegrityError as exc:
        raise AccountError(_("An account named {name} already exists; choose another name, or use "
                             "'users set-role' to change its role.").format(name=name)) from exc
    return get(name)


def find(name: str) -> Account | None:
    with store.begin() as db:
        row = db.execute(sa.select(table).where(table.c.name == name)).first()
    return _account(row) if row else None


def get(name: str) -> Account:
    account = find(name)
    if account is None:
        raise AccountError(_("There is no account named {name}; 'python -m core users list' shows them.")
                           .format(name=str(name)[:80]))
    return account


def list_accounts() -> list[Account]:
    with store.begin() as db:
        return [_account(row) for row in db.execute(sa.select(table).order_by(table.c.name))]


def has_admin() -> bool:
    """Whether an enabled administrator exists (if not, the dashboard shows the set-up instruction)."""
    with store.begin() as db:
        query = sa.select(sa.func.count()).select_from(table).where(table.c.role == "admin", table.c.disabled.is_(False))
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
    return _update(name, disabled=False, failed_logins=0, locked_until=None)


def set_role(name: str, role: str) -> Account:
    return _update(name, role=_role(role))


def set_language(name: str, code: str) -> Account:
    """Remember the language ``name`` chose (a code of ``core.i18n.LANGUAGES``) for their next sign-in."""
    if code not in i18n.LANGUAGES:
        raise AccountError(_("{code} is not a language LucidDx speaks; choose one of {choices}.").format(
            code=str(code)[:16], choices=", ".join(i18n.LANGUAGES)))
    return _update(name, language=code)


def set_password(name: str, password: str) -> Account:
    return _update(name, password_hash=passwords.hash_password(password), failed_logins=0, locked_until=None)


def authenticate(name: str, password: str, now: datetime | None = None) -> Account:
    """The account if ``password`` is right; otherwise :class:`AuthenticationError` (the same message for
    an unknown name and a wrong password) or :class:`AccountLockedError` while locked.

    The slow, memory-hard check runs outside any transaction: under SQLite every write transaction holds
    the database's one write lock, and twenty people signing in at once on a busy server queued behind
    each other's Argon2 until "database is locked" (bench/bench_sessions.py).
    """
    now = now or utcnow()
    wrong = AuthenticationError(_("The name or password is not right. Check both and try again."))
    with store.begin() as db:
        row = db.execute(sa.select(table).where(table.c.name == name)).first()
    if row is None:
        passwords.burn_time(password)
        raise wrong
    locked_until = _aware(row.locked_until)
    if locked_until is not None and locked_until > now:
        raise _locked(locked_until, now)
    if row.disabled:
        passwords.burn_time(password)
        raise AuthenticationError(_("The account {name} is disabled; ask an administrator to enable it.")
                                  .format(name=name))
    if passwords.verify(row.password_hash, password):
        _record_success(row, password, now)
        return get(name)
    raise _record_failure(row.id, now, wrong)


def _record_success(row: Any, password: str, now: datetime) -> None:
    values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login": now}
    if passwords.needs_rehash(row.password_hash):
        values["password_hash"] = passwords.hasher().hash(password)  # before the transaction: it is slow
    with store.begin() as db:
        db.execute(table.update().where(table.c.id == row.id).values(**values))


def _record_failure(account_id: int, now: datetime, wrong: AuthenticationError) -> LucidDxError:
    """Count one failed sign-in (an increment in the database, so concurrent failures all count); the error
    to raise: the lock once the limit is reached, else ``wrong``."""
    with store.begin() as db:
        db.execute(table.update().where(table.c.id == account_id).values(failed_logins=table.c.failed_logins + 1))
        failed = db.execute(sa.select(table.c.failed_logins).where(table.c.id == account_id)).scalar_one()
        if failed < settings.max_failed_logins():
            return wrong
        until = now + settings.lockout()
        db.execute(table.update().where(table.c.id == account_id).values(failed_logins=0, locked_until=until))
    return _locked(until, now)


def _locked(until: datetime, now: datetime) -> AccountLockedError:
    minutes = max(1, round((until - now).total_seconds() / 60))
    return AccountLockedError(ngettext(
        "Too many failed sign-ins: this account is locked for {minutes} more minute. "
        "Wait, or ask an administrator to unlock it.",
        "Too many failed sign-ins: this account is locked for {minutes} more minutes. "
        "Wait, or ask an administrator to unlock it.", minutes).format(minutes=minutes))


def session_expired(last_activity: datetime, now: datetime | None = None) -> bool:
    """Whether a session idle since ``last_activity`` has passed ``LUCIDDX_SESSION_IDLE_MINUTES``."""
    return (now or utcnow()) - _aware(last_activity) > settings.session_idle()
