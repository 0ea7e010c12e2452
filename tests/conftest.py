"""Shared fixtures. Every test gets its own empty LUCIDDX_HOME, so nothing touches ./var."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Page tests drive the pages themselves; tests/access/test_auth_gate.py switches the sign-in gate on.
os.environ.setdefault("LUCIDDX_AUTH", "off")


def pytest_configure(config: pytest.Config) -> None:
    """Page tests need the real exception; users see none (.streamlit/config.toml: showErrorDetails)."""
    from streamlit import config as streamlit_config

    streamlit_config.set_option("client.showErrorDetails", "full")

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
CHEST_XRAY_TRAIN = DATA_ROOT / "chest_xray" / "train"
DIABETES_CSV = DATA_ROOT / "diabetes" / "diabetes.csv"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "luciddx_home"
    monkeypatch.setenv("LUCIDDX_HOME", str(home))
    return home


@pytest.fixture
def no_stray_jobs():
    """Kill any training job a test left running, so it cannot outlive its LUCIDDX_HOME."""
    from core.jobs import runner as jobs

    yield
    for job in jobs.list_jobs():
        if job["state"] in jobs.ACTIVE_STATES and job.get("pid"):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job["pid"], signal.SIGKILL)
