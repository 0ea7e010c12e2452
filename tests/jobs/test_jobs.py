"""Background training jobs on the Ray engine: progress from their files, cancel through Ray, a lost worker
reported as failed, a job that outlives whoever started it, nothing half-written."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import config
from core.services import imaging as diagnosis
from core.jobs import runner as jobs
from core.services import training as training_service
from core.models import registry
from core.errors import LucidDxError, RegistryError
from tests.imaging.test_training import real_subset, staged_builds

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("jobs") / "films", per_class=10, seed=2)


pytestmark = pytest.mark.usefixtures("no_stray_jobs")


def wait_for_event(job_id: str, kind: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e["event"] == kind for e in jobs.read_events(job_id)):
            return
        assert jobs.refresh(job_id)["state"] in jobs.ACTIVE_STATES, jobs.log_tail(job_id)
        time.sleep(0.3)
    pytest.fail(f"no '{kind}' event within {timeout} s:\n{jobs.log_tail(job_id)}")


def test_a_job_trains_in_its_own_process_and_any_viewer_sees_its_progress(tiny_set: Path) -> None:
    job_id = jobs.start_job(jobs.JobRequest(data=str(tiny_set), name="job_model", epochs=2, image_size=32, batch_size=4),
                            started_by=("rita.r", "researcher"))
    status = json.loads((config.jobs_dir() / job_id / jobs.STATUS_FILE).read_text())
    assert status["state"] == "running" and status["engine"]["actor"] == f"luciddx-job-{job_id}"
    assert status["engine"]["pid"] != os.getpid() and status["engine"]["gpus"] == 0  # no GPU on this machine
    import ray

    # It runs on a node of the engine, as a detached actor: the cluster owns it, not this process.
    assert status["engine"]["node_id"] in {n["NodeID"] for n in ray.nodes() if n["Alive"]}

    final = jobs.wait(job_id, timeout=240)

    assert final["state"] == "succeeded", jobs.log_tail(job_id)
    assert final["model"] == "job_model:1"
    from core.access import audit as audit_log

    deadline = time.monotonic() + 60  # the command records itself as it exits, just after its result is written
    while not audit_log.records(action="train") and time.monotonic() < deadline:
        time.sleep(0.2)
    trained = audit_log.records(action="train")  # the job's own record names who started it, not the OS user
    assert [(r.user, r.role, r.outcome) for r in trained] == [("rita.r", "researcher", "ok")]
    assert [r.spec for r in registry.list_versions("job_model")] == ["job_model:1"]
    progress = jobs.read_progress(job_id)
    assert progress.state == "succeeded" and progress.fraction == 1.0 and not progress.active
    assert progress.device == "CPU" and progress.epochs == 2
    assert [e["epoch"] for e in progress.epoch_events] == list(range(1, progress.result["epochs"] + 1))
    assert progress.images_per_second and progress.images_per_second > 0
    assert progress.result["validation"]["auc"] is not None
    assert "training on CPU" in jobs.log_tail(job_id)
    assert json.loads((config.jobs_dir() / job_id / jobs.RESULT_FILE).read_text())["model"] == "job_model:1"
    assert [j["id"] for j in jobs.list_jobs()] == [job_id]

    # The Retrain page shows the finished job from its files; the new version is usable at once.
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["job"] = job_id
    at.run()
    at.switch_page("pages/retrain.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="job_pick").value == job_id
    assert any("Registered **job_model:1**" in s.value for s in at.success)
    assert len(at.get("plotly_chart")) == 1  # loss and validation AUC curves
    assert {m.label: m.value for m in at.metric}["Device"] == "CPU"
    assert "job_model:1" in diagnosis.model_choices()[0]  # the Image diagnosis page's model picker


def test_cancelling_a_running_job_registers_nothing(tiny_set: Path) -> None:
    before = {name: [r.spec for r in refs] for name, refs in registry.list_models().items()}
    job_id = jobs.start_job(jobs.JobRequest(data=str(tiny_set), name="cancel_me", epochs=500, image_size=32, batch_size=4))
    wait_for_event(job_id, "epoch")

    jobs.cancel(job_id)
    final = jobs.wait(job_id, timeout=60)

    assert final["state"] == "cancelled", jobs.log_tail(job_id)
    assert jobs.read_events(job_id)[-1]["event"] == "cancelled"  # the process itself stopped cleanly
    assert jobs.read_progress(job_id).cancel_requested
    after = {name: [r.spec for r in refs] for name, refs in registry.list_models().items()}
    assert after == before and registry.list_versions("cancel_me") == []
    assert staged_builds() == []


def test_a_job_that_ignores_cancel_is_killed_through_ray(tiny_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.engine import jobs as engine_jobs

    monkeypatch.setattr(jobs, "CANCEL_GRACE_SECONDS", 0.0)
    job_id = jobs.start_job(jobs.JobRequest(data=str(tiny_set), name="stubborn", epochs=500, image_size=32, batch_size=4))
    jobs.cancel(job_id)  # still importing TensorFlow: the cancel file is not read yet, so Ray kills it
    final = jobs.wait(job_id, timeout=60)
    assert final["state"] == "cancelled" and final.get("killed")
    assert not engine_jobs.alive(job_id)
    assert registry.list_versions("stubborn") == []


def test_a_job_whose_worker_process_dies_is_reported_failed_and_registers_nothing(tiny_set: Path) -> None:
    job_id = jobs.start_job(jobs.JobRequest(data=str(tiny_set), name="killed", epochs=500, image_size=32, batch_size=4))
    wait_for_event(job_id, "started")
    os.kill(jobs.refresh(job_id)["engine"]["pid"], signal.SIGKILL)  # the machine's OOM killer, say

    status = jobs.wait(job_id, timeout=60)  # Ray notices the actor is gone

    assert status["state"] == "failed"
    assert "stopped without finishing" in status["error"] and "nothing was registered" in status["error"]
    assert registry.list_versions("killed") == []
    assert not (config.home_models_dir() / "killed").exists() or not any(
        p.name.isdigit() for p in (config.home_models_dir() / "killed").iterdir())


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"name": "../../etc"}, RegistryError, "not allowed"),
        ({"epochs": 0}, LucidDxError, "epochs must be between"),
        ({"data": "/no/such/folder"}, LucidDxError, "not found"),
    ],
)
def test_bad_requests_are_refused_before_a_process_starts(tiny_set: Path, changes: dict, error: type, match: str) -> None:
    request = jobs.JobRequest(**{"data": str(tiny_set), "name": "ok_name", **changes})
    with pytest.raises(error, match=match):
        jobs.start_job(request)
    assert jobs.list_jobs() == []


def test_an_extracted_dataset_is_released_only_when_no_active_job_uses_it(tmp_path, monkeypatch):
    from core.engine import jobs as engine_jobs
    from core.imaging import intake

    monkeypatch.setattr(engine_jobs, "alive", lambda job_id: job_id == "fake-active")

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for label in ("a", "b"):
            zf.writestr(f"{label}/x.png", b"not really an image")
    extracted = intake.import_upload(archive.getvalue(), "set.zip")
    user_folder = tmp_path / "users_own"
    user_folder.mkdir()

    assert training_service.release_dataset(user_folder) is False and user_folder.exists()  # never a user's folder
    job_dir = config.jobs_dir() / "fake-active"
    job_dir.mkdir(parents=True)
    (job_dir / "status.json").write_text(json.dumps({"id": "fake-active", "state": "running",
                                                     "request": {"data": str(extracted), "name": "x"}}))
    assert training_service.release_dataset(extracted) is False and extracted.exists()
    (job_dir / "status.json").write_text(json.dumps({"id": "fake-active", "state": "succeeded",
                                                     "request": {"data": str(extracted), "name": "x"}}))
    assert training_service.release_dataset(extracted) is True and not extracted.exists()


def test_a_job_with_a_damaged_status_file_is_listed_as_damaged_not_hidden(isolated_home: Path) -> None:
    folder = config.jobs_dir() / "20260101-000000-abcdef"
    folder.mkdir(parents=True)
    (folder / jobs.STATUS_FILE).write_text('{"state": "runn')  # a crash mid-write, or a disk error
    listed = jobs.list_jobs()
    assert [j["id"] for j in listed] == [folder.name] and listed[0]["state"] == jobs.DAMAGED
    assert "status file is damaged" in listed[0]["error"] and str(folder) in listed[0]["error"]
    with pytest.raises(LucidDxError, match="damaged"):
        jobs.read_progress(folder.name)


def test_clean_up_removes_old_leftovers_of_killed_jobs_only(isolated_home: Path) -> None:
    from core.imaging import intake

    staging = registry.new_staging_dir()
    (staging / "model.keras").write_bytes(b"half written")
    extracted = intake.datasets_dir() / "upload-1234"
    (extracted / "NORMAL").mkdir(parents=True)
    fresh = registry.new_staging_dir()
    old = time.time() - 48 * 3600
    for folder in (staging, extracted):
        os.utime(folder, (old, old))
    removed = training_service.clean_up(max_age_hours=24)
    assert set(removed) == {staging, extracted}
    assert not staging.exists() and not extracted.exists() and fresh.exists()  # a young build may be in use


def test_clean_up_waits_while_a_job_is_running(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    staging = registry.new_staging_dir()
    os.utime(staging, (time.time() - 48 * 3600,) * 2)
    monkeypatch.setattr(jobs, "list_jobs", lambda: [{"id": "x", "state": "running"}])
    assert training_service.clean_up(max_age_hours=24) == [] and staging.exists()


def test_a_job_reports_its_failure_in_the_language_of_whoever_started_it(tmp_path: Path) -> None:
    """The language is a per-session choice the child process cannot see: the runner hands it over."""
    from core import i18n

    films = tmp_path / "films"
    (films / "only_one_class").mkdir(parents=True)
    with i18n.using("zh_CN"):
        chinese = jobs.start_job(jobs.JobRequest(data=str(films), name="empty_zh", epochs=1, image_size=32))
    english = jobs.start_job(jobs.JobRequest(data=str(films), name="empty_en", epochs=1, image_size=32))
    said = {job: jobs.wait(job, timeout=240) for job in (chinese, english)}
    assert said[chinese]["state"] == said[english]["state"] == "failed"
    assert "分类器至少需要两个子文件夹" in said[chinese]["error"], said[chinese]["error"]
    assert "needs at least two subfolders" in said[english]["error"] and "分类器" not in said[english]["error"], said[english]["error"]


def test_a_command_acts_for_the_person_who_started_its_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.services import audit

    monkeypatch.delenv(jobs.JOB_ACTOR_ENV, raising=False)
    assert audit.command_actor() == audit.os_actor()  # a person at the shell: the OS user
    monkeypatch.setenv(jobs.JOB_ACTOR_ENV, "rita.r:researcher")
    assert audit.command_actor() == audit.Actor("rita.r", "researcher")
    for forged in ("rita r:researcher", "rita:superuser", ":admin", "rita"):
        monkeypatch.setenv(jobs.JOB_ACTOR_ENV, forged)
        assert audit.command_actor() == audit.os_actor(), forged


def test_a_job_outlives_the_process_that_started_it(tiny_set: Path) -> None:
    """A dashboard that restarts (here: a process that starts the job and exits) leaves the job running."""
    script = (
        "from core.jobs import runner as jobs\n"
        f"print(jobs.start_job(jobs.JobRequest(data={str(tiny_set)!r}, name='orphan', epochs=2, image_size=32, "
        "batch_size=4)))\n"
    )
    started = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert started.returncode == 0, started.stderr
    job_id = started.stdout.strip().splitlines()[-1]

    final = jobs.wait(job_id, timeout=240)  # followed from another process, which knows only the files and Ray

    assert final["state"] == "succeeded", jobs.log_tail(job_id)
    assert [r.spec for r in registry.list_versions("orphan")] == ["orphan:1"]


def test_cancelling_before_the_job_starts_training_cancels_it(tiny_set: Path) -> None:
    job_id = jobs.start_job(jobs.JobRequest(data=str(tiny_set), name="early", epochs=500, image_size=32, batch_size=4))
    jobs.cancel(job_id)  # at once: the job reads the cancel file while loading the films
    final = jobs.wait(job_id, timeout=120)
    assert final["state"] == "cancelled", jobs.log_tail(job_id)
    assert registry.list_versions("early") == []
