"""Retrain: bring a labeled dataset, read its report, train in the background, manage model versions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from core.imaging import intake
from core.jobs import runner as jobs
from core.services import training as training_service
from core.models import kinds, registry
from core.charts import training as training_charts
from core.errors import LucidDxError
from ui.card_panel import model_card_panel

JOB_PARAM = "job"
IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256, 320, 384]
TRANSFER_MODEL = "chest_xray"
START_CHOICES = {"transfer": "The bundled chest X-ray model's weights (transfer)", "scratch": "Scratch (random weights)"}
# Material icons are drawn by Streamlit's own font: they show on machines without an emoji font.
STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/progress_activity:", "succeeded": ":material/check_circle:",
               "failed": ":material/error:", "cancelled": ":material/cancel:", "damaged": ":material/warning:"}


def suggested_name(label: str) -> str:
    """A registry-safe model name from a folder or archive name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(label).stem).strip("._-")
    return (stem or "my_model")[:64]


def check_dataset(folder: Path, label: str) -> None:
    """Read every file once (with a progress bar) and keep the report in the session."""
    bar = st.progress(0.0, text="Reading the dataset…")
    report = intake.dataset_report(folder, progress=lambda done, total: bar.progress(done / total, text=f"Reading {done}/{total} files"))
    bar.empty()
    previous = st.session_state.get("dataset_folder")
    if previous and previous != str(folder):
        training_service.release_dataset(previous)  # each "Check dataset" of a zip extracts anew: drop the old copy
    st.session_state.update(dataset_folder=str(folder), dataset_label=label, dataset_report=report,
                            train_name=suggested_name(label))


def choose_dataset() -> None:
    st.subheader("1. Dataset")
    st.caption("One subfolder per class (a single wrapping folder is fine); PNG, JPEG, BMP, TIFF or DICOM. "
               "Unreadable files are listed and skipped.")
    source = st.radio("Where is the dataset?", ["Upload a zip", "Folder on the server"], horizontal=True, key="dataset_source")
    try:
        if source == "Upload a zip":
            upload = st.file_uploader("Zip of the dataset folder", type=["zip"], key="dataset_zip")
            if upload is not None and st.button("Check dataset", key="check_upload"):
                check_dataset(intake.import_upload(upload.getvalue(), upload.name), upload.name)
        else:
            path = st.text_input("Folder (or .zip) on the server, for datasets too big to upload", key="dataset_path",
                                 placeholder="/data/knee_mri")
            if st.button("Check dataset", key="check_path", disabled=not path.strip()):
                folder, _extracted = intake.resolve_source(training_service.server_dataset(path.strip()))
                check_dataset(folder, Path(path.strip()).name)
    except LucidDxError as exc:
        st.session_state.pop("dataset_report", None)
        st.error(str(exc), icon=":material/block:")


def show_report(report: intake.DatasetReport) -> None:
    st.subheader("2. Dataset report")
    st.caption(f"`{st.session_state.get('dataset_label', '')}` · {report.n_images} readable images in "
               f"{len(report.classes)} classes")
    for problem in report.problems:
        st.error(problem, icon=":material/block:")
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
    left, right = st.columns(2)
    left.plotly_chart(training_charts.class_counts_bar(report.counts), key="report_counts")
    if report.sizes:
        right.plotly_chart(training_charts.image_size_scatter(report.sizes), key="report_sizes")
    with st.expander(f"Unreadable or ignored files ({len(report.unreadable)})"):
        if report.unreadable:
            st.dataframe(report.unreadable, hide_index=True)
        else:
            st.write("None.")
    with st.expander(f"Exact duplicates ({len(report.duplicates)} groups, {len(report.cross_class_duplicates)} across classes)"):
        rows = [{"files": ", ".join(d["files"]), "classes": ", ".join(d["classes"]), "across classes": d["cross_class"]}
                for d in report.duplicates]
        if rows:
            st.dataframe(rows, hide_index=True)
        else:
            st.write("None.")
    for class_name in report.classes:
        thumbs = report.thumbnails.get(class_name, [])
        st.markdown(f"**{class_name}** · {report.counts.get(class_name, 0)} images")
        if thumbs:
            st.image(thumbs, width=96)


