"""Retrain: bring a labeled dataset, read its report, train in the background, manage model versions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from core.charts import training as training_charts
from core.errors import LucidDxError
from core.i18n import _
from core.services import catalog, jobs
from core.services import training as training_service
from ui import jobs_panel, registry_panel
from ui.auth import require_page
from ui.language import apply_language

JOB_PARAM = "job"
IMAGE_SIZES = [32, 64, 96, 128, 160, 192, 224, 256, 320, 384]
TRANSFER_MODEL = "chest_xray"
START_CHOICES = {
    "transfer": _("The bundled chest X-ray model's weights (transfer)"),
    "scratch": _("Scratch (random weights)"),
    "pretrain": _("Pretraining on these films first (self-supervised, labels unused)"),
}
PRETRAIN_EPOCHS = 20
# Material icons are drawn by Streamlit's own font: they show on machines without an emoji font.
STATE_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/progress_activity:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
    "damaged": ":material/warning:",
}
STATE_NAMES = {
    "queued": _("queued"),
    "running": _("running"),
    "succeeded": _("succeeded"),
    "failed": _("failed"),
    "cancelled": _("cancelled"),
    "damaged": _("damaged"),
}


def suggested_name(label: str) -> str:
    """A registry-safe model name from a folder or archive name."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(label).stem).strip("._-")
    return (stem or "my_model")[:64]


def check_dataset(folder: Path, label: str) -> None:
    """Read every file once (with a progress bar) and keep the report in the session."""
    bar = st.progress(0.0, text=_("Reading the dataset…"))
    report = training_service.dataset_report(
        folder,
        progress=lambda done, total: bar.progress(
            done / total, text=_("Reading {done}/{total} files").format(done=done, total=total)
        ),
    )
    bar.empty()
    previous = st.session_state.get("dataset_folder")
    if previous and previous != str(folder):
        training_service.release_dataset(previous)  # each _("Check dataset") of a zip extracts anew: drop the old copy
    st.session_state.update(
        dataset_folder=str(folder), dataset_label=label, dataset_report=report, train_name=suggested_name(label)
    )


def choose_dataset() -> None:
    st.subheader(_("1. Dataset"))
    st.caption(
        _(
            "One subfolder per class (a single wrapping folder is fine); PNG, JPEG, BMP, TIFF or DICOM. "
            "Unreadable files are listed and skipped."
        )
    )
    sources = {"upload": _("Upload a zip"), "server": _("Folder on the server")}
    source = st.radio(
        _("Where is the dataset?"), list(sources), format_func=sources.get, horizontal=True, key="dataset_source"
    )
    try:
        if source == "upload":
            upload = st.file_uploader(_("Zip of the dataset folder"), type=["zip"], key="dataset_zip")
            if upload is not None and st.button(_("Check dataset"), key="check_upload"):
                check_dataset(training_service.import_upload(upload.getvalue(), upload.name), upload.name)
        else:
            path = st.text_input(
                _("Folder (or .zip) on the server, for datasets too big to upload"),
                key="dataset_path",
                placeholder="/data/knee_mri",
            )
            if st.button(_("Check dataset"), key="check_path", disabled=not path.strip()):
                folder = training_service.open_server_folder(path.strip())
                check_dataset(folder, Path(path.strip()).name)
    except LucidDxError as exc:
        st.session_state.pop("dataset_report", None)
        st.error(str(exc), icon=":material/block:")


def show_report(report: training_service.DatasetReport) -> None:
    st.subheader(_("2. Dataset report"))
    st.caption(
        _("`{label}` · {images} readable images in {classes} classes").format(
            label=st.session_state.get("dataset_label", ""), images=report.n_images, classes=len(report.classes)
        )
    )
    for problem in report.problems:
        st.error(problem, icon=":material/block:")
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
    left, right = st.columns(2)
    left.plotly_chart(training_charts.class_counts_bar(report.counts), key="report_counts")
    if report.sizes:
        right.plotly_chart(training_charts.image_size_scatter(report.sizes), key="report_sizes")
    with st.expander(_("Unreadable or ignored files ({n})").format(n=len(report.unreadable))):
        if report.unreadable:
            st.dataframe(report.unreadable, hide_index=True)
        else:
            st.write(_("None."))
    with st.expander(
        _("Exact duplicates ({groups} groups, {across} across classes)").format(
            groups=len(report.duplicates), across=len(report.cross_class_duplicates)
        )
    ):
        files, classes, across = _("files"), _("classes"), _("across classes")
        rows = [
            {files: ", ".join(d["files"]), classes: ", ".join(d["classes"]), across: d["cross_class"]}
            for d in report.duplicates
        ]
        if rows:
            st.dataframe(rows, hide_index=True)
        else:
            st.write(_("None."))
    for class_name in report.classes:
        thumbs = report.thumbnails.get(class_name, [])
        st.markdown(_("**{name}** · {n} images").format(name=class_name, n=report.counts.get(class_name, 0)))
        if thumbs:
            st.image(thumbs, width=96)


