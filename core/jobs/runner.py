"""Jobs: ``python -m core train`` (or train-risk, explain-eval) run on the engine, followed through its files.

Each job runs on the Ray engine (``core.engine.jobs``: a detached actor per job, one CPU, one GPU when the
job wants one and the cluster has one), on this machine's own head or on the cluster
``LUCIDDX_RAY_ADDRESS`` names. Ray places it, reports whether it still exists and kills it on cancel.

Job folder ``$LUCIDDX_HOME/jobs/<id>/`` (a shared mount on a cluster)::

    status.json    state (queued/running/succeeded/failed/cancelled), where it runs, request, model, error
    events.jsonl   one JSON event per line, written by the training process (loading, started, step,
                   epoch, then one of finished / failed / cancelled)
    log.txt        the training process's stderr
    result.json    its stdout: the ``--json`` document of ``python -m core train``
    cancel         present once someone asked to cancel

Everything a viewer needs is on disk, so a reloaded page, a second browser or a restarted server sees
the same job. The job belongs to the engine, not to the process that started it, so closing the tab or
restarting the dashboard never stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import config, i18n
from core.engine import jobs as engine_jobs
from core.errors import LucidDxError
from core.i18n import _
from core.jobs.progress import ACTIVE_STATES, JobProgress, follow_events
from core.models import registry

DAMAGED = "damaged"  # a job whose status file cannot be read
TERMINAL_EVENTS = {"finished": "succeeded", "failed": "failed", "cancelled": "cancelled"}
CANCEL_GRACE_SECONDS = 20.0  # the cancel file is read every batch; Ray kills the job only if that did not stop it
STATUS_FILE, EVENTS_FILE, LOG_FILE, RESULT_FILE, CANCEL_FILE = (
    "status.json",
    "events.jsonl",
    "log.txt",
    "result.json",
    "cancel",
)


def channel_args(job_dir: Path) -> list[str]:
    """The flags every job's command takes so that its runner can follow and cancel it."""
    return ["--json", "--progress-file", str(job_dir / EVENTS_FILE), "--cancel-file", str(job_dir / CANCEL_FILE)]


@dataclass
class JobRequest:
    """What to train: ``data`` is a folder or a .zip on the server; the rest maps to ``core train`` flags."""

    data: str
    name: str
    epochs: int | None = None  # None: chosen from the data (core.imaging.recipes), like init_from and image_size
    image_size: int | None = None
    batch_size: int = 32  # TrainConfig's default (core.jobs may not import core.imaging; a test ties them)
    init_from: str | None = None
    """A registered model to start from, "none" for scratch, None to let the recipe choose."""
    max_per_class: int | None = None
    seed: int = 1234
    recipe: str = "auto"
    """``train --recipe``: auto, plateau or snapshots."""
    wants_gpu: bool = True
    """Training uses a GPU where the cluster has one."""
    pretrain_epochs: int = 0
    """``train --pretrain-epochs``: self-supervised epochs on the training films first; 0 = none."""

    def validate(self) -> None:
        from core.models.registry import check_model_name

        check_model_name(self.name)
        for key, low, high in (
            ("epochs", 1, 1000),
            ("image_size", 32, 1024),
            ("batch_size", 1, 1024),
            ("pretrain_epochs", 0, 1000),
        ):
            value = getattr(self, key)
            if value is not None and not low <= value <= high:
                raise LucidDxError(
                    _("{field} must be between {low} and {high}; got {value}.").format(
                        field=key.replace("_", " "), low=low, high=high, value=value
                    )
                )
        if not Path(self.data).exists():
            raise LucidDxError(_("{data}: not found on the server.").format(data=self.data))

    def argv(self, job_dir: Path) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "core",
            "train",
            "--data",
            str(Path(self.data).resolve()),
            "--name",
            self.name,
            "--batch-size",
            str(self.batch_size),
            "--seed",
            str(self.seed),
            *channel_args(job_dir),
        ]
        if self.epochs is not None:
            args += ["--epochs", str(self.epochs)]
        if self.image_size is not None:
            args += ["--image-size", str(self.image_size)]
        if self.recipe != "auto":
            args += ["--recipe", self.recipe]
        if self.init_from:
            args += ["--init-from", self.init_from]
        if self.max_per_class:
            args += ["--max-per-class", str(self.max_per_class)]
        if self.pretrain_epochs:
            args += ["--pretrain-epochs", str(self.pretrain_epochs)]
        return args


