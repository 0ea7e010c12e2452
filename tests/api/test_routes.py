"""Each route with real bundled models: the same answers as the CLI, bad input as 4xx with the reason."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from core.cli import main as cli_main
from tests.api.conftest import SAMPLES, upload

FILM = SAMPLES / "pneumonia_bacteria_1.jpeg"
DIABETES_HEADER = "Pregnancies,Glucose,BloodPressure,SkinThickness,Insulin,BMI,DiabetesPedigreeFunction,Age\n"
# A form's blank is JSON null (a CSV's 0 means "not measured" in the fields flagged so, as for Insulin here).
PATIENT = {"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "Insulin": None, "BMI": 33.6,
           "DiabetesPedigreeFunction": 0.627, "Age": 50}


def cli_json(capsys, *argv: str):
    capsys.readouterr()
    cli_main([*argv, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["pneumonia_bacteria_1.jpeg", "normal_2.jpeg", "pneumonia_demo.dcm"])
def test_predict_equals_the_cli(client, clinician, capsys, monkeypatch, name: str) -> None:
    monkeypatch.chdir(SAMPLES)
    (expected,) = cli_json(capsys, "predict", name)
    response = client.post("/v1/predict", headers=clinician, files=upload(SAMPLES / name))
    assert response.status_code == 200
    assert response.json() == expected


def _truncated_dicom() -> bytes:
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    return data[: len(data) // 2]


@pytest.mark.parametrize("name,data,reason", [
    ("empty.png", b"", "empty"),
    ("notes.png", b"Patient seen today, chest clear.\n", "text file"),
    ("scan.dcm", _truncated_dicom(), "scan.dcm"),
])
def test_bad_uploads_are_422_with_the_door_s_reason(client, clinician, name: str, data: bytes, reason: str) -> None:
    for path in ("/v1/predict", "/v1/explain", "/v1/report"):
        response = client.post(path, headers=clinician, files={"file": (name, data, "application/octet-stream")})
        assert response.status_code == 422, (path, response.text)
        detail = response.json()["detail"]
        assert name in detail and reason in detail


def test_a_missing_file_field_and_unknown_model_are_4xx(client, clinician) -> None:
    missing = client.post("/v1/predict", headers=clinician)
    assert missing.status_code == 422 and "file" in missing.json()["detail"]
    unknown = client.post("/v1/predict?model=nope", headers=clinician, files=upload(FILM))
    assert unknown.status_code == 404 and "nope" in unknown.json()["detail"]
    wrong_kind = client.post("/v1/predict?model=diabetes_risk", headers=clinician, files=upload(FILM))
    assert 400 <= wrong_kind.status_code < 500


def test_an_upload_over_the_limit_is_413(client, clinician, monkeypatch) -> None:
    from core.api import uploads

    monkeypatch.setattr(uploads, "MAX_BYTES", 1000)
    response = client.post("/v1/predict", headers=clinician, files=upload(FILM))
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_explain_png_and_json(client, clinician) -> None:
    png = client.post("/v1/explain?method=gradcam", headers=clinician, files=upload(FILM))
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(png.content)).size[0] > 100
    grid = client.post("/v1/explain?format=json&size=16&target=NORMAL&method=gradcam%2B%2B", headers=clinician,
                       files=upload(FILM)).json()
    assert (grid["method"], grid["target"], grid["size"]) == ("gradcam++", "NORMAL", 16)
    assert len(grid["heatmap"]) == 16 and all(0.0 <= v <= 1.0 for row in grid["heatmap"] for v in row)
    bad = client.post("/v1/explain?target=CAT", headers=clinician, files=upload(FILM))
    assert bad.status_code == 422 and "CAT" in bad.json()["detail"]


def test_risk_one_json_patient_matches_a_csv_row(client, clinician, capsys, tmp_path) -> None:
    one = client.post("/v1/risk", headers=clinician, json=PATIENT)
    assert one.status_code == 200
    (row,) = one.json()
    csv = tmp_path / "patients.csv"
    csv.write_text(DIABETES_HEADER + ",".join("0" if v is None else str(v) for v in PATIENT.values()) + "\n")
    (expected,) = cli_json(capsys, "risk", "--csv", str(csv))
    assert row["risk"] == pytest.approx(expected["risk"]) and row["model"] == expected["model"]
    explanation = row["explanation"]
    assert explanation["base_value"] + sum(explanation["contributions"].values()) == pytest.approx(explanation["output"])


def test_risk_csv_reports_a_bad_row_and_scores_the_others(client, clinician, capsys, tmp_path) -> None:
    text = DIABETES_HEADER + "6,148,72,35,0,33.6,0.627,50\n1,sugar,66,29,0,26.6,0.351,31\n8,183,64,0,0,23.3,0.672,32\n"
    response = client.post("/v1/risk", headers=clinician, files={"file": ("patients.csv", text.encode(), "text/csv")})
    assert response.status_code == 200
    rows = response.json()
    assert [r["ok"] for r in rows] == [True, False, True]
    assert "row 2" in rows[1]["error"] and "Glucose" in rows[1]["error"]
    path = tmp_path / "patients.csv"
    path.write_text(text)
    assert rows == cli_json(capsys, "risk", "--csv", str(path))


@pytest.mark.parametrize("body,kind", [(b"{not json", "application/json"), (b"[1, 2]", "application/json"),
                                       (json.dumps(PATIENT | {"Glucose": "sweet"}).encode(), "application/json"),
                                       (b"hello", "text/plain")])
def test_risk_bad_requests_are_4xx(client, clinician, body: bytes, kind: str) -> None:
    response = client.post("/v1/risk", headers=clinician | {"Content-Type": kind}, content=body)
    assert 400 <= response.status_code < 500 and response.json()["detail"]


def test_models_and_cards(client, clinician, capsys) -> None:
    models = client.get("/v1/models", headers=clinician).json()
    assert models == cli_json(capsys, "models")
    card = client.get("/v1/models/chest_xray/card", headers=clinician).json()
    assert card["model_details"]["name"] == "chest_xray" and "intended_use" in card
    markdown = client.get("/v1/models/diabetes_risk:1/card?format=md", headers=clinician)
    assert markdown.headers["content-type"].startswith("text/markdown") and "diabetes_risk:1" in markdown.text
    assert client.get("/v1/models/nope/card", headers=clinician).status_code == 404


def test_docs_work_without_a_cdn(client) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "/v1/predict" in page.text and "/openapi.json" in page.text
    assert "cdn" not in page.text.lower() and "<script" not in page.text.lower()
    spec = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/explain", "/v1/risk", "/v1/report", "/v1/models", "/v1/health"} <= set(spec["paths"])


def test_messages_follow_accept_language(client, clinician) -> None:
    bad_key = {"Authorization": "Bearer ldx_000000000000_nope"}
    english = client.get("/v1/models", headers=bad_key).json()["detail"]
    chinese = client.get("/v1/models", headers=bad_key | {"Accept-Language": "zh-CN,zh;q=0.9"}).json()["detail"]
    assert english.isascii() and not chinese.isascii()
