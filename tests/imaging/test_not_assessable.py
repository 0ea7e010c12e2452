"""Not assessable means no label, everywhere: a real CT slice and MR slice (pydicom's test files), which the
bundled detector flags, carry no class in the prediction, the CLI's JSON, the table and its CSV/Excel
exports, the PDF, the REST API, the DICOM SR/SC and the worklist; their probabilities are kept apart."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from openpyxl import load_workbook
from pydicom.data import get_testdata_file

from core.cli import main
from core.dicomnode import results
from core.imaging import dicom_index as index
from core.services import worklist
from core.imaging.reading import UNRELIABLE_PROBABILITY
from core.services import imaging, reports, table_export
from tests.api.conftest import client, clinician, make_key  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
CT, MR = Path(get_testdata_file("CT_small.dcm")), Path(get_testdata_file("MR_small.dcm"))
FILM = ROOT / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"


@pytest.fixture(scope="module")
def model():
    return imaging.load_model()


@pytest.fixture(scope="module")
def diagnosed(model) -> dict[str, imaging.FileResult]:
    return {path.name: imaging.diagnose(path, path.name, model, explain=False) for path in (CT, MR, FILM)}


def test_the_prediction_itself_carries_no_label(diagnosed) -> None:
    for name in (CT.name, MR.name):
        prediction = diagnosed[name].prediction
        assert prediction.out_of_distribution and not prediction.assessable
        assert prediction.label is None and prediction.decision in prediction.probabilities  # explained, never shown
        assert "decision" not in prediction.as_dict()
        # re-deciding at an adopted site threshold (dataclasses.replace) cannot bring a label back
        assert dataclasses.replace(prediction, label=prediction.decision, threshold=0.01).label is None
    assert diagnosed[FILM.name].prediction.label == "PNEUMONIA"


def test_predict_json_says_label_null_and_keeps_the_probabilities(isolated_home, capsys) -> None:
    assert main(["predict", str(CT), str(MR), str(FILM), "--json"]) == 0
    ct, mr, film = json.loads(capsys.readouterr().out)
    for row in (ct, mr):
        assert row["label"] is None and row["assessable"] is False and row["out_of_distribution"] is True
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert film["label"] == "PNEUMONIA" and film["assessable"] is True
    assert main(["predict", str(CT)]) == 0
    human = capsys.readouterr().out
    assert "Not assessable" in human and "PNEUMONIA:" not in human and "label PNEUMONIA" not in human


def test_the_table_and_its_exports_sort_it_apart(diagnosed, model) -> None:
    files = [diagnosed[FILM.name], diagnosed[CT.name], diagnosed[MR.name]]
    rows = imaging.results_table(files, model.spec, imaging.threshold_in_force(model.spec))
    film, ct, mr = rows
    for row, result in ((ct, diagnosed[CT.name]), (mr, diagnosed[MR.name])):
        assert (row["label"], row["finding"], row["probability"], row["assessable"]) == (None, "Not assessable", None, False)
        assert row[UNRELIABLE_PROBABILITY] == round(result.prediction.probabilities["PNEUMONIA"], 2)
    assert film["label"] == "PNEUMONIA" and film["probability"] > 0.9 and film[UNRELIABLE_PROBABILITY] is None
    by_probability = [r["file"] for r in sorted(rows, key=lambda r: (r["probability"] is None, -(r["probability"] or 0)))]
    assert by_probability[0] == FILM.name  # sorted by probability, the CT and MR are never among the pneumonias

    exported = list(csv.DictReader(io.StringIO(table_export.to_csv(rows).decode("utf-8-sig"))))
    assert [r["label"] for r in exported] == ["PNEUMONIA", "", ""]
    assert [r["probability"] for r in exported][1:] == ["", ""] and exported[1][UNRELIABLE_PROBABILITY]
    sheet = load_workbook(io.BytesIO(table_export.to_xlsx(rows))).active
    header = [cell.value for cell in sheet[1]]
    labels = [row[header.index("label")].value for row in sheet.iter_rows(min_row=2)]
    assert labels == ["PNEUMONIA", None, None]
    assert [row[header.index("class")].value for row in sheet.iter_rows(min_row=3)] == ["PNEUMONIA", "PNEUMONIA"]  # "probability of"


def test_the_pdf_says_not_assessable_and_no_label(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("poppler-utils (pdftotext) is not installed")
    done = reports.case_report([(CT, CT.name), (FILM, FILM.name)], lang="en")
    out = tmp_path / "case.pdf"
    out.write_bytes(done.pdf)
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True, text=True).stdout
    ct_page, film_page = text.split("\f")[:2]
    assert "Not assessable" in ct_page and "Label: none (not assessable)" in ct_page
    assert "Label: PNEUMONIA" not in ct_page and "Result:" not in ct_page and "above the threshold" not in ct_page
    assert "Result: PNEUMONIA" in film_page and "Label: PNEUMONIA" in film_page


def test_the_rest_api_answers_label_null(client, clinician) -> None:
    response = client.post("/v1/predict", headers=clinician, files={"file": ("ct.dcm", CT.read_bytes(), "application/dicom")})
    assert response.status_code == 200
    body = response.json()
    assert body["label"] is None and body["assessable"] is False and body["probabilities"]["PNEUMONIA"] > 0
    explained = client.post("/v1/explain?format=json&size=4", headers=clinician,
                            files={"file": ("mr.dcm", MR.read_bytes(), "application/dicom")})
    assert explained.status_code == 200 and explained.json()["label"] is None


def test_the_dicom_results_carry_no_class(diagnosed, tmp_path: Path, isolated_home) -> None:
    source = pydicom.dcmread(CT)
    prediction = diagnosed[CT.name].prediction
    overlay = np.zeros((source.Rows, source.Columns, 3), np.uint8)
    files = results.write_results(source, overlay, prediction, tmp_path / "out")
    sr = pydicom.dcmread(files.report)
    items = {item.ConceptNameCodeSequence[0].CodeValue: item for item in sr.ContentSequence}
    finding = items[results.PNEUMONIA.value].ConceptCodeSequence[0].CodeValue
    assert finding == results.INDETERMINATE.value  # neither present nor absent
    assert items["ood"].ConceptCodeSequence[0].CodeValue == results.YES.value
    assert any(getattr(item, "TextValue", "") == results.NOT_ASSESSABLE_TEXT for item in sr.ContentSequence)
    sc = pydicom.dcmread(files.secondary_capture)
    assert sc.ImageComments == results.NOT_ASSESSABLE_TEXT and "NOT ASSESSABLE" in sc.SeriesDescription

    # the node's worker indexes what the prediction says: the worklist shows no class either
    index.put(index.Entry("1.2.826.0.1.3680043.2.1125.1", index.now_text(), "CT", status="done",
                          label=prediction.label, probabilities=prediction.probabilities, out_of_distribution=True))
    (row,) = worklist.entries()
    assert row["label"] is None and "PNEUMONIA" not in worklist.describe(row)
