"""The dashboard's sign-in gate (ui/auth.py), headless with Streamlit's AppTest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts, audit

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def gate_on(monkeypatch):
    monkeypatch.setenv("LUCIDDX_AUTH", "on")


def guarded_page():
    """A page as the lead will guard them: the app's gate, then the page's own requirement."""
    import streamlit as st

    from ui import auth

    user = auth.gate()
    with st.sidebar:
        auth.sidebar(user)
    auth.require_page("train")
    st.write("TRAINING PAGE CONTENT")


def page() -> AppTest:
    at = AppTest.from_function(guarded_page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="luciddx_sign_in_name").input(name)
    next(t for t in at.text_input if t.key != "luciddx_sign_in_name").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "error", "warning", "info", "title", "caption", "code")
                    for e in getattr(at, kind))


def test_the_real_app_shows_the_setup_command_and_nothing_else_without_an_admin() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert "python -m core users add NAME --role admin" in [c.value for c in at.code]
    assert "default password" in shown(at) and "Image diagnosis" not in [t.value for t in at.title]
    assert not at.text_input  # no sign-in form, no default account


def test_sign_in_then_role_check_then_idle_expiry() -> None:
    accounts.add("admin1", "admin", PASSWORD)
    accounts.add("clin", "clinician", PASSWORD)
    at = page()
    assert "TRAINING PAGE CONTENT" not in shown(at) and at.title[0].value == "Sign in to LucidDx"

    sign_in(at, "clin", "wrong password here")
    assert "not right" in shown(at) and "TRAINING PAGE CONTENT" not in shown(at)
    sign_in(at, "clin", PASSWORD)
    assert "researcher" in shown(at) and "TRAINING PAGE CONTENT" not in shown(at)  # clinician may not train

    accounts.set_role("clin", "researcher")  # takes effect at the next run
    at.run()
    assert "TRAINING PAGE CONTENT" in shown(at) and "Signed in as clin (researcher)" in shown(at)

    idle_for_two_hours(at)
    at.run()
    assert "TRAINING PAGE CONTENT" not in shown(at) and "sign in again" in shown(at)

    log = [(r.user, r.action, r.outcome) for r in audit.records()]
    assert ("clin", "login", "failed") in log and ("clin", "login", "ok") in log and ("clin", "train", "denied") in log
    assert audit.verify().ok


def test_unknown_names_are_never_recorded_and_disabled_accounts_are_signed_out() -> None:
    accounts.add("admin1", "admin", PASSWORD)
    at = page()
    sign_in(at, PASSWORD, "typed the password as the name")
    assert all(r.user == "unknown" for r in audit.records(action="login"))
    sign_in(at, "admin1", PASSWORD)
    assert "TRAINING PAGE CONTENT" in shown(at)
    at.button(key="luciddx_sign_out").click().run()
    assert "TRAINING PAGE CONTENT" not in shown(at)
    sign_in(at, "admin1", PASSWORD)
    accounts.add("admin2", "admin", PASSWORD)
    accounts.disable("admin1")
    at.run()
    assert "TRAINING PAGE CONTENT" not in shown(at) and "disabled" in shown(at)


def language_page():
    """The app's order: language first, then the gate; the picker saves the choice like app.py's."""
    import streamlit as st

    from core import i18n
    from core.i18n import _
    from ui import auth
    from ui.language import apply_language

    apply_language()
    auth.gate()
    st.selectbox("language", list(i18n.LANGUAGES), key="language", on_change=auth.remember_language)
    st.title(_("Image diagnosis"))


def test_each_account_remembers_its_language_across_sign_ins() -> None:
    accounts.add("admin1", "admin", PASSWORD)
    accounts.add("wang", "clinician", PASSWORD)
    assert accounts.get("wang").language is None  # follows the browser until the person chooses
    at = AppTest.from_function(language_page, default_timeout=60)
    at.run()
    sign_in(at, "wang", PASSWORD)
    assert at.title[0].value == "Image diagnosis"

    at.selectbox(key="language").select("zh_CN").run()
    assert at.title[0].value == "影像诊断" and accounts.get("wang").language == "zh_CN"

    fresh = AppTest.from_function(language_page, default_timeout=60)  # another browser, another day
    fresh.run()
    assert fresh.title[0].value == "Sign in to LucidDx"
    sign_in(fresh, "wang", PASSWORD)
    assert fresh.title[0].value == "影像诊断" and fresh.session_state["language"] == "zh_CN"
    assert accounts.get("admin1").language is None  # one person's choice is theirs alone


def test_a_language_luciddx_does_not_speak_is_refused() -> None:
    accounts.add("wang", "clinician", PASSWORD)
    with pytest.raises(accounts.AccountError, match="not a language"):
        accounts.set_language("wang", "fr")
    assert accounts.get("wang").language is None


@pytest.mark.usefixtures("fast_lockout")
def test_one_message_for_every_failure_and_an_attacker_cannot_lock_the_clinician_out(monkeypatch) -> None:
    from ui import auth

    monkeypatch.setattr(auth, "_client", lambda: "ip:203.0.113.9")  # AppTest gives every session one id
    accounts.add("admin1", "admin", PASSWORD)
    accounts.add("clin", "clinician", PASSWORD)
    accounts.add("gone", "clinician", PASSWORD)
    accounts.disable("gone")
    errors = []
    for name, password in (("clin", "wrong password here"), ("nobody", PASSWORD), ("gone", PASSWORD)):
        errors.append([e.value for e in sign_in(page(), name, password).error])
    assert errors[0] == errors[1] == errors[2] and "disabled" not in str(errors)
    attacker = page()
    for _ in range(6):
        sign_in(attacker, "clin", "wrong password here")
    sign_in(attacker, "clin", PASSWORD)  # from the attacker's browser even the right password now waits
    assert "wait" in shown(attacker) and "TRAINING PAGE CONTENT" not in shown(attacker)
    assert ("clin", "login", "locked") in [(r.user, r.action, r.outcome) for r in audit.records()]
    monkeypatch.setattr(auth, "_client", lambda: "ip:198.51.100.4")
    clinician = sign_in(page(), "clin", PASSWORD)  # the clinician's own browser: in at once
    assert "Signed in as clin (clinician)" in shown(clinician)


def idle_for_two_hours(at) -> None:
    """Two hours without activity, on the tab and on the server (every tab of the browser would have aged it)."""
    import sqlalchemy as sa

    from core.access import store

    then = datetime.now(timezone.utc) - timedelta(hours=2)
    at.session_state["luciddx_session"]["last_seen"] = then
    with store.begin() as db:
        db.execute(store.browser_sessions.update().values(last_seen=then))


def test_a_tab_left_alone_carries_on_while_the_person_works_in_another() -> None:
    """The server's idle clock is shared by every tab: a tab idle for two hours, while another tab of the same
    browser session kept the server session fresh, is still signed in at its next click."""
    accounts.add("admin1", "admin", PASSWORD)
    at = page()
    sign_in(at, "admin1", PASSWORD)
    assert "TRAINING PAGE CONTENT" in shown(at)
    at.session_state["luciddx_session"]["last_seen"] = datetime.now(timezone.utc) - timedelta(hours=2)  # this tab only
    at.run()
    assert "TRAINING PAGE CONTENT" in shown(at) and "sign in again" not in shown(at)
    idle_for_two_hours(at)  # now the server session is idle too
    at.run()
    assert "TRAINING PAGE CONTENT" not in shown(at) and "sign in again" in shown(at)