SCHEDULE_CHOICES = {
    "auto": _("Chosen from the data"),
    "plateau": _("Plateau decay with early stopping"),
    "snapshots": _("Three cosine cycles, strong augmentation (tuned on 5,000 chest films)"),
}


def recipe_plan() -> dict[str, Any] | None:
    """What LucidDx will train with and why, read from the data; the schedule and the form below override it."""
    folder = st.session_state["dataset_folder"]
    schedule = st.radio(
        _("Training recipe"),
        list(SCHEDULE_CHOICES),
        format_func=SCHEDULE_CHOICES.get,
        key="train_schedule",
        horizontal=True,
    )
    try:
        if st.session_state.get("recipe_facts_for") != folder:
            with st.spinner(_("Reading the data to choose a training recipe…")):
                st.session_state.update(recipe_facts=training_service.data_facts(Path(folder)), recipe_facts_for=folder)
        recipe = training_service.plan_recipe(Path(folder), schedule=schedule, facts=st.session_state["recipe_facts"])
    except LucidDxError as exc:
        st.warning(str(exc), icon=":material/warning:")
        return None
    st.info(
        _("LucidDx will train with {explanation} Change any setting below to override it.").format(
            explanation=training_service.recipe_explanation(recipe)
        ),
        icon=":material/tune:",
    )
    if st.session_state.get("recipe_shown") != (folder, schedule):  # a new plan resets the form to it
        for key in ("train_epochs", "train_size", "train_start"):
            st.session_state.pop(key, None)
        st.session_state["recipe_shown"] = (folder, schedule)
    return recipe


def overrides(
    recipe: dict[str, Any] | None, epochs: int, size: int, start: str, pretrain_epochs: int = 0
) -> dict[str, Any]:
    """The JobRequest fields the researcher changed from the plan; the rest stay the recipe's choice."""
    plan = (recipe or {}).get("settings", {})
    chosen_start = "transfer" if plan.get("init_from") else "scratch"
    pretraining = start == "pretrain" and pretrain_epochs > 0
    return {
        "epochs": None if epochs == plan.get("epochs") else epochs,
        "image_size": None if size == plan.get("image_size") else size,
        "init_from": None
        if pretraining or (recipe and start == chosen_start)
        else (TRANSFER_MODEL if start == "transfer" else "none"),
        "pretrain_epochs": pretrain_epochs if pretraining else 0,
        "recipe": st.session_state.get("train_schedule", "auto"),
    }


def changed_plan(changes: dict[str, Any]) -> None:
    """The plan again with the researcher's changes, so its reasons follow them: the plan above would still say
    "192 px needs no upscaling" of a job set to 64 px."""
    explicit = {
        "epochs": changes["epochs"],
        "image_size": changes["image_size"],
        "init_from": "" if changes["init_from"] == "none" else changes["init_from"],
        "pretrain_epochs": changes["pretrain_epochs"] or None,
    }
    explicit = {key: value for key, value in explicit.items() if value is not None}
    if not explicit:
        return
    changed = training_service.plan_recipe(
        Path(st.session_state["dataset_folder"]),
        explicit,
        changes["recipe"],
        facts=st.session_state["recipe_facts"],
    )
    st.caption(
        _("With your changes, LucidDx will train with {explanation}").format(
            explanation=training_service.recipe_explanation(changed)
        )
    )


