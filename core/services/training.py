"""Training verbs every front end shares: start a background training job, let go of an extracted dataset."""

from __future__ import annotations

from pathlib import Path

from core.imaging import intake
from core.jobs import runner


def release_dataset(folder: str | Path) -> bool:
    """Delete a dataset LucidDx extracted from a zip once no queued or running job trains on it.

    Returns True if it was deleted. A user's own server folder is never touched.
    """
    folder = Path(folder)
    if not intake.is_managed_dataset(folder):
        return False
    in_use = any(
        job["state"] in runner.ACTIVE_STATES and Path(job.get("request", {}).get("data", "")).resolve() == folder.resolve()
        for job in runner.list_jobs()
    )
    if in_use:
        return False
    intake.remove_dataset(folder)
    return True
