"""The schema lives in meta.json and is read back from it; damaged model files are refused; exports are spreadsheet-safe."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import exports
from core.errors import InvalidModelError, InvalidPatientDataError
from core.services import tabular
from core.tabular import batch
from core.tabular.model import load_model
from core.tabular.predictor import load_risk_model
from core.tabular.schema import FeatureSpec, Schema

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_DIR = ROOT / "models" / "diabetes_risk" / "1"


def test_schema_round_trips_through_meta_json():
    schema = Schema(
        features=(FeatureSpec("age", "Age", "years", (20, 80), (0, 130), False, "Age.", integer=True),
                  FeatureSpec("sex", "Sex", levels=("F", "M"), optional=True),
                  FeatureSpec("tsh", "TSH", "mU/L", optional=True, zero_means_missing=True, step=0.01)),
        classes=("no", "yes"), positive_class="yes", target="outcome", positive_value="yes",
        subgroups={"feature": "age", "bands": [[0, 49, "<50"], [50, 200, "50+"]]}, example={"age": 40, "sex": "F"})
    stored = json.loads(json.dumps(schema.to_meta()))  # what meta.json really holds
    assert Schema.from_meta(stored) == schema


def test_the_predictor_reads_the_bundled_schema_from_meta_json():
    meta = json.loads((BUNDLED_DIR / "meta.json").read_text())
    predictor = load_risk_model("diabetes_risk:1")
    assert predictor.schema == Schema.from_meta(meta)
    assert predictor.schema.by_name["Glucose"].unit == meta["features"][1]["unit"] == "mg/dL"
    assert [f.name for f in predictor.schema.features if f.zero_means_missing] == \
        ["Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"]
    assert predictor.schema.subgroups["feature"] == "Age" and predictor.schema.example["Glucose"] == 148


def copy_bundled(home: Path, name: str) -> Path:
    target = home / "models" / name / "1"
    shutil.copytree(BUNDLED_DIR, target)
    meta = json.loads((target / "meta.json").read_text())
    meta["name"] = name
    (target / "meta.json").write_text(json.dumps(meta))
    (target.parent / "ACTIVE").write_text("1")  # an administrator activated it: a copy is never approved by itself
    return target


def test_a_meta_json_without_schema_is_refused(isolated_home):
    target = copy_bundled(isolated_home, "noschema")
    meta = json.loads((target / "meta.json").read_text())
    del meta["features"]
    (target / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidModelError, match="no usable feature schema"):
        load_risk_model("noschema")


@pytest.mark.parametrize("damage", ["truncated", "missing", "foreign"])
def test_a_damaged_model_file_raises_invalid_model_error(damage, isolated_home):
    target = copy_bundled(isolated_home, "broken")
    model_file = target / "model.joblib"
    if damage == "truncated":
        model_file.write_bytes(model_file.read_bytes()[:200])
    elif damage == "missing":
        model_file.unlink()
    else:
        import joblib

        joblib.dump({"not": "a model"}, model_file)
    with pytest.raises(InvalidModelError, match="model.joblib"):
        load_model(model_file)
    with pytest.raises(InvalidModelError):
        load_risk_model("broken")


def test_the_cli_reports_a_damaged_model_without_a_traceback(tmp_path, isolated_home):
    target = copy_bundled(isolated_home, "broken")
    (target / "model.joblib").write_bytes(b"garbage")
    patients = tmp_path / "p.csv"
    patients.write_text("Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
                        "1,100,70,25,90,27.0,0.3,33\n")
    done = subprocess.run([sys.executable, "-m", "core", "risk", "--csv", str(patients), "--model", "broken", "--json"],
                          cwd=ROOT, env={**os.environ, "LUCIDDX_HOME": str(isolated_home)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "damaged" in done.stderr
    assert json.loads(done.stdout)["ok"] is False


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


@pytest.mark.parametrize("cell", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_exports_neutralise_formula_injection(cell):
    assert exports.neutralise(cell) == "'" + cell
    results = [{"row": 1, "ok": False, "error": cell},
               {"row": 2, "ok": True, "risk": 0.2, "above_threshold": False,
                "explanation": {"contributions": {cell: -0.5, "b": 0.1}}}]
    text = batch.batch_csv(results, [cell, "b"])
    assert f"shap_{cell}" in text  # "shap_" already makes the header safe
    cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
    assert "'" + cell in cells  # the error cell and the top-contributions text, neutralised
    assert not any(c.startswith(("=", "+", "-", "@", "\t")) and not is_number(c) for c in cells)
    assert exports.neutralise(-0.5) == -0.5 and exports.neutralise("row 1: fine") == "row 1: fine"


def test_service_reports_issues_at_fields_and_scores_good_patients():
    predictor = tabular.load("diabetes_risk:1")
    example = dict(predictor.schema.example)
    good = tabular.score_patient(predictor, example)
    assert good.ok and good.result.model == "diabetes_risk:1" and good.clean["Insulin"] is None
    bad = tabular.score_patient(predictor, {**example, "Age": -3, "BMI": 500})
    assert not bad.ok and set(bad.issues_by_field()) == {"Age", "BMI"}
    warned = tabular.score_patient(predictor, {**example, "Glucose": 260})
    assert warned.ok and len(warned.result.warnings) == 1 and "Glucose" in warned.result.warnings[0]


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_csv_saved_with_semicolons_or_tabs_is_read(separator: str) -> None:
    text = "a,b,c\n1,2,3\n".replace(",", separator)
    assert batch.read_table(text.encode(), "x.csv") == [["a", "b", "c"], ["1", "2", "3"]]


def test_a_folder_and_an_oversized_csv_are_refused_before_reading(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(InvalidPatientDataError, match="is a folder"):
        batch.read_table(tmp_path, "here")
    monkeypatch.setattr(batch, "MAX_CSV_BYTES", 10)
    big = tmp_path / "big.csv"
    big.write_text("a,b\n" + "1,2\n" * 10)
    with pytest.raises(InvalidPatientDataError, match="MB; LucidDx reads CSV files up to"):
        batch.read_table(big, "big.csv")


def test_too_many_rows_are_refused_naming_the_cap(monkeypatch) -> None:
    monkeypatch.setattr(batch, "MAX_ROWS", 3)
    with pytest.raises(InvalidPatientDataError, match="rows.csv: has more than 3 rows"):
        batch.read_table(b"a\n1\n2\n3\n4\n5\n", "rows.csv")


def test_the_row_cap_stops_reading_a_huge_file_early(tmp_path: Path, monkeypatch) -> None:
    """Issue 22 item 4: millions of tiny rows are refused at the cap while streaming, never parsed whole.

    Bytes that are not UTF-8 sit far past the cap: reaching them would fail with a decoding message,
    so the row-cap message proves the rest of the file was never read; memory stays near the cap's rows.
    """
    import tracemalloc

    monkeypatch.setattr(batch, "MAX_ROWS", 1_000)
    big = tmp_path / "many.csv"
    big.write_bytes(b"a\n" + b"1\n" * 2_000_000 + b"\xff\xfe\n")  # 4 MB, 2 million rows, bad bytes at the end
    tracemalloc.start()
    try:
        with pytest.raises(InvalidPatientDataError, match="many.csv: has more than 1,000 rows"):
            batch.read_table(big, "many.csv")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024**2  # the whole file's rows as lists would be hundreds of MB
    with pytest.raises(InvalidPatientDataError, match="has more than 1,000 rows"):
        batch.read_table(big.read_bytes(), "many.csv")  # an upload's bytes: the same stop


def test_help_written_from_training_values_is_left_to_the_form_and_an_authors_help_is_kept() -> None:
    """The form states ranges and levels itself, in the reader's language; only an author's help is shown."""
    from core.tabular.columns import categorical_spec, numeric_spec

    generated = numeric_spec("TSH", [0.5, 4.0, None], None)
    levels = categorical_spec("sex", ["F", "M", None], None)
    assert generated.help.startswith("Seen in training") and generated.reader_help() is None
    assert levels.help.startswith("One of") and levels.reader_help() is None
    authored = FeatureSpec.from_meta({**generated.to_meta(), "help": "Thyroid-stimulating hormone, fasting."})
    assert authored.reader_help() == "Thyroid-stimulating hormone, fasting."


def test_the_cli_refuses_a_csv_past_the_real_row_cap(tmp_path: Path, isolated_home: Path) -> None:
    """Issue 22 item 4 through ``risk --csv``: 150,000 one-character rows (300 KB), the real 100,000 cap."""
    many = tmp_path / "many.csv"
    many.write_bytes(b"Glucose\n" + b"1\n" * 150_000)
    done = subprocess.run([sys.executable, "-m", "core", "risk", "--csv", str(many), "--json"], cwd=ROOT,
                          env={**os.environ, "LUCIDDX_HOME": str(isolated_home)}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "many.csv: has more than 100,000 rows" in json.loads(done.stdout)["error"]
