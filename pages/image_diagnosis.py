"""Image diagnosis: upload chest X-rays (or try a sample), see the prediction and why the model said it."""

from __future__ import annotations

import streamlit as st

from core.charts.diagnosis import probability_figure
from core.errors import LucidDxError
from core.services import imaging as diagnosis
from ui.card_panel import model_card_panel

# Per-session memo size: each entry can hold a full-resolution image (up to ~200 MB).
MEMO_ENTRIES = 16
UPLOAD_HELP = (
    f"PNG, JPEG, BMP, TIFF or DICOM (.dcm or no extension), up to {diagnosis.MAX_UPLOAD_MB} MB each. "
    "Several files at once are fine."
)
ERROR_ICON, WARNING_ICON = ":material/block:", ":material/warning:"


@st.cache_resource(show_spinner="Loading the model…")
def get_classifier(spec: str):
    return diagnosis.load_model(spec)


def cached_result(data: bytes, name: str, spec: str, frame: int | None) -> diagnosis.FileResult:
    """Per-session memo of diagnose() (prediction + Grad-CAM in one pass): reruns never re-predict."""
    memo = st.session_state.setdefault("diagnosis_results", {})
    key = (diagnosis.digest(data), name, spec, frame)
    if key not in memo:
        if len(memo) >= MEMO_ENTRIES:
            memo.pop(next(iter(memo)))  # oldest first: full-size images are large
        memo[key] = diagnosis.diagnose(data, name, get_classifier(spec), frame)
    return memo[key]


def cached_heatmap(result: diagnosis.FileResult, spec: str, method: str, target: str) -> diagnosis.Explanation:
    """Per-session memo of explanations keyed by (file hash, frame, model, method, class).

    The predicted class's Grad-CAM comes with the result itself (no second forward pass).
    """
    memo = st.session_state.setdefault("diagnosis_heatmaps", {})
    key = (result.digest, result.frame, spec, method, target)
    if key not in memo:
        if len(memo) >= MEMO_ENTRIES:
            memo.pop(next(iter(memo)))  # oldest first: full-size images are large
        memo[key] = diagnosis.explain(result, get_classifier(spec), method, target)
    return memo[key]


def pick_model() -> str | None:
    specs, default_index = diagnosis.model_choices()
    if not specs:
        st.error("No image model is registered. Train one on the Retrain page.")
        return None
    return st.selectbox(
        "Model", specs, index=default_index, key="image_model", help="Every version of every image model."
    )


def gather_inputs() -> list[tuple[str, bytes]]:
    uploads = st.file_uploader(
        "Chest X-ray images", accept_multiple_files=True, key="image_uploads", help=UPLOAD_HELP,
        max_upload_size=diagnosis.MAX_UPLOAD_MB,  # the image door's limit, stated where users upload
    )
    files = [(upload.name, upload.getvalue()) for upload in uploads or []]
    samples = diagnosis.sample_images()
    if not files and samples:
        if st.toggle("Try a sample image", key="use_sample"):
            chosen = st.selectbox("Sample", samples, format_func=lambda p: p.name, key="sample_file")
            files = [(chosen.name, chosen.read_bytes())]
    return files


def show_result_table(results: list[diagnosis.FileResult]) -> diagnosis.FileResult:
    st.dataframe(
        diagnosis.results_table(results),
        hide_index=True,
        column_config={"probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")},
    )
    for item in results:
        if not item.ok:
            st.error(item.error, icon=ERROR_ICON)
    names = [item.name for item in results]
    chosen = st.selectbox("Show details for", range(len(results)), format_func=lambda i: names[i], key="detail_file")
    return results[chosen]


def show_detail(result: diagnosis.FileResult, spec: str) -> None:
    if not result.ok:
        st.error(result.error, icon=ERROR_ICON)
        return
    image, prediction = result.image, result.prediction
    assert image is not None and prediction is not None and result.prepared is not None
    st.subheader(f"{result.name}: {prediction.label}")
    if prediction.out_of_distribution:
        st.warning(
            "This prediction is unreliable: the image is unlike the chest X-rays the model was trained on "
            "(it may be another body part, a photo, or a very different scanner). Do not act on it.",
            icon=WARNING_ICON,
        )
    for note in image.notes:
        st.info(note)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(probability_figure(prediction), width="stretch")
    with right:
        with st.expander("Image header (no patient data)", expanded=image.format == "DICOM"):
            st.dataframe(diagnosis.header_rows(image), hide_index=True)
    st.markdown("#### Why the model said it")
    classes = list(prediction.probabilities)
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox(
        "Explanation method", list(diagnosis.METHODS), format_func=diagnosis.METHODS.get, key="explain_method"
    )
    target = c2.selectbox("Explain class", classes, index=classes.index(prediction.label), key=f"explain_class_{result.digest}")
    opacity = c3.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="heatmap_opacity")
    with st.spinner(f"Computing {diagnosis.METHODS[method]}…"):
        explanation = cached_heatmap(result, spec, method, target)
    original, overlaid = st.columns(2)
    original.image(diagnosis.display_image(image.pixels), caption="Original", width="stretch")
    overlay = diagnosis.overlay(diagnosis.display_image(image.pixels) / 255.0, explanation, opacity)
    overlaid.image(overlay, caption=f"{diagnosis.METHODS[method]} for {target}", width="stretch")
    st.download_button(
        "Download heatmap (PNG)",
        lambda: diagnosis.heatmap_png(explanation, image.shape),  # encoded only when clicked
        file_name=f"{result.name.rsplit('.', 1)[0]}_{method}_{target}.png",
        mime="image/png",
    )


def render() -> None:
    model_spec = pick_model()
    inputs = gather_inputs()
    if not model_spec:
        return
    if not inputs:
        st.info("Upload one or more images, or switch on “Try a sample image”.")
        return
    with st.spinner("Reading and classifying…"):
        file_results = [cached_result(data, name, model_spec, None) for name, data in inputs]
    selected = show_result_table(file_results) if len(file_results) > 1 else file_results[0]
    if selected.ok and selected.image is not None and selected.image.n_frames > 1:
        default_frame = selected.image.frame_index or 0
        frame = st.number_input("Frame", 1, selected.image.n_frames, default_frame + 1, key=f"frame_{selected.digest}")
        if frame - 1 != default_frame:
            data = next(d for n, d in inputs if n == selected.name)
            selected = cached_result(data, selected.name, model_spec, int(frame) - 1)
    show_detail(selected, model_spec)
    model_card_panel(model_spec)


st.title("Image diagnosis")
st.caption("Decision support only: every prediction needs a clinician's review.")
try:
    render()
except LucidDxError as exc:  # e.g. a version deleted from another session, or weights that no longer load
    st.error(str(exc), icon=ERROR_ICON)
