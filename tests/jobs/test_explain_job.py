"""Explanation-lab jobs: who may start one, which films it may read, an uploaded zip that does not outlive it,
a cancel that stops it between films, and the job lists kept apart from training jobs."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from core.access import audit as audit_log
from core.errors import InvalidDatasetError, PermissionDeniedError
from core.jobs import runner
from core.jobs.explain import UPLOAD_FILE
from core.services import explanations, jobs
from core.services.audit import Actor
from tests.conftest import CHEST_XRAY_TRAIN

pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def films_zip(per_class: int = 1) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("NORMAL", "PNEUMONIA"):
            for film in sorted((CHEST_XRAY_TRAIN / label).glob("*.jpeg"))[:per_class]:
                archive.write(film, f"films/{label}/{film.name}")
    return buffer.getvalue()


def test_a_path_outside_the_data_roots_or_a_link_leading_out_is_refused_and_no_job_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "roots", tmp_path / "elsewhere"
    (outside / "NORMAL").mkdir(parents=True)
    root.mkdir()
    os.symlink(outside, root / "innocent_looking")  # inside the root by name, outside once resolved
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(root))
    researcher = Actor("ana", "researcher")
    for path in (outside, root / "innocent_looking", root / ".." / "elsewhere"):
        with pytest.raises(InvalidDatasetError, match="outside the folders this server may read datasets from"):
            explanations.start_job(researcher, "chest_xray", ["gradcam"], 4, server_path=str(path))
    with pytest.raises(InvalidDatasetError, match="not a zip archive"):
        explanations.start_job(researcher, "chest_xray", ["gradcam"], 4, upload=(b"not a zip", "films.zip"))
    monkeypatch.delenv("LUCIDDX_DATA_ROOTS")
    with pytest.raises(InvalidDatasetError, match="switched off"):
        explanations.start_job(researcher, "chest_xray", ["gradcam"], 4, server_path=str(root))
    with pytest.raises(PermissionDeniedError):  # clinicians read explanations; measuring them is research
        explanations.start_job(
            Actor("dr.lee", "clinician"), "chest_xray", ["gradcam"], 4, upload=(films_zip(), "f.zip")
        )
    assert runner.list_jobs() == []
    outcomes = [(r.user, r.action, r.outcome) for r in audit_log.records(action="evaluate")]
    assert outcomes == [("ana", "evaluate", "bad-input")] * 5 + [("dr.lee", "evaluate", "denied")]


def test_an_uploaded_zip_job_is_cancelled_at_its_next_event_and_its_zip_is_deleted(tmp_path: Path) -> None:
    job_id = explanations.start_job(
        Actor("ana", "researcher"), "chest_xray", ["gradcam"], 4, upload=(films_zip(2), "ward 3.zip"), road=None
    )
    folder = runner.job_dir(job_id)
    assert (folder / UPLOAD_FILE).exists()  # the films travel with the job only
    jobs.cancel(job_id)  # before the first film: the job stops at its first progress event
    status = jobs.wait(job_id, timeout=120)
    assert status["state"] == "cancelled", jobs.log_tail(job_id)
    assert status["error"] == "Measuring was cancelled; no result was kept."
    assert not (folder / UPLOAD_FILE).exists()
    assert explanations.job_result(job_id) is None
    # The lab lists it; the training pages do not.
    assert [j["id"] for j in explanations.list_jobs()] == [job_id]
    assert jobs.list_jobs("image") == [] and jobs.list_jobs("risk") == []
    request = status["request"]
    assert request["upload_name"] == "ward 3.zip" and request["data"] is None and request["road"] == []
    assert [(r.action, r.outcome, r.model) for r in audit_log.records(action="evaluate")][0][:2] == ("evaluate", "ok")
