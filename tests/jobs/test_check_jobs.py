"""Site validation and locking an evaluation set run as engine jobs (issue 23 item 3): the job's answer is the
in-process one, it acts for the person who asked (audit, "locked by"), a refused person starts nothing, and a
lock that fails leaves no stored upload behind."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.access import audit as audit_log
from core.errors import EvalSetError, PermissionDeniedError
from core.jobs import runner
from core.services import eval_sets, jobs, validation
from core.services.audit import Actor
from tests.conftest import CHEST_XRAY_TRAIN, DIABETES_CSV

pytestmark = pytest.mark.usefixtures("no_stray_jobs")
ADMIN, CLINICIAN = Actor("ada", "admin"), Actor("dr.lee", "clinician")


def labeled_films(folder: Path, per_class: int = 4) -> Path:
    for label in ("NORMAL", "PNEUMONIA"):
        (folder / label).mkdir(parents=True)
        for film in sorted((CHEST_XRAY_TRAIN / label).glob("*.jpeg"))[-per_class:]:
            shutil.copy(film, folder / label / film.name)
    return folder


def pima_table(rows: int = 40, one_outcome: bool = False) -> bytes:
    """Real Pima rows; an unmeasured 0 left blank, as the form and the model take it."""
    unmeasured = {"Glucose", "BloodPressure", "SkinThickness", "Insulin", "BMI"}
    with DIABETES_CSV.open(newline="") as handle:
        reader = csv.DictReader(handle)
        found = [r for r in reader if not one_outcome or r["Outcome"] == "0"][:rows]
        names = reader.fieldnames or []
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names)
    writer.writeheader()
    for row in found:
        writer.writerow({k: ("" if k in unmeasured and v == "0" else v) for k, v in row.items()})
    return out.getvalue().encode()


def test_a_validation_job_measures_what_the_asking_process_would(tmp_path: Path) -> None:
    films = labeled_films(tmp_path / "site")
    job_id = validation.start_site_validation(ADMIN, films, "chest_xray:2", 0.9)
    assert validation.site_evaluation_of(job_id) is None or jobs.follow(job_id).state == "succeeded"
    done = jobs.wait(job_id, timeout=300)
    assert done["state"] == "succeeded", jobs.log_tail(job_id)
    remote = validation.site_evaluation_of(job_id)
    local = validation.evaluate_site_films(ADMIN, films, "chest_xray:2", 0.9)
    assert remote is not None and remote.spec == local.spec == "chest_xray:2"
    np.testing.assert_array_equal(remote.labels, local.labels)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=1e-6)
    assert remote.result["auc"] == pytest.approx(local.result["auc"])
    assert [r["threshold"] for r in remote.result["thresholds"]] == pytest.approx(
        [r["threshold"] for r in local.result["thresholds"]]
    )
    # The page records it from the job's answer, as from an in-process one.
    recorded = validation.record_site_validation(ADMIN, remote, "8 films of a test site")
    assert recorded
    assert any(r.action == "validate" and r.user == "ada" for r in audit_log.records())


def test_a_lock_job_locks_the_set_for_the_administrator_who_asked() -> None:
    job_id = eval_sets.start_lock(ADMIN, "diabetes_risk", upload=(pima_table(), "ward 3 outcomes.csv"))
    done = jobs.wait(job_id, timeout=300)
    assert done["state"] == "succeeded", jobs.log_tail(job_id)
    locked = eval_sets.show("diabetes_risk")
    assert locked is not None and locked["n"] == 40 and locked["locked_by"] == "ada"
    assert eval_sets.lock_result(job_id)["fingerprint"] == locked["fingerprint"]
    assert any(
        r.action == "eval-set" and r.user == "ada" and r.input_sha256 == locked["fingerprint"]
        for r in audit_log.records()
    )


def test_a_clinician_or_a_bad_upload_starts_nothing_and_stores_nothing() -> None:
    from core.models import eval_sets as store

    with pytest.raises(PermissionDeniedError):
        eval_sets.start_lock(CLINICIAN, "diabetes_risk", upload=(pima_table(), "t.csv"))
    with pytest.raises(PermissionDeniedError):
        validation.start_site_validation(CLINICIAN, CHEST_XRAY_TRAIN, "chest_xray:2", 0.9)
    with pytest.raises(EvalSetError, match="notes.txt"):
        eval_sets.start_lock(ADMIN, "diabetes_risk", upload=(b"hello", "notes.txt"))
    assert runner.list_jobs() == []
    assert not (store.sets_dir() / "uploads").exists() or not any((store.sets_dir() / "uploads").iterdir())


def test_a_lock_job_that_fails_says_why_and_removes_its_stored_upload() -> None:
    from core.models import eval_sets as store

    job_id = eval_sets.start_lock(ADMIN, "diabetes_risk", upload=(pima_table(one_outcome=True), "negatives.csv"))
    done = jobs.wait(job_id, timeout=300)
    assert done["state"] == "failed"
    assert "both outcomes" in (jobs.follow(job_id).error or "")
    assert eval_sets.show("diabetes_risk") is None
    assert not any((store.sets_dir() / "uploads").iterdir())
