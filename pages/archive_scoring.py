"""Score an archive: every film under a folder or zip, on the engine's workers, as one table (researchers)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.charts import archive as archive_charts
from core.errors import LucidDxError
from core.i18n import _
from core.services import archive, catalog, table_export
from core.services import training as training_service
from ui.auth import require_page
from ui.language import apply_language

RESULT_KEY = "archive_result"


def pick_model() -> str | None:
    models = catalog.models_by_name(catalog.IMAGE_CLASSIFIER)
    if not models:
        st.info(_("No image model is registered yet."))
        return None
    name = st.selectbox(_("Model"), list(models), key="archive_model")
    active = catalog.active_version(name).version
    versions = [r.version for r in models[name]]
    labels = {v: _("{version} (active)").format(version=v) if v == active else v for v in versions}
    version = st.selectbox(
        _("Version"),
        versions,
        index=versions.index(active),
        key=f"archive_version_{name}",
        format_func=labels.__getitem__,
    )
    return f"{name}:{version}"


def run(source: Path, spec: str, managed: bool) -> None:
    bar = st.progress(0.0, text=_("Starting the engine and loading the model on its workers…"))

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=_("Scored {done}/{total} films").format(done=done, total=total))

    try:
        result = archive.score_folder(USER, source, None, spec, progress)
    finally:
        if managed:
            training_service.release_dataset(source)
    bar.empty()
    st.session_state[RESULT_KEY] = result


def choose_and_run(spec: str) -> None:
    sources = {"server": _("Folder on the server"), "upload": _("Upload a zip")}
    source = st.radio(
        _("Where is the archive?"), list(sources), format_func=sources.get, horizontal=True, key="archive_source"
    )
    try:
        if source == "upload":
            upload = st.file_uploader(_("Zip of the archive"), type=["zip"], key="archive_zip")
            if upload is not None and st.button(_("Score the archive"), type="primary", key="archive_run_zip"):
                run(training_service.import_upload(upload.getvalue(), upload.name), spec, managed=True)
        else:
            path = st.text_input(_("Folder (or .zip) on the server"), key="archive_path", placeholder="/data/archive")
            if st.button(_("Score the archive"), type="primary", key="archive_run_path", disabled=not path.strip()):
                run(training_service.server_dataset(path.strip()), spec, managed=False)
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")


def show_result(result: dict) -> None:
    cols = st.columns(5)
    cols[0].metric(_("Films"), result["n"])
    cols[1].metric(_("Scored"), result["ok"])
    cols[2].metric(_("Failed"), result["failed"])
    cols[3].metric(
        _("Films / s"),
        result["films_per_s"],
        help=_("Including the engine's start and the model's loading on each worker."),
    )
    cols[4].metric(_("Machines used"), result["nodes_used"])
    rows = result["rows"]
    st.plotly_chart(archive_charts.outcome_figure(rows), key="archive_outcomes")
    table = archive.table_rows(rows)
    st.dataframe(table, hide_index=True, key="archive_table")
    left, right = st.columns(2)
    stem = result["model"].replace(":", "_") + "_archive"
    left.download_button(
        _("Export CSV"), table_export.to_csv(table), file_name=f"{stem}.csv", mime="text/csv", key="archive_csv"
    )
    right.download_button(
        _("Export Excel"),
        table_export.to_xlsx(table),
        file_name=f"{stem}.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="archive_xlsx",
    )


apply_language()
USER = require_page("evaluate")
st.title(_("Score an archive"))
st.caption(
    _(
        "Every film under a folder or zip is scored on the engine's workers (this machine, or the Ray cluster "
        "LUCIDDX_RAY_ADDRESS names). A file that cannot be read is a failed row; the run goes on. Decision "
        "support only: the table is for research, not for reporting to patients."
    )
)
SPEC = pick_model()
if SPEC:
    choose_and_run(SPEC)
if st.session_state.get(RESULT_KEY):
    show_result(st.session_state[RESULT_KEY])
