"""The explanation lab (researchers): how far to trust each explanation method of a model, measured on labeled films."""

from __future__ import annotations

import streamlit as st

from core.charts import explanations as explanation_charts
from core.errors import LucidDxError
from core.i18n import _
from core.services import audit, catalog, explanations, table_export
from core.services import training as training_service
from ui.auth import require_page
from ui.language import apply_language

RESULT_KEY = "lab_result"


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


def run(spec: str) -> None:
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
    limit = st.number_input(_("Films (an equal share per class)"), 2, 500, 20, key="lab_limit")
    try:
        data = None
        if source == "upload":
            upload = st.file_uploader(_("Zip of the labeled films"), type=["zip"], key="lab_zip")
            if upload is not None and st.button(_("Measure"), type="primary", key="lab_run_zip", disabled=not methods):
                data = training_service.import_upload(upload.getvalue(), upload.name)
        else:
            path = st.text_input(_("Folder (or .zip) on the server"), key="lab_path", placeholder="/data/validation")
            if st.button(_("Measure"), type="primary", key="lab_run_path", disabled=not (path.strip() and methods)):
                data = training_service.server_dataset(path.strip())
        if data is not None:
            with st.status(
                _("Measuring {count} methods on up to {n} films…").format(count=len(methods), n=int(limit)),
                expanded=True,
            ) as status:
                bar = st.progress(0.0)
                with audit.acting(USER, "evaluate", model=spec):  # authorized, run and recorded there
                    result = explanations.evaluate_explanations(
                        data,
                        spec,
                        methods,
                        int(limit),
                        progress=lambda done, total: bar.progress(
                            done / total, text=_("{done} of {total} films").format(done=done, total=total)
                        ),
                    )
                status.update(label=_("Measured on {n} films.").format(n=result["n"]), state="complete")
            st.session_state[RESULT_KEY] = result
    except LucidDxError as exc:
        st.error(str(exc), icon=":material/block:")


def table_rows(result: dict) -> list[dict]:
    rows = []
    for method, s in result["methods"].items():
        ci = s["intervals"]
        row = {_("Method"): explanations.METHODS.get(method, method)}
        for key, label in (
            ("deletion_auc", _("Deletion AUC")),
            ("random_deletion_auc", _("Deletion AUC, random order")),
            ("insertion_auc", _("Insertion AUC")),
            ("random_insertion_auc", _("Insertion AUC, random order")),
            ("randomization_rank_corr", _("Randomisation r")),
            ("stability_rank_corr", _("Stability r")),
            ("seconds_per_film", _("Seconds per film")),
        ):
            low, high = ci.get(key) or [None, None]
            row[label] = round(s[key], 3)
            if low is not None and key != "seconds_per_film":
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
    rows = table_rows(result)
    st.dataframe(rows, hide_index=True, use_container_width=True)
    st.plotly_chart(explanation_charts.comparison_figure(result, explanations.METHODS), use_container_width=True)
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
    run(SPEC)
if st.session_state.get(RESULT_KEY):
    show(st.session_state[RESULT_KEY])
