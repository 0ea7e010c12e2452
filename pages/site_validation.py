"""Site validation: measure a model on this hospital's own labeled films, record it, and (admins) adopt a threshold."""

from __future__ import annotations

import streamlit as st

from core.charts import validation as validation_charts
from core.errors import LucidDxError
from core.i18n import _
from core.services import catalog, jobs, validation
from core.services import training as training_service
from ui.auth import allows, require_page
from ui.language import apply_language

RESULT_KEY = "site_evaluation"
JOB_KEY, JOB_PARAM = "site_job", "job"


def pick_version() -> str | None:
    models = catalog.models_by_name(catalog.IMAGE_CLASSIFIER)
    if not models:
        st.info(_("No image model is registered yet."))
        return None
    c1, c2 = st.columns(2)
    name = c1.selectbox(_("Model"), list(models), key="site_model")
    active = catalog.active_version(name).version
    versions = [r.version for r in models[name]]
    labels = {v: _("{version} (active)").format(version=v) if v == active else v for v in versions}
    version = c2.selectbox(
        _("Version"), versions, index=versions.index(active), key=f"site_version_{name}", format_func=labels.__getitem__
    )
    return f"{name}:{version}"


def evaluate(spec: str) -> None:
    st.caption(
        _(
            "One subfolder per class, named like the model's classes (e.g. NORMAL and PNEUMONIA), with films "
            "this model has never seen. Files that cannot be read are listed and left out."
        )
    )
    sources = {"server": _("Folder on the server"), "upload": _("Upload a zip")}
    source = st.radio(
        _("Where are the labeled films?"), list(sources), format_func=sources.get, horizontal=True, key="site_source"
    )
    target = st.slider(_("Sensitivity the site wants to reach"), 0.50, 0.99, 0.95, 0.01, key="site_target")
    try:
        data, described = None, ""
        if source == "upload":
            upload = st.file_uploader(_("Zip of the labeled films"), type=["zip"], key="site_zip")
            if upload is not None and st.button(_("Evaluate"), type="primary", key="site_run_zip"):
                data, described = training_service.import_upload(upload.getvalue(), upload.name), _("an uploaded zip")
        else:
            path = st.text_input(_("Folder (or .zip) on the server"), key="site_path", placeholder="/data/validation")
            if st.button(_("Evaluate"), type="primary", key="site_run_path", disabled=not path.strip()):
                data, described = training_service.server_dataset(path.strip()), _("a folder on the server")
        if data is not None:
            # Scored on the engine (a job): the page stays responsive, and a reload finds the job again.
            job_id = validation.start_site_validation(USER, data, spec, target)
            st.session_state[JOB_KEY] = (job_id, described)
            st.query_params[JOB_PARAM] = job_id
            st.session_state.pop(RESULT_KEY, None)
            st.session_state.pop("site_recorded", None)
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")


def follow_job() -> None:
    """The validation job of this session (or of the link's ``?job=``): its bar while it runs, then its result."""
    held = st.session_state.get(JOB_KEY)
    job_id = held[0] if held else st.query_params.get(JOB_PARAM)
    if not job_id or st.session_state.get("site_job_shown") == job_id:
        return
    try:
        progress = jobs.follow(job_id)
    except LucidDxError:
        return  # a link to a job that is gone: nothing to follow
    if progress.request.get("kind") != "validate":
        return
    if progress.active:
        live_job(job_id)
        return
    if progress.state != "succeeded":
        st.error(progress.error or _("The validation failed; see the log."), icon=":material/block:")
        st.session_state["site_job_shown"] = job_id
        return
    evaluation = validation.site_evaluation_of(job_id)
    if evaluation is not None:
        described = held[1] if held else _("a folder on the server")
        st.session_state[RESULT_KEY] = (evaluation, described)
        st.session_state["site_job_shown"] = job_id


@st.fragment(run_every=2.0)
def live_job(job_id: str) -> None:
    """Redrawn every 2 s from the job folder; the whole page once the job ended."""
    progress = jobs.follow(job_id)
    if not progress.active:
        st.rerun()
    model = progress.request.get("model")
    text = (
        _("Starting (loading TensorFlow)…")
        if progress.phase == "waiting"
        else _("Scoring every film with {model}…").format(model=model)
    )
    st.progress(0.0, text=text)
    if progress.cancel_requested:
        st.info(_("Cancelling…"), icon=":material/cancel:")
    else:
        st.button(_("Cancel"), key=f"site_cancel_{job_id}", on_click=jobs.cancel, args=(job_id,))


