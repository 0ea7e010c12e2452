"""The account and audit database: one SQLAlchemy engine per URL, its schema kept by Alembic.

SQLite (``$LUCIDDX_HOME/luciddx.db``) by default, PostgreSQL when ``LUCIDDX_DB_URL`` says so. The
first use of a URL in a process upgrades its schema to the newest migration shipped in
``core/access/migrations`` (run with Alembic's command API; no ``alembic.ini`` needed).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from core.access import settings
from core.errors import AccessStoreError
from core.i18n import _

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("failed_logins", sa.Integer, nullable=False, default=0),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
    sa.Column("language", sa.String(16), nullable=True),  # the person's chosen language (revision 0002)
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("key_sha256", sa.String(64), nullable=False),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

# Append-only: rows are never updated or deleted by LucidDx; ``seq`` is 1, 2, 3... and each ``hash``
# covers the record and the previous record's hash (see core.access.audit).
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("time", sa.String(32), nullable=False),  # ISO 8601 UTC text, hashed exactly as stored
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("input_sha256", sa.String(64), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("ix_audit_log_time", audit_log.c.time)

# Failed sign-ins per (name, client), for the back-off (core.access.backoff; revision 0004). Both are kept
# only as HMACs under a key derived from the audit key: a password typed into the name box is never stored.
sign_in_backoff = sa.Table(
    "sign_in_backoff",
    metadata,
    sa.Column("name_key", sa.String(64), primary_key=True),
    sa.Column("client_key", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure", sa.DateTime(timezone=True), nullable=False),
    sa.Column("retry_after", sa.DateTime(timezone=True), nullable=True),
)

# Browser sessions (core.access.sessions; revision 0005): the digests of the cookie's token and of the
# one-time code that hands it to the browser, never either value.
browser_sessions = sa.Table(
    "browser_sessions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("account", sa.String(64), nullable=False, index=True),
    sa.Column("token_sha256", sa.String(64), nullable=True, unique=True),
    sa.Column("handoff_sha256", sa.String(64), nullable=True, unique=True),
    sa.Column("handoff_expires", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
    sa.Column("end_reason", sa.String(16), nullable=True),
)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def shown_url(url: str) -> str:
    """The URL for a message: the password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: say only its scheme
        return url.split("://", 1)[0] + "://..."


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: :func:`settings.db_url`), its schema upgraded on first use."""
    url = url or settings.db_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def sqlite_timeout_s() -> float:
    """How long a SQLite writer waits for the write lock: ``LUCIDDX_DB_TIMEOUT_S`` (default 30 s)."""
    try:
        return max(0.05, float(os.environ.get("LUCIDDX_DB_TIMEOUT_S", "30")))
    except ValueError:
        return 30.0


def _create(url: str) -> Engine:
    try:
        parsed = sa.engine.make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": sqlite_timeout_s()})
            _serialise_sqlite_writers(engine)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        upgrade(engine)
        return engine
    except AccessStoreError:
        raise
    except (SQLAlchemyError, ImportError, ValueError, OSError) as exc:
        raise AccessStoreError(
            _(
                "The account database {url} cannot be opened ({reason}). Check LUCIDDX_DB_URL / LUCIDDX_HOME "
                "and that the database server is running."
            ).format(url=shown_url(url), reason=type(exc).__name__)
        ) from exc


class StoreBusyError(AccessStoreError):
    """SQLite's write lock was not free within its timeout (many writers on a starved CPU): worth a retry."""


def _serialise_sqlite_writers(engine: Engine) -> None:
    """SQLite: every transaction starts with BEGIN IMMEDIATE, so two processes appending to the audit
    chain queue for the write lock (up to the 30 s timeout) instead of failing with "database is locked"
    when both read first and then write (SQLAlchemy's documented recipe for pysqlite)."""

    @sa.event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(connection: Connection):
    """An Alembic configuration pointing at the migrations shipped in this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (idempotent)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), revision)


@contextmanager
def begin(url: str | None = None) -> Iterator[Connection]:
    """A connection in a transaction (committed at the end of the block); database failures become
    :class:`AccessStoreError`."""
    engine = get_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    except sa.exc.IntegrityError:
        raise
    except sa.exc.OperationalError as exc:
        if "locked" in str(exc.orig).lower() or "busy" in str(exc.orig).lower():
            raise StoreBusyError(
                _("The account database {url} is busy; try again in a moment.").format(
                    url=engine.url.render_as_string(hide_password=True)
                )
            ) from exc
        raise AccessStoreError(
            _("The account database {url} failed ({reason}). Try again; if it persists, ask an administrator.").format(
                url=engine.url.render_as_string(hide_password=True), reason=type(exc).__name__
            )
        ) from exc
    except SQLAlchemyError as exc:
        raise AccessStoreError(
            _("The account database {url} failed ({reason}). Try again; if it persists, ask an administrator.").format(
                url=engine.url.render_as_string(hide_password=True), reason=type(exc).__name__
            )
        ) from exc
