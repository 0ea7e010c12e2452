"""Fixtures for the access tests: the store on SQLite (each test's own LUCIDDX_HOME) and on a real
PostgreSQL server started once per session in a temporary folder (skipped, with the reason, when the
server binaries are missing)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from core.access import store
from tests.support.dashboard import free_port


def _pg_bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"), reverse=True)
    return found[0] if found else shutil.which(tool)



@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server (initdb + pg_ctl), as the `postgres` OS user when we are root."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's 'postgresql' package")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="luciddx-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root and no runuser to start PostgreSQL as the postgres user")
        shutil.chown(folder, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = lambda *cmd: subprocess.run(prefix + list(cmd), check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "luciddx", "--no-sync", "-E", "UTF8")
        run(pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-t", "60",
            "-o", f"-p {port} -k {folder} -h 127.0.0.1 -F", "start")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {exc.stderr}")
    try:
        yield f"postgresql://luciddx@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def _reset_postgres(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE pid <> pg_backend_pid() AND datname = current_database()")
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, monkeypatch):
    """Each store test runs on an empty SQLite file and on an empty PostgreSQL schema."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        _reset_postgres(url)
        monkeypatch.setenv("LUCIDDX_DB_URL", url)
        store._engines.pop("postgresql+psycopg://" + url.split("://", 1)[1], None)
    else:
        monkeypatch.delenv("LUCIDDX_DB_URL", raising=False)
    yield request.param
    for engine in list(store._engines.values()):
        engine.dispose()
    store._engines.clear()


@pytest.fixture
def fast_lockout(monkeypatch):
    monkeypatch.setenv("LUCIDDX_MAX_FAILED_LOGINS", "3")
    monkeypatch.setenv("LUCIDDX_LOCKOUT_MINUTES", "10")