def job_dir(job_id: str) -> Path:
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise LucidDxError(_("'{job_id}' is not a job id.").format(job_id=job_id))
    return config.jobs_dir() / job_id


def _read_status(job_id: str) -> dict[str, Any]:
    path = job_dir(job_id) / STATUS_FILE
    if not path.exists():
        raise LucidDxError(
            _("No training job '{job_id}'. It may have been deleted; see the list of jobs.").format(job_id=job_id)
        )
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LucidDxError(
            _(
                "Training job '{job_id}': its status file is damaged ({error_type}), so its state is unknown. "
                "Its log and events are in {parent}; delete that folder to remove it."
            ).format(job_id=job_id, error_type=type(exc).__name__, parent=path.parent)
        ) from exc
    if not isinstance(status, dict) or "state" not in status:
        raise LucidDxError(
            _("Training job '{job_id}': its status file has no state; delete {parent} to remove it.").format(
                job_id=job_id, parent=path.parent
            )
        )
    return status


JOB_ACTOR_ENV = "LUCIDDX_JOB_ACTOR"
"""``name:role`` of the person who started a job: the job's command records its work as theirs."""


def start_job(
    request: Any, inputs: Mapping[str, bytes] | None = None, started_by: tuple[str, str] | None = None
) -> str:
    """Start the command of ``request`` (a JobRequest, or any object with validate/argv) on the engine;
    return the job id. ``inputs`` (file name -> bytes) are written into the job folder first and
    deleted once the job ends (a table with patients must not outlive its job). ``started_by`` (name, role):
    the signed-in person, whom the job's audit records name (not the server's operating-system user).

    Raises:
        LucidDxError: the request is invalid (name, ranges, missing data).
        EngineError: the engine cannot be reached or cannot place the job (the job is recorded as failed).
    """
    request.validate()
    job_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    folder = job_dir(job_id)
    folder.mkdir(parents=True)
    for file_name, content in (inputs or {}).items():
        (folder / Path(file_name).name).write_bytes(content)
    status = {
        "id": job_id,
        "state": "queued",
        "created": time.time(),
        "request": dict(request.__dict__),
        "engine": None,
        "model": None,
        "error": None,
        "inputs": [Path(f).name for f in inputs or {}],
        "started_by": started_by[0] if started_by else None,
    }
    registry.write_json_atomic(folder / STATUS_FILE, status)
    # The job's messages (its failure reason above all) are read by whoever started it: in their language,
    # not the server's (a Streamlit session's choice lives in a context variable the job cannot see).
    env = {"LUCIDDX_HOME": str(config.luciddx_home()), "LUCIDDX_LANG": i18n.language()}
    if started_by is not None:
        env[JOB_ACTOR_ENV] = f"{started_by[0]}:{started_by[1]}"
    argv = request.argv(folder)
    command = argv[3:] if argv[1:3] == ["-m", "core"] else argv  # ``python -m core`` runs inside the engine
    try:
        placed = engine_jobs.submit(
            job_id,
            command,
            str(folder / RESULT_FILE),
            str(folder / LOG_FILE),
            env,
            wants_gpu=bool(getattr(request, "wants_gpu", False)),
        )
    except LucidDxError as exc:
        status.update(state="failed", error=str(exc), finished=time.time())
        registry.write_json_atomic(folder / STATUS_FILE, status)
        remove_inputs(job_id, status)
        raise
    status.update(engine=placed, state="running", started=time.time())
    registry.write_json_atomic(folder / STATUS_FILE, status)
    return job_id


def read_events(job_id: str) -> list[dict[str, Any]]:
    """The job's events in order; a line still being written is ignored."""
    path = job_dir(job_id) / EVENTS_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    return events


