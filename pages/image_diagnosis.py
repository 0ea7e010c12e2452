"""Image diagnosis: upload chest X-rays (or try a sample), read the films, see why the model said it.

The page only draws: numbers, tables, exports and windowed films come from ``core.services.imaging``,
figures from ``core.charts``. The model loads on the first film, never before the page's first paint.
"""

from __future__ import annotations

import streamlit as st

from core import i18n
from core.charts.diagnosis import probability_figure
from core.charts.viewer import VIEWER_CONFIG, film_figure, window_text
from core.errors import LucidDxError
from core.i18n import _
from core.services import audit, deid, explanations, table_export
from core.services import imaging as diagnosis
from ui.auth import allows, guarded, require_page
from ui.card_panel import model_card_panel
from ui.language import apply_language

# Per-session memo size: each entry can hold a full-resolution image (up to ~200 MB).
MEMO_ENTRIES = 16
ERROR_ICON, WARNING_ICON = ":material/block:", ":material/warning:"
KEPT_BATCH = "image_batch_kept"
TABLE_COLUMNS = ["file", "finding", "class", "probability", "threshold", "threshold source", "model", "error"]


@st.cache_resource(show_spinner=False)
def _load_classifier(spec: str):
    return diagnosis.load_model(spec)


def get_classifier(spec: str):
    """The model, loaded once per process (the first film waits for it, with a spinner)."""
    with st.spinner(_("Loading the model…")):
        return _load_classifier(spec)


def _memo(name: str) -> dict:
    memo = st.session_state.setdefault(name, {})
    if len(memo) >= MEMO_ENTRIES:
        memo.pop(next(iter(memo)))  # oldest first: full-size images are large
    return memo


def cached_result(
    data: bytes, name: str, spec: str, frame: int | None, in_force: tuple[float | None, str]
) -> diagnosis.FileResult:
    """Per-session memo of diagnose() (prediction + Grad-CAM in one pass): reruns never re-predict.

    The threshold in force is part of the key: adopting a site threshold re-decides every film.
    """
    key = (diagnosis.digest(data), name, spec, frame, in_force)
    memo = st.session_state.setdefault("diagnosis_results", {})
    if key not in memo:
        waiting = st.empty()
        with audit.acting(USER, "predict", model=spec, data=data) as act:  # authorized, run and recorded there
            result = diagnosis.diagnose(
                data,
                name,
                get_classifier(spec),
                frame,
                on_wait=lambda ahead: waiting.info(
                    _("Many films are being read right now: {ahead} ahead of yours. Yours follows in turn.").format(
                        ahead=ahead
                    )
                ),
            )
            act.outcome = "ok" if result.ok else "bad-input"
        waiting.empty()
        _memo("diagnosis_results")[key] = result
    return memo[key]


def cached_heatmap(
    result: diagnosis.FileResult, spec: str, method: str, target: str, data: bytes
) -> diagnosis.Explanation:
    """Per-session memo of explanations keyed by (file hash, frame, model, method, class)."""
    key = (result.digest, result.frame, spec, method, target)
    memo = st.session_state.setdefault("diagnosis_heatmaps", {})
    if key not in memo:
        with audit.acting(USER, "explain", model=spec, data=data):
            _memo("diagnosis_heatmaps")[key] = diagnosis.explain(result, get_classifier(spec), method, target)
    return memo[key]


def pick_model() -> str | None:
    """The model to read with: clinicians see approved versions only, others see every version, marked."""
    specs, default_index = diagnosis.model_choices(USER)
    if not specs:
        st.error(_("No approved image model is available: an administrator activates one on the Retrain page."))
        return None
    if st.session_state.get("image_model") not in specs:
        st.session_state.pop("image_model", None)  # e.g. a version no longer approved
    labels = diagnosis.model_labels(specs)  # made now, in this run's language
    picked = st.selectbox(
        _("Model"),
        specs,
        index=default_index,
        key="image_model",
        format_func=labels.__getitem__,
        help=_("Approved (active) versions; researchers also see versions not approved for clinical use."),
    )
    spec, approved = diagnosis.usable_model(USER, picked)  # the service decides, not the picker
    if not approved:
        st.warning(
            _("{spec} is not approved for clinical use: for research only, not for patient care.").format(spec=spec),
            icon=WARNING_ICON,
        )
    return spec


