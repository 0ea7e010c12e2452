"""Patient risk: enter a patient's values, see the model's risk and exactly why (SHAP). Works for any tabular model.

The form, units, ranges, optional fields and categories all come from the loaded model's stored schema;
scoring and explaining happen in ``core.services.tabular``; this page only draws.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any

import streamlit as st

from core.charts import risk as risk_charts
from core.errors import LucidDxError
from core.i18n import _, format_decimal, format_percent, ngettext, translated
from core.services import audit, tabular
from ui.auth import guarded, require_page
from ui.card_panel import model_card_panel
from ui.language import apply_language

FORM_KEY = "risk_form"
PATIENT_KEY = "risk_patient"  # the last submitted, valid patient: {feature: value | None}
ISSUES_KEY = "risk_issues"  # messages from the last submit: {feature: [(severity, message)]}


@st.cache_resource(show_spinner=False)
def _load_predictor(spec: str) -> tabular.RiskPredictor:
    return tabular.load(spec)


def get_predictor(spec: str) -> tabular.RiskPredictor:
    with st.spinner(_("Loading the risk model…")):  # said in this session's language, not the first loader's
        return _load_predictor(spec)


def field_key(name: str) -> str:
    return f"risk_field_{name}"


def field_help(spec: tabular.FeatureSpec) -> str:
    optional = (
        _("Optional: blank = not measured (the model imputes it and shows it).") if spec.optional else _("Required.")
    )
    if spec.categorical:
        allowed = _("Values: {levels}.").format(levels=_(", ").join(spec.levels))
    else:
        lo, hi = spec.plausible
        allowed = _("Trained range {range}.").format(range=f"{lo:g}–{hi:g} {spec.display_unit}".strip())
    # The help text itself is the model's (stored with its schema, in the catalog for a bundled model); the sentences after it are ours.
    return " ".join(part for part in (spec.reader_help(), allowed, optional) if part).strip()


def fill_example(schema: tabular.Schema) -> None:
    for name, value in schema.example.items():
        if name in schema.by_name:
            st.session_state[field_key(name)] = value


def field_input(spec: tabular.FeatureSpec, label: str, key: str, value: Any = None) -> Any:
    """One input for one schema field: a choice for a category, a number otherwise."""
    if spec.categorical:
        index = spec.levels.index(value) if value in spec.levels else None
        return st.selectbox(
            label,
            list(spec.levels),
            index=index,
            key=key,
            help=field_help(spec),
            placeholder=_("not measured") if spec.optional else _("required"),
        )
    step: float | int = 1 if spec.integer else spec.step
    fmt = "%d" if spec.integer else ("%.3f" if spec.step < 0.01 else "%.1f")
    if value is not None and spec.integer:
        value = int(value)
    return st.number_input(
        label,
        value=value,
        step=step,
        format=fmt,
        key=key,
        help=field_help(spec),
        placeholder=_("not measured") if spec.optional else _("required"),
    )


def patient_form(predictor: tabular.RiskPredictor) -> None:
    """The form. On submit, validate in core and keep the patient (or the field messages) in session state."""
    schema = predictor.schema
    if schema.example:
        st.button(
            _("Fill in an example patient"),
            on_click=fill_example,
            args=(schema,),
            key="risk_example",
            icon=":material/person_add:",
        )
    slots: dict[str, Any] = {}
    with st.form(FORM_KEY, enter_to_submit=False):
        columns = st.columns(2)
        values: dict[str, Any] = {}
        for i, spec in enumerate(schema.features):
            with columns[i % 2]:
                label = spec.display_label() + ("" if spec.optional else " *")
                values[spec.name] = field_input(spec, label, field_key(spec.name))
                slots[spec.name] = st.empty()
        submitted = st.form_submit_button(_("Compute risk"), type="primary", icon=":material/calculate:")
    if submitted:
        entered = json.dumps(values, sort_keys=True, default=str).encode()  # hashed for the audit log, never stored
        with audit.acting(USER, "risk", model=predictor.spec, data=entered) as act:  # authorized, run and recorded
            outcome = tabular.score_patient(predictor, values)
            act.outcome = "ok" if outcome.clean else "bad-input"
        st.session_state[ISSUES_KEY] = outcome.issues_by_field()
        st.session_state[PATIENT_KEY] = outcome.clean
    for name, messages in st.session_state.get(ISSUES_KEY, {}).items():
        if name not in slots:
            continue
        with slots[name].container():
            for severity, message in messages:
                if severity == "error":
                    st.error(message, icon=":material/error:")
                else:
                    st.warning(message, icon=":material/warning:")
    if any(sev == "error" for msgs in st.session_state.get(ISSUES_KEY, {}).values() for sev, _message in msgs):
        st.error(
            _("Some values are impossible: correct the fields marked above, then compute again."),
            icon=":material/error:",
        )


def outcome_name(predictor: tabular.RiskPredictor) -> str:
    """What the risk is of, in the reader's language ("diabetes", not "Yes")."""
    return tabular.outcome_name(predictor)


