"""Fixtures for the REST API tests: an app per test (its own LUCIDDX_HOME, so its own accounts and audit
log), accounts made with core.access, and API keys for them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.access import accounts, apikeys
from core.api import create_app

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "assets" / "samples"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def client(isolated_home: Path) -> TestClient:
    return TestClient(create_app(), raise_server_exceptions=False)


@pytest.fixture
def make_key(isolated_home: Path) -> Callable[[str, str], dict[str, str]]:
    """``make_key(name, role)`` -> the Authorization header of a new account's new API key."""

    def make(name: str, role: str = "clinician") -> dict[str, str]:
        accounts.add(name, role, PASSWORD)
        return {"Authorization": f"Bearer {apikeys.create(name)}"}

    return make


@pytest.fixture
def clinician(make_key) -> dict[str, str]:
    return make_key("dr.lee", "clinician")


def upload(path: Path, name: str | None = None, kind: str = "application/octet-stream") -> dict:
    return {"file": (name or path.name, path.read_bytes(), kind)}
