"""Risk model from a table: upload a labelled CSV, read its data report, confirm each field, train in the background."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.charts import training as training_charts
from core.errors import LucidDxError
from core.i18n import N_, _
from core.services import catalog, jobs
from core.services import risk_training as service
from ui import jobs_panel, registry_panel
from ui.auth import require_page
from ui.card_panel import model_card_panel
from ui.language import apply_language

TABLE_KEY = "risk_table"  # the upload's rows, in this session's memory only (never its file name)
JOB_KEY = "risk_job"
KIND_NAMES = {
    "numeric": N_("numeric"),
    "binary": N_("binary"),
    "categorical": N_("categorical"),
    "identifier": N_("identifier"),
    "date": N_("date"),
    "text": N_("free text"),
    "empty": N_("empty"),
    "outcome": N_("outcome"),
}
STATE_NAMES = {
    "queued": N_("queued"),
    "running": N_("running"),
    "succeeded": N_("succeeded"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
    "damaged": N_("damaged"),
}


def kind_name(kind: str) -> str:
    return _(KIND_NAMES[kind]) if kind in KIND_NAMES else kind


def state_name(state: str) -> str:
    return _(STATE_NAMES[state]) if state in STATE_NAMES else state


def upload_step() -> None:
    """The only step AppTest cannot drive (st.file_uploader): it puts the table's rows into the session."""
    st.subheader(_("1. Table"))
    st.caption(
        _(
            "A CSV with one patient per row and an outcome column. Identifier, date and free-text columns are "
            "found and never used; the table stays in this session's memory and is not stored."
        )
    )
    upload = st.file_uploader(
        _("CSV table"), type=["csv", "txt"], key="risk_upload", max_upload_size=service.MAX_CSV_BYTES // 1024**2
    )  # the reader's limit, stated in the box
    if upload is None or not st.button(_("Read table"), key="risk_read"):
        return
    try:
        service.check_upload_size(upload.size)  # before the bytes are read
        st.session_state[TABLE_KEY] = service.read_table(upload.getvalue())
        st.session_state.pop("risk_report", None)
    except LucidDxError as exc:
        st.session_state.pop(TABLE_KEY, None)
        st.error(str(exc), icon=":material/block:")


def outcome_step(table: list[list[str]]) -> tuple[str, list[str]] | None:
    """The outcome column and the value(s) that count as positive, chosen from the data."""
    st.subheader(_("2. Outcome"))
    header = [h.strip() for h in table[0]]
    st.caption(_("{rows} rows, {columns} columns").format(rows=len(table) - 1, columns=len(header)))
    target = st.selectbox(_("Outcome column"), header, index=len(header) - 1, key="risk_target")
    values = service.outcome_values(table, target)
    default = [values[-1]] if len(values) == 2 else []
    positive = st.multiselect(
        _("Value(s) that count as the outcome (every other value is negative)"),
        values,
        default=default,
        key=f"risk_positive_{target}",
    )
    if not positive:
        st.info(_("Choose the value(s) to predict."))
        return None
    return target, positive


def report_for(table: list[list[str]], target: str, positive: list[str]) -> service.TableReport | None:
    """The data report for this outcome choice, kept in the session until the choice changes."""
    key = (target, tuple(positive))
    cached = st.session_state.get("risk_report")
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        report = service.data_report(table, target, positive)
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")
        return None
    st.session_state["risk_report"] = (key, report)
    return report


def _range(c: Any) -> str:
    if c.levels:
        return ", ".join(c.levels[:8]) + (" …" if len(c.levels) > 8 else "")
    return "" if c.low is None else f"{c.low:g} – {c.high:g}"


def show_report(report: service.TableReport) -> None:
    st.subheader(_("3. Data report"))
    for problem in report.problems:
        st.error(problem, icon=":material/block:")
    for warning in report.warnings:
        st.warning(warning, icon=":material/warning:")
    labels = {
        "column": _("column"),
        "type": _("type"),
        "values": _("range or levels"),
        "missing": _("missing"),
        "notes": _("implausible values / notes"),
        "leak": _("AUC alone"),
        "training": _("in training"),
    }
    rows = [
        {
            labels["column"]: c.column,
            labels["type"]: kind_name(c.kind),
            labels["values"]: _range(c),
            labels["missing"]: f"{c.missing} ({100 * c.missing_fraction:.0f}%)",
            labels["notes"]: "; ".join(c.notes),
            labels["leak"]: None if c.leak_auc is None else round(c.leak_auc, 3),
            labels["training"]: _("outcome")
            if c.kind == "outcome"
            else _("used")
            if c.used
            else _("dropped: {reason}").format(reason=kind_name(c.kind)),
        }
        for c in report.columns
    ]
    st.dataframe(rows, hide_index=True, key="risk_report_table")
    left, right = st.columns(2)
    left.plotly_chart(training_charts.class_balance_bar(report.class_counts), key="risk_balance")
    right.plotly_chart(
        training_charts.missingness_bar({c.column: c.missing_fraction for c in report.columns}), key="risk_missing"
    )