def interval(result: dict, key: str) -> str:
    low, high = result["intervals"].get(key) or (None, None)
    if result.get(key) is None:
        return "n/a"
    return f"{result[key]:.3f}" + (f" ({low:.3f}–{high:.3f})" if low is not None else "")


def show(evaluation: validation.SiteEvaluation, described: str) -> None:
    result = evaluation.result
    st.subheader(_("{model} on {n} films of this site").format(model=evaluation.spec, n=result["n"]))
    cols = st.columns(4)
    cols[0].metric(_("Prevalence"), f"{result['prevalence']:.1%}")
    cols[1].metric("AUC", interval(result, "auc"))
    cols[2].metric(_("Sensitivity"), interval(result, "sensitivity"))
    cols[3].metric(_("Specificity"), interval(result, "specificity"))
    st.caption(
        _("At the stored threshold {threshold:.2f}; 95% bootstrap intervals in brackets.").format(
            threshold=result["threshold"]
        )
    )
    st.plotly_chart(validation_charts.site_roc_figure(result), key="site_roc")
    rows = []
    for row in result["thresholds"]:
        honest = row.get("cross_fitted") or {}
        rows.append(
            {
                _("rule"): validation_charts.rule_name(row["rule"]),
                _("threshold"): round(row["threshold"], 3),
                _("sensitivity"): round(row["sensitivity"], 3),
                _("specificity"): round(row["specificity"], 3),
                "PPV": round(row["ppv"], 3) if row.get("ppv") is not None else None,
                "NPV": round(row["npv"], 3) if row.get("npv") is not None else None,
                _("cross-fitted sensitivity"): honest.get("sensitivity"),
                _("cross-fitted specificity"): honest.get("specificity"),
            }
        )
    st.markdown("#### " + _("Candidate thresholds"))
    st.dataframe(rows, hide_index=True, key="site_thresholds")
    st.caption(
        _(
            "A threshold chosen on these films looks better on them than it will on the next ones: the "
            "cross-fitted columns estimate it honestly (chosen on half, measured on the other half)."
        )
    )
    if evaluation.skipped:
        with st.expander(_("{n} file(s) left out").format(n=len(evaluation.skipped))):
            st.dataframe(evaluation.skipped, hide_index=True)
    recorded = st.session_state.get("site_recorded")
    if recorded is None:
        if st.button(_("Record this validation"), key="site_record"):
            try:
                recorded = validation.record_site_validation(
                    USER,
                    evaluation,
                    _("{n} labeled films of this site ({source}), recorded on the dashboard").format(
                        n=result["n"], source=described
                    ),
                )
                st.session_state["site_recorded"] = recorded
            except LucidDxError as exc:
                st.error(str(exc), icon=":material/block:")
    if recorded:
        st.success(
            _("Recorded as external validation {id}: the model card now lists it.").format(id=recorded),
            icon=":material/check_circle:",
        )
        adopt(evaluation, recorded)


def adopt(evaluation: validation.SiteEvaluation, recorded: str) -> None:
    if not allows(USER, "threshold"):
        st.info(_("An administrator can adopt one of these thresholds for this site."))
        return
    st.markdown("#### " + _("Adopt a threshold for this site"))
    rules = [row["rule"] for row in evaluation.result["thresholds"]]
    rule = st.selectbox(_("Rule"), rules, format_func=validation_charts.rule_name, key="site_rule")
    chosen = next(row for row in evaluation.result["thresholds"] if row["rule"] == rule)
    confirm = st.checkbox(
        _(
            "I adopt threshold {threshold:.3f} ({rule}) for {model}: every later prediction of this version uses it."
        ).format(threshold=chosen["threshold"], rule=validation_charts.rule_name(rule), model=evaluation.spec),
        key=f"site_confirm_{recorded}_{rule}",
    )
    if st.button(_("Adopt"), type="primary", disabled=not confirm, key="site_adopt"):
        try:
            state = validation.adopt_threshold(USER, evaluation.spec, recorded, rule)
            st.success(
                _("{model} now uses threshold {threshold:.3f} ({source}).").format(
                    model=state["model"], threshold=state["threshold"], source=state["threshold_source"]
                )
            )
        except LucidDxError as exc:
            st.error(str(exc), icon=":material/block:")


apply_language()
USER = require_page("validate")
st.title(_("Site validation"))
st.caption(
    _(
        "How well does a model do on this hospital's own films? Measure it on labeled films it has never seen, "
        "record the result in its card, and adopt a threshold that fits this site."
    )
)
SPEC = pick_version()
if SPEC:
    evaluate(SPEC)
follow_job()
if st.session_state.get(RESULT_KEY):
    show(*st.session_state[RESULT_KEY])
