"""Who may call what, and that every call leaves an audit record naming the input only by its SHA-256."""

from __future__ import annotations

import hashlib

import pytest

from core.access import accounts, audit, roles
from core.models import registry
from tests.api.conftest import SAMPLES, upload

FILM = SAMPLES / "normal_1.jpeg"
ROUTES = [("post", "/v1/predict"), ("post", "/v1/explain"), ("post", "/v1/report"), ("post", "/v1/risk"),
          ("get", "/v1/models"), ("get", "/v1/models/chest_xray/card")]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_route_needs_a_valid_key(client, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer ldx_000000000000_nope"}, {"Authorization": "Bearer nonsense"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = getattr(client, method)(path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json()["detail"] and response.headers["www-authenticate"] == "Bearer"
    assert [r.outcome for r in audit.records()] == ["denied"] * 4


def test_a_clinician_may_predict_and_a_disabled_account_may_not(client, clinician) -> None:
    assert client.post("/v1/predict", headers=clinician, files=upload(FILM)).status_code == 200
    accounts.disable("dr.lee")
    refused = client.post("/v1/predict", headers=clinician, files=upload(FILM))
    assert refused.status_code == 401 and "not valid" in refused.json()["detail"]
    assert [(r.user, r.outcome) for r in audit.records()] == [("dr.lee", "ok"), ("anonymous", "denied")]


def test_a_role_below_the_action_gets_403_and_is_recorded(client, clinician, monkeypatch) -> None:
    monkeypatch.setitem(roles.PERMISSIONS, "predict", "researcher")
    response = client.post("/v1/predict", headers=clinician, files=upload(FILM))
    assert response.status_code == 403
    assert "researcher" in response.json()["detail"] and "dr.lee" in response.json()["detail"]
    (record,) = audit.records()
    assert (record.user, record.role, record.action, record.outcome) == ("dr.lee", "clinician", "predict", "denied")


def test_audit_records_the_sha256_and_never_the_file_name(client, clinician) -> None:
    data = FILM.read_bytes()
    client.post("/v1/predict", headers=clinician, files={"file": ("Doe^Jane_1961.jpeg", data, "image/jpeg")})
    client.post("/v1/predict", headers=clinician, files={"file": ("Doe^Jane_1961.png", b"not an image", "image/png")})
    ok, failed = audit.records()
    assert (ok.action, ok.model, ok.outcome) == ("predict", registry.resolve("chest_xray").spec, "ok")
    assert ok.input_sha256 == hashlib.sha256(data).hexdigest()
    assert (failed.outcome, failed.input_sha256) == ("bad-input", hashlib.sha256(b"not an image").hexdigest())
    everything = repr([r.public() for r in audit.records()])
    assert "Doe" not in everything and "jpeg" not in everything
    assert audit.verify().ok


def test_card_and_models_calls_are_audited_with_the_model(client, clinician) -> None:
    client.get("/v1/models/chest_xray/card", headers=clinician)
    client.get("/v1/models/no_such_model/card", headers=clinician)
    records = audit.records()
    assert [(r.action, r.model, r.outcome) for r in records] == [("cards", registry.resolve("chest_xray").spec, "ok"), ("cards", None, "bad-input")]


def test_health_needs_no_key_and_says_nothing_secret(client, clinician) -> None:
    response = client.get("/v1/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"
    assert "ldx_" not in response.text and "sqlite" not in response.text.lower()
    assert audit.records() == []


def test_a_validation_refusal_is_recorded_as_refused_not_as_our_failure(client, clinician) -> None:
    assert client.get("/v1/models/chest_xray/card?format=xml", headers=clinician).status_code == 422
    assert client.post("/v1/predict", headers=clinician).status_code == 422  # no file part at all
    assert [(r.user, r.action, r.outcome) for r in audit.records()] == [("dr.lee", "cards", "refused"),
                                                                        ("dr.lee", "predict", "refused")]


def test_a_body_over_the_limit_is_refused_unread_and_recorded(client, clinician) -> None:
    huge = {"Content-Length": str(10**10)}
    assert client.post("/v1/predict", headers=clinician | huge, content=b"x" * 16).status_code == 413
    # Without a key nothing is read at all: the key is checked before the body (issue 22.2), so it is a 401.
    assert client.post("/v1/risk", headers=huge, content=b"x" * 16).status_code == 401
    assert [(r.user, r.role, r.action, r.outcome) for r in audit.records()] == [
        ("dr.lee", "clinician", "predict", "refused"), ("anonymous", "none", "risk", "denied")]