def settings_form(report: training_service.DatasetReport) -> None:
    st.subheader(_("3. Train"))
    transfer_available = TRANSFER_MODEL in catalog.models_by_name(catalog.IMAGE_CLASSIFIER)
    recipe = recipe_plan() if report.ok else None
    plan = (recipe or {}).get("settings", {})
    # No st.form: Enter in a form's field submits it, and a submitted form here would start a job. Plain
    # fields only keep their values; only a click on the button starts work.
    name = st.text_input(_("Model name (a new version is added if it exists)"), key="train_name")
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input(
        _("Epochs"),
        1,
        300,
        int(plan.get("epochs", 12)),
        key="train_epochs",
        help=_("The most epochs: early stopping may end sooner; with cosine cycles they are split into the cycles."),
    )
    size = c2.selectbox(
        _("Image size (px)"), IMAGE_SIZES, index=IMAGE_SIZES.index(plan.get("image_size", 192)), key="train_size"
    )
    batch = c3.number_input(_("Batch size"), 1, 512, 32, key="train_batch")
    limit = c4.number_input(_("Images per class (0 = all)"), 0, 10_000_000, 0, key="train_limit")
    options = list(START_CHOICES) if transfer_available else ["scratch", "pretrain"]
    start = st.radio(
        _("Start from"),
        options,
        format_func=START_CHOICES.get,
        key="train_start",
        horizontal=True,
        index=options.index("transfer" if plan.get("init_from") and "transfer" in options else "scratch"),
    )
    pretrain_epochs = 0
    if start == "pretrain":
        pretrain_epochs = int(
            st.number_input(
                _("Pretraining epochs"),
                1,
                500,
                PRETRAIN_EPOCHS,
                key="train_pretrain_epochs",
                help=_(
                    "Contrastive learning (SimCLR) on the training patients' films before the labeled training; "
                    "each epoch costs about as much as a training epoch. Measured on chest films in "
                    "docs/pretraining.md."
                ),
            )
        )
    if recipe:
        changed_plan(overrides(recipe, int(epochs), int(size), start, pretrain_epochs))
    clicked = st.button(
        _("Start training"),
        key="train_start_button",
        type="primary",
        disabled=not report.ok,
        icon=":material/play_arrow:",
    )
    if not report.ok:
        st.caption(_("Fix the problems in the report to train."))
    if clicked:
        request = jobs.JobRequest(
            data=st.session_state["dataset_folder"],
            name=name.strip(),
            batch_size=int(batch),
            max_per_class=int(limit) or None,
            **overrides(recipe, int(epochs), int(size), start, pretrain_epochs),
        )
        running = st.session_state.get("train_started")
        if running and running[0] == request and jobs.follow(running[1]).active:
            st.warning(
                _("This training is already running (job {job}); it was not started again.").format(job=running[1]),
                icon=":material/block:",
            )
            return
        try:
            job_id = jobs.start(USER, request)
        except LucidDxError as exc:
            st.error(str(exc), icon=":material/block:")
            return
        st.session_state["train_started"] = (request, job_id)  # a second click on the same settings is not a second job
        st.session_state["job_pick"] = job_id
        st.query_params[JOB_PARAM] = job_id
        st.rerun()


def _start_label(request: dict[str, Any], recipe: dict[str, Any] | None = None) -> str:
    """A job's starting weights: pretraining, a model, scratch, or (jobs since the automatic recipe) the recipe's
    choice, named once the job has read its data (``recipe``: the job's recipe event)."""
    init_from = request.get("init_from")
    if request.get("pretrain_epochs"):
        return _("{epochs} epochs of self-supervised pretraining").format(epochs=request["pretrain_epochs"])
    if init_from and init_from != "none":
        return init_from
    if init_from is None and "recipe" in request:
        if recipe is None:
            return _("the recipe's choice")
        chosen = recipe.get("settings", {}).get("init_from") or _("scratch")
        return _("{start} (the recipe's choice)").format(start=chosen)
    return _("scratch")