def _finish_from_files(job_id: str, status: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The terminal state the job's files prove, or None while it may still be running."""
    for event in reversed(events):
        if event.get("event") in TERMINAL_EVENTS:
            state = TERMINAL_EVENTS[event["event"]]
            return {"state": state, "model": event.get("model"), "error": event.get("error")}
    if engine_jobs.alive(job_id):
        return None
    with contextlib.suppress(OSError, json.JSONDecodeError):
        result = json.loads((job_dir(job_id) / RESULT_FILE).read_text())
        if isinstance(result, dict) and result.get("model"):
            return {"state": "succeeded", "model": result["model"], "error": None}
    if (job_dir(job_id) / CANCEL_FILE).exists():
        return {"state": "cancelled", "model": None, "error": _("Cancelled; nothing was registered.")}
    tail = " ".join(log_tail(job_id, 3).split())[-300:]
    error = _(
        "The job stopped without finishing (its process or its machine was lost, or it was killed); "
        "nothing was registered."
    )
    if tail:
        error = _("{error} Last log lines: {tail}").format(error=error, tail=tail)
    return {"state": "failed", "model": None, "error": error}


def _enforce_cancel(job_id: str, status: dict[str, Any]) -> None:
    """A cancel the job has not honoured within the grace period: Ray kills it."""
    requested = status.get("cancel_requested_at")
    if not requested or status.get("killed") or time.time() - requested < CANCEL_GRACE_SECONDS:
        return
    engine_jobs.cancel(job_id)
    status["killed"] = time.time()
    registry.write_json_atomic(job_dir(job_id) / STATUS_FILE, status)


def refresh(job_id: str) -> dict[str, Any]:
    """status.json brought up to date from the events and the process; written back when it changed."""
    status = _read_status(job_id)
    if status["state"] not in ACTIVE_STATES:
        return status
    final = _finish_from_files(job_id, status, read_events(job_id))
    if final is None:
        _enforce_cancel(job_id, status)
        return status
    status.update(final, finished=time.time())
    registry.write_json_atomic(job_dir(job_id) / STATUS_FILE, status)
    remove_inputs(job_id, status)
    return status


def remove_inputs(job_id: str, status: Mapping[str, Any]) -> None:
    """Delete the files a job was given (an uploaded table) once it has ended."""
    for name in status.get("inputs") or []:
        with contextlib.suppress(OSError):
            (job_dir(job_id) / Path(name).name).unlink(missing_ok=True)


def read_progress(job_id: str) -> JobProgress:
    """Everything a progress panel shows, rebuilt from the job folder (any viewer, any time)."""
    status = refresh(job_id)
    events = read_events(job_id)
    progress = JobProgress(
        job_id=job_id,
        state=status["state"],
        request=status.get("request", {}),
        created=status.get("created", 0.0),
        model=status.get("model"),
        error=status.get("error"),
        cancel_requested=bool(status.get("cancel_requested_at")),
        epochs=int(status.get("request", {}).get("epochs") or 0),
    )
    follow_events(progress, events)
    if progress.state == "succeeded":
        progress.phase, progress.eta_seconds = "done", 0.0
    elif not progress.active:
        progress.phase = progress.state
    return progress


def list_jobs() -> list[dict[str, Any]]:
    """Every job's status, newest first (active ones refreshed)."""
    root = config.jobs_dir()
    if not root.is_dir():
        return []
    jobs = []
    for folder in sorted(root.iterdir(), reverse=True):
        if (folder / STATUS_FILE).exists():
            try:
                jobs.append(refresh(folder.name))
            except LucidDxError as exc:  # shown as damaged, never hidden: its files still take space and may matter
                jobs.append({"id": folder.name, "state": DAMAGED, "error": str(exc), "request": {}})
    return jobs


def cancel(job_id: str) -> None:
    """Ask a job to stop: it reads the cancel file every batch and stops cleanly; Ray kills it if it does
    not within CANCEL_GRACE_SECONDS (see refresh)."""
    status = refresh(job_id)
    if status["state"] not in ACTIVE_STATES:
        return
    (job_dir(job_id) / CANCEL_FILE).touch()
    status.setdefault("cancel_requested_at", time.time())
    registry.write_json_atomic(job_dir(job_id) / STATUS_FILE, status)
    _enforce_cancel(job_id, status)


def wait(job_id: str, timeout: float, poll: float = 0.5) -> dict[str, Any]:
    """Block until the job ends or ``timeout`` seconds pass; return its status (for the CLI and tests)."""
    deadline = time.monotonic() + timeout
    status = refresh(job_id)
    while status["state"] in ACTIVE_STATES and time.monotonic() < deadline:
        time.sleep(poll)
        status = refresh(job_id)
    return status


def log_tail(job_id: str, lines: int = 40) -> str:
    """The last ``lines`` lines of the job's stderr log."""
    path = job_dir(job_id) / LOG_FILE
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(handle.tell() - 64 * 1024, 0))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])