def settings_form(report: intake.DatasetReport) -> None:
    st.subheader("3. Train")
    transfer_available = TRANSFER_MODEL in registry.list_models(kind=kinds.IMAGE_CLASSIFIER)
    with st.form("train_settings"):
        name = st.text_input("Model name (a new version is added if it exists)", key="train_name")
        c1, c2, c3, c4 = st.columns(4)
        epochs = c1.number_input("Epochs (at most)", 1, 300, 30, key="train_epochs",
                                 help="Early stopping on validation AUC usually ends sooner.")
        size = c2.selectbox("Image size (px)", IMAGE_SIZES, index=IMAGE_SIZES.index(192), key="train_size")
        batch = c3.number_input("Batch size", 1, 512, 32, key="train_batch")
        limit = c4.number_input("Images per class (0 = all)", 0, 10_000_000, 0, key="train_limit")
        options = list(START_CHOICES) if transfer_available else ["scratch"]
        start = st.radio("Start from", options, format_func=START_CHOICES.get, key="train_start", horizontal=True)
        submitted = st.form_submit_button("Start training", type="primary", disabled=not report.ok)
    if not report.ok:
        st.caption("Fix the problems in the report to train.")
    if submitted:
        request = jobs.JobRequest(data=st.session_state["dataset_folder"], name=name.strip(), epochs=int(epochs),
                                  image_size=int(size), batch_size=int(batch), max_per_class=int(limit) or None,
                                  init_from=TRANSFER_MODEL if start == "transfer" else None)
        try:
            job_id = jobs.start_job(request)
        except LucidDxError as exc:
            st.error(str(exc), icon=":material/block:")
            return
        st.session_state["job_pick"] = job_id
        st.query_params[JOB_PARAM] = job_id
        st.rerun()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "…"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def draw_job(progress: jobs.JobProgress) -> None:
    """One job's state, progress, curves, cancel button and log, from its files."""
    request: dict[str, Any] = progress.request
    st.markdown(f"{STATE_ICONS.get(progress.state, '')} **{progress.state}** · `{request.get('name')}` from "
                f"`{Path(request.get('data', '')).name}` · {request.get('epochs')} epochs at {request.get('image_size')} px, "
                f"batch {request.get('batch_size')}, start from {request.get('init_from') or 'scratch'}")
    phase_text = {"waiting": "Starting (loading TensorFlow)…", "loading": "Reading images…",
                  "training": "Training…", "evaluating": "Choosing the threshold and writing the model card…"}
    st.progress(progress.fraction, text=phase_text.get(progress.phase, progress.state.capitalize()))
    cols = st.columns(5)
    cols[0].metric("Epoch", f"{progress.epoch} / {progress.epochs}")
    cols[1].metric("Step", f"{progress.step} / {progress.steps}" if progress.steps else "…")
    cols[2].metric("ETA", _duration(progress.eta_seconds) if progress.active else "—")
    cols[3].metric("Device", progress.device or "…")
    cols[4].metric("Images / s", f"{progress.images_per_second:.0f}" if progress.images_per_second else "…",
                   help="Training throughput, averaged over the epochs so far (validation included).")
    if progress.epoch_events:
        st.plotly_chart(training_charts.training_curves(progress.epoch_events), key=f"curves_{progress.job_id}")
    if progress.active:
        if progress.cancel_requested:
            st.info("Cancelling… the job stops at its next batch; nothing will be registered.", icon=":material/cancel:")
        else:
            st.button("Cancel training", key=f"cancel_{progress.job_id}", on_click=jobs.cancel, args=(progress.job_id,))
    elif progress.state == "succeeded":
        validation = (progress.result or {}).get("validation", {})
        st.success(f"Registered **{progress.model}** (validation AUC {validation.get('auc', float('nan')):.3f}). "
                   "It is in the model picker of the Image diagnosis page now.", icon=":material/check_circle:")
    elif progress.state == "cancelled":
        st.warning(progress.error or "Cancelled; nothing was registered.", icon=":material/cancel:")
    else:
        st.error(progress.error or "The job failed; nothing was registered. See the log.", icon=":material/error:")
    with st.expander("Log", expanded=progress.state == "failed"):
        st.code(jobs.log_tail(progress.job_id, 60) or "(empty)", language=None)


