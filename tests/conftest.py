"""Shared fixtures. Every test gets its own empty LUCIDDX_HOME, so nothing touches ./var."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Page tests drive the pages themselves; tests/access/test_auth_gate.py switches the sign-in gate on.
os.environ.setdefault("LUCIDDX_AUTH", "off")
# One Ray head for the whole run, in a folder of its own (each test has its own LUCIDDX_HOME); stopped at the end.
# pytest-xdist's workers inherit the controller's folder, so the two processes share one head.
if "LUCIDDX_RAY_DIR" not in os.environ:
    os.environ["LUCIDDX_RAY_DIR"] = tempfile.mkdtemp(prefix="lx-ray-")


def pytest_configure(config: pytest.Config) -> None:
    """Page tests need the real exception; users see none (.streamlit/config.toml: showErrorDetails)."""
    from streamlit import config as streamlit_config

    streamlit_config.set_option("client.showErrorDetails", "full")


def pytest_unconfigure(config: pytest.Config) -> None:
    """No Ray head outlives the run (jobs and replicas included)."""
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: the head is shared, the controller stops it
        return
    from core import engine

    engine.stop_local_head()

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

    from core.engine import jobs as engine_jobs
    from core.errors import LucidDxError

    yield
    for job in jobs.list_jobs():
        if job["state"] in jobs.ACTIVE_STATES:
            with contextlib.suppress(LucidDxError):
                engine_jobs.cancel(job["id"])
