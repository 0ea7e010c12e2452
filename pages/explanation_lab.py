"""The explanation lab (researchers): how far to trust each explanation method of a model, measured on labeled films.

"Measure" starts a background job (``python -m core explain-eval`` in its own process) and returns; the page
follows the lab's jobs from their folders, so a reload or a second tab sees the same run, and draws a
finished job's table, charts, disagreement films and CSV from its result.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.charts import explanations as explanation_charts
from core.errors import LucidDxError
from core.i18n import _
from core.services import catalog, explanations, jobs, table_export
from ui import jobs_panel
from ui.auth import require_page
from ui.language import apply_language

JOB_KEY = "lab_job"
JOB_PARAM = "lab_job"


def state_name(state: str) -> str:
    names = {
        "queued": _("queued"),
        "running": _("running"),
        "succeeded": _("succeeded"),
        "failed": _("failed"),
        "cancelled": _("cancelled"),
        "damaged": _("damaged"),
    }
    return names.get(state, state)


def pick_version() -> str | None:
    models = catalog.models_by_name(catalog.IMAGE_CLASSIFIER)
    if not models:
        st.info(_("No image model is registered yet."))
        return None
    c1, c2 = st.columns(2)
    name = c1.selectbox(_("Model"), list(models), key="lab_model")
    active = catalog.active_version(name).version
    versions = [r.version for r in models[name]]
    labels = {v: _("{version} (active)").format(version=v) if v == active else v for v in versions}
    version = c2.selectbox(
        _("Version"), versions, index=versions.index(active), key=f"lab_version_{name}", format_func=labels.__getitem__
    )
    return f"{name}:{version}"


def start(spec: str) -> None:
    """The measuring form: where the films are, which methods; "Measure" starts a job and returns at once."""
    st.caption(
        _(
            "One subfolder per class, named like the model's classes, with films this model did not train on: "
            "figures measured on training films say nothing general."
        )
    )
    sources = {"server": _("Folder on the server"), "upload": _("Upload a zip")}
    source = st.radio(
        _("Where are the labeled films?"), list(sources), format_func=sources.get, horizontal=True, key="lab_source"
    )
    methods = st.multiselect(
        _("Methods"),
        list(explanations.METHODS),
        default=["gradcam", "gradcam++", "scorecam", "smoothgrad"],
        format_func=explanations.METHODS.get,
        key="lab_methods",
    )
    c1, c2 = st.columns(2)
    limit = c1.number_input(_("Films (an equal share per class)"), 2, 500, 20, key="lab_limit")
    road = c2.multiselect(
        _("ROAD: pixels removed (%)"),
        [10, 20, 30, 40, 50, 60, 70, 80, 90],
        default=[10, 30, 50, 70, 90],
        key="lab_road",
        help=_(
            "ROAD (remove and debias, Rong et al. 2022) removes pixels by noisy linear imputation; each "
            "percentage costs one sparse solve per film and method. None: no ROAD."
        ),
    )
    try:
        job_id = None
        if source == "upload":
            upload = st.file_uploader(_("Zip of the labeled films"), type=["zip"], key="lab_zip")
            if upload is not None and st.button(_("Measure"), type="primary", key="lab_run_zip", disabled=not methods):
                job_id = explanations.start_job(
                    USER, spec, methods, int(limit), upload=(upload.getvalue(), upload.name), road=road
                )
        else:
            path = st.text_input(_("Folder (or .zip) on the server"), key="lab_path", placeholder="/data/validation")
            if st.button(_("Measure"), type="primary", key="lab_run_path", disabled=not (path.strip() and methods)):
                job_id = explanations.start_job(USER, spec, methods, int(limit), server_path=path.strip(), road=road)
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")
        return
    if job_id is not None:
        st.session_state[JOB_KEY] = job_id
        st.query_params[JOB_PARAM] = job_id
        st.rerun()


def describe(request: dict[str, Any]) -> str:
    methods = ", ".join(explanations.METHODS.get(m, m) for m in request.get("methods", []))
    data = request.get("upload_name") or request.get("data") or ""
    return _("**{model}** · {methods} · up to {limit} films from `{data}`").format(
        model=request.get("model"), methods=methods, limit=request.get("limit"), data=data
    )


def draw_running(progress: jobs.JobProgress) -> None:
    """A running job: its bar (film by film), ETA and a cancel button."""
    st.markdown(describe(progress.request))
    if progress.phase == "training" and progress.steps:
        text = _("Measuring film {done} of {total} · about {eta} left").format(
            done=progress.step,
            total=progress.steps,
            eta=jobs_panel.duration(progress.eta_seconds) if progress.step else "…",
        )
    elif progress.phase == "loading":
        text = _("Reading the films…")
    else:
        text = _("Starting (loading TensorFlow)…")
    st.progress(progress.fraction, text=text)
    if progress.cancel_requested:
        st.info(_("Cancelling… the job stops after the film it is measuring."), icon=":material/cancel:")
    else:
        st.button(_("Cancel"), key=f"lab_cancel_{progress.job_id}", on_click=jobs.cancel, args=(progress.job_id,))


def draw_ended(progress: jobs.JobProgress) -> None:
    """A job that ended: its result (table, charts, films, CSV), or why it has none."""
    st.markdown(describe(progress.request))
    if progress.state == "succeeded":
        result = explanations.job_result(progress.job_id)
        if result is not None:
            show(result)
            return
        st.error(_("The job finished but its result cannot be read; see the log."), icon=":material/error:")
    elif progress.state == "cancelled":
        st.warning(progress.error or _("Cancelled."), icon=":material/cancel:")
    else:
        st.error(progress.error or _("The job failed; see the log."), icon=":material/error:")
    jobs_panel.show_log(progress)


@st.fragment(run_every=2.0)
def live_job(job_id: str) -> None:
    """Redrawn every 2 s from the job folder, so any number of viewers follow the same job."""
    progress = jobs.follow(job_id)
    if progress.active:
        draw_running(progress)
    else:
        st.rerun()  # the whole page: the job list and the result


def show_jobs() -> None:
    st.subheader(_("Measurements"))
    listed = explanations.list_jobs()
    if not listed:
        st.info(_("Nothing measured yet. A measurement keeps running when this tab is closed; come back to it."))
        return
    job_id = jobs_panel.pick_and_show(
        listed, JOB_KEY, state_name, live_job, draw_ended, wanted=st.query_params.get(JOB_PARAM)
    )
    st.query_params[JOB_PARAM] = job_id  # a reload or a shared link reopens this measurement


def table_rows(result: dict) -> list[dict]:
    metrics = [
        ("deletion_auc", _("Deletion AUC")),
        ("random_deletion_auc", _("Deletion AUC, random order")),
        ("insertion_auc", _("Insertion AUC")),
        ("random_insertion_auc", _("Insertion AUC, random order")),
        ("randomization_rank_corr", _("Randomisation r")),
        ("stability_rank_corr", _("Stability r")),
        ("seconds_per_film", _("Seconds per film")),
    ]
    if result.get("road"):
        metrics += [
            ("road_morf_auc", _("ROAD MoRF")),
            ("road_lerf_auc", _("ROAD LeRF")),
            ("road_random_auc", _("ROAD, random order")),
            ("road_gap", _("ROAD LeRF - MoRF")),
            ("road_seconds_per_film", _("ROAD seconds per film")),
        ]
    rows = []
    for method, s in result["methods"].items():
        ci = s["intervals"]
        row = {_("Method"): explanations.METHODS.get(method, method)}
        for key, label in metrics:
            low, high = ci.get(key) or [None, None]
            row[label] = round(s[key], 3)
            if low is not None and "seconds" not in key:
                row[label + " " + _("(95% CI)")] = f"{low:.3f}-{high:.3f}"
        rows.append(row)
    return rows


def show(result: dict) -> None:
    st.markdown("#### " + _("{model} on {n} films").format(model=result["model"], n=result["n"]))
    st.caption(
        _(
            "Deletion: the model's probability of its decision as the most salient pixels are replaced by a "
            "blurred copy (lower area is more faithful); insertion: as they are revealed (higher). A map must beat "
            "the random pixel order beside it. Randomisation r: rank correlation with the map of the model with its "
            "top layers re-initialised (low means the map depends on what the model learned)."
        )
    )
    if result.get("road"):
        st.caption(
            _(
                "ROAD: pixels removed by noisy linear imputation, which leaves no outline for the model to read; "
                "MoRF removes the most relevant first (lower is more faithful), LeRF the least relevant first "
                "(higher). A random order removes scattered pixels, which the imputation restores well: compare "
                "MoRF with LeRF."
            )
        )
    rows = table_rows(result)
    st.dataframe(rows, hide_index=True, use_container_width=True)
    st.plotly_chart(explanation_charts.comparison_figure(result, explanations.METHODS), use_container_width=True)
    if result.get("road"):
        st.plotly_chart(explanation_charts.road_figure(result, explanations.METHODS), use_container_width=True)
    if result.get("disagreement"):
        st.markdown("##### " + _("Films where the methods disagree most"))
        st.dataframe(
            [
                {
                    _("Film"): r["file"],
                    _("Label"): r["label"],
                    _("Decision"): r["class"],
                    _("Mean rank correlation between methods"): round(r["mean_pairwise_rank_corr"], 3),
                }
                for r in result["disagreement"][:5]
            ],
            hide_index=True,
            use_container_width=True,
        )
    st.download_button(
        _("Download the table (CSV)"),
        table_export.to_csv(rows),
        file_name="explanation_lab.csv",
        mime="text/csv",
        icon=":material/download:",
        key="lab_csv",
    )


apply_language()
USER = require_page("evaluate")
st.title(_("Explanation lab"))
st.caption(
    _(
        "How far can each explanation of a model be trusted? Measure faithfulness against a random baseline and "
        "the model-randomisation sanity check on labeled films, and compare the methods."
    )
)
SPEC = pick_version()
if SPEC:
    start(SPEC)
show_jobs()