def review_step(report: service.TableReport) -> list[dict[str, Any]]:
    """Each predictor's unit, plausible range and "not measured" codes, confirmed by the researcher."""
    st.subheader(_("4. Confirm the fields"))
    st.caption(
        _(
            "Prefilled from the report. A value outside the plausible range is impossible: that row is left out "
            "of training and refused on the patient form. Cells equal to a 'not measured' code (e.g. 0, -9, 999) "
            "count as blank."
        )
    )
    config = {
        "column": st.column_config.TextColumn(_("column"), disabled=True),
        "type": st.column_config.TextColumn(_("type"), disabled=True),
        "use": st.column_config.CheckboxColumn(_("use")),
        "unit": st.column_config.TextColumn(_("unit")),
        "low": st.column_config.NumberColumn(_("lowest plausible")),
        "high": st.column_config.NumberColumn(_("highest plausible")),
        "codes": st.column_config.TextColumn(_("'not measured' codes")),
    }
    edited = st.data_editor(
        service.review_rows(report), column_config=config, hide_index=True, key="risk_review", num_rows="fixed"
    )
    return [dict(r) for r in edited]


def train_step(
    table: list[list[str]], report: service.TableReport, positive: list[str], rows: list[dict[str, Any]]
) -> None:
    st.subheader(_("5. Train"))
    # No st.form: Enter in a form's field would submit it and start a job; only a click on the button does.
    name = st.text_input(_("Model name (a new version is added if it exists)"), key="risk_name")
    folds = st.number_input(_("Cross-validation folds"), 2, 20, 10, key="risk_folds")
    clicked = st.button(
        _("Start training"),
        key="risk_start_button",
        type="primary",
        disabled=bool(report.problems),
        icon=":material/play_arrow:",
    )
    if report.problems:
        st.caption(_("Fix the problems in the report to train."))
    if not clicked:
        return
    try:
        job_id = service.start_job(table, report, positive, rows, name, int(folds), actor=USER)
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")
        return
    st.session_state[JOB_KEY] = job_id
    st.rerun()


def draw_job(progress: jobs.JobProgress) -> None:
    """One risk job: progress while it runs, then the family comparison and the new version (not activated)."""
    st.progress(
        progress.fraction,
        text=_("Cross-validating the model families…") if progress.active else state_name(progress.state),
    )
    if progress.active:
        st.button(
            _("Cancel training"), key=f"risk_cancel_{progress.job_id}", on_click=jobs.cancel, args=(progress.job_id,)
        )
        return
    if progress.state != "succeeded" or not progress.result:
        st.error(progress.error or _("The job failed; nothing was registered."), icon=":material/error:")
        return
    result = progress.result
    st.success(
        _(
            "Registered **{model}** ({family}, cross-validated AUC {auc:.3f}). It is not in use: an administrator "
            "activates it after reading its card (Model cards page)."
        ).format(model=progress.model, family=result["family"], auc=result["cv"]["auc"]),
        icon=":material/check_circle:",
    )
    family, auc, interval, brier = _("family"), _("cross-validated AUC"), _("95% CI"), _("Brier score")
    st.dataframe(
        [
            {
                family: f["family"],
                auc: round(f["cv_auc"], 3),
                interval: f"{f['cv_auc_ci95'][0]:.3f} – {f['cv_auc_ci95'][1]:.3f}",
                brier: round(f["brier"], 4),
            }
            for f in result["families"]
        ],
        hide_index=True,
        key="risk_families",
    )
    model_card_panel(str(progress.model))


@st.fragment(run_every=2.0)
def live_job(job_id: str) -> None:
    progress = jobs.follow(job_id)
    draw_job(progress)
    if not progress.active:
        st.rerun()


def show_jobs() -> None:
    st.subheader(_("6. Risk training jobs"))
    listed = service.list_jobs()
    if not listed:
        st.info(_("No risk training job yet."))
        return
    jobs_panel.pick_and_show(listed, JOB_KEY, state_name, live_job, draw_job)


apply_language()
USER = require_page("train-risk")
st.title(_("Risk model from a table"))
st.caption(
    _(
        "Train a new risk model from a labelled table. Training runs as a background job; the new version is "
        "used only after an administrator activates it."
    )
)
upload_step()
TABLE = st.session_state.get(TABLE_KEY)
if TABLE is not None:
    choice = outcome_step(TABLE)
    REPORT = report_for(TABLE, *choice) if choice else None
    if REPORT is not None and choice is not None:
        show_report(REPORT)
        train_step(TABLE, REPORT, choice[1], review_step(REPORT))
show_jobs()
registry_panel.show(USER, catalog.TABULAR_RISK, _("Registered risk models"), _("No risk model is registered yet."))
