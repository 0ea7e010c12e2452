"""One meaning per number, the threshold in force, exports that stay text, window/level and the locked viewer."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.charts.viewer import film_figure
from core.imaging import windowing
from core.imaging.classifier import Prediction
from core.imaging.door import load_image
from core.imaging.reading import UNRELIABLE_PROBABILITY, filter_choices, filter_rows, reading, reading_text
from core.models import cards, registry, site_validation
from core.services import imaging as diagnosis
from core.services import table_export

ROOT = Path(__file__).resolve().parents[2]
PNEUMONIA_FILM = ROOT / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"
CT_SLICE = Path(get_testdata_file("CT_small.dcm"))
SAMPLE_FILM = Path(__file__).resolve().parents[2] / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"
DX_CLASS = "1.2.840.10008.5.1.4.1.1.1.1"


def prediction(label: str, pneumonia: float, ood: bool = False, threshold: float | None = 0.15) -> Prediction:
    return Prediction(model="chest_xray:1", label=label, probabilities={"NORMAL": 1 - pneumonia, "PNEUMONIA": pneumonia},
                      threshold=threshold, positive_class="PNEUMONIA", out_of_distribution=ood, ood_score=None)


def test_a_reading_is_the_positive_class_probability_whatever_the_label() -> None:
    normal, pneumonia = reading(prediction("NORMAL", 0.136)), reading(prediction("PNEUMONIA", 0.379))
    assert (normal.score_class, normal.probability, normal.label) == ("PNEUMONIA", 0.136, "NORMAL")
    assert (pneumonia.score_class, pneumonia.probability) == ("PNEUMONIA", 0.379)
    assert reading_text(pneumonia) == "PNEUMONIA probability 0.38, threshold 0.15: PNEUMONIA"
    assert reading_text(reading(prediction("PNEUMONIA", 0.152, threshold=0.1546))) == \
        "PNEUMONIA probability 0.152, threshold 0.155: PNEUMONIA"  # 3 decimals when 2 would look equal
    unlike = reading(prediction("PNEUMONIA", 0.33, ood=True))
    assert not unlike.assessable and reading_text(unlike).endswith(": Not assessable")
    three = Prediction(model="m:1", label="b", probabilities={"a": 0.2, "b": 0.5, "c": 0.3}, threshold=None,
                       positive_class=None, out_of_distribution=False, ood_score=None)
    assert reading_text(reading(three)) == "Top class b, probability 0.50: b"


def _results() -> list[diagnosis.FileResult]:
    return [
        diagnosis.FileResult("a.png", "1", prediction=prediction("PNEUMONIA", 0.379)),
        diagnosis.FileResult("b.png", "2", prediction=prediction("NORMAL", 0.136)),
        diagnosis.FileResult("c.dcm", "3", prediction=prediction("PNEUMONIA", 0.33, ood=True)),
        diagnosis.FileResult('=HYPERLINK("x").png', "4", error='=HYPERLINK("x").png: not an image'),
    ]


def test_the_table_and_its_filters() -> None:
    rows = diagnosis.results_table(_results(), "chest_xray:1", (0.15, "stored"))
    assert [r["probability"] for r in rows[:3]] == [0.38, 0.14, None]  # not assessable: sorts apart, no label
    assert [r[UNRELIABLE_PROBABILITY] for r in rows[:3]] == [None, None, 0.33] and rows[2]["label"] is None
    assert {r["class"] for r in rows[:3]} == {"PNEUMONIA"}
    assert all(r["model"] == "chest_xray:1" and r["threshold"] == 0.15 for r in rows)
    assert [r["finding"] for r in rows] == ["PNEUMONIA", "NORMAL", "Not assessable", None]
    assert filter_choices(rows) == ["all", "label:NORMAL", "label:PNEUMONIA", "not_assessable", "errors"]
    assert [r["file"] for r in filter_rows(rows, "label:PNEUMONIA")] == ["a.png"]
    assert [r["file"] for r in filter_rows(rows, "not_assessable")] == ["c.dcm"]
    assert [r["file"] for r in filter_rows(rows, "errors")] == ['=HYPERLINK("x").png']
    assert len(filter_rows(rows, "all")) == 4


def test_exports_carry_model_and_threshold_and_never_run_a_formula() -> None:
    from openpyxl import load_workbook

    rows = diagnosis.results_table(_results(), "chest_xray:1", (0.15, "stored"))
    rows.append({**rows[0], "file": "+cmd|'/C calc'!A0", "error": "-2+3", "class": "@SUM(A1)"})
    text = table_export.to_csv(rows).decode("utf-8-sig")
    header, *lines = text.splitlines()
    assert {"model", "threshold", "probability", "class"} <= set(header.split(","))
    assert all("chest_xray:1" in line and "0.15" in line for line in lines)
    assert '\'=HYPERLINK(""x"").png' in text and "'+cmd" in text and "'-2+3" in text and "'@SUM" in text
    book = load_workbook(io.BytesIO(table_export.to_xlsx(rows)))
    sheet = book.active
    columns = [c.value for c in sheet[1]]
    assert {"model", "threshold"} <= set(columns)
    cells = [cell for row in sheet.iter_rows(min_row=2) for cell in row]
    assert not [c for c in cells if c.data_type == "f"], "no cell is a formula"
    files = [row[columns.index("file")].value for row in sheet.iter_rows(min_row=2)]
    assert '\'=HYPERLINK("x").png' in files
    assert all(row[columns.index("model")].value == "chest_xray:1" for row in sheet.iter_rows(min_row=2))
    assert sheet.cell(2, columns.index("probability") + 1).value == 0.38  # numbers stay numbers


def _levels(source: Path | bytes) -> windowing.Levels | None:
    """What the door kept of its one decode (no second read of the file)."""
    return load_image(source).levels


def dx_film(tmp_path: Path, window: tuple[int, int] | None = None) -> Path:
    """A 12-bit DX For Presentation file made from a real sample film, as a CR/DX modality sends one."""
    grey = np.asarray(Image.open(SAMPLE_FILM).convert("L"), dtype=np.uint16) * 16  # detector units 0..4080
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = DX_CLASS, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = DX_CLASS, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PresentationIntentType = "DX", "FOR PRESENTATION"
    ds.Rows, ds.Columns = grey.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if window:
        ds.WindowCenter, ds.WindowWidth = [window[0], 2000], [window[1], 1000]
    ds.PixelData = grey.tobytes()
    path = tmp_path / "dx.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_window_level_of_a_real_ct_slice() -> None:
    levels = _levels(CT_SLICE)
    assert levels is not None and levels.values.shape == (128, 128) and levels.file_window is None
    assert list(windowing.presets(levels)) == ["lung", "mediastinum", "full"]  # Hounsfield presets: CT only
    lung = windowing.window(levels.values, *windowing.preset_window(levels, "lung"))
    mediastinum = windowing.window(levels.values, *windowing.preset_window(levels, "mediastinum"))
    assert lung.dtype == np.float32 and 0.0 <= lung.min() and lung.max() <= 1.0
    assert not np.allclose(lung, mediastinum)
    soft = levels.values == np.clip(levels.values, -100, 100)
    assert mediastinum[levels.values >= 240].min() == 1.0 and mediastinum[levels.values <= -160].max() == 0.0
    assert soft.any()
    mr = _levels(Path(get_testdata_file("MR_small.dcm")))
    assert mr is not None and mr.file_window == (600.0, 1600.0)  # the file's own WindowCenter/Width
    assert "lung" not in windowing.presets(mr) and list(windowing.presets(mr))[0] == "file"
    assert _levels(Path(get_testdata_file("SC_rgb_rle_2frame.dcm"))) is None  # colour
    assert load_image(SAMPLE_FILM).levels is None  # a JPEG has no modality values
    with pytest.raises(ValueError, match="width"):
        windowing.window(levels.values, 0, 0)


def test_a_radiograph_gets_views_in_its_own_units_never_ct_presets(tmp_path: Path) -> None:
    dx = _levels(dx_film(tmp_path))
    assert dx is not None and dx.modality == "DX"
    views = windowing.presets(dx)
    assert list(views) == ["soft-tissue", "bone", "full"]
    with pytest.raises(ValueError, match="does not fit"):
        windowing.preset_window(dx, "lung")
    # The CT lung window on detector units turns a DX film white: what the offered views must never do.
    assert (windowing.window(dx.values, *windowing.CT_PRESETS["lung"]) == 1.0).mean() > 0.9
    for name in ("soft-tissue", "bone"):
        shown = windowing.window(dx.values, *views[name])
        assert (shown == 1.0).mean() < 0.5 and shown.std() > 0.15, name  # never white, still a film with contrast
    soft_centre, bone_centre = views["soft-tissue"][0], views["bone"][0]
    assert soft_centre < bone_centre  # bone is the denser, brighter end of the film


def test_every_window_the_file_proposes_is_offered_first(tmp_path: Path) -> None:
    dx = _levels(dx_film(tmp_path, window=(1800, 2400)))
    assert dx is not None and dx.file_windows == ((1800.0, 2400.0), (2000.0, 1000.0))
    assert list(windowing.presets(dx))[:2] == ["file", "file-2"]
    assert diagnosis.window_presets(dx)["file-2"] == "The file's window 2"


def test_the_viewer_locks_both_films_to_the_same_axes() -> None:
    film = np.zeros((64, 48), np.uint8)
    figure = film_figure(film, np.zeros((64, 48, 3), np.uint8), (128, 96), ("Original", "Grad-CAM"))
    layout = figure.layout
    assert layout.xaxis2.matches == "x" and layout.yaxis2.matches == "y"
    assert [t.type for t in figure.data] == ["image", "image"]
    assert figure.data[0].dx == 2.0 and figure.data[0].source.startswith("data:image/png;base64,")


def _adopt_strict_threshold(ref: registry.ModelRef) -> tuple[float, str]:
    """Record the model's own held-out predictions as a site validation and adopt its 80%-sensitivity threshold."""
    preds = cards.load_predictions(ref.path)
    result = site_validation.evaluate_site(preds["labels"], preds["probabilities"], ref.meta, target_sensitivity=0.8)
    validation_id = site_validation.record(ref, result, preds["labels"], preds["probabilities"], source="test site")
    adopted = site_validation.adopt_threshold(ref, validation_id, "target-sensitivity", by="admin")
    return adopted["threshold"], f"site:{validation_id}"