def show_result(predictor: tabular.RiskPredictor, result: tabular.RiskResult) -> None:
    summary = predictor.summary()
    outcome = outcome_name(predictor)
    left, right = st.columns([1, 2])
    with left:
        st.metric(
            _("Risk of {outcome}").format(outcome=outcome),
            format_percent(result.risk, 1),
            help=_(
                "Calibrated probability from the model (out-of-fold calibration slope {slope}, intercept {intercept})."
            ).format(
                slope=format_decimal(summary["calibration_slope"], 2),
                intercept=f"{summary['calibration_intercept']:+.2f}",
            ),
        )
        verdict = (
            _("**Above** the decision threshold of {threshold}.")
            if result.above_threshold
            else _("**Below** the decision threshold of {threshold}.")
        )
        st.markdown(verdict.format(threshold=format_percent(result.threshold, 1)))
        lo, hi = result.risk_interval
        st.caption(
            _(
                "How sure: 95% interval {low}–{high} over bootstrap refits of the model. Model-wide: CV AUC {auc} "
                "(95% CI {auc_low}–{auc_high}), Brier {brier}; at the threshold sensitivity {sensitivity}, "
                "specificity {specificity}."
            ).format(
                low=format_percent(lo, 1),
                high=format_percent(hi, 1),
                auc=format_decimal(summary["cv_auc"], 3),
                auc_low=format_decimal(summary["cv_auc_ci95"][0], 3),
                auc_high=format_decimal(summary["cv_auc_ci95"][1], 3),
                brier=format_decimal(summary["brier"], 3),
                sensitivity=format_percent(summary["sensitivity"], 0),
                specificity=format_percent(summary["specificity"], 0),
            )
        )
    with right:
        st.plotly_chart(
            risk_charts.risk_gauge(
                result.risk,
                result.threshold,
                result.risk_interval,
                title=_("Risk of {outcome}").format(outcome=outcome),
            ),
            key="risk_gauge",
        )
    imputed = [risk_charts.imputed_note(result, name) for name, v in result.imputed.items() if v is not None]
    if imputed:
        st.info(
            _(
                "Not measured, so the model used the training value and its 'not measured' effect: {fields}. "
                "The waterfall shows what not knowing each value did to the risk."
            ).format(fields=_(", ").join(imputed)),
            icon=":material/info:",
        )
    for warning in result.warnings:
        st.warning(warning, icon=":material/warning:")
    st.plotly_chart(risk_charts.waterfall(result, max_features=15, outcome=outcome), key="risk_waterfall")
    stored = predictor.meta.get("explanation", {}).get("explainer")
    explainer = tabular.explainer_name(stored) if stored else _("exact explainer")
    st.caption(
        _(
            "Exact SHAP ({explainer}): base value {base} + contributions {contributions} = {output} log-odds = {risk}."
        ).format(
            explainer=explainer,
            base=f"{result.base_value:+.3f}",
            contributions=f"{sum(result.contributions.values()):+.3f}",
            output=f"{result.output:+.3f}",
            risk=format_percent(result.risk, 1),
        )
    )
    kernel_check(predictor, result)


def kernel_check(predictor: tabular.RiskPredictor, result: tabular.RiskResult) -> None:
    """On request: does a sampled explainer (KernelSHAP) agree with the exact values for this patient?"""
    if not st.button(
        _("Check against KernelSHAP"),
        key="risk_kernel_check",
        help=_("Recompute this patient's explanation with a sampled explainer and compare the rankings."),
    ):
        return
    check = tabular.kernel_check(predictor, result)
    text = _(
        "KernelSHAP ({seconds} s) ranks this patient's features with rank correlation {r} to the exact values; "
        "{shared} of the exact top {top} are in its top {top}, {same_sign} with the same sign."
    ).format(
        seconds=format_decimal(check["seconds"], 1),
        r=format_decimal(check["rank_corr"], 2),
        shared=check["shared"],
        top=check["top"],
        same_sign=check["same_sign"],
    )
    if check["agrees"]:
        st.success(text + " " + _("It agrees: any SHAP explainer would tell this patient's story the same way."))
    else:
        st.warning(
            text + " " + _("It disagrees for this patient: rely on the exact values above, not on a sampled one.")
        )


