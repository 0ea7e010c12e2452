"""The data report on real tables, and the researcher's overrides reaching the stored schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidOptionError
from core.models import registry
from core.tabular import batch, labelled, overrides, report, training
from tests.conftest import DATA_ROOT, DIABETES_CSV

BREAST = DATA_ROOT / "tabular" / "Breast_cancer_dataset.csv"
FAST = {"folds": 3, "families": ("logistic",), "n_bootstrap": 2}


def test_breast_cancer_report_flags_the_identifier_and_reads_the_outcome() -> None:
    r = report.table_report(batch.read_table(BREAST), "diagnosis", "M")
    by = {c.column: c for c in r.columns}
    assert r.target == "diagnosis" and by["diagnosis"].kind == "outcome"
    assert r.class_counts == {"B": 357, "M": 212} and r.rows == 569 and not r.problems
    assert by["id"].kind == "identifier" and not by["id"].used and "identifier" in by["id"].drop_reason
    assert by[""].kind == "empty" and not by[""].used  # the trailing comma's unnamed column
    assert len(r.features) == 30 and all(c.kind == "numeric" for c in r.features)
    assert by["radius_mean"].missing == 0 and by["radius_mean"].low == pytest.approx(6.981)
    assert 0.9 < by["perimeter_worst"].leak_auc < labelled.LEAK_AUC  # strong but no leak
    assert "id" not in [row["column"] for row in report.review_rows(r)]


def test_diabetes_report_suggests_zero_as_not_measured_only_where_it_is_implausible() -> None:
    r = report.table_report(batch.read_table(DIABETES_CSV), "Outcome", "1")
    codes = {c.column: c.suggested_codes for c in r.features}
    assert "0" in codes["Glucose"] and "0" in codes["BMI"] and "0" in codes["Insulin"]
    assert codes["Pregnancies"] == () and codes["Age"] == ()  # 0 pregnancies is a real value
    glucose = next(c for c in r.features if c.column == "Glucose")
    assert any("5 zeros" in note for note in glucose.notes)


def test_leaking_constant_and_negative_columns_are_reported() -> None:
    table = batch.read_table(DIABETES_CSV)
    rng = np.random.default_rng(0)
    table = [row + (["Leak", "Site", "Delta"] if i == 0 else
                    [row[-1], "A", "-9" if i % 40 == 0 else f"{rng.uniform(1, 5):.2f}"]) for i, row in enumerate(table)]
    r = report.table_report(table, "Outcome", "1")
    by = {c.column: c for c in r.columns}
    assert by["Leak"].leaks and any("'Leak'" in w for w in r.warnings)
    assert by["Site"].constant and by["Site"].notes
    assert "-9" in by["Delta"].suggested_codes and any("negative" in n for n in by["Delta"].notes)
    review = {row["column"]: row for row in report.review_rows(r)}
    assert review["Leak"]["use"] is False and review["Site"]["use"] is False and review["Glucose"]["use"] is True


def test_overrides_change_the_stored_schema(tmp_path: Path) -> None:
    r = report.table_report(batch.read_table(DIABETES_CSV), "Outcome", "1")
    rows = report.review_rows(r)
    for row in rows:
        if row["column"] == "Glucose":
            row.update(unit="mg/dL", low=10, high=600, codes="0")
        if row["column"] == "SkinThickness":
            row.update(use=False)
    confirmed = overrides.from_review([row for row in rows], r.dropped)
    upload = tmp_path / "table.csv"  # as an upload reaches training: no dataset description applies
    upload.write_bytes(DIABETES_CSV.read_bytes())
    payload = training.train_risk_model(upload, "pima_confirmed", target="Outcome", activate=False,
                                        options=training.RunOptions(confirmed, "a test table"), **FAST)
    meta = registry.resolve(payload["model"]).meta
    glucose = next(f for f in meta["features"] if f["name"] == "Glucose")
    assert glucose["unit"] == "mg/dL" and glucose["hard_limits"] == [10.0, 600.0]
    assert glucose["missing_codes"] == ["0"] and glucose["optional"] is True
    assert glucose["plausible_range"] == [44.0, 199.0]  # the training range no longer starts at the code
    assert "SkinThickness" not in payload["features"]
    assert {"column": "SkinThickness", "reason": overrides.LEFT_OUT} in payload["dropped"]
    assert meta["training"]["data"] == "a test table"

    plain = training.train_risk_model(upload, "pima_plain", target="Outcome", activate=False, **FAST)
    plain_glucose = next(f for f in registry.resolve(plain["model"]).meta["features"] if f["name"] == "Glucose")
    assert "missing_codes" not in plain_glucose and plain_glucose["plausible_range"][0] == 0.0


def test_a_missing_code_reads_as_blank_in_a_scored_csv_and_bad_limits_are_refused() -> None:
    from core.tabular.schema import FeatureSpec, check_field

    spec = FeatureSpec("x", "x", optional=True, missing_codes=("999",))
    assert check_field(spec, "999", from_csv=True) == (None, None)
    assert check_field(spec, "999.0", from_csv=True) == (None, None)
    assert check_field(spec, "12", from_csv=True)[0] == 12.0
    assert FeatureSpec.from_meta(spec.to_meta()).missing_codes == ("999",)
    with pytest.raises(InvalidOptionError, match="'Glucose'.*below"):
        overrides.from_review([{"column": "Glucose", "use": True, "low": 50, "high": 10}])
    with pytest.raises(InvalidOptionError, match="not a number"):
        overrides.from_review([{"column": "Glucose", "use": True, "low": "abc"}])


def test_a_column_without_a_name_still_has_a_label_in_the_missingness_chart() -> None:
    """The Wisconsin CSV's header ends with a comma: an all-blank column named ''."""
    from core.charts.training import missingness_bar

    bars = missingness_bar({"": 1.0, "radius_mean": 0.25, "texture_mean": 0.0}).data[0]
    assert list(bars.x) == ["(unnamed column)", "radius_mean"] and list(bars.y) == [100.0, 25.0]
