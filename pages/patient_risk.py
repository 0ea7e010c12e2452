"""Patient risk: enter a patient's values, see the five-year diabetes risk and exactly why (SHAP)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.tabular import risk
from core.charts import risk as risk_charts
from core.errors import LucidDxError
from ui.card_panel import model_card_panel

FORM_KEY = "risk_form"
PATIENT_KEY = "risk_patient"  # the last submitted, valid patient: {feature: float | None}
ISSUES_KEY = "risk_issues"  # messages from the last submit: {feature: [(severity, message)]}


@st.cache_resource(show_spinner="Loading the risk model…")
def get_predictor(spec: str) -> risk.RiskPredictor:
    return risk.load_risk_model(spec)


def field_key(name: str) -> str:
    return f"risk_field_{name}"


def field_label(spec: risk.FeatureSpec) -> str:
    return f"{spec.label} ({spec.unit})" if spec.unit else spec.label


def field_help(spec: risk.FeatureSpec) -> str:
    lo, hi = spec.plausible
    optional = " Optional: blank = not measured (the model imputes it and shows it)." if spec.optional else " Required."
    return f"{spec.help} Trained range {lo:g}–{hi:g} {spec.unit}.{optional}"


def fill_example() -> None:
    for name, value in risk.EXAMPLE_PATIENT.items():
        st.session_state[field_key(name)] = value


def patient_form() -> None:
    """The form. On submit, validate in core and keep the patient (or the field messages) in session state."""
    st.button("Fill in an example patient", on_click=fill_example, key="risk_example")
    slots: dict[str, Any] = {}
    with st.form(FORM_KEY):
        columns = st.columns(2)
        values: dict[str, float | None] = {}
        for i, spec in enumerate(risk.FEATURES):
            with columns[i % 2]:
                step: float | int = 1 if spec.integer else spec.step
                fmt = "%d" if spec.integer else ("%.3f" if spec.step < 0.01 else "%.1f")
                values[spec.name] = st.number_input(
                    field_label(spec) + ("" if spec.optional else " *"), value=None, step=step, format=fmt,
                    key=field_key(spec.name), help=field_help(spec),
                    placeholder="not measured" if spec.optional else "required",
                )
                slots[spec.name] = st.empty()
        submitted = st.form_submit_button("Compute risk", type="primary")
    if submitted:
        clean, issues = risk.check_patient(values)
        by_field: dict[str, list[tuple[str, str]]] = {}
        for issue in issues:
            by_field.setdefault(issue.field, []).append((issue.severity, issue.message))
        st.session_state[ISSUES_KEY] = by_field
        has_error = any(i.severity == "error" for i in issues)
        st.session_state[PATIENT_KEY] = None if has_error else clean
    for name, messages in st.session_state.get(ISSUES_KEY, {}).items():
        with slots[name].container():
            for severity, message in messages:
                (st.error if severity == "error" else st.warning)(message)
    if any(sev == "error" for msgs in st.session_state.get(ISSUES_KEY, {}).values() for sev, _ in msgs):
        st.error("Some values are impossible: correct the fields marked above, then compute again.")


def show_result(predictor: risk.RiskPredictor, result: risk.RiskResult) -> None:
    summary = risk.meta_summary(predictor)
    left, right = st.columns([1, 2])
    with left:
        st.metric("Five-year diabetes risk", f"{result.risk:.1%}",
                  help="Calibrated probability of diabetes within five years (10-fold out-of-fold calibration "
                       f"slope {summary['calibration_slope']:.2f}, intercept {summary['calibration_intercept']:+.2f}).")
        verdict = "above" if result.above_threshold else "below"
        st.markdown(f"**{verdict.capitalize()}** the decision threshold of {result.threshold:.1%}.")
        lo, hi = result.risk_interval
        st.caption(
            f"How sure: 95% interval {lo:.1%}–{hi:.1%} over bootstrap refits of the model. Model-wide: 10-fold CV "
            f"AUC {summary['cv_auc']:.3f} (95% CI {summary['cv_auc_ci95'][0]:.3f}–{summary['cv_auc_ci95'][1]:.3f}), "
            f"Brier {summary['brier']:.3f}; at the threshold sensitivity {summary['sensitivity']:.0%}, "
            f"specificity {summary['specificity']:.0%}."
        )
    with right:
        st.plotly_chart(risk_charts.risk_gauge(result.risk, result.threshold, result.risk_interval),
                        key="risk_gauge")
    imputed = [f"{name} (imputed {risk.FEATURE_BY_NAME[name].format_value(round(v, 3))})"
               for name, v in result.imputed.items() if v is not None]
    if imputed:
        st.info("Not measured, so the model used the training median and its 'not measured' effect: "
                + ", ".join(imputed) + ". The waterfall shows what not knowing each value did to the risk.")
    for warning in result.warnings:
        st.warning(warning)
    st.plotly_chart(risk_charts.waterfall(result), key="risk_waterfall")
    st.caption(
        f"Exact SHAP ({predictor.meta.get('explanation', {}).get('explainer', 'exact explainer')}): base value "
        f"{result.base_value:+.3f} + contributions {sum(result.contributions.values()):+.3f} = "
        f"{result.output:+.3f} log-odds = {result.risk:.1%}."
    )


def what_if(predictor: risk.RiskPredictor, patient: dict[str, float | None], result: risk.RiskResult) -> None:
    st.subheader("What if?")
    st.caption("Change one value and see how the risk would move. Nothing here changes the patient above.")
    left, right = st.columns(2)
    name = left.selectbox("Value to change", risk.FEATURE_NAMES, key="risk_whatif_feature",
                          format_func=lambda n: field_label(risk.FEATURE_BY_NAME[n]))
    spec = risk.FEATURE_BY_NAME[name]
    current = patient.get(name)
    new_value = right.number_input(
        f"New {field_label(spec)}", value=current if current is None or not spec.integer else int(current),
        step=1 if spec.integer else spec.step, key=f"risk_whatif_value_{name}", help=field_help(spec),
    )
    try:
        changed = predictor.predict_one({**patient, name: new_value})
    except LucidDxError as exc:
        right.error(str(exc))
        return
    st.metric(f"Risk with {spec.name} = {spec.format_value(new_value)}", f"{changed.risk:.1%}",
              delta=f"{(changed.risk - result.risk) * 100:+.1f} percentage points", delta_color="inverse")


def researcher_view(predictor: risk.RiskPredictor) -> None:
    st.caption("Exact SHAP values of the model over all training patients (log-odds).")
    X, _base, values = predictor.global_explanation()
    st.plotly_chart(risk_charts.importance_bar(values), key="risk_importance")
    st.plotly_chart(risk_charts.beeswarm(X, values), key="risk_beeswarm")
    feature = st.selectbox("Dependence plot for", risk.FEATURE_NAMES, index=risk.FEATURE_NAMES.index("Glucose"),
                           key="risk_dependence_feature")
    imputed = predictor.model.imputed_values().get(feature)
    st.plotly_chart(risk_charts.dependence_plot(feature, X, values, imputed), key="risk_dependence")
    families = predictor.meta.get("validation", {}).get("families", [])
    if families:
        st.markdown("**Model families compared (10-fold CV on the same folds)**")
        st.dataframe(
            [{"family": f["family"], "CV AUC": round(f["cv_auc"], 3),
              "95% CI": f"{f['cv_auc_ci95'][0]:.3f}–{f['cv_auc_ci95'][1]:.3f}", "Brier": round(f["brier"], 4),
              "explainer": f["explainer"]} for f in families],
            hide_index=True,
        )
        st.caption("Chosen by: " + predictor.meta["validation"].get("selection_rule", ""))


@st.cache_data(show_spinner="Scoring the patients…", max_entries=8)
def score_upload(data: bytes, name: str, spec: str) -> list[dict]:
    """Score an uploaded CSV once; reruns (what-if edits in another tab) reuse the result."""
    _header, rows = risk.read_patient_csv(data, name)
    return risk.score_rows(rows, get_predictor(spec))


def batch_view(spec: str) -> None:
    st.caption("One patient per row with the columns " + ", ".join(risk.FEATURE_NAMES)
               + ". Blank or 0 in Glucose, BloodPressure, SkinThickness, Insulin or BMI means not measured; "
               "extra columns (e.g. Outcome) are ignored.")
    upload = st.file_uploader("Patients CSV", type=["csv"], key="risk_batch_upload")
    if upload is None:
        return
    try:
        results = score_upload(upload.getvalue(), upload.name, spec)
    except LucidDxError as exc:
        st.error(str(exc))
        return
    bad = [r for r in results if not r["ok"]]
    st.markdown(f"Scored **{len(results) - len(bad)}** of {len(results)} rows.")
    for r in bad:
        st.error(r["error"])
    st.dataframe(risk.batch_table(results), hide_index=True)
    st.download_button("Download the results (CSV)", risk.batch_csv(results), file_name="risk_results.csv",
                       mime="text/csv", key="risk_batch_download")


st.title("Patient risk")
st.caption("Five-year risk of type 2 diabetes for adult women, with an exact explanation of every value's effect. "
           "Decision support only: a clinician reviews every result.")
specs, default_index = risk.model_choices()
if not specs:
    st.error("No risk model is registered. Train one: python -m core train-risk --csv FILE --name diabetes_risk")
    st.stop()
model_spec = st.selectbox("Risk model", specs, index=default_index, key="risk_model")
try:
    predictor = get_predictor(model_spec)
except LucidDxError as exc:
    st.error(str(exc))
    st.stop()
model_card_panel(model_spec)

patient_tab, batch_tab, research_tab = st.tabs(["Patient", "Batch (CSV)", "For researchers"])
with patient_tab:
    patient_form()
    patient = st.session_state.get(PATIENT_KEY)
    if patient:
        current = predictor.predict([patient])[0]
        current.warnings = [m for msgs in st.session_state.get(ISSUES_KEY, {}).values() for s, m in msgs if s == "warning"]
        show_result(predictor, current)
        what_if(predictor, patient, current)
with batch_tab:
    batch_view(model_spec)
with research_tab:
    researcher_view(predictor)
