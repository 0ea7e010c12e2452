"""Archives scored on the engine (CLI.md ``score-folder``), embedded on this machine."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import InvalidDatasetError
from core.services import admin, archive
from core.services.audit import os_actor
from tests.engine.conftest import sample_archive

ROOT = Path(__file__).resolve().parents[2]


def test_every_film_is_one_row_and_a_bad_file_a_failed_one(embedded_engine, tmp_path: Path) -> None:
    data = sample_archive(tmp_path / "archive", per_class=5)
    seen: list[tuple[int, int]] = []
    summary = archive.score_folder(os_actor(), data, tmp_path / "out" / "scores.csv",
                                   progress=lambda done, total: seen.append((done, total)))
    assert (summary["n"], summary["ok"], summary["failed"]) == (11, 10, 1)
    assert summary["model"].startswith("chest_xray:") and summary["nodes_used"] == 1 and summary["films_per_s"] > 0
    assert seen[-1] == (11, 11) and all(a <= b for (a, _t), (b, _u) in zip(seen, seen[1:]))
    with open(tmp_path / "out" / "scores.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["file", "ok", "error", "model", "label", "assessable", "probability_NORMAL",
                             "probability_PNEUMONIA", "threshold", "threshold_source"]
    by_file = {r["file"]: r for r in rows}
    assert by_file["ward/notes.png"]["ok"] == "False" and "not an image" in by_file["ward/notes.png"]["error"]
    normals = [r for f, r in by_file.items() if f.startswith("ward/normal/")]
    assert len(normals) == 5 and all(r["ok"] == "True" and r["threshold_source"] == "stored" for r in normals)
    # The same decision as the dashboard's: probabilities sum to one, the label follows the threshold in force.
    for r in normals:
        p = float(r["probability_PNEUMONIA"])
        assert abs(p + float(r["probability_NORMAL"]) - 1) < 1e-4
        assert r["label"] == ("PNEUMONIA" if p >= float(r["threshold"]) else "NORMAL")
    records = admin.audit_records(os_actor(), action="predict")
    assert len(records) == 11 and all("notes" not in json.dumps(r) for r in records)
    assert sorted(r["outcome"] for r in records) == ["bad-input"] + ["ok"] * 10


def test_a_folder_without_films_is_refused_by_name(embedded_engine, tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(InvalidDatasetError, match="empty: no image"):
        archive.score_folder(os_actor(), tmp_path / "empty", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_a_link_out_of_the_archive_is_not_followed(tmp_path: Path) -> None:
    data = sample_archive(tmp_path / "archive", per_class=1)
    (data / "ward" / "escape.png").symlink_to(next((ROOT / "assets" / "samples").glob("*.jpeg")))
    assert "ward/escape.png" not in {str(p.relative_to(data)) for p in archive.list_films(data)}


def test_the_command_line_contract(tmp_path: Path, isolated_home: Path) -> None:
    data = sample_archive(tmp_path / "archive", per_class=2)
    # RAY_ADDRESS stands for any other Ray on this machine (Ray joins it when ray.init is given no
    # address): the embedded engine must start its own all the same.
    env = {"PATH": "/usr/bin:/bin", "LUCIDDX_HOME": str(isolated_home), "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "RAY_ADDRESS": "127.0.0.1:9", "LUCIDDX_RAY_DIR": os.environ["LUCIDDX_RAY_DIR"]}
    done = subprocess.run([sys.executable, "-m", "core", "score-folder", "--data", str(data), "--out",
                           str(tmp_path / "r.csv"), "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr  # one bad file: exit 1, the rest scored
    summary = json.loads(done.stdout)
    assert {"model", "n", "ok", "failed", "seconds", "films_per_s", "nodes_used", "out"} <= set(summary)
    assert (summary["n"], summary["failed"]) == (5, 1) and "scored 5/5 films" in done.stderr
    status = subprocess.run([sys.executable, "-m", "core", "engine", "status", "--json"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    assert state["engine"] == "ray" and state["embedded"] is True
    assert [n["alive"] for n in state["nodes"]] == [True] and state["nodes"][0]["cpus"] >= 1