def draw_job(progress: jobs.JobProgress) -> None:
    """One job's state, progress, curves, cancel button and log, from its files."""
    request: dict[str, Any] = progress.request
    st.markdown(
        _(
            "{icon} **{state}** · `{name}` from `{data}` · {epochs} epochs at {size} px, batch {batch}, "
            "start from {start}"
        ).format(
            icon=STATE_ICONS.get(progress.state, ""),
            state=STATE_NAMES.get(progress.state, progress.state),
            name=request.get("name"),
            data=Path(request.get("data", "")).name,
            epochs=request.get("epochs") or progress.epochs or _("auto"),
            size=request.get("image_size")
            or (progress.recipe or {}).get("settings", {}).get("image_size")
            or _("auto"),
            batch=request.get("batch_size"),
            start=_start_label(request, progress.recipe),
        )
    )
    phase_text = {
        "waiting": _("Starting (loading TensorFlow)…"),
        "loading": _("Reading images…"),
        "pretraining": _("Pretraining on the films themselves (self-supervised)…"),
        "training": _("Training…"),
        "evaluating": _("Choosing the threshold and writing the model card…"),
    }
    st.progress(progress.fraction, text=phase_text.get(progress.phase, STATE_NAMES.get(progress.state, progress.state)))
    cols = st.columns(5)
    if progress.phase == "pretraining":
        cols[0].metric(_("Pretraining epoch"), "{} / {}".format(*progress.pretrain))
    else:
        cols[0].metric(_("Epoch"), f"{progress.epoch} / {progress.epochs}")
    training_steps = progress.steps and progress.phase != "pretraining"
    cols[1].metric(_("Step"), f"{progress.step} / {progress.steps}" if training_steps else "…")
    cols[2].metric(_("ETA"), jobs_panel.duration(progress.eta_seconds) if progress.active else "—")
    cols[3].metric(_("Device"), progress.device or "…")
    cols[4].metric(
        _("Images / s"),
        f"{progress.images_per_second:.0f}" if progress.images_per_second else "…",
        help=_("Training throughput, averaged over the epochs so far (validation included)."),
    )
    if progress.epoch_events:
        st.plotly_chart(training_charts.training_curves(progress.epoch_events), key=f"curves_{progress.job_id}")
    if progress.active:
        if progress.cancel_requested:
            st.info(
                _("Cancelling… the job stops at its next batch; nothing will be registered."), icon=":material/cancel:"
            )
        else:
            st.button(
                _("Cancel training"), key=f"cancel_{progress.job_id}", on_click=jobs.cancel, args=(progress.job_id,)
            )
    elif progress.state == "succeeded":
        validation = (progress.result or {}).get("validation", {})
        st.success(
            _(
                "Registered **{model}** (validation AUC {auc:.3f}), not approved: researchers can try it on the "
                "Image diagnosis page; clinicians see it only when an administrator activates it after reading "
                "its card."
            ).format(model=progress.model, auc=validation.get("auc", float("nan"))),
            icon=":material/check_circle:",
        )
        if (progress.result or {}).get("recipe"):
            st.caption(
                _("Trained with {explanation}").format(
                    explanation=training_service.recipe_explanation(progress.result["recipe"])
                )
            )
    elif progress.state == "cancelled":
        st.warning(progress.error or _("Cancelled; nothing was registered."), icon=":material/cancel:")
    else:
        st.error(progress.error or _("The job failed; nothing was registered. See the log."), icon=":material/error:")
    jobs_panel.show_log(progress)


@st.fragment(run_every=2.0)
def live_job_panel(job_id: str) -> None:
    """Redrawn every 2 s from the job folder, so any number of viewers follow the same job."""
    progress = jobs.follow(job_id)
    draw_job(progress)
    if not progress.active:
        st.rerun()  # the whole page, so the registry below lists the new version


def show_jobs() -> None:
    st.subheader(_("4. Training jobs"))
    all_jobs = jobs.list_jobs("image")  # risk jobs have their own page
    if not all_jobs:
        st.info(_("No training job yet. Jobs keep running when this tab is closed; come back to follow them."))
        return
    job_id = jobs_panel.pick_and_show(
        all_jobs,
        "job_pick",
        lambda state: STATE_NAMES.get(state, state),
        live_job_panel,
        draw_job,
        wanted=st.query_params.get(JOB_PARAM),
    )
    st.query_params[JOB_PARAM] = job_id  # a reload or a shared link reopens this job


apply_language()
USER = require_page("train")
st.title(_("Retrain"))
st.caption(
    _(
        "Train a new version of an image model on your own labeled scans. Training runs as a background job: "
        "close or reload this page at any time and come back to it."
    )
)
choose_dataset()
report = st.session_state.get("dataset_report")
if report is not None:
    show_report(report)
    settings_form(report)
show_jobs()
registry_panel.show(
    USER, catalog.IMAGE_CLASSIFIER, _("5. Registered image models"), _("No image model is registered yet.")
)
