"""Risk models from any table: column typing, refusals of bad tables (nothing registered), train -> risk on real data."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidDatasetError, LucidDxError
from core.models import registry
from core.services import tabular
from core.tabular import columns, training
from core.tabular.predictor import load_risk_model
from tests.conftest import DATA_ROOT

ROOT = Path(__file__).resolve().parents[2]
BREAST = DATA_ROOT / "tabular" / "Breast_cancer_dataset.csv"
FAST = {"folds": 3, "families": ("logistic", "gradient_boosting"), "n_bootstrap": 3}


def breast_rows() -> tuple[list[str], list[list[str]]]:
    with BREAST.open(newline="") as f:
        table = list(csv.reader(f))
    return table[0], table[1:]


def write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """breast_cancer trained once (fast configuration) in its own home; tests read it back."""
    home = tmp_path_factory.mktemp("home")
    old = os.environ.get("LUCIDDX_HOME")
    os.environ["LUCIDDX_HOME"] = str(home)
    try:
        payload = training.train_risk_model(BREAST, "breast_cancer", target="diagnosis", command="test", **FAST)
    finally:
        os.environ["LUCIDDX_HOME"] = old or ""
    return home, payload


def test_breast_cancer_trains_with_identifiers_dropped_and_an_honest_auc(trained, monkeypatch):
    home, payload = trained
    monkeypatch.setenv("LUCIDDX_HOME", str(home))
    assert payload["model"] == "breast_cancer:1" and payload["n"] == 569
    assert payload["classes"] == {"benign": 357, "malignant": 212}  # names from assets/datasets (positive M)
    assert {d["column"] for d in payload["dropped"]} == {"id", ""} and "id" not in payload["features"]
    assert len(payload["features"]) == 30 and "radius_mean" in payload["features"]
    assert 0.95 < payload["cv"]["auc"] < 1.0 and payload["cv"]["brier"] < 0.06
    predictor = load_risk_model("breast_cancer")
    assert predictor.schema.positive_class == "malignant" and predictor.schema.positive_value == "M"
    assert predictor.meta["dataset"]["name"].startswith("Wisconsin")
    assert predictor.schema.by_name["radius_mean"].plausible[0] == pytest.approx(6.981)
    card = json.loads((predictor.ref.path / "card.json").read_text())
    assert "diabet" not in json.dumps(card).lower() and "Wolberg" in json.dumps(card)


def test_risk_scores_the_trained_models_columns_per_contract(trained, tmp_path):
    home, _payload = trained
    header, rows = breast_rows()
    rows = rows[:5]
    rows[2][header.index("radius_mean")] = "abc"
    env = {**os.environ, "LUCIDDX_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "core", "risk", "--csv", str(write(tmp_path / "p.csv", header, rows)),
                           "--model", "breast_cancer", "--json"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert [r["ok"] for r in out] == [True, True, False, True, True]
    assert out[2]["error"].startswith("row 3:") and "radius_mean" in out[2]["error"]
    for r in (x for x in out if x["ok"]):
        e = r["explanation"]
        assert r["model"] == "breast_cancer:1" and len(e["contributions"]) == 30
        assert abs(e["base_value"] + sum(e["contributions"].values()) - e["output"]) < 1e-6
        assert abs(math.log(r["risk"] / (1 - r["risk"])) - e["output"]) < 1e-6
    assert out[0]["risk"] > 0.5  # the first patient in the file is malignant


def test_a_second_version_is_not_activated_unless_asked(trained, monkeypatch):
    home, _payload = trained
    monkeypatch.setenv("LUCIDDX_HOME", str(home))
    second = training.train_risk_model(BREAST, "breast_cancer", target="diagnosis", activate=False, **FAST)
    assert second["model"] == "breast_cancer:2" and second["active"] is False
    assert registry.active_version("breast_cancer").version == "1"
    third = training.train_risk_model(BREAST, "breast_cancer", target="diagnosis", activate=True, **FAST)
    assert third["active"] is True and registry.active_version("breast_cancer").version == "3"


def test_cli_train_risk_json_per_contract(tmp_path, isolated_home):
    env = {**os.environ, "LUCIDDX_HOME": str(isolated_home)}
    done = subprocess.run([sys.executable, "-m", "core", "train-risk", "--csv", str(BREAST), "--target", "diagnosis",
                           "--positive", "M", "--name", "wdbc", "--folds", "3", "--families", "logistic", "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"model", "family", "n", "classes", "features", "dropped", "cv", "threshold"} <= set(out)
    assert out["model"] == "wdbc:1" and out["family"] == "logistic" and set(out["cv"]) >= {"auc", "brier"}
    assert 0 < out["threshold"] < 1


def bad_tables(tmp_path: Path) -> dict[str, tuple[Path, dict, str]]:
    header, rows = breast_rows()
    d = header.index("diagnosis")
    benign = [r for r in rows if r[d] == "B"]
    malignant = [r for r in rows if r[d] == "M"]
    three = [r[:d] + [["M", "B", "X"][i % 3]] + r[d + 1:] for i, r in enumerate(rows)]
    leak = [r + ["1" if r[d] == "M" else "0"] for r in rows]
    empty = [r + [""] for r in rows]
    return {
        "one class": (write(tmp_path / "one.csv", header, benign), {}, "only one value"),
        "three values": (write(tmp_path / "three.csv", header, three), {}, "--positive"),
        "too few": (write(tmp_path / "few.csv", header, benign[:200] + malignant[:40]), {}, "at least 50"),
        "leak": (write(tmp_path / "leak.csv", header + ["biopsy_result"], leak), {}, "biopsy_result"),
        "all missing": (write(tmp_path / "empty.csv", header + ["notes"], empty), {}, "notes"),
        "no target": (BREAST, {"target": "outcome"}, "no column 'outcome'"),
        "bad positive": (BREAST, {"positive": "Q"}, "'Q' is not a value"),
    }


@pytest.mark.parametrize("case", ["one class", "three values", "too few", "leak", "all missing", "no target",
                                  "bad positive"])
def test_bad_tables_are_refused_with_a_reason_and_nothing_is_registered(case, tmp_path, isolated_home):
    path, options, fragment = bad_tables(tmp_path)[case]
    with pytest.raises(InvalidDatasetError) as info:
        training.train_risk_model(path, "bad", **{"target": "diagnosis", **options, **FAST})
    assert fragment in str(info.value)
    assert "bad" not in registry.list_models()
    staging = registry.staging_root()
    assert not staging.exists() or not any(staging.iterdir())


def test_positive_value_picks_one_outcome_among_many(tmp_path):
    y, classes, positive = columns.target_labels(["a", "b", "c", "", "b"], "t", "B")
    assert positive == "b" and classes == ["not b", "b"] and y.tolist() == [0, 1, 0, -1, 1]
    y, classes, positive = columns.target_labels(["No", "Yes", "No"], "t", None)
    assert positive == "Yes" and classes == ["No", "Yes"]


@pytest.mark.parametrize(
    ("name", "cells", "kind"),
    [("patient_id", ["1", "2", "3"], "identifier"), ("id", ["7", "8", "9"], "identifier"),
     ("visit", ["2020-01-02", "2021-03-04", ""], "date"), ("smoker", ["yes", "no", "yes"], "binary"),
     ("flag", ["0", "1", "1"], "binary"), ("site", ["a", "b", "c", "a"], "categorical"),
     ("glucose", ["90", "", "140.5", "120"], "numeric"), ("blank", ["", " ", "NA"], "empty"),
     ("name", [f"p{i}" for i in range(30)], "identifier")],
)
def test_column_types_are_inferred(name, cells, kind):
    assert columns.classify(name, cells).kind == kind


def test_categorical_and_missing_values_are_explained_exactly_by_every_family(tmp_path, isolated_home):
    header, rows = breast_rows()
    rng = np.random.default_rng(0)
    d = header.index("diagnosis")
    extra = []
    for i, r in enumerate(rows):
        site = ["north", "south", "east"][int(rng.integers(0, 3))]
        smoker = "" if i % 7 == 0 else ("yes" if (r[d] == "M") ^ (rng.random() < 0.4) else "no")
        extra.append(r[:2] + [site, smoker] + r[2:6])
    path = write(tmp_path / "mixed.csv", header[:2] + ["site", "smoker"] + header[2:6], extra)
    for family in ("logistic", "spline_logistic", "gradient_boosting"):
        payload = training.train_risk_model(path, f"mixed_{family}", target="diagnosis", folds=3, families=(family,),
                                            n_bootstrap=2)
        predictor = load_risk_model(payload["model"])
        card = (predictor.ref.path / "card.json").read_text()
        assert "diabet" not in card.lower() and "own table" in card  # no description: the generic tabular card
        spec = predictor.schema.by_name["smoker"]
        assert spec.levels == ("no", "yes") and spec.optional and predictor.schema.by_name["site"].categorical
        outcome = tabular.score_patient(predictor, {"site": "east", "smoker": None, "radius_mean": 14,
                                                    "texture_mean": 20, "perimeter_mean": 90, "area_mean": 600})
        assert outcome.ok, outcome.issues
        r = outcome.result
        assert abs(r.base_value + sum(r.contributions.values()) - r.output) < 1e-6
        X, base, values = predictor.global_explanation()
        np.testing.assert_allclose(base + values.sum(axis=1), predictor.model.decision_function(X), atol=1e-6)
        bad = tabular.score_patient(predictor, {"site": "mars", "smoker": "no", "radius_mean": 14,
                                                "texture_mean": 20, "perimeter_mean": 90, "area_mean": 600})
        assert not bad.ok and "site" in bad.issues_by_field() and "mars" in bad.issues[0].message


def test_unknown_family_is_a_clear_error(isolated_home):
    with pytest.raises(LucidDxError, match="families must be among"):
        training.train_risk_model(BREAST, "x", target="diagnosis", families=("forest",))


def test_several_positive_values_and_named_negatives_leave_other_outcomes_out() -> None:
    from core.tabular import columns

    y, classes, positive = columns.target_labels(["A", "-", "K", "GK", "", "a"], "target", "A,GK", "-")
    assert y.tolist() == [1, 0, columns.EXCLUDED, 1, -1, 1]
    assert classes == ["-", "A,GK"] and positive == "A,GK"
    y, _, _ = columns.target_labels(["A", "-", "K"], "target", "A")  # no negatives named: the rest is negative
    assert y.tolist() == [1, 0, 0]
    with pytest.raises(InvalidDatasetError, match="--negative 'Z' is not a value"):
        columns.target_labels(["A", "-"], "target", "A", "Z")