def gather_inputs() -> list[tuple[str, bytes]]:
    help_text = _(
        "PNG, JPEG, BMP, TIFF or DICOM (.dcm or no extension), up to {mb} MB each. Several files at once are fine."
    ).format(mb=diagnosis.MAX_UPLOAD_MB)
    came_back = "image_uploads" not in st.session_state  # the uploader's state is gone after another page
    uploads = st.file_uploader(
        _("Chest X-ray images"),
        accept_multiple_files=True,
        key="image_uploads",
        help=help_text,
        max_upload_size=diagnosis.MAX_UPLOAD_MB,  # the image door's limit, stated where users upload
    )
    files = [(upload.name, upload.getvalue()) for upload in uploads or []]
    # Streamlit forgets an uploader's files when the reader opens another page; the batch is kept here (this
    # session only, cleared at sign-out and idle expiry) so coming back shows the same films.
    if files:
        st.session_state[KEPT_BATCH] = files
    elif not came_back:  # the reader removed the films from the uploader: they are gone
        st.session_state.pop(KEPT_BATCH, None)
    elif st.session_state.get(KEPT_BATCH):
        files = st.session_state[KEPT_BATCH]
        left, right = st.columns([3, 1])
        left.caption(_("{n} film(s) kept from before you left this page.").format(n=len(files)))
        if right.button(_("Clear these films"), key="clear_kept_batch"):
            st.session_state.pop(KEPT_BATCH, None)
            st.rerun()
    samples = diagnosis.sample_images()
    if not files and samples:
        if st.toggle(_("Try a sample image"), key="use_sample"):
            chosen = st.selectbox(_("Sample"), samples, format_func=lambda p: p.name, key="sample_file")
            files = [(chosen.name, chosen.read_bytes())]
    return files


def show_table(rows: list[dict]) -> None:
    """The sortable results table (click a header to sort) and its CSV / Excel exports."""
    number = st.column_config.NumberColumn
    shown = [{**row, "threshold source": diagnosis.threshold_source_text(row.get("threshold source"))} for row in rows]
    st.dataframe(
        shown,
        hide_index=True,
        column_order=TABLE_COLUMNS,
        key="results_table",
        column_config={
            "file": _("File"),
            "finding": _("Finding"),
            "class": _("Probability of"),
            "model": _("Model"),
            "probability": number(_("Probability"), format="%.2f"),
            "threshold": number(_("Threshold"), format="%.2f"),
            "threshold source": _("Threshold source"),
            "error": _("Error"),
        },
    )
    left, right = st.columns(2)
    left.download_button(
        _("Export CSV"),
        guarded(lambda: table_export.to_csv(rows)),
        file_name="luciddx_results.csv",
        mime="text/csv",
        icon=":material/download:",
        key="export_csv",
        on_click=audit.downloaded,
        args=(USER, "export"),
    )
    right.download_button(
        _("Export Excel"),
        guarded(lambda: table_export.to_xlsx(rows)),
        file_name="luciddx_results.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        icon=":material/download:",
        key="export_xlsx",
        on_click=audit.downloaded,
        args=(USER, "export"),
    )


def _step(options: list[int], delta: int) -> None:
    current = st.session_state.get("detail_file")
    index = options.index(current) if current in options else 0
    st.session_state["detail_file"] = options[(index + delta) % len(options)]


def show_batch(
    results: list[diagnosis.FileResult], spec: str, in_force: tuple[float | None, str]
) -> diagnosis.FileResult | None:
    """Filter, table, exports and next/previous through the films the filter keeps."""
    rows = diagnosis.results_table(results, spec, in_force)
    names = {choice: diagnosis.filter_name(choice) for choice in diagnosis.filter_choices(rows)}  # translated now
    choice = st.selectbox(_("Show"), list(names), format_func=names.get, key="result_filter")
    kept = diagnosis.filter_rows(rows, choice)
    show_table(kept)
    for item in results:
        if not item.ok:
            st.error(item.error, icon=ERROR_ICON)
    options = [i for i, row in enumerate(rows) if row in kept]
    if not options:
        st.info(_("No file matches this filter."))
        return None
    if st.session_state.get("detail_file") not in options:
        st.session_state["detail_file"] = options[0]
    back, pick, forward = st.columns([1, 4, 1], vertical_alignment="bottom")
    back.button(
        _("Previous"),
        icon=":material/chevron_left:",
        key="previous_file",
        on_click=_step,
        args=(options, -1),
        shortcut="P",
        help=_("Previous film (key P)"),
    )
    chosen = pick.selectbox(_("Show details for"), options, format_func=lambda i: results[i].name, key="detail_file")
    forward.button(
        _("Next"),
        icon=":material/chevron_right:",
        icon_position="right",
        key="next_file",
        on_click=_step,
        args=(options, 1),
        shortcut="N",
        help=_("Next film (key N)"),
    )
    return results[chosen]


