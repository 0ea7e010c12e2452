"""Issue 22 item 16: links inside a dataset folder that lead out of it (a class folder linked to another
folder, a file linked to /etc/hostname) are refused, naming the link, wherever a dataset is read: listing,
the dataset report (thumbnails), training's scan, evaluation-set locking and site validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InvalidDatasetError, LucidDxError
from core.imaging import datasets, intake
from core.models import registry
from core.services import eval_sets
from tests.imaging.test_training import real_subset


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder of real films outside the dataset folder."""
    return real_subset(tmp_path / "elsewhere", per_class=3) / "NORMAL"


def _dataset(tmp_path: Path) -> Path:
    return real_subset(tmp_path / "data" / "films", per_class=6)


def _linked_class(tmp_path: Path, outside: Path) -> Path:
    root = _dataset(tmp_path)
    (root / "OTHER").symlink_to(outside, target_is_directory=True)
    return root


def _linked_file(tmp_path: Path, outside: Path) -> Path:
    root = _dataset(tmp_path)
    (root / "NORMAL" / "shadow.jpeg").symlink_to("/etc/hostname")
    return root


READERS = {
    "listing": lambda root: datasets.class_folders(root) and [datasets.class_files(d) for d in datasets.subfolders(root)],
    "report": intake.dataset_report,
    "training scan": lambda root: datasets.scan_labeled_folder(root),
    "eval-set lock": lambda root: eval_sets._image_cases(root, registry.resolve("chest_xray")),
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("make, link", [(_linked_class, "OTHER"), (_linked_file, "NORMAL/shadow.jpeg")])
def test_a_link_out_of_the_dataset_is_refused_naming_it(tmp_path: Path, outside: Path, reader: str, make, link) -> None:
    root = make(tmp_path, outside)
    with pytest.raises(InvalidDatasetError, match=f"{link}: is a link that leads outside the dataset folder") as caught:
        READERS[reader](root)
    assert "/etc" not in str(caught.value) and str(outside) not in str(caught.value)


def test_site_validation_refuses_it_too(tmp_path: Path, outside: Path) -> None:
    from core.services import validation

    with pytest.raises(LucidDxError, match="leads outside the dataset folder"):
        validation.validate_image_model(_linked_file(tmp_path, outside), "chest_xray")


def test_a_link_that_stays_inside_the_dataset_is_read(tmp_path: Path) -> None:
    root = _dataset(tmp_path)
    first = sorted((root / "NORMAL").glob("*.jpeg"))[0]
    (root / "PNEUMONIA" / "same.jpeg").symlink_to(first)
    assert root / "PNEUMONIA" / "same.jpeg" in datasets.class_files(root / "PNEUMONIA")
