"""The risk-model-from-a-table page, driven headless through the real app with a real table seeded in the session.

AppTest cannot drive st.file_uploader: the upload step only puts the table's rows into the session, so the
tests seed those rows (read by the same service function) and drive everything after it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import runner as jobs
from core.jobs.risk import DATA_LABEL, TABLE_FILE
from core.models import registry
from core.services import risk_training as service
from tests.conftest import DATA_ROOT, DIABETES_CSV

ROOT = Path(__file__).resolve().parents[2]
BREAST = DATA_ROOT / "tabular" / "Breast_cancer_dataset.csv"
pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def open_with(table: list[list[str]]) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["risk_table"] = table
    at.run()
    at.switch_page("pages/risk_training.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Risk model from a table"
    return at


def test_the_data_report_flags_the_identifier_and_draws_balance_and_missingness() -> None:
    at = open_with(service.read_table(BREAST.read_bytes()))
    at.selectbox(key="risk_target").set_value("diagnosis").run()
    at.multiselect(key="risk_positive_diagnosis").set_value(["M"]).run()
    assert not at.exception, at.exception
    assert "3. Data report" in [s.value for s in at.subheader]
    report = at.dataframe[0].value
    by_column = report.set_index("column")
    assert by_column.loc["id", "type"] == "identifier" and by_column.loc["id", "in training"].startswith("dropped")
    assert by_column.loc["radius_mean", "in training"] == "used"
    assert by_column.loc["diagnosis", "type"] == "outcome"
    assert len(at.get("plotly_chart")) == 2  # class balance, missingness
    assert "4. Confirm the fields" in [s.value for s in at.subheader]
    review = at.dataframe(key="risk_review").value  # the confirmation editor, prefilled from the report
    assert "id" not in set(review["column"]) and len(review) == 30
    assert not at.button(key="risk_start_button").disabled


def test_enter_in_the_name_or_folds_field_never_starts_a_job() -> None:
    at = open_with(service.read_table(DIABETES_CSV.read_bytes()))
    at.selectbox(key="risk_target").set_value("Outcome").run()
    # Enter commits the field and reruns the page (input/set_value + run); only the button starts work.
    at.text_input(key="risk_name").input("enter_test").run()
    at.number_input(key="risk_folds").set_value(3).run()
    assert not at.exception, at.exception
    assert not any(str(b.key).startswith("FormSubmitter:") for b in at.button)
    assert jobs.list_jobs() == [] and "risk_job" not in at.session_state


def test_too_few_rows_block_training_with_the_reason() -> None:
    table = service.read_table(DIABETES_CSV.read_bytes())[:60]
    at = open_with(table)
    at.selectbox(key="risk_target").set_value("Outcome").run()
    assert any("Too few patients" in e.value for e in at.error)
    assert at.button(key="risk_start_button").disabled


def test_training_runs_as_a_job_and_shows_the_comparison_and_card_without_activating() -> None:
    existing = registry.resolve("diabetes_risk")  # the bundled version stays the one in use
    at = open_with(service.read_table(DIABETES_CSV.read_bytes()))
    at.selectbox(key="risk_target").set_value("Outcome").run()
    at.text_input(key="risk_name").input("diabetes_risk")
    at.number_input(key="risk_folds").set_value(2)
    at.button(key="risk_start_button").click().run()
    assert not at.exception, at.exception
    job_id = at.session_state["risk_job"]
    status = jobs.wait(job_id, timeout=300)
    assert status["state"] == "succeeded", jobs.log_tail(job_id)
    assert not (jobs.job_dir(job_id) / TABLE_FILE).exists()  # the table does not outlive its job

    at.run()
    assert not at.exception, at.exception
    assert any("Registered **diabetes_risk:" in s.value and "not in use" in s.value for s in at.success)
    families = next(d.value for d in at.dataframe if "family" in d.value.columns)
    assert set(families["family"]) == {"logistic", "spline_logistic", "gradient_boosting"}
    assert any("Model card" in m.value for m in at.markdown)
    new = registry.resolve(status["model"])
    assert registry.active_version("diabetes_risk").spec == existing.spec != new.spec
    assert new.meta["training"]["data"] == DATA_LABEL
    glucose = next(f for f in new.meta["features"] if f["name"] == "Glucose")
    assert glucose["missing_codes"] == ["0"] and glucose["hard_limits"][0] == 0.0  # the prefilled confirmation


def test_a_job_that_fails_shows_its_reason_and_registers_nothing() -> None:
    table = service.read_table(DIABETES_CSV.read_bytes())
    table = [row + [row[-1] if i else "Copy"] for i, row in enumerate(table)]  # the outcome in disguise
    report = service.data_report(table, "Outcome", ["1"])
    rows = service.review_rows(report)
    assert next(r for r in rows if r["column"] == "Copy")["use"] is False  # left out unless kept
    kept = [dict(r, use=True) for r in rows]  # the researcher kept it anyway
    job_id = service.start_job(table, report, ["1"], kept, "leaky_model", folds=2)
    assert jobs.wait(job_id, timeout=120)["state"] == "failed"

    at = open_with(table)
    at.session_state["risk_job"] = job_id
    at.run()
    assert any("alone separates the outcomes" in e.value and "'Copy'" in e.value for e in at.error)
    assert registry.list_versions("leaky_model") == []
    assert not (jobs.job_dir(job_id) / TABLE_FILE).exists()


def test_an_oversized_upload_is_refused_before_it_is_read() -> None:
    from core.errors import InvalidPatientDataError

    with pytest.raises(InvalidPatientDataError, match="up to 64 MB"):
        service.check_upload_size(service.MAX_CSV_BYTES + 1)
    text = io.StringIO()
    csv.writer(text).writerows([["a", "b"]])
    with pytest.raises(InvalidPatientDataError, match="no rows"):
        service.read_table(text.getvalue().encode())


def test_the_page_with_its_report_reads_in_chinese() -> None:
    from tests.pages.test_page_languages import ENGLISH_RUN, shown_text

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["language"] = "zh_CN"
    at.session_state["risk_table"] = service.read_table(DIABETES_CSV.read_bytes())
    at.run()
    at.switch_page("pages/risk_training.py").run()
    at.selectbox(key="risk_target").set_value("Outcome").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "基于数据表的风险模型" and "3. 数据报告" in [s.value for s in at.subheader]
    report = at.dataframe[0].value
    assert "类型" in report.columns and "数值" in set(report["类型"])
    leftovers = [m.group(0) for text in shown_text(at) for m in ENGLISH_RUN.finditer(text)]
    notes = " ".join(str(v) for v in report.iloc[:, 4])
    leftovers += [m.group(0) for m in ENGLISH_RUN.finditer(notes)]
    assert not leftovers, leftovers


def test_a_job_started_in_chinese_reports_its_failure_in_chinese() -> None:
    """The page's language reaches the train-risk process: a Chinese reader is told why in Chinese."""
    from core import i18n

    table = service.read_table(DIABETES_CSV.read_bytes())
    table = [row + [row[-1] if i else "Copy"] for i, row in enumerate(table)]  # the outcome in disguise
    report = service.data_report(table, "Outcome", ["1"])
    kept = [dict(r, use=True) for r in service.review_rows(report)]
    with i18n.using("zh_CN"):
        job_id = service.start_job(table, report, ["1"], kept, "leaky_zh", folds=2)
    status = jobs.wait(job_id, timeout=120)
    assert status["state"] == "failed"
    assert "“Copy”" in status["error"] and "信息泄漏" in status["error"], status["error"]
    assert "separates" not in status["error"]
    assert registry.list_versions("leaky_zh") == []