def show_reading(result: diagnosis.FileResult) -> None:
    """The finding as a heading, the positive-class bar and the same numbers as text beside it."""
    prediction = result.prediction
    assert prediction is not None and result.image is not None
    said = diagnosis.reading(prediction)
    st.subheader(_("{file}: {finding}").format(file=result.name, finding=_(said.finding)))
    text = diagnosis.reading_text(said)
    if not said.assessable:
        st.warning(
            _(
                "Not assessable: the image is unlike the chest X-rays the model was trained on (it may be another "
                "body part, a photo, or a very different scanner). Its numbers are unreliable; do not act on them."
            ),
            icon=WARNING_ICON,
        )
    if said.threshold_source != "stored":
        st.info(
            _("Threshold adopted from site validation {source}.").format(
                source=said.threshold_source.split(":", 1)[-1]
            ),
            icon=":material/tune:",
        )
    for note in result.image.notes:
        st.info(note)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(probability_figure(prediction), width="stretch", alt=text, key="probability_chart")
        st.caption(text)
    with right:
        with st.expander(_("Image header (no patient data)"), expanded=result.image.format == "DICOM"):
            st.dataframe(
                diagnosis.header_rows(result.image),
                hide_index=True,
                column_config={"field": _("Field"), "value": _("Value")},
            )


def pick_window(levels, digest: str) -> tuple[float, float] | None:
    """Window/level of a DICOM: the views that fit its units (the file's own, CT presets only for CT,
    histogram views for a radiograph), the full range, or set by hand."""
    if levels is None:
        return None
    presets = {**diagnosis.window_presets(levels), "custom": _("Adjust by hand")}
    default = list(presets).index("file" if "file" in presets else "full")  # what the door showed: the file's view
    preset = st.selectbox(
        _("Window/level"), list(presets), index=default, format_func=presets.get, key=f"window_preset_{digest}"
    )
    centre, width = diagnosis.preset_window(levels, "file" if preset == "custom" else preset)
    if preset == "custom":
        low, high = levels.value_range
        span = max(high - low, 1.0)
        c1, c2 = st.columns(2)
        centre = c1.slider(_("Window centre"), low, high, min(max(centre, low), high), key=f"window_centre_{digest}")
        width = c2.slider(
            _("Window width"), 1.0, 2 * span, min(max(width, 1.0), 2 * span), key=f"window_width_{digest}"
        )
    return float(centre), float(width)


def show_viewer(result: diagnosis.FileResult, spec: str, data: bytes) -> None:
    """The film and its heatmap, zoom and pan locked together, with window/level for DICOM."""
    prediction, image = result.prediction, result.image
    assert prediction is not None and image is not None
    st.markdown("#### " + _("Film viewer: why the model said it"))
    classes = list(prediction.probabilities)
    c1, c2, c3 = st.columns(3)
    measured = explanations.measured_faithfulness(spec)  # each method's faithfulness, measured on held-out films
    # Labels are made here, in the reader's language: a format function may be called later, outside this run.
    labels = {m: explanations.method_label(m, measured) for m in diagnosis.METHODS}
    method = c1.selectbox(
        _("Explanation method"),
        list(diagnosis.METHODS),
        format_func=labels.__getitem__,
        key="explain_method",
        help=_(
            "Beside each method: its deletion AUC against a random pixel order (lower is more "
            "faithful) and its rank correlation with the map of a model with re-initialised top "
            "layers (lower is better), from the model card's Explanations section."
        ),
    )
    target = c2.selectbox(
        _("Explain class"), classes, index=classes.index(prediction.decision), key=f"explain_class_{result.digest}"
    )
    opacity = c3.slider(_("Heatmap opacity"), 0.0, 1.0, 0.45, 0.05, key="heatmap_opacity")
    levels = diagnosis.film_levels(result)  # kept by the door's one decode; values computed once, on demand
    window = pick_window(levels, result.digest)
    full = st.toggle(
        _("Full resolution"),
        key="full_resolution",
        help=_("Off: a downsampled film for speed. On: every pixel (slower for large films)."),
    )
    with st.spinner(_("Computing {method}…").format(method=diagnosis.METHODS[method])):
        explanation = cached_heatmap(result, spec, method, target, data)
    view = diagnosis.film_view(result, explanation, opacity, levels, window, full_resolution=full)
    overlay_title = _("{method} for {cls}").format(method=diagnosis.METHODS[method], cls=target)
    figure = film_figure(
        view.original,
        view.overlay,
        view.shape,
        (_("Original"), overlay_title),
        revision=f"{result.digest}:{result.frame}",
    )
    described = _(
        "Film {width} × {height} pixels, shown at {shown_w} × {shown_h}; left the film, right {overlay}. "
        "Scroll or use the toolbar to zoom; both sides move together."
    ).format(
        width=view.shape[1],
        height=view.shape[0],
        shown_w=view.original.shape[1],
        shown_h=view.original.shape[0],
        overlay=overlay_title,
    )
    st.plotly_chart(figure, width="stretch", config=VIEWER_CONFIG, key="film_viewer", alt=described)
    st.caption(" ".join(part for part in (described, window_text(view.window)) if part))
    st.download_button(
        _("Download heatmap (PNG)"),
        guarded(
            lambda: diagnosis.heatmap_png(explanation, image.shape)
        ),  # encoded only when clicked, in a live session
        file_name=f"{result.name.rsplit('.', 1)[0]}_{method}_{target}.png",
        mime="image/png",
        icon=":material/download:",
        on_click=audit.downloaded,
        args=(USER, "export"),
        kwargs={"model": spec, "data": data},
    )
    lang = "zh" if i18n.language().startswith("zh") else "en"  # the click is served outside this run
    st.download_button(
        _("Download case report (PDF)"),
        guarded(
            lambda: case_report_pdf(data, result.name, spec, method, lang, target)
        ),  # only when clicked, in a live session
        file_name="luciddx_case_report.pdf",
        mime="application/pdf",
        icon=":material/picture_as_pdf:",
        key="case_report",
        on_click=audit.downloaded,
        args=(USER, "report"),
        kwargs={"model": spec, "data": data},
    )
    if image.format == "DICOM" and allows(USER, "deidentify"):
        deidentified_download(data, result.name)


