"""The `python -m core` contract (shared/CLI.md): JSON shapes, exit codes, no tracebacks, no PHI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LUCIDDX_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def real_films() -> dict[str, list[Path]]:
    return {
        "NORMAL": sorted((CHEST_XRAY_TRAIN / "NORMAL").glob("*.jpeg"))[:4],
        "PNEUMONIA": sorted((CHEST_XRAY_TRAIN / "PNEUMONIA").glob("*.jpeg"))[:4],
    }


def test_predict_json_one_object_per_file_and_bad_files_do_not_stop_others(tmp_path, isolated_home, real_films):
    junk = tmp_path / "notes.png"
    junk.write_text("this is not an image")
    phi_dicom = tmp_path / "ct_with_phi.dcm"
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.PatientName, ds.PatientID = "Doe^Jane", "MRN-998877"
    ds.save_as(phi_dicom)
    folder = tmp_path / "a_folder"
    folder.mkdir()
    files = [str(real_films["NORMAL"][0]), str(junk), str(real_films["PNEUMONIA"][0]), str(phi_dicom),
             str(tmp_path / "missing.jpeg"), str(folder)]

    result = run_cli("predict", *files, "--json", home=isolated_home)

    assert result.returncode == 1, result.stderr
    rows = json.loads(result.stdout)
    assert [r["file"] for r in rows] == files
    assert [r["ok"] for r in rows] == [True, False, True, True, False, False]
    good = rows[0]
    assert set(good) >= {"file", "ok", "error", "model", "label", "probabilities", "threshold", "out_of_distribution"}
    assert good["model"].startswith("chest_xray:")
    assert set(good["probabilities"]) == {"NORMAL", "PNEUMONIA"}
    assert abs(sum(good["probabilities"].values()) - 1) < 1e-4
    assert good["label"] in ("NORMAL", "PNEUMONIA")
    assert "notes.png" in rows[1]["error"] and rows[1]["error"]
    assert "missing.jpeg" in rows[4]["error"] and "not found" in rows[4]["error"]
    assert "is a folder" in rows[5]["error"]  # not "not found": the user sees what is wrong
    assert "Traceback" not in result.stderr
    for text in (result.stdout, result.stderr):
        assert "Doe" not in text and "MRN-998877" not in text


def test_predict_labels_follow_the_stored_threshold(isolated_home, real_films):
    rows = json.loads(run_cli("predict", *map(str, real_films["PNEUMONIA"]), "--json", home=isolated_home).stdout)
    for row in rows:
        said_pneumonia = row["probabilities"]["PNEUMONIA"] >= row["threshold"]
        assert row["label"] == (None if not row["assessable"] else "PNEUMONIA" if said_pneumonia else "NORMAL")


def test_evaluate_on_a_labeled_folder(tmp_path, isolated_home, real_films):
    data = tmp_path / "eval"
    for label, paths in real_films.items():
        (data / label.lower()).mkdir(parents=True)  # folder names match case-insensitively
        for p in paths:
            shutil.copy(p, data / label.lower() / p.name)
    (data / "normal" / "broken.jpeg").write_bytes(b"\xff\xd8\xff")
    (data / "__MACOSX" / "normal").mkdir(parents=True)  # debris of a Mac-made zip: ignored, not "bad input"
    (data / "__MACOSX" / "normal" / "._x.jpeg").write_bytes(b"\x00")

    result = run_cli("evaluate", "--data", str(data), "--json", home=isolated_home)

    report = json.loads(result.stdout)
    assert report["n"] == 8
    assert report["positive_class"] == "PNEUMONIA"
    for key in ("auc", "accuracy", "sensitivity", "specificity", "threshold"):
        assert 0.0 <= report[key] <= 1.0
    assert [s["file"] for s in report["skipped"]] == ["normal/broken.jpeg"]
    assert result.returncode == 1


@pytest.mark.parametrize(
    "args",
    [("predict",), ("evaluate",), ("predict", "x.png", "--model", "no_such_model"), ("frobnicate",)],
)
def test_misuse_exits_2_without_traceback(args, isolated_home):
    result = run_cli(*args, home=isolated_home)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_models_lists_bundled_versions(isolated_home):
    rows = json.loads(run_cli("models", "--json", home=isolated_home).stdout)
    chest = [r for r in rows if r["model"].startswith("chest_xray:")]
    assert chest and all(r["bundled"] for r in chest) and sum(r["active"] for r in chest) == 1


def test_a_whole_command_error_with_json_is_still_one_json_document(tmp_path, isolated_home) -> None:
    import json as json_module

    from core.cli.common import safe_text

    missing = tmp_path / "nowhere.csv"
    done = subprocess.run([sys.executable, "-m", "core", "risk", "--csv", str(missing), "--json"], cwd=ROOT,
                          env={**os.environ, "LUCIDDX_HOME": str(isolated_home)}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    document = json_module.loads(done.stdout)
    assert document["ok"] is False and "nowhere.csv" in document["error"]
    assert safe_text("evil\n\x1b[31mname.png") == "evil\\n\\x1b[31mname.png"


def test_an_option_refused_while_parsing_is_said_in_the_asked_language(tmp_path, capsys) -> None:
    """``--members 0`` was refused in English whatever --lang said: the parser ran before the language was set."""
    from core.cli import main as cli_main

    from core import i18n

    try:
        with pytest.raises(SystemExit) as stopped:
            cli_main(["--lang", "zh_CN", "train", "--data", str(tmp_path), "--name", "x", "--members", "0"])
    finally:
        i18n.set_language(None)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "集成成员" in err and "The number of ensemble members" not in err
