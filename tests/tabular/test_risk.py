"""The bundled diabetes risk model through the generic tabular code: exact SHAP, calibration, validation, batch, CLI, training."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.models import metrics, registry
from core.services import tabular
from core.tabular import labelled, training
from core.tabular.model import FAMILIES, RiskModel
from core.tabular.predictor import RiskPredictor, load_risk_model
from core.errors import InvalidPatientDataError
from tests.conftest import DIABETES_CSV

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = "diabetes_risk:1"
NAMES = load_risk_model(BUNDLED).schema.names
EXAMPLE = load_risk_model(BUNDLED).schema.example
HEADER = ",".join(NAMES) + ",Outcome"


@pytest.fixture(scope="module")
def predictor() -> RiskPredictor:
    return load_risk_model(BUNDLED)


@pytest.fixture(scope="module")
def pima() -> tuple[np.ndarray, np.ndarray]:
    table = labelled.load_training_table(DIABETES_CSV)
    assert table.X.shape == (768, 8) and not table.skipped and not table.dropped
    return table.X, table.y


def test_additivity_over_all_768_rows(predictor, pima):
    X, _ = pima
    base, contributions = predictor.model.explain(X)
    output = predictor.model.decision_function(X)
    assert contributions.shape == (768, 8)
    np.testing.assert_allclose(base + contributions.sum(axis=1), output, atol=1e-6, rtol=0)
    # The same through the public result objects, and output is exactly the shown risk in log-odds.
    patients = [{n: (None if np.isnan(v) else float(v)) for n, v in zip(NAMES, row)} for row in X]
    for result in predictor.predict(patients):
        assert abs(result.base_value + sum(result.contributions.values()) - result.output) < 1e-6
        assert abs(math.log(result.risk / (1 - result.risk)) - result.output) < 1e-6


def test_explanation_is_exact_shap_not_a_sampling_approximation(predictor, pima):
    """For a linear-in-log-odds model interventional SHAP has a closed form: w . (z - mean z), summed per feature."""
    X, _ = pima
    predictor.model.explain(X[:1])
    assert type(predictor.model._explainer).__name__ in {"LinearExplainer", "TreeExplainer"}
    assert predictor.meta["explanation"]["space"] == "log-odds"
    if predictor.model.family == "gradient_boosting":
        return
    design, clf = predictor.model.estimator_[0], predictor.model.estimator_[-1]
    Z, Z_bg = design.transform(X), design.transform(predictor.model.background_)
    per_column = clf.coef_[0] * (Z - Z_bg.mean(axis=0))
    expected = np.column_stack([per_column[:, design.output_indices_[n]].sum(axis=1) for n in NAMES])
    _base, contributions = predictor.model.explain(X)
    np.testing.assert_allclose(contributions, expected, atol=1e-9)


@pytest.mark.parametrize("family", ["logistic", "gradient_boosting"])
def test_every_family_explains_exactly(family, pima):
    X, y = pima
    model = RiskModel(family, NAMES, [bool(np.isnan(c).any()) for c in X.T], [0] * len(NAMES), n_bootstrap=0).fit(X, y)
    base, contributions = model.explain(X)
    np.testing.assert_allclose(base + contributions.sum(axis=1), model.decision_function(X), atol=1e-6, rtol=0)


def test_missing_values_get_an_explained_contribution(predictor):
    measured = dict(EXAMPLE, Insulin=120.0)
    blank = dict(EXAMPLE, Insulin=None)
    with_insulin, without = predictor.predict([measured, blank])
    assert without.imputed["Insulin"] == pytest.approx(predictor.meta["imputation"]["Insulin"])
    assert with_insulin.imputed["Insulin"] is None
    assert without.contributions["Insulin"] != with_insulin.contributions["Insulin"]
    assert "not measured (imputed" in without.value_labels()["Insulin"]
    assert with_insulin.value_labels()["Glucose"] == "Glucose = 148 mg/dL"


def test_calibration_and_discrimination_on_out_of_fold_predictions(predictor):
    validation = predictor.meta["validation"]
    assert validation["cv_auc"] >= 0.83
    lo, hi = validation["cv_auc_ci95"]
    assert lo < validation["cv_auc"] < hi and hi - lo < 0.1
    data = np.load(predictor.ref.path / "validation_predictions.npz")
    y, p = data["labels"], data["probabilities"][:, 1]
    assert data["probabilities"].shape == (768, 2) and set(data["subgroups"]) == {"21-29", "30-39", "40-49", "50+"}
    slope, intercept = metrics.calibration_fit(y, p)
    assert 0.8 < slope < 1.2 and abs(intercept) < 0.2
    assert abs(p.mean() - y.mean()) < 0.02
    assert np.mean((p - y) ** 2) == pytest.approx(validation["brier"]) and validation["brier"] < 0.17
    for lo_bin, hi_bin in ((0, 0.2), (0.2, 0.5), (0.5, 1.0)):  # observed rate agrees with predicted per band
        band = (p >= lo_bin) & (p < hi_bin)
        assert abs(y[band].mean() - p[band].mean()) < 0.07


def test_training_command_reproduces_the_bundled_model(predictor, pima, isolated_home):
    payload = training.train_risk_model(DIABETES_CSV, "diabetes_risk", target="Outcome", command="test")
    ref = registry.resolve(payload["model"], kind="tabular-risk")
    assert not ref.bundled and ref.meta["family"] == predictor.meta["family"] == payload["family"]
    assert ref.meta["validation"]["cv_auc"] == pytest.approx(predictor.meta["validation"]["cv_auc"], abs=1e-12)
    assert ref.meta["threshold"] == predictor.meta["threshold"]
    assert {f["family"] for f in ref.meta["validation"]["families"]} == set(FAMILIES)
    assert (ref.path / "card.json").exists() and (ref.path / "validation_predictions.npz").exists()
    X, _ = pima
    retrained = load_risk_model(payload["model"])
    np.testing.assert_allclose(retrained.model.decision_function(X), predictor.model.decision_function(X), atol=1e-9)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("Age", -3, "physiologically impossible"), ("BMI", 500, "physiologically impossible"),
     ("Glucose", 0, "Leave it blank"), ("Glucose", "abc", "not a number"), ("Age", None, "required"),
     ("Pregnancies", 2.5, "whole number")],
)
def test_impossible_values_are_refused_naming_the_field(field, value, fragment, predictor):
    values = dict(EXAMPLE, **{field: value})
    _clean, issues = predictor.schema.check_patient(values)
    errors = [i for i in issues if i.severity == "error"]
    assert [i.field for i in errors] == [field] and fragment in errors[0].message
    with pytest.raises(InvalidPatientDataError, match=field):
        predictor.predict_one(values)


def test_out_of_range_values_warn_but_are_scored(predictor):
    values = dict(EXAMPLE, Age=18, Glucose=260)
    _clean, issues = predictor.schema.check_patient(values)
    assert {i.field for i in issues} == {"Age", "Glucose"} and {i.severity for i in issues} == {"warning"}
    result = predictor.predict_one(values)
    assert 0 < result.risk < 1 and len(result.warnings) == 2


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    return path


BAD_ROWS = [
    "6,148,72,35,0,33.6,0.627,50,1",  # 1 good (Insulin 0 = not measured)
    "1,abc,66,29,0,26.6,0.351,31,0",  # 2 Glucose not a number
    "8,183,64,0,0,500,0.672,32,1",  # 3 BMI impossible
    "1,89,66,23,94,28.1,0.167,-4,0",  # 4 negative age
    "0,137,40,35,168,43.1,2.288,,1",  # 5 Age missing
    "5,116,74,0,0,25.6,0.201,30,0",  # 6 good
]


def test_batch_reports_bad_rows_by_number_and_scores_the_rest(tmp_path, predictor):
    results = tabular.score_csv(write_csv(tmp_path / "p.csv", BAD_ROWS), BUNDLED)
    assert [r["row"] for r in results] == [1, 2, 3, 4, 5, 6]
    assert [r["ok"] for r in results] == [True, False, False, False, False, True]
    for row, field in ((2, "Glucose"), (3, "BMI"), (4, "Age"), (5, "Age")):
        assert results[row - 1]["error"].startswith(f"row {row}:") and field in results[row - 1]["error"]
    good = results[0]
    assert good["model"] == BUNDLED and set(good["explanation"]["contributions"]) == set(NAMES)
    e = good["explanation"]
    assert abs(e["base_value"] + sum(e["contributions"].values()) - e["output"]) < 1e-6
    assert good["risk"] == pytest.approx(predictor.predict_one(dict(EXAMPLE)).risk)
    table = tabular.batch_table(results)
    assert table[1]["risk"] is None and "Glucose" in table[1]["error"] and table[0]["top_contributions"].startswith("Glucose")
    text = tabular.export_csv(results, predictor)
    assert text.splitlines()[0].startswith("row,ok,model,threshold,risk,above_threshold,top_contributions,error,shap_Pregnancies")
    assert len(text.splitlines()) == 7
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(text)))  # every row, scored or not, names the version and threshold
    assert {r["model"] for r in rows} == {predictor.spec} and {float(r["threshold"]) for r in rows} == {predictor.threshold}


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"Glucose,BMI\n120,30\n", "missing column(s) Pregnancies"), (b"", "empty"),
     (b"\x89PNG\r\n\x1a\n\x00\x00binary", "binary")],
)
def test_unusable_csv_raises_naming_the_file(tmp_path, content, fragment):
    path = tmp_path / "patients.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidPatientDataError, match="patients.csv") as info:
        tabular.score_csv(path, BUNDLED)
    assert fragment in str(info.value)


def run_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LUCIDDX_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_cli_risk_json_per_contract(tmp_path, isolated_home):
    result = run_cli("risk", "--csv", str(write_csv(tmp_path / "p.csv", BAD_ROWS)), "--json", home=isolated_home)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = json.loads(result.stdout)
    assert [r["ok"] for r in rows] == [True, False, False, False, False, True]
    good, bad = rows[0], rows[1]
    assert {"row", "ok", "error", "model", "risk", "explanation"} <= set(good) and good["error"] is None
    assert set(good["explanation"]) == {"space", "base_value", "output", "contributions"}
    assert good["explanation"]["space"] == "log-odds"
    assert abs(math.log(good["risk"] / (1 - good["risk"])) - good["explanation"]["output"]) < 1e-6
    assert bad["row"] == 2 and not bad["ok"] and "Glucose" in bad["error"]

    missing = tmp_path / "bad.csv"
    missing.write_text("Glucose,BMI\n120,30\n")
    result = run_cli("risk", "--csv", str(missing), "--json", home=isolated_home)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "bad.csv" in result.stderr


def test_trailing_blank_lines_are_not_patients_and_thousands_commas_are_refused(tmp_path):
    header = "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
    csv_file = tmp_path / "patients.csv"
    csv_file.write_text(header + '2,120,70,30,"1,000",31.2,0.4,40\n1,100,70,25,90,27.0,0.3,33\n\n\n')
    rows = tabular.score_csv(csv_file, None)
    assert [r["row"] for r in rows] == [1, 2]
    assert rows[0]["ok"] is False and "Insulin" in rows[0]["error"] and "ambiguous" in rows[0]["error"]
    assert rows[1]["ok"] is True
