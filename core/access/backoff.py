"""Back-off after failed sign-ins, per (name, client): an attacker hammering a name from one client waits
longer and longer, while the person who owns the name still signs in from their own client at once.

After ``LUCIDDX_MAX_FAILED_LOGINS`` failures in a row for one name from one client, that client waits 1 s,
then 2, 4, 8... up to ``LUCIDDX_LOCKOUT_MINUTES`` before its next try for that name is even checked. The
wait depends only on the attempts, never on whether the account exists or is disabled, so it reveals
nothing; no one can lock an account. A success from that client, or ``users enable``, clears it. Rows idle
for a day are dropped. Names and clients are stored only as HMACs (a password typed as a name stays secret).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from core.access import auditkey, settings, store
from core.access.store import sign_in_backoff as table

FORGET_AFTER = timedelta(days=1)


def _keys(name: str, client: str) -> tuple[str, str]:
    key = auditkey.derived("sign-in")
    digest = lambda text: hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()  # noqa: E731
    return digest("name\n" + name), digest("client\n" + client)


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def wait(name: str, client: str, now: datetime) -> timedelta | None:
    """How long ``client`` must still wait before a try for ``name`` is checked; None: it may try now."""
    name_key, client_key = _keys(name, client)
    with store.begin() as db:
        until = db.execute(
            sa.select(table.c.retry_after).where(table.c.name_key == name_key, table.c.client_key == client_key)
        ).scalar()
    until = _aware(until)
    return until - now if until is not None and until > now else None


def delay(failures: int) -> timedelta | None:
    """The wait after ``failures`` failures in a row (None below the free tries)."""
    over = failures - settings.max_failed_logins()
    if over < 0:
        return None
    return min(timedelta(seconds=2 ** min(over, 30)), settings.lockout())


def failed(name: str, client: str, now: datetime) -> timedelta | None:
    """Count one failure of ``name`` from ``client``; the wait it now imposes (None: none yet)."""
    name_key, client_key = _keys(name, client)
    where = (table.c.name_key == name_key, table.c.client_key == client_key)
    with store.begin() as db:
        db.execute(table.delete().where(table.c.last_failure < now - FORGET_AFTER))
        failures = (db.execute(sa.select(table.c.failures).where(*where)).scalar() or 0) + 1
        pause = delay(failures)
        values = {"failures": failures, "last_failure": now, "retry_after": now + pause if pause else None}
        if failures == 1:
            try:
                with db.begin_nested():
                    db.execute(table.insert().values(name_key=name_key, client_key=client_key, **values))
                return pause
            except sa.exc.IntegrityError:  # a concurrent first failure: count on top of it
                failures = db.execute(sa.select(table.c.failures).where(*where)).scalar() + 1
                pause = delay(failures)
                values = {"failures": failures, "last_failure": now, "retry_after": now + pause if pause else None}
        db.execute(table.update().where(*where).values(**values))
    return pause


def succeeded(name: str, client: str) -> None:
    """Forget ``client``'s failures for ``name``."""
    name_key, client_key = _keys(name, client)
    with store.begin() as db:
        db.execute(table.delete().where(table.c.name_key == name_key, table.c.client_key == client_key))


def clear(name: str) -> None:
    """Forget every client's failures for ``name`` (an administrator's ``users enable``)."""
    name_key, _client_key = _keys(name, "")
    with store.begin() as db:
        db.execute(table.delete().where(table.c.name_key == name_key))
