"""A clinician's API key uses approved (active) versions only: any other NAME:VERSION is a 403 with the reason."""

from __future__ import annotations

from collections.abc import Callable

from core.models import registry
from tests.api.conftest import SAMPLES, upload
from tests.services.test_approval import register_copy

FILM = SAMPLES / "pneumonia_bacteria_1.jpeg"
PATIENT = {"Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "Insulin": None, "BMI": 33.6,
           "DiabetesPedigreeFunction": 0.627, "Age": 50}


def test_a_clinician_s_api_key_gets_403_for_an_unapproved_version(client, make_key: Callable) -> None:
    register_copy("chest_xray", "knee_xray")
    register_copy("diabetes_risk", "glaucoma_risk")
    clinician, researcher = make_key("dr.lee", "clinician"), make_key("rey", "researcher")
    refused = client.post("/v1/predict?model=knee_xray:1", headers=clinician, files=upload(FILM))
    assert refused.status_code == 403 and "knee_xray:1 is not approved for clinical use" in refused.json()["detail"]
    for route in ("/v1/explain", "/v1/report"):
        assert client.post(f"{route}?model=knee_xray:1", headers=clinician, files=upload(FILM)).status_code == 403
    risk = client.post("/v1/risk?model=glaucoma_risk", headers=clinician, json=PATIENT)
    assert risk.status_code == 403 and "no approved version yet" in risk.json()["detail"]
    assert client.post("/v1/risk?model=glaucoma_risk:1", headers=clinician, json=PATIENT).status_code == 403
    allowed = client.post("/v1/predict?model=knee_xray:1", headers=researcher, files=upload(FILM))
    assert allowed.status_code == 200 and allowed.json()["approved"] is False
    assert client.post("/v1/predict", headers=clinician, files=upload(FILM)).json()["approved"] is True
    (row,) = client.post("/v1/risk?model=glaucoma_risk:1", headers=researcher, json=PATIENT).json()
    assert row["ok"] and row["model"] == "glaucoma_risk:1" and row["approved"] is False
    listed = {r["model"]: r for r in client.get("/v1/models", headers=clinician).json()}
    assert listed["knee_xray:1"]["approved"] is False and listed[registry.approved_version("chest_xray").spec]["approved"] is True
    assert client.get("/v1/models/knee_xray:1/card", headers=clinician).json()["approved"] is False
