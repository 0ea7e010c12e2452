"""Pick one of the background training jobs and show it: live while it runs, its outcome once it ended.

Shared by the Retrain page (image jobs), the risk-training page (risk jobs) and the explanation lab.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.errors import LucidDxError
from core.i18n import _
from core.services import jobs


def duration(seconds: float | None) -> str:
    """A job's elapsed or remaining time as a person says it ("4 min 05 s", "40 s"; "…" while unknown)."""
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return (
        _("{minutes} min {seconds:02d} s").format(minutes=minutes, seconds=secs)
        if minutes
        else _("{seconds} s").format(seconds=secs)
    )


def show_log(progress: jobs.JobProgress) -> None:
    """The job's last log lines, folded away unless the job failed."""
    with st.expander(_("Log"), expanded=progress.state == "failed"):
        st.code(jobs.log_tail(progress.job_id, 60) or _("(empty)"), language=None)


def pick_and_show(
    listed: list[dict[str, Any]],
    key: str,
    state_name: Callable[[str], str],
    live: Callable[[str], None],
    ended: Callable[[jobs.JobProgress], None],
    wanted: str | None = None,
) -> str:
    """A job picker over ``listed`` (newest first) and the chosen job's panel; returns the chosen id."""
    ids = [j["id"] for j in listed]
    # Labels made now, in this run's language (a format_func translating later may run in another context).
    labels = {j["id"]: f"{j['id']} · {_subject(j.get('request', {}))} · {state_name(j['state'])}" for j in listed}
    if st.session_state.get(key) not in ids:
        st.session_state[key] = wanted if wanted in ids else ids[0]
    job_id = st.selectbox(_("Job"), ids, key=key, format_func=labels.__getitem__)
    state = next(j["state"] for j in listed if j["id"] == job_id)
    try:
        if state in jobs.ACTIVE_STATES:
            live(job_id)
        else:
            ended(jobs.follow(job_id))
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")
    return job_id


def _subject(request: dict[str, Any]) -> str:
    """What a job is about: the model it trains (its name) or the model version it measures."""
    return str(request.get("name") or request.get("model") or "")