def what_if(predictor: tabular.RiskPredictor, patient: dict[str, Any], result: tabular.RiskResult) -> None:
    st.subheader(_("What if?"))
    st.caption(_("Change one value and see how the risk would move. Nothing here changes the patient above."))
    schema = predictor.schema
    left, right = st.columns(2)
    name = left.selectbox(
        _("Value to change"),
        schema.names,
        key="risk_whatif_feature",
        format_func={n: schema.by_name[n].display_label() for n in schema.names}.__getitem__,
    )
    spec = schema.by_name[name]
    with right:
        new_value = field_input(
            spec, _("New {field}").format(field=spec.display_label()), f"risk_whatif_value_{name}", patient.get(name)
        )
    outcome = tabular.score_patient(predictor, {**patient, name: new_value})
    if not outcome.ok:
        for issue in outcome.issues:
            if issue.severity == "error":
                right.error(issue.message, icon=":material/error:")
        return
    changed = outcome.result
    change = risk_charts.risk_change(result.risk, changed.risk)
    st.metric(
        _("Risk with {field} = {value}").format(
            field=translated(spec.label) or spec.name, value=risk_charts.shown_value(spec, new_value)
        ),
        format_percent(changed.risk, 1),
        delta=change.text,
        delta_color="inverse" if change.moved else "off",  # a higher risk is the bad direction: red
        delta_arrow="auto" if change.moved else "off",
    )


def researcher_view(predictor: tabular.RiskPredictor) -> None:
    st.caption(_("Exact SHAP values of the model over all training patients (log-odds)."))
    names = predictor.schema.names
    X, _base, values = predictor.global_explanation()
    st.plotly_chart(risk_charts.importance_bar(values, names), key="risk_importance")
    st.plotly_chart(risk_charts.beeswarm(X, values, names), key="risk_beeswarm")
    strongest = int(abs(values).mean(axis=0).argmax())
    feature = st.selectbox(_("Dependence plot for"), names, index=strongest, key="risk_dependence_feature")
    imputed = predictor.model.imputed_values().get(feature)
    st.plotly_chart(
        risk_charts.dependence_plot(feature, X, values, names, imputed, predictor.schema.by_name[feature]),
        key="risk_dependence",
    )
    families = predictor.meta.get("validation", {}).get("families", [])
    if families:
        st.markdown("**" + _("Model families compared (cross-validation on the same folds)") + "**")
        st.dataframe(
            [
                {
                    _("family"): tabular.family_name(f["family"]),
                    _("CV AUC"): round(f["cv_auc"], 3),
                    _("95% CI"): f"{f['cv_auc_ci95'][0]:.3f}–{f['cv_auc_ci95'][1]:.3f}",
                    _("Brier"): round(f["brier"], 4),
                    _("explainer"): tabular.explainer_name(f["explainer"]),
                }
                for f in families
            ],
            hide_index=True,
        )
        # The rule's wording is stored with the model (meta.json): a bundled model's is in the catalog.
        st.caption(
            _("Chosen by: {rule}").format(rule=translated(predictor.meta["validation"].get("selection_rule", "")))
        )


@st.cache_data(show_spinner=False, max_entries=8)
def score_upload(data: bytes, name: str, spec: str) -> list[dict]:
    """Score an uploaded CSV once; reruns (what-if edits in another tab) reuse the result."""
    return tabular.score_rows_of(data, _load_predictor(spec), name)


def shown_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch table with its column headers in the reader's language (the CSV download keeps its own names)."""
    headers = {
        "row": _("row"),
        "ok": _("scored"),
        "model": _("model"),
        "threshold": _("threshold"),
        "risk": _("risk"),
        "above_threshold": _("above threshold"),
        "top_contributions": _("top contributions"),
        "error": _("error"),
    }

    def header(key: str) -> str:
        if key.startswith("shap_"):
            return _("SHAP {feature}").format(feature=key[len("shap_") :])
        return headers.get(key, key)

    return [{header(k): v for k, v in row.items()} for row in rows]