def test_predict_uses_the_threshold_in_force(isolated_home: Path, capsys: pytest.CaptureFixture) -> None:
    """``python -m core predict`` (in process: its main) and the page's service decide at the adopted threshold."""
    from core.cli import main

    def predict(*flags: str) -> str:
        assert main(["predict", str(CT_SLICE), str(PNEUMONIA_FILM), "--model", "chest_xray:1", *flags]) == 0
        return capsys.readouterr().out

    ref = registry.resolve("chest_xray:1")
    before = json.loads(predict("--json"))
    assert [r["threshold_source"] for r in before] == ["stored", "stored"]
    assert before[0]["assessable"] is False and before[1]["assessable"] is True
    threshold, source = _adopt_strict_threshold(ref)
    assert threshold > before[0]["probabilities"]["PNEUMONIA"] > ref.meta["threshold"]
    after = json.loads(predict("--json"))
    assert [r["threshold_source"] for r in after] == [source, source]
    assert after[0]["threshold"] == pytest.approx(threshold)
    assert (before[0]["label"], after[0]["label"]) == (None, None)  # the CT is not assessable: no class at any threshold
    assert after[1]["label"] == "PNEUMONIA" and after[1]["probabilities"] == before[1]["probabilities"]
    assert diagnosis.threshold_in_force("chest_xray:1") == (pytest.approx(threshold), source)
    human = predict().splitlines()
    assert f"PNEUMONIA probability 1.00, threshold {threshold:.2f}: PNEUMONIA ({source})" in human[1]
    assert "Not assessable" in human[0] and "unreliable" in human[0]
