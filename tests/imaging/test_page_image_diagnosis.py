"""The Image Diagnosis page, driven headless through the real app with the real bundled model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from streamlit.testing.v1 import AppTest

from core.i18n import format_threshold
from core.imaging.classifier import load_classifier
from core.services import imaging as diagnosis

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
SAMPLES = ROOT / "assets" / "samples"
SAMPLE = SAMPLES / "pneumonia_bacteria_1.jpeg"


@pytest.fixture()
def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Image diagnosis"  # the app's default page is this one
    return at


def upload(at: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    at.file_uploader(key="image_uploads").set_value(list(files)).run()
    assert not at.exception, at.exception
    return at


def viewer(at: AppTest) -> dict:
    """The film viewer's plotly figure (the second chart; the first is the probability bar)."""
    charts = at.get("plotly_chart")
    assert len(charts) == 2, "the probability bar and the film viewer"
    return json.loads(charts[1].proto.spec)


def overlay_caption(at: AppTest) -> str:
    return viewer(at)["layout"]["annotations"][1]["text"]


def film_sources(at: AppTest) -> list[str]:
    return [trace["source"] for trace in viewer(at)["data"]]


def test_an_uploaded_xray_gets_a_prediction_a_heatmap_and_the_card(app: AppTest) -> None:
    classes = load_classifier().classes
    upload(app, (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"))
    heading = app.subheader[0].value
    assert heading.startswith(f"{SAMPLE.name}: ") and heading.split(": ")[1] in classes
    predicted = heading.split(": ")[1]
    figure = viewer(app)
    assert figure["layout"]["annotations"][0]["text"] == "Original" and overlay_caption(app) == f"Grad-CAM for {predicted}"
    assert figure["layout"]["xaxis2"]["matches"] == "x" and figure["layout"]["yaxis2"]["matches"] == "y"
    said = next(c.value for c in app.caption if c.value.startswith("PNEUMONIA probability "))
    threshold_text = format_threshold(load_classifier().threshold)
    assert said.endswith(f": {predicted}") and f", threshold {threshold_text}: " in said  # the chart's numbers as text
    assert app.get("plotly_chart")[0].proto.alt == said
    assert [b.label for b in app.get("download_button")] == ["Download heatmap (PNG)", "Download case report (PDF)"]
    assert any("chest_xray:" in md.value for md in app.markdown), "the model card panel is shown"

    other = next(c for c in classes if c != predicted)
    app.selectbox(key="explain_method").set_value("gradcam++").run()
    next(s for s in app.selectbox if s.label == "Explain class").set_value(other).run()
    assert not app.exception
    assert overlay_caption(app) == f"Grad-CAM++ for {other}"
    before = film_sources(app)
    app.slider(key="heatmap_opacity").set_value(0.8).run()
    assert not app.exception and film_sources(app)[0] == before[0] and film_sources(app)[1] != before[1]


def test_a_bad_file_shows_its_error_and_the_others_go_on(app: AppTest) -> None:
    upload(
        app,
        ("bad.png", b"this is not a picture", "image/png"),
        (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"),
        ("empty.dcm", b"", "application/dicom"),
    )
    table = app.dataframe[0].value
    assert list(table["file"]) == ["bad.png", SAMPLE.name, "empty.dcm"]
    model = load_classifier()
    assert all(table["model"] == model.spec) and all(table["threshold"] == round(model.threshold, 2))
    assert table["error"][0] and table["error"][2] and not table["error"][1]
    assert table["label"][1] in load_classifier().classes
    errors = [e.value for e in app.error]
    assert any(e.startswith("bad.png") for e in errors) and any(e.startswith("empty.dcm") for e in errors)

    app.selectbox(key="detail_file").set_value(1).run()
    assert not app.exception and app.subheader[0].value.startswith(SAMPLE.name)
    assert len(film_sources(app)) == 2
    app.selectbox(key="detail_file").set_value(0).run()
    assert not app.exception and not app.subheader and not app.get("plotly_chart")


def test_a_dicom_shows_its_header_and_an_unlike_image_is_flagged_unreliable(app: AppTest) -> None:
    ct_slice = Path(get_testdata_file("CT_small.dcm"))  # a CT slice, nothing like a chest radiograph
    upload(app, ("ct_slice", ct_slice.read_bytes(), "application/octet-stream"))
    header = app.dataframe[0].value
    fields = dict(zip(header["field"], header["value"]))
    assert fields["Modality"] == "CT" and fields["Size (pixels)"] == "128 × 128"
    assert not {"PatientName", "PatientID", "PatientBirthDate"} & set(fields)
    assert app.subheader[0].value == "ct_slice: Not assessable"  # never a diagnosis on an unlike image
    assert any("Not assessable" in w.value and "unreliable" in w.value for w in app.warning)
    assert any(c.value.endswith(": Not assessable") for c in app.caption)

    default = film_sources(app)[0]
    from core.services.imaging import digest

    app.selectbox(key=f"window_preset_{digest(ct_slice.read_bytes())}").set_value("lung").run()
    assert not app.exception
    lung = film_sources(app)[0]
    assert lung != default and any("Window centre -600, width 1500" in c.value for c in app.caption)


def test_the_sample_option_needs_no_upload(app: AppTest) -> None:
    app.toggle(key="use_sample").set_value(True).run()
    assert not app.exception
    app.selectbox(key="sample_file").set_value(SAMPLE).run()
    assert not app.exception
    assert app.subheader[0].value.startswith(f"{SAMPLE.name}: ")
    assert len(film_sources(app)) == 2


def test_a_multi_frame_dicom_offers_a_frame_picker(app: AppTest) -> None:
    movie = Path(get_testdata_file("SC_rgb_rle_2frame.dcm"))
    upload(app, (movie.name, movie.read_bytes(), "application/dicom"))
    picker = app.number_input[0]
    assert (picker.label, picker.min, picker.max) == ("Frame", 1, 2)

    def frames_row() -> str:
        header = app.dataframe[0].value
        return dict(zip(header["field"], header["value"]))["Frames"]

    shown = picker.value
    assert frames_row() == f"2 (showing frame {shown})"
    picker.set_value(3 - shown).run()
    assert not app.exception
    assert frames_row() == f"2 (showing frame {3 - shown})" and len(film_sources(app)) == 2


def test_the_default_view_is_one_forward_pass(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prediction and the default Grad-CAM come from the service's one pass: no bare predict, no second explain."""
    from core.imaging import saliency
    from core.imaging.classifier import ImageClassifier

    calls: list[str] = []

    def counted(name, original):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(saliency, "predict_and_explain", counted("one pass", saliency.predict_and_explain))
    monkeypatch.setattr(saliency, "explain", counted("explain", saliency.explain))
    monkeypatch.setattr(ImageClassifier, "predict_prepared", counted("predict", ImageClassifier.predict_prepared))
    upload(app, (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"))
    app.slider(key="heatmap_opacity").set_value(0.7).run()  # a rerun re-predicts nothing
    assert calls == ["one pass"]
    assert overlay_caption(app).startswith("Grad-CAM for ")


def test_the_uploader_states_the_image_doors_limit() -> None:
    from core.imaging.door import MAX_FILE_BYTES
    from core.services.imaging import MAX_UPLOAD_MB

    assert MAX_UPLOAD_MB * 1024**2 == MAX_FILE_BYTES
    page = (ROOT / "pages" / "image_diagnosis.py").read_text()
    assert "max_upload_size=diagnosis.MAX_UPLOAD_MB" in page
    import tomllib

    # Streamlit's own limit (what an upload box without its own says, "… per file") is the same 512 MB, not 1 GB
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["maxUploadSize"] == MAX_UPLOAD_MB == 512
    for csv_page in ("patient_risk.py", "risk_training.py"):  # CSV boxes state the CSV reader's 64 MB
        assert "max_upload_size=" in (ROOT / "pages" / csv_page).read_text()
    assert "apply_language()" in page


def test_a_batch_reads_the_positive_class_at_the_threshold_in_force(app: AppTest, isolated_home: Path) -> None:
    """Every row: PNEUMONIA's probability beside the threshold in force; filter, next/previous, exports."""
    from core.models import registry
    from tests.imaging.test_reading_viewer import _adopt_strict_threshold

    normal = SAMPLES / "normal_1.jpeg"
    ct_slice = Path(get_testdata_file("CT_small.dcm"))
    upload(app, (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"), (normal.name, normal.read_bytes(), "image/jpeg"),
           ("ct.dcm", ct_slice.read_bytes(), "application/dicom"), ('=HYPERLINK("x").png', b"no", "image/png"))
    table = app.dataframe[0].value
    assert list(table["class"][:3]) == ["PNEUMONIA"] * 3  # one meaning per number, whatever the label
    assert table["probability"][0] > 0.9 and table["probability"][1] < 0.1  # NORMAL's row: PNEUMONIA is unlikely
    assert list(table["finding"][:3]) == ["PNEUMONIA", "NORMAL", "Not assessable"]
    # the CT carries no class and no probability to sort on: sorted by probability it is never among the pneumonias
    assert table["label"].isna()[2] and table["probability"].isna()[2] and not table["probability"].isna()[:2].any()
    model = load_classifier()
    assert set(table["threshold"]) == {round(model.threshold, 2)} and set(table["threshold source"]) == {"stored with the model"}
    assert set(table["model"]) == {model.spec}
    assert [b.label for b in app.get("download_button")][:2] == ["Export CSV", "Export Excel"]

    app.selectbox(key="result_filter").set_value("not_assessable").run()
    assert list(app.dataframe[0].value["file"]) == ["ct.dcm"] and app.subheader[0].value == "ct.dcm: Not assessable"
    app.selectbox(key="result_filter").set_value("errors").run()
    assert list(app.dataframe[0].value["file"]) == ['=HYPERLINK("x").png'] and not app.subheader
    app.selectbox(key="result_filter").set_value("all").run()
    assert app.selectbox(key="detail_file").value == 3 and not app.subheader  # still on the file that failed
    app.button(key="next_file").click().run()  # wraps round to the first file
    assert app.subheader[0].value.startswith(SAMPLE.name)
    app.button(key="next_file").click().run()
    assert app.subheader[0].value == f"{normal.name}: NORMAL"
    app.button(key="previous_file").click().run()
    assert not app.exception and app.subheader[0].value.startswith(SAMPLE.name)

    threshold, source = _adopt_strict_threshold(registry.resolve(model.spec))
    app.selectbox(key="result_filter").set_value("all").run()
    table = app.dataframe[0].value
    assert set(table["threshold"]) == {round(threshold, 2)} and set(table["threshold source"]) == {diagnosis.threshold_source_text(source)}
    assert list(table["label"][:2]) == ["PNEUMONIA", "NORMAL"] and table["label"].isna()[2]
    assert any(source.split(":", 1)[1] in i.value for i in app.info)
    # the panel beside the prediction now leads with the site's figures and the threshold in force
    assert any(m.value.startswith(f"**At this site** · site validation {source.split(':', 1)[1]}") for m in app.markdown)
    assert any(f"Threshold in force: {threshold:.2f}, adopted from site validation" in c.value for c in app.caption)


def test_full_resolution_is_on_demand(app: AppTest) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.open(SAMPLE).convert("L").resize((1200, 1200)).save(buffer, format="PNG")
    upload(app, ("large.png", buffer.getvalue(), "image/png"))
    shown = viewer(app)["data"][0]
    assert not app.toggle(key="full_resolution").value
    app.toggle(key="full_resolution").set_value(True).run()
    full = viewer(app)["data"][0]
    assert shown["dx"] == 1200 / 768  # downsampled by default, axes still in the film's pixels
    assert not app.exception and full["dx"] == 1.0


def test_a_reading_in_chinese_leaves_no_english_sentence(isolated_home: Path) -> None:
    from tests.pages.test_page_languages import english_left, open_in_chinese, shown_text

    at = open_in_chinese("pages/image_diagnosis.py")
    ct_slice = Path(get_testdata_file("CT_small.dcm"))
    upload(at, (SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"), ("ct.dcm", ct_slice.read_bytes(), "application/dicom"))
    at.selectbox(key="detail_file").set_value(1).run()
    assert at.subheader[0].value == "ct.dcm：无法评估"
    assert any("无法评估" in w.value for w in at.warning)
    leftovers = english_left(shown_text(at))  # the model's card text included
    assert not leftovers, f"English left in Chinese: {leftovers[:8]}"


def test_leaving_the_page_and_coming_back_keeps_the_batch(isolated_home: Path) -> None:
    """Issue 21.9: Streamlit forgets an uploader when another page is shown; the batch is kept for the session."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    normal = SAMPLES / "normal_1.jpeg"
    at.switch_page("pages/image_diagnosis.py").run()
    at.file_uploader(key="image_uploads").set_value([(SAMPLE.name, SAMPLE.read_bytes(), "image/jpeg"),
                                                     (normal.name, normal.read_bytes(), "image/jpeg")]).run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 2
    at.switch_page("pages/model_cards.py").run()
    at.switch_page("pages/image_diagnosis.py").run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 2 and any("kept from before" in c.value for c in at.caption)
    at.button(key="clear_kept_batch").click().run()
    assert not at.exception and not at.dataframe
