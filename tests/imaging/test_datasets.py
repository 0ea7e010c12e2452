"""One lister of labeled folders: training, the dataset report, evaluation and OOD agree on the files."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from PIL import Image

from core.imaging import datasets, intake

ROOT = Path(__file__).resolve().parents[2]


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(len(str(path))).integers(0, 255, (24, 24), dtype=np.uint8)).save(path)


def test_training_and_the_report_see_the_same_images(tmp_path: Path) -> None:
    for cls in ("no", "yes"):
        for i in range(6):
            _png(tmp_path / cls / f"scan_{i}.png")
    _png(tmp_path / "yes" / "__MACOSX" / "._junk.png")
    _png(tmp_path / "yes" / ".hidden" / "x.png")
    _png(tmp_path / "yes" / "nested" / "deep.png")
    (tmp_path / "no" / "notes.txt").write_text("not an image")
    scanned = datasets.scan_labeled_folder(tmp_path)
    report = intake.dataset_report(tmp_path)
    assert scanned.counts() == report.counts == {"no": 6, "yes": 7}
    assert [u["file"] for u in report.unreadable] == ["no/notes.txt"]


def test_there_is_one_lister() -> None:
    """No module in core/ but datasets.py walks class folders with rglob."""
    walkers = []
    for path in (ROOT / "core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "rglob":
                walkers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(walkers)) == ["core/imaging/datasets.py"]
