"""Dataset intake: good and hostile archives, refusals before extraction, the pre-training report."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.imaging import archives, intake
from core.errors import InvalidDatasetError
from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]


def real_films(label: str, n: int) -> list[Path]:
    return sorted((CHEST_XRAY_TRAIN / label).glob("*.jpeg"))[:n]


def make_zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def good_entries(n: int = 6, wrapper: str = "my_scans/") -> dict[str, bytes]:
    entries = {}
    for label in ("NORMAL", "PNEUMONIA"):
        for path in real_films(label, n):
            entries[f"{wrapper}{label}/{path.name}"] = path.read_bytes()
    return entries


def extracted_datasets() -> list[Path]:
    return sorted(intake.datasets_dir().iterdir()) if intake.datasets_dir().exists() else []


def test_good_zip_is_extracted_under_home_and_reported(isolated_home: Path) -> None:
    entries = good_entries()
    normal = real_films("NORMAL", 7)
    entries["my_scans/NORMAL/copy_of_first.jpeg"] = normal[0].read_bytes()  # duplicate within a class
    entries["my_scans/PNEUMONIA/mislabelled.jpeg"] = normal[1].read_bytes()  # same image in two classes
    entries["my_scans/NORMAL/broken.jpeg"] = b"\xff\xd8\xff\xe0 truncated"
    entries["my_scans/PNEUMONIA/notes.txt"] = b"scanner settings"
    entries["__MACOSX/my_scans/._IM-0115-0001.jpeg"] = b"resource fork"
    entries["my_scans/NORMAL/.DS_Store"] = b"finder"

    folder = intake.import_upload(make_zip(entries), "scans.zip")

    assert folder.resolve().is_relative_to(isolated_home.resolve())
    assert not (folder / "__MACOSX").exists()
    report = intake.dataset_report(folder)
    assert report.classes == ["NORMAL", "PNEUMONIA"]
    assert report.counts == {"NORMAL": 7, "PNEUMONIA": 7}
    reasons = {u["file"]: u["error"] for u in report.unreadable}
    assert set(reasons) == {"NORMAL/broken.jpeg", "PNEUMONIA/notes.txt"}
    assert "broken.jpeg" in reasons["NORMAL/broken.jpeg"] and ".txt" in reasons["PNEUMONIA/notes.txt"]
    cross = report.cross_class_duplicates
    assert len(cross) == 1 and cross[0]["classes"] == ["NORMAL", "PNEUMONIA"]
    assert any(not d["cross_class"] and "NORMAL/copy_of_first.jpeg" in d["files"] for d in report.duplicates)
    assert any("more than one class" in w for w in report.warnings)
    assert report.ok and not report.problems
    assert report.size_summary()["height"]["max"] == 224
    for thumbs in report.thumbnails.values():
        assert 1 <= len(thumbs) <= intake.THUMBNAILS_PER_CLASS
        assert all(t.dtype == np.uint8 and t.ndim == 2 and max(t.shape) <= intake.THUMBNAIL_SIZE for t in thumbs)
    json.dumps(report.as_dict())


def test_imbalance_and_too_few_images_are_reported(tmp_path: Path) -> None:
    for label, n in (("NORMAL", 3), ("PNEUMONIA", 9)):
        (tmp_path / label).mkdir()
        for path in real_films(label, n):
            shutil.copy(path, tmp_path / label / path.name)
    report = intake.dataset_report(tmp_path)
    assert not report.ok
    assert "'NORMAL' has 3" in report.problems[0]
    assert any("imbalance" in w.lower() and "3.0x" in w for w in report.warnings)


@pytest.mark.parametrize(
    "entries, match",
    [
        ({"data/NORMAL/a.jpeg": b"x", "../evil.jpeg": b"escape"}, "outside the dataset folder"),
        ({"data/NORMAL/../../../evil.jpeg": b"escape"}, "outside the dataset folder"),
        ({"/tmp/evil.jpeg": b"absolute"}, "outside the dataset folder"),
        ({"C:/evil.jpeg": b"drive letter"}, "outside the dataset folder"),
        ({"data\\..\\..\\evil.jpeg": b"windows separators"}, "outside the dataset folder"),
    ],
)
def test_zip_slip_is_refused_before_anything_is_written(tmp_path: Path, entries: dict, match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        intake.import_upload(make_zip(entries), "slip.zip")
    assert extracted_datasets() == []
    assert not list(tmp_path.parent.rglob("evil.jpeg"))


def test_symlink_entries_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("data/NORMAL/passwd.jpeg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidDatasetError, match="symbolic link"):
        intake.import_upload(buffer.getvalue(), "links.zip")
    assert extracted_datasets() == []


def test_zip_bomb_is_refused_from_its_directory_without_extracting(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = make_zip({"data/NORMAL/a.png": b"\0" * (20 * 1024 * 1024), "data/PNEUMONIA/b.png": b"x"})
    assert len(bomb) < 100_000
    monkeypatch.setattr(archives, "_extract_member", lambda *a: pytest.fail("extracted before checking"))
    with pytest.raises(InvalidDatasetError, match="zip bomb"):
        intake.import_upload(bomb, "bomb.zip")
    assert extracted_datasets() == []


@pytest.mark.parametrize(
    "limits, match",
    [
        (intake.ArchiveLimits(max_total_bytes=20_000), "would unpack to"),
        (intake.ArchiveLimits(max_entries=5), "more than the 5 allowed"),
    ],
)
def test_oversized_archives_are_refused(limits: intake.ArchiveLimits, match: str) -> None:
    with pytest.raises(InvalidDatasetError, match=match):
        intake.import_upload(make_zip(good_entries(4)), "big.zip", limits)
    assert extracted_datasets() == []


@pytest.mark.parametrize("payload", [b"just some notes, not an archive", (CHEST_XRAY_TRAIN / "NORMAL").glob("*.jpeg")])
def test_files_that_are_not_zip_archives_are_refused(payload) -> None:
    data = payload if isinstance(payload, bytes) else next(iter(payload)).read_bytes()
    with pytest.raises(InvalidDatasetError, match="not a zip archive"):
        intake.import_upload(data, "data.zip")


def test_truncated_zip_is_refused_cleanly() -> None:
    data = make_zip(good_entries(3), compression=zipfile.ZIP_STORED)
    with pytest.raises(InvalidDatasetError):
        intake.import_upload(data[: len(data) // 2] + data[-200:], "cut.zip")
    assert extracted_datasets() == []


def test_one_class_is_refused(tmp_path: Path) -> None:
    folder = intake.import_upload(make_zip({f"only/NORMAL/{p.name}": p.read_bytes() for p in real_films("NORMAL", 6)}), "one.zip")
    with pytest.raises(InvalidDatasetError, match="at least two"):
        intake.dataset_report(folder)


def test_open_dataset_on_a_server_zip_cleans_up_after_itself(tmp_path: Path) -> None:
    archive = tmp_path / "scans.zip"
    archive.write_bytes(make_zip(good_entries(5)))
    with intake.open_dataset(archive) as folder:
        assert intake.is_managed_dataset(folder)
        assert intake.dataset_report(folder).counts == {"NORMAL": 5, "PNEUMONIA": 5}
    assert not folder.exists()
    with pytest.raises(InvalidDatasetError, match="not an extracted dataset"):
        intake.remove_dataset(tmp_path)


def test_cli_train_refuses_a_hostile_archive_without_traceback(tmp_path: Path, isolated_home: Path) -> None:
    archive = tmp_path / "slip.zip"
    archive.write_bytes(make_zip({"data/NORMAL/a.jpeg": b"x", "../../evil.jpeg": b"escape"}))
    env = {**os.environ, "LUCIDDX_HOME": str(isolated_home)}
    result = subprocess.run([sys.executable, "-m", "core", "train", "--data", str(archive), "--name", "x", "--json"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "outside the dataset folder" in result.stderr and "Traceback" not in result.stderr
    assert not (isolated_home / "models").exists() or not any((isolated_home / "models").glob("x/*"))
