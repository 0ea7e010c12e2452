"""The Patient risk page, driven headless through the real app with the bundled risk model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.tabular.predictor import load_risk_model

ROOT = Path(__file__).resolve().parents[2]
PATIENT = {"Pregnancies": 6, "Glucose": 148.0, "BloodPressure": 72.0, "SkinThickness": 35.0, "BMI": 33.6,
           "DiabetesPedigreeFunction": 0.627, "Age": 50}  # Insulin left blank: not measured


def open_page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.switch_page("pages/patient_risk.py")
    at.run()
    assert not at.exception, at.exception
    return at


def submit(at: AppTest, values: dict[str, float | int | None]) -> AppTest:
    for name, value in values.items():
        at.number_input(key=f"risk_field_{name}").set_value(value)
    next(b for b in at.button if b.label == "Compute risk").click()
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label_start: str) -> str | None:
    return next((m.value for m in at.metric if m.label.startswith(label_start)), None)


def chart_types(at: AppTest) -> list[str]:
    return [trace["type"] for chart in at.get("plotly_chart") for trace in json.loads(chart.proto.spec)["data"]]


def test_form_shows_the_models_risk_and_a_waterfall():
    at = submit(open_page(), PATIENT)
    expected = load_risk_model("diabetes_risk").predict_one({**PATIENT, "Insulin": None})
    assert metric(at, "Risk of diabetes") == f"{expected.risk:.1%}"
    assert "waterfall" in chart_types(at) and "indicator" in chart_types(at)
    waterfall = next(json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")
                     if json.loads(c.proto.spec)["data"][0]["type"] == "waterfall")
    # the fields' labels and units, never the raw column names; the axis reads as risk, the unit is named
    assert "Plasma glucose, 2-h OGTT = 148 mg/dL" in waterfall["y"]
    assert "Serum insulin, 2-h = not measured (imputed 125 µU/mL)" in waterfall["y"]
    assert not any(label.startswith(("Glucose", "Insulin", "BMI")) for label in waterfall["y"])
    layout = next(json.loads(c.proto.spec)["layout"] for c in at.get("plotly_chart")
                  if json.loads(c.proto.spec)["data"][0]["type"] == "waterfall")
    assert "log-odds" in layout["title"]["text"] and "log-odds" in layout["xaxis"]["title"]["text"]
    assert "50%" in layout["xaxis"]["ticktext"] and layout["xaxis"]["tickvals"][layout["xaxis"]["ticktext"].index("50%")] == 0
    assert waterfall["x"][-1] == pytest.approx(expected.output, abs=1e-9)
    assert waterfall["x"][0] + sum(waterfall["x"][1:-1]) == pytest.approx(expected.output, abs=1e-6)
    assert any("Serum insulin, 2-h (imputed" in info.value for info in at.info)  # blank field shown as imputed


def test_the_patients_exact_values_can_be_checked_against_kernel_shap():
    at = submit(open_page(), PATIENT)
    assert not any("KernelSHAP" in s.value for s in at.success)  # computed only when asked
    next(b for b in at.button if b.label == "Check against KernelSHAP").click()
    at.run()
    assert not at.exception, at.exception
    said = [s.value for s in at.success if s.value.startswith("KernelSHAP (")]
    assert said and "It agrees" in said[0] and "of the exact top 3 are in its top 3" in said[0]


def test_what_if_panel_shows_the_new_risk_and_the_change():
    at = submit(open_page(), PATIENT)
    at.selectbox(key="risk_whatif_feature").set_value("Glucose").run()
    at.number_input(key="risk_whatif_value_Glucose").set_value(100.0).run()
    assert not at.exception
    lower = load_risk_model("diabetes_risk").predict_one({**PATIENT, "Insulin": None, "Glucose": 100.0})
    assert metric(at, "Risk with Plasma glucose, 2-h OGTT = 100 mg/dL") == f"{lower.risk:.1%}"
    from streamlit.proto.Metric_pb2 import Metric

    lowered = next(m for m in at.metric if m.label.startswith("Risk with")).proto
    assert lowered.delta.startswith("-") and lowered.delta.endswith(" percentage points")
    assert (lowered.direction, lowered.color) == (Metric.MetricDirection.DOWN, Metric.MetricColor.GREEN)
    at.number_input(key="risk_whatif_value_Glucose").set_value(148.0).run()  # back to the patient's own value
    same = next(m for m in at.metric if m.label.startswith("Risk with")).proto
    assert same.delta == "no change" and "+0.0" not in same.delta  # zero change: neutral, no arrow
    assert (same.direction, same.color) == (Metric.MetricDirection.NONE, Metric.MetricColor.GRAY)
    assert {"bar", "scattergl", "scatter"} <= set(chart_types(at))  # the researchers' global views


def test_impossible_value_is_refused_at_the_field_not_a_crash():
    at = submit(open_page(), {**PATIENT, "BMI": 500.0})
    assert any("BMI" in e.value and "physiologically impossible" in e.value for e in at.error)
    assert metric(at, "Risk of diabetes") is None
    assert "waterfall" not in chart_types(at)


def test_the_form_is_built_from_any_models_stored_schema(tmp_path, isolated_home):
    """A model trained on another table (with a categorical field) gets its own form, result and charts."""
    import csv

    from core.tabular import training
    from tests.conftest import DATA_ROOT

    with (DATA_ROOT / "tabular" / "Breast_cancer_dataset.csv").open(newline="") as f:
        table = list(csv.reader(f))
    header = ["diagnosis", "site", "radius_mean", "texture_mean"]
    index = [table[0].index(c) for c in ("diagnosis", "radius_mean", "texture_mean")]
    rows = [[r[index[0]], ["north", "south"][i % 2], r[index[1]], r[index[2]]] for i, r in enumerate(table[1:])]
    with (tmp_path / "t.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    payload = training.train_risk_model(tmp_path / "t.csv", "wdbc_small", target="diagnosis", folds=3,
                                        families=("logistic",), n_bootstrap=2)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.switch_page("pages/patient_risk.py")
    at.run()
    at.selectbox(key="risk_model").set_value(payload["model"]).run()
    assert not at.exception, at.exception
    assert {n.key for n in at.number_input if n.key.startswith("risk_field_")} == {"risk_field_radius_mean",
                                                                                   "risk_field_texture_mean"}
    assert at.selectbox(key="risk_field_site").options == ["north", "south"]
    at.selectbox(key="risk_field_site").set_value("south")
    at.number_input(key="risk_field_radius_mean").set_value(20.0)
    at.number_input(key="risk_field_texture_mean").set_value(22.0)
    next(b for b in at.button if b.label == "Compute risk").click()
    at.run()
    assert not at.exception, at.exception
    expected = load_risk_model(payload["model"]).predict_one({"site": "south", "radius_mean": 20.0, "texture_mean": 22.0})
    assert metric(at, "Risk of M") == f"{expected.risk:.1%}"
    waterfall = next(json.loads(c.proto.spec)["data"][0] for c in at.get("plotly_chart")
                     if json.loads(c.proto.spec)["data"][0]["type"] == "waterfall")
    assert "site = south" in waterfall["y"] and "radius_mean = 20" in waterfall["y"]
    assert not any("diabet" in str(getattr(e, "value", "")).lower() for e in at.caption)
