"""Background work as every front end sees it: start, follow, cancel, list, read the log.

Pages and the command line reach training jobs only through these verbs; how a job runs (an actor on
the Ray engine, on this machine or a cluster, see ``core.jobs.runner``) stays below this door.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import LucidDxError
from core.jobs import runner
from core.jobs.channel import JobChannel
from core.jobs.progress import ACTIVE_STATES, JobProgress
from core.jobs.runner import JobRequest
from core.services.audit import Who, authorize, record, started_by

__all__ = [
    "ACTIVE_STATES",
    "JobChannel",
    "JobProgress",
    "JobRequest",
    "cancel",
    "follow",
    "is_active",
    "list_jobs",
    "log_tail",
    "start",
    "wait",
]


def start(actor: Who | None, request: Any, inputs: Mapping[str, bytes] | None = None, action: str = "train") -> str:
    """Start ``request`` (a JobRequest or a risk job request) for ``actor``; return its job id.

    Authorized and audited here (``action``: "train", "train-risk" or "evaluate"): a refused request is
    recorded as bad input, a started one with the model name it will register (or measure).

    Raises:
        PermissionDeniedError: ``actor`` may not train.
        LucidDxError: the request is invalid (name, ranges, missing data).
    """
    authorize(actor, action)
    try:
        job_id = runner.start_job(request, inputs, started_by=started_by(actor))  # its own records name this person
    except LucidDxError:
        record(actor, action, outcome="bad-input")
        raise
    record(actor, action, model=getattr(request, "name", None) or getattr(request, "model", None))
    return job_id


def follow(job_id: str) -> JobProgress:
    """The job as a viewer sees it now: state, phase, epochs, curves, result or error."""
    return runner.read_progress(job_id)


def cancel(job_id: str) -> None:
    """Ask a running job to stop; it registers nothing."""
    runner.cancel(job_id)


def list_jobs(kind: str | None = None) -> list[dict[str, Any]]:
    """Every job's status, newest first; ``kind``: only "image" trainings, "risk" trainings or "explain" runs.

    Image training requests carry no kind (they came first); a damaged job's unknown kind lists as "image".
    """
    found = runner.list_jobs()
    if kind is None:
        return found
    return [j for j in found if (j.get("request", {}).get("kind") or "image") == kind]


def is_active(state: str) -> bool:
    return state in ACTIVE_STATES


def log_tail(job_id: str, lines: int = 40) -> str:
    """The last ``lines`` lines of the job's log (no patient data is ever logged)."""
    return runner.log_tail(job_id, lines)


def wait(job_id: str, timeout: float, poll: float = 0.5) -> dict[str, Any]:
    """Block until the job ends or ``timeout`` seconds pass (the command line and tests)."""
    return runner.wait(job_id, timeout, poll)