def test_an_administrator_activates_a_risk_version_here_through_the_gate() -> None:
    """The page lists registered risk models with the same gate and override as image models."""
    import shutil

    from core.access import audit as audit_log

    bundled = registry.resolve("diabetes_risk")
    staging = registry.new_staging_dir()
    shutil.copytree(bundled.path, staging, dirs_exist_ok=True)
    candidate = registry.commit_version(staging, "diabetes_risk")  # registered, not active
    assert registry.resolve("diabetes_risk").version == bundled.version
    at = open_with(service.read_table(BREAST.read_bytes()))
    assert "Registered risk models" in [s.value for s in at.subheader]
    at.selectbox(key="registry_model").set_value("diabetes_risk").run()
    at.selectbox(key="registry_version_diabetes_risk").set_value(candidate.version).run()
    assert any("No evaluation set is locked" in w.value for w in at.warning)
    assert at.button(key="registry_activate").disabled  # an override needs a reason and its own confirmation
    at.text_input(key=f"registry_override_reason_diabetes_risk_{candidate.version}").input(
        "site pilot, reviewed card with the lead").run()
    assert at.button(key="registry_activate").disabled
    at.checkbox(key=f"registry_confirm_override_diabetes_risk_{candidate.version}").check().run()
    at.button(key="registry_activate").click().run()
    assert not at.exception, at.exception
    assert registry.resolve("diabetes_risk").version == candidate.version
    assert ("activate", "override") in [(r.action, r.outcome) for r in audit_log.records()]
    assert "chest_xray" not in at.selectbox(key="registry_model").options  # image models live on Retrain
