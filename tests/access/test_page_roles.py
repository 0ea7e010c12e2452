"""Every page checks the role itself (not only the menu), and the admin page runs the installation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts, audit

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
# page -> the least role that may open it
PAGES = {"pages/image_diagnosis.py": "clinician", "pages/worklist.py": "clinician", "pages/patient_risk.py": "clinician", "pages/model_cards.py": "clinician",
         "pages/retrain.py": "researcher", "pages/risk_training.py": "researcher", "pages/admin.py": "admin"}
ROLES = ("clinician", "researcher", "admin")


@pytest.fixture()
def people(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    for role in ROLES:
        accounts.add(f"{role}1", role, PASSWORD)


def open_as(role: str, page: str) -> AppTest:
    """The page script on its own, as a URL typed past the menu would reach it."""
    at = AppTest.from_file(str(ROOT / page), default_timeout=120)
    at.session_state["luciddx_session"] = {"name": f"{role}1", "role": role, "last_seen": datetime.now(timezone.utc)}
    at.run()
    assert not at.exception, at.exception
    return at


def denied(at: AppTest) -> bool:
    return any("role" in e.value and "Ask an administrator" in e.value for e in at.error)


@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize("role", ROLES)
def test_each_page_admits_exactly_the_roles_allowed(people, role: str, page: str) -> None:
    at = open_as(role, page)
    allowed = ROLES.index(role) >= ROLES.index(PAGES[page])
    assert denied(at) is not allowed
    assert bool(at.title) is allowed  # a refused page draws nothing of its own


def test_navigation_lists_only_the_pages_a_role_may_open(people) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["luciddx_session"] = {"name": "clinician1", "role": "clinician", "last_seen": datetime.now(timezone.utc)}
    at.run()
    links = [link.proto.page for link in at.sidebar.get("page_link")]
    assert any("patient_risk" in p for p in links) and not any("retrain" in p or "admin" in p for p in links)


def test_a_page_the_role_may_not_open_says_so_when_reached_by_its_address(people) -> None:
    """Issue 21.9: a bookmark to a page this role may not open explains itself instead of showing another page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["luciddx_session"] = {"name": "clinician1", "role": "clinician", "last_seen": datetime.now(timezone.utc)}
    at.run()
    at.switch_page("pages/retrain.py").run()
    assert not at.exception, at.exception
    assert denied(at) and any("researcher" in e.value for e in at.error)
    assert not any(t.value == "Image diagnosis" for t in at.title)  # not silently sent elsewhere


def test_admin_adds_an_account_and_the_change_is_audited(people) -> None:
    at = open_as("admin", "pages/admin.py")
    at.text_input(key="admin_new_name").input("dana")
    for field in [t for t in at.text_input if t.key not in ("admin_new_name", "audit_user")]:
        field.input("123456789012")  # twelve characters, but among the first passwords anyone tries
    at.button(key="FormSubmitter:admin_add_account-Add account").click().run()
    assert any("too easy to guess" in e.value and "commonly used" in e.value for e in at.error), at.error
    assert accounts.find("dana") is None
    at.text_input(key="admin_new_name").input("dana")
    at.selectbox(key="admin_new_role").select("researcher")
    secret = [t for t in at.text_input if t.key is None or "password" in str(t.label).lower()]
    for field in [t for t in at.text_input if t.key not in ("admin_new_name", "audit_user")]:
        field.input("another long passphrase")
    at.button(key="FormSubmitter:admin_add_account-Add account").click().run()
    assert not at.exception, at.exception
    assert accounts.get("dana").role == "researcher"
    last = audit.records()[-1]
    assert (last.user, last.role, last.action, last.outcome) == ("admin1", "admin", "users", "ok")
    assert secret  # the password fields exist and were typed into
    kept = {key: at.session_state[key] for key in at.session_state}
    assert "another long passphrase" not in repr(kept)  # password fields have no key: never kept


def test_clinician_risk_scoring_is_audited_with_a_digest_only(people) -> None:
    at = open_as("clinician", "pages/patient_risk.py")
    before = len(audit.records())
    at.button(key="risk_example").click().run()
    at.button(key="FormSubmitter:risk_form-Compute risk").click().run()
    assert not at.exception, at.exception
    new = audit.records()[before:]
    scoring = [r for r in new if r.action == "risk"]
    assert scoring and scoring[-1].user == "clinician1" and scoring[-1].model.startswith("diabetes_risk:")
    assert len(scoring[-1].input_sha256) == 64


def test_clinician_prediction_on_the_image_page_is_audited(people) -> None:
    at = open_as("clinician", "pages/image_diagnosis.py")
    before = len(audit.records())
    at.toggle(key="use_sample").set_value(True).run()
    assert not at.exception, at.exception
    actions = [(r.user, r.action, r.outcome) for r in audit.records()[before:]]
    assert ("clinician1", "predict", "ok") in actions and ("clinician1", "explain", "ok") in actions
    assert all(len(r.input_sha256 or "") == 64 for r in audit.records()[before:])
    labels = [b.proto.label for b in at.get("download_button")]
    assert "Download case report (PDF)" in labels and "Download heatmap (PNG)" in labels


def test_a_dicom_is_deidentified_in_memory_for_download() -> None:
    from pydicom import dcmread
    from pydicom.data import get_testdata_file

    from core.services import deid

    source = Path(get_testdata_file("CT_small.dcm"))
    copy = deid.deidentified(source.read_bytes(), source.name)
    import io

    dataset = dcmread(io.BytesIO(copy.data))
    assert dataset.PatientIdentityRemoved == "YES" and str(dataset.PatientName) != "CompressedSamples^CT1"
    assert copy.file_name.endswith(".dcm") and "CT_small" not in copy.file_name and copy.changed > 0
