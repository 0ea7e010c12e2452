"""Where the store lives, and what a person reads when it cannot be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.access import accounts, settings, store
from core.errors import AccessStoreError


def test_sqlite_in_luciddx_home_by_default(isolated_home: Path, monkeypatch) -> None:
    monkeypatch.delenv("LUCIDDX_DB_URL", raising=False)
    assert settings.db_url() == f"sqlite:///{isolated_home / 'luciddx.db'}"
    assert accounts.list_accounts() == [] and (isolated_home / "luciddx.db").is_file()


def test_postgresql_urls_use_psycopg3(monkeypatch) -> None:
    monkeypatch.setenv("LUCIDDX_DB_URL", "postgresql://u:p@db/luciddx")
    assert settings.db_url() == "postgresql+psycopg://u:p@db/luciddx"


def test_an_unreachable_server_is_an_actionable_error_without_the_password(monkeypatch) -> None:
    monkeypatch.setenv("LUCIDDX_DB_URL", "postgresql://luciddx:s3cret-pw@127.0.0.1:1/luciddx?connect_timeout=2")
    try:
        with pytest.raises(AccessStoreError) as caught:
            accounts.list_accounts()
    finally:
        store._engines.clear()
    assert "LUCIDDX_DB_URL" in str(caught.value) and "s3cret-pw" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
