"""Where accounts and the audit trail live, and the rules of signing in, read at call time.

``LUCIDDX_DB_URL`` (a SQLAlchemy URL, e.g. ``postgresql://luciddx@db/luciddx``) picks a shared database;
without it everything lives in one SQLite file, ``$LUCIDDX_HOME/luciddx.db``.
"""

from __future__ import annotations

import os
from datetime import timedelta

from core.config import luciddx_home

MIN_PASSWORD_LENGTH = 12
MIN_PASSWORD_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable" (about 10^8 guesses and more)
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_IDLE = timedelta(minutes=30)
SESSION_MAX = timedelta(hours=12)  # a shift: a browser session ends then even if it was never idle


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return int(value) if value else default
    except ValueError:
        return default


def db_url() -> str:
    """The database URL: ``$LUCIDDX_DB_URL``, else SQLite at ``$LUCIDDX_HOME/luciddx.db``.

    A bare ``postgresql://`` URL is served by psycopg 3 (the driver we ship), not psycopg2.
    """
    url = os.environ.get("LUCIDDX_DB_URL", "").strip()
    if not url:
        return f"sqlite:///{luciddx_home() / 'luciddx.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def min_password_length() -> int:
    return max(8, _int_env("LUCIDDX_MIN_PASSWORD_LENGTH", MIN_PASSWORD_LENGTH))


def min_password_score() -> int:
    return min(4, max(0, _int_env("LUCIDDX_MIN_PASSWORD_SCORE", MIN_PASSWORD_SCORE)))


def max_failed_logins() -> int:
    return max(1, _int_env("LUCIDDX_MAX_FAILED_LOGINS", MAX_FAILED_LOGINS))


def lockout() -> timedelta:
    return timedelta(minutes=max(1, _int_env("LUCIDDX_LOCKOUT_MINUTES", int(LOCKOUT.total_seconds() // 60))))


def session_idle() -> timedelta:
    return timedelta(minutes=max(1, _int_env("LUCIDDX_SESSION_IDLE_MINUTES", int(SESSION_IDLE.total_seconds() // 60))))


def session_max() -> timedelta:
    return timedelta(hours=max(1, _int_env("LUCIDDX_SESSION_MAX_HOURS", int(SESSION_MAX.total_seconds() // 3600))))
