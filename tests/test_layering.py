"""The layering rule: pages draw, core computes. Reads every file's imports and fails on a violation."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"tensorflow", "keras", "shap", "pydicom", "tf_keras_vis", "sklearn"}
VIEW_FILES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py")), *sorted((ROOT / "ui").glob("*.py"))]
CORE_FILES = sorted((ROOT / "core").glob("*.py"))


def imported_top_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules


@pytest.mark.parametrize("path", VIEW_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_views_never_import_ml_or_dicom_libraries(path: Path) -> None:
    assert not imported_top_modules(path) & HEAVY, f"{path.name} must call core instead of importing these"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_never_imports_streamlit(path: Path) -> None:
    assert "streamlit" not in imported_top_modules(path)


def test_the_rule_catches_a_violation(tmp_path: Path) -> None:
    offender = tmp_path / "page.py"
    offender.write_text("import numpy\nfrom tensorflow import keras\n")
    assert imported_top_modules(offender) & HEAVY == {"tensorflow"}