def batch_view(predictor: tabular.RiskPredictor) -> None:
    schema = predictor.schema
    zero_missing = [s.name for s in schema.features if s.zero_means_missing]
    if zero_missing:
        note = _(
            "One patient per row with the columns {columns}. Blank means not measured (and 0 too in {zero_fields}); "
            "extra columns are ignored."
        ).format(columns=_(", ").join(schema.names), zero_fields=_(", ").join(zero_missing))
    else:
        note = _(
            "One patient per row with the columns {columns}. Blank means not measured; extra columns are ignored."
        ).format(columns=_(", ").join(schema.names))
    st.caption(note)
    upload = st.file_uploader(
        _("Patients CSV"), type=["csv"], key="risk_batch_upload", max_upload_size=tabular.MAX_CSV_MB
    )  # the reader's limit, stated in the box
    if upload is None:
        return
    audited = st.session_state.setdefault("risk_audited_uploads", set())
    first = (upload.file_id, predictor.spec) not in audited  # one record per upload, not per rerun
    try:
        with audit.acting(USER, "risk", model=predictor.spec, data=upload.getvalue()) if first else nullcontext():
            with st.spinner(_("Scoring the patients…")):
                results = score_upload(upload.getvalue(), upload.name, predictor.spec)
    except LucidDxError as exc:  # recorded as bad input by the audited context
        st.error(str(exc), icon=":material/error:")
        return
    audited.add((upload.file_id, predictor.spec))
    bad = [r for r in results if not r["ok"]]
    st.markdown(
        ngettext("Scored **{scored}** of {n} row.", "Scored **{scored}** of {n} rows.", len(results)).format(
            scored=len(results) - len(bad), n=len(results)
        )
    )
    for r in bad:
        st.error(r["error"], icon=":material/error:")
    st.dataframe(shown_table(tabular.batch_table(results, predictor)), hide_index=True)
    st.download_button(
        _("Download the results (CSV)"),
        guarded(lambda: tabular.export_csv(results, predictor)),
        file_name="risk_results.csv",
        mime="text/csv",
        key="risk_batch_download",
        icon=":material/download:",
        on_click=audit.downloaded,
        args=(USER, "export"),
        kwargs={"model": predictor.spec, "data": upload.getvalue()},
    )


apply_language()
USER = require_page("risk")
st.title(_("Patient risk"))
specs, default_index = tabular.model_choices(USER)
if not specs:
    st.error(
        _("No approved risk model is available. Train one ({command}); an administrator then activates it.").format(
            command="`python -m core train-risk --csv FILE --target COLUMN --name NAME`"
        ),
        icon=":material/error:",
    )
    st.stop()
if st.session_state.get("risk_model") not in specs:
    st.session_state.pop("risk_model", None)  # e.g. a version no longer approved
labels = tabular.model_labels(specs)  # made now, in this run's language
model_spec = st.selectbox(_("Risk model"), specs, index=default_index, key="risk_model", format_func=labels.__getitem__)
try:
    model_spec, approved = tabular.usable_model(USER, model_spec)  # the service decides, not the picker
    if not approved:
        st.warning(
            _("{spec} is not approved for clinical use: for research only, not for patient care.").format(
                spec=model_spec
            ),
            icon=":material/warning:",
        )
    predictor = get_predictor(model_spec)
except LucidDxError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
# The intended use is the model's own text (meta.json, in the catalog for a bundled model); the sentences after it are ours.
st.caption(
    " ".join(
        part
        for part in (
            translated(predictor.meta.get("intended_use", "")),
            _("Every value's effect is explained exactly."),
            _("Decision support only: a clinician reviews every result."),
        )
        if part
    )
)
model_card_panel(model_spec)

patient_tab, batch_tab, research_tab = st.tabs(
    [
        ":material/person: " + _("Patient"),
        ":material/table: " + _("Batch (CSV)"),
        ":material/science: " + _("For researchers"),
    ]
)
with patient_tab:
    patient_form(predictor)
    patient = st.session_state.get(PATIENT_KEY)
    if patient and set(patient) == set(predictor.schema.names):
        current = predictor.predict([patient])[0]
        current.warnings = [
            m for msgs in st.session_state.get(ISSUES_KEY, {}).values() for s, m in msgs if s == "warning"
        ]
        show_result(predictor, current)
        what_if(predictor, patient, current)
with batch_tab:
    batch_view(predictor)
with research_tab:
    researcher_view(predictor)