@st.fragment(run_every=2.0)
def live_job_panel(job_id: str) -> None:
    """Redrawn every 2 s from the job folder, so any number of viewers follow the same job."""
    progress = jobs.read_progress(job_id)
    draw_job(progress)
    if not progress.active:
        st.rerun()  # the whole page, so the registry below lists the new version


def show_jobs() -> None:
    st.subheader("4. Training jobs")
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.info("No training job yet. Jobs keep running when this tab is closed; come back to follow them.")
        return
    ids = [j["id"] for j in all_jobs]
    by_id = {j["id"]: j for j in all_jobs}
    wanted = st.query_params.get(JOB_PARAM)
    if "job_pick" not in st.session_state or st.session_state["job_pick"] not in ids:
        st.session_state["job_pick"] = wanted if wanted in ids else ids[0]
    job_id = st.selectbox("Job", ids, key="job_pick", format_func=lambda i: f"{i} · {by_id[i].get('request', {}).get('name', '')} · {by_id[i]['state']}")
    st.query_params[JOB_PARAM] = job_id  # a reload or a shared link reopens this job
    try:
        if by_id[job_id]["state"] in jobs.ACTIVE_STATES:
            live_job_panel(job_id)
        else:
            draw_job(jobs.read_progress(job_id))
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")


def _activate(name: str, version: str) -> None:
    try:
        ref = registry.activate(name, version)
        st.session_state["registry_message"] = ("success", f"{ref.spec} is now the active version of {name}.")
    except LucidDxError as exc:
        st.session_state["registry_message"] = ("error", str(exc))


def _delete(name: str, version: str) -> None:
    try:
        registry.delete_version(name, version)
        st.session_state["registry_message"] = ("success", f"{name}:{version} was deleted.")
    except LucidDxError as exc:
        st.session_state["registry_message"] = ("error", str(exc))


def show_registry() -> None:
    st.subheader("5. Registered image models")
    models = registry.list_models(kind=kinds.IMAGE_CLASSIFIER)
    if not models:
        st.info("No image model is registered yet.")
        return
    name = st.selectbox("Model", list(models), key="registry_model")
    active = registry.active_version(name).version
    st.dataframe(
        [{"version": r.version, "active": r.version == active, "source": "bundled" if r.bundled else "trained here",
          "created": r.meta.get("created"), "classes": ", ".join(r.meta.get("classes", [])),
          "validation AUC": (r.meta.get("validation") or {}).get("auc")} for r in models[name]],
        hide_index=True,
    )
    versions = [r.version for r in models[name]]
    if st.session_state.get(f"registry_version_{name}") not in versions:
        st.session_state.pop(f"registry_version_{name}", None)  # e.g. just deleted
    version = st.selectbox("Version", versions, index=versions.index(active), key=f"registry_version_{name}",
                           format_func=lambda v: f"{v} (active)" if v == active else v)
    c1, c2, c3 = st.columns([2, 1, 2])
    c1.button("Make active (roll back or forward)", key="registry_activate", on_click=_activate, args=(name, version),
              disabled=version == active)
    confirm = c2.checkbox("Confirm", key="registry_confirm_delete")
    c3.button("Delete this version", key="registry_delete", on_click=_delete, args=(name, version), disabled=not confirm)
    message = st.session_state.pop("registry_message", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])
    model_card_panel(f"{name}:{version}")


st.title("Retrain")
st.caption("Train a new version of an image model on your own labeled scans. Training runs as a background job: "
           "close or reload this page at any time and come back to it.")
choose_dataset()
report = st.session_state.get("dataset_report")
if report is not None:
    show_report(report)
    settings_form(report)
show_jobs()
show_registry()
