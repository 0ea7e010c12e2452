"""No unreviewed model reaches a clinician: a new name's first version waits for an administrator, and
clinicians, their API keys and the DICOM node use approved (active) versions only, through one verb
(``core.services.approval.resolve_model``). Versions are copies of bundled ones under new names: no training."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts
from core.access import audit as audit_log
from core.cli import main as cli_main
from core.errors import InvalidOptionError, ModelNotApprovedError
from core.models import gate as gate_mod
from core.models import registry
from core.services import activation, approval, audit, catalog

ROOT = Path(__file__).resolve().parents[2]
ADMIN = audit.Actor("ada", "admin")
CLINICIAN = audit.Actor("dr.lee", "clinician")
RESEARCHER = audit.Actor("rey", "researcher")
FILM = ROOT / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"
REASON = "reviewed the card and the site films with the radiology lead"


def register_copy(source: str, name: str) -> registry.ModelRef:
    """A new version of ``name`` with ``source``'s weights, registered as training registers one."""
    staging = registry.new_staging_dir()
    shutil.copytree(registry.resolve(source).path, staging, dirs_exist_ok=True)
    return registry.commit_version(staging, name)


def test_a_first_version_is_not_active_until_an_administrator_activates_it() -> None:
    first = register_copy("diabetes_risk", "glaucoma_risk")
    assert first.spec == "glaucoma_risk:1" and registry.approved_version("glaucoma_risk") is None
    with pytest.raises(ModelNotApprovedError, match="no approved version yet"):
        registry.resolve("glaucoma_risk")
    listed = {r["model"]: r for r in catalog.model_listing()}
    assert listed["glaucoma_risk:1"]["approved"] is False and listed["glaucoma_risk:1"]["active"] is False
    # Clinicians may not use it, not even by naming the version; researchers and the server's operator may.
    with pytest.raises(ModelNotApprovedError, match="glaucoma_risk:1 is not approved for clinical use"):
        approval.resolve_model(CLINICIAN, "glaucoma_risk:1")
    assert approval.resolve_model(RESEARCHER, "glaucoma_risk:1") == first
    assert approval.resolve_model(audit.os_actor(), "glaucoma_risk:1") == first
    # No set locked: the gate cannot run, so only an override (with evidence and a reason) activates it.
    with pytest.raises(Exception, match="was not activated"):
        activation.activate(ADMIN, "glaucoma_risk", "1")
    done = activation.activate(ADMIN, "glaucoma_risk", "1", override_reason=REASON)
    assert done["override"] and registry.resolve("glaucoma_risk") == first
    assert approval.resolve_model(CLINICIAN, "glaucoma_risk") == first
    # A second version waits too, while the first stays in use.
    second = register_copy("diabetes_risk", "glaucoma_risk")
    assert registry.resolve("glaucoma_risk") == first and not registry.is_approved(second)


def test_bundled_models_keep_their_active_versions() -> None:
    for name in ("chest_xray", "diabetes_risk"):
        newest_bundled = [r for r in registry.list_versions(name) if r.bundled][-1]
        assert registry.resolve(name) == newest_bundled and registry.is_approved(newest_bundled)
    older = [r for r in registry.list_versions("chest_xray") if r.bundled][:-1]
    for ref in older:
        with pytest.raises(ModelNotApprovedError):
            approval.resolve_model(CLINICIAN, ref.spec)


def test_an_override_shows_its_evidence_and_needs_a_reason_of_substance() -> None:
    candidate = register_copy("chest_xray", "knee_xray")
    found = activation.evidence("knee_xray", candidate.version)
    text = activation.evidence_text(found)
    assert f"validated on {candidate.meta['validation']['n']} films" in text and "No evaluation set is locked" in text
    few = dict(found, validation_n=6)
    assert "validated on 6 films" in activation.evidence_text(few) and "too few" in activation.evidence_text(few)
    for thin in ("ok", "I am sure", "because"):
        with pytest.raises(InvalidOptionError, match="at least 4 words"):
            activation.activate(ADMIN, "knee_xray", candidate.version, override_reason=thin)
    assert registry.approved_version("knee_xray") is None
    assert [r.outcome for r in audit_log.records(action="activate")] == ["failed"] * 3
    done = activation.activate(ADMIN, "knee_xray", candidate.version, override_reason=REASON)
    record = json.loads(Path(done["activation_record"]).read_text())
    assert record["override_reason"] == REASON and record["gate"]["status"] == gate_mod.NOT_RUN
    assert record["gate"]["evidence"]["validation_n"] == candidate.meta["validation"]["n"]
    assert audit_log.records(action="activate")[-1].outcome == "override"


def test_the_cli_uses_explicit_versions_and_marks_them_not_approved(capsys) -> None:
    register_copy("chest_xray", "knee_xray")
    cli_main(["predict", str(FILM), "--model", "knee_xray:1", "--json"])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["ok"] and row["model"] == "knee_xray:1" and row["approved"] is False
    cli_main(["predict", str(FILM), "--json"])
    assert json.loads(capsys.readouterr().out)[0]["approved"] is True
    cli_main(["card", "--model", "knee_xray:1"])
    assert json.loads(capsys.readouterr().out)["approved"] is False
    cli_main(["models", "--json"])
    assert {r["model"]: r["approved"] for r in json.loads(capsys.readouterr().out)}["knee_xray:1"] is False


def test_the_dicom_node_uses_approved_versions_only(capsys) -> None:
    from core.dicomnode import worker

    register_copy("chest_xray", "knee_xray")
    with pytest.raises(ModelNotApprovedError, match="knee_xray:1 is not approved"):
        worker.classifier("knee_xray:1")  # refused before any weights load
    assert cli_main(["dicom-node", "--port", "0", "--model", "knee_xray:1"]) == 2
    assert "not approved" in capsys.readouterr().err


def _open_as(role: str, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    if accounts.find(f"{role}1") is None:
        accounts.add(f"{role}1", role, "correct horse battery")
    at = AppTest.from_file(str(ROOT / page), default_timeout=120)
    at.session_state["luciddx_session"] = {"name": f"{role}1", "role": role, "last_seen": datetime.now(timezone.utc)}
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_image_page_offers_clinicians_approved_versions_only(monkeypatch: pytest.MonkeyPatch) -> None:
    register_copy("chest_xray", "knee_xray")
    at = _open_as("clinician", "pages/image_diagnosis.py", monkeypatch)
    picker = at.selectbox(key="image_model")
    active = registry.approved_version("chest_xray").spec  # the newest bundled version
    assert picker.options == [f"{active} (active)"] and picker.value == active
    at = _open_as("researcher", "pages/image_diagnosis.py", monkeypatch)
    picker = at.selectbox(key="image_model")
    assert "knee_xray:1 (not approved)" in picker.options and "chest_xray:1 (not approved)" in picker.options
    picker.set_value("knee_xray:1").run()
    assert any("knee_xray:1 is not approved for clinical use" in w.value for w in at.warning)


def test_the_risk_page_and_model_cards_mark_unapproved_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    register_copy("diabetes_risk", "glaucoma_risk")
    at = _open_as("clinician", "pages/patient_risk.py", monkeypatch)
    assert not any("glaucoma_risk" in o for o in at.selectbox(key="risk_model").options)
    at = _open_as("clinician", "pages/model_cards.py", monkeypatch)
    at.selectbox(key="card_model").set_value("glaucoma_risk").run()
    assert at.selectbox(key="card_version_glaucoma_risk").options == ["1 (not approved)"]
    assert any("glaucoma_risk:1 is not approved for clinical use" in w.value for w in at.warning)
