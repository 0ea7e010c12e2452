"""Shared fixtures. Every test gets its own empty LUCIDDX_HOME, so nothing touches ./var."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DATA_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
CHEST_XRAY_TRAIN = DATA_ROOT / "chest_xray" / "train"
DIABETES_CSV = DATA_ROOT / "diabetes" / "diabetes.csv"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "luciddx_home"
    monkeypatch.setenv("LUCIDDX_HOME", str(home))
    return home