def case_report_pdf(data: bytes, name: str, spec: str, method: str, lang: str, target: str | None = None) -> bytes:
    """The one-page PDF case report with the overlay on screen (``method`` for class ``target``); its module
    (cards, reportlab) loads on the first click, not at first paint."""
    from core.services import reports

    return reports.case_report([(data, name)], spec, method, lang, target).pdf


def deidentified_download(data: bytes, name: str) -> None:
    """A de-identified copy of the DICOM (PS3.15 Basic Profile), built in memory when clicked."""
    memo = st.session_state.setdefault("deidentified", {})
    key = diagnosis.digest(data)
    if key not in memo:  # built (and a failure audited) once per film, not on every rerun
        try:
            memo[key] = deid.deidentified(data, name, USER)
        except LucidDxError as exc:
            memo[key] = str(exc)
    copy = memo[key]
    if isinstance(copy, str):
        st.warning(copy, icon=WARNING_ICON)
        return
    st.download_button(
        _("Download de-identified DICOM"),
        guarded(lambda: copy.data),
        file_name=copy.file_name,
        mime="application/dicom",
        icon=":material/shield_person:",
        key="deidentified_download",
        on_click=audit.downloaded,
        args=(USER, "deidentify"),
        kwargs={"data": data},
    )
    if copy.burned_in_annotation != "NO":
        st.caption(
            _("Burned-in annotation: {value}. Check the pixels for text before sharing.").format(
                value=copy.burned_in_annotation
            )
        )


def pick_frame(selected: diagnosis.FileResult, inputs, spec: str, in_force) -> diagnosis.FileResult:
    """A multi-frame DICOM's frame picker; returns the result of the chosen frame."""
    if not (selected.ok and selected.image is not None and selected.image.n_frames > 1):
        return selected
    default_frame = selected.image.frame_index or 0
    frame = st.number_input(_("Frame"), 1, selected.image.n_frames, default_frame + 1, key=f"frame_{selected.digest}")
    if frame - 1 == default_frame:
        return selected
    data = next(d for n, d in inputs if n == selected.name)
    return cached_result(data, selected.name, spec, int(frame) - 1, in_force)


def render() -> None:
    model_spec = pick_model()
    inputs = gather_inputs()
    if not model_spec:
        return
    if not inputs:
        st.info(_("Upload one or more images, or switch on “Try a sample image”."))
        return
    in_force = diagnosis.threshold_in_force(model_spec)
    with st.spinner(_("Reading and classifying…")):
        file_results = [cached_result(data, name, model_spec, None, in_force) for name, data in inputs]
    selected = show_batch(file_results, model_spec, in_force) if len(file_results) > 1 else file_results[0]
    if selected is None:
        return
    selected = pick_frame(selected, inputs, model_spec, in_force)
    if not selected.ok:
        st.error(selected.error, icon=ERROR_ICON)
        return
    show_reading(selected)
    show_viewer(selected, model_spec, next(d for n, d in inputs if n == selected.name))
    model_card_panel(model_spec)


apply_language()
USER = require_page("predict")
st.title(_("Image diagnosis"))
st.caption(_("Decision support only: every prediction needs a clinician's review."))
try:
    render()
except LucidDxError as exc:  # e.g. a version deleted from another session, or weights that no longer load
    st.error(str(exc), icon=ERROR_ICON)
