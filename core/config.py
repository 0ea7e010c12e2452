"""Where things live on disk.

Bundled models ship read-only in ``<project>/models``; everything users create lives under
``LUCIDDX_HOME`` (default ``./var``), read at call time so tests and jobs can point it elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODELS_DIR = PROJECT_ROOT / "models"
ASSETS_DIR = PROJECT_ROOT / "assets"


# The model a page or command uses when none is named, per kind; LUCIDDX_DEFAULT_<KIND> overrides it.
DEFAULT_MODELS = {"image-classifier": "chest_xray", "tabular-risk": "diabetes_risk"}


def default_model(kind: str) -> str:
    """The model name used for ``kind`` when the user names none."""
    variable = "LUCIDDX_DEFAULT_" + kind.upper().replace("-", "_")
    return os.environ.get(variable, DEFAULT_MODELS.get(kind, ""))


def luciddx_home() -> Path:
    """The folder for user-created state: ``$LUCIDDX_HOME`` or ``./var``."""
    return Path(os.environ.get("LUCIDDX_HOME", "var")).resolve()


def home_models_dir() -> Path:
    return luciddx_home() / "models"


def jobs_dir() -> Path:
    return luciddx_home() / "jobs"
