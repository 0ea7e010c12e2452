"""A session boundary clears the patient (issue 21.4): after sign-out or idle expiry nothing of the last
patient is drawn or downloadable in that tab, whoever signs in next."""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta, timezone

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts
from core.errors import PermissionDeniedError

PASSWORD = "Quiet-harbour-lamp-47"


@pytest.fixture(autouse=True)
def gate_on(monkeypatch):
    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    builtins.__dict__["_luciddx_downloads"] = []  # the download callables the page drew, to click them later
    yield
    builtins.__dict__.pop("_luciddx_downloads", None)


def patient_page():
    import builtins

    import streamlit as st

    from ui import auth

    user = auth.gate()
    with st.sidebar:
        auth.sidebar(user)
    if st.button("Load film", key="load_film"):
        st.session_state["diagnosis_results"] = {"film.png": "PNEUMONIA 0.97"}
        st.session_state["film_levels"] = {"digest": "levels"}
    if st.session_state.get("diagnosis_results"):
        st.write("PATIENT " + str(st.session_state["diagnosis_results"]))
        builtins._luciddx_downloads.append(auth.guarded(lambda: b"%PDF case report"))


def sign_in(at: AppTest, name: str) -> None:
    at.text_input(key="luciddx_sign_in_name").input(name)
    next(t for t in at.text_input if t.key != "luciddx_sign_in_name").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception


def shown(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "error", "warning", "title") for e in getattr(at, kind))


@pytest.mark.parametrize("boundary", ["idle expiry", "sign-out"])
def test_the_next_person_on_the_tab_sees_nothing_of_the_last_patient(boundary: str) -> None:
    accounts.add("ada", "admin", PASSWORD)
    accounts.add("bea", "clinician", PASSWORD)
    at = AppTest.from_function(patient_page, default_timeout=60).run()
    sign_in(at, "ada")
    at.button(key="load_film").click().run()
    assert "PATIENT" in shown(at)
    download = builtins._luciddx_downloads[-1]
    assert download() == b"%PDF case report"  # in a live session the button hands out the report

    if boundary == "idle expiry":
        idle_for_two_hours(at)
        at.run()
    else:
        at.button(key="luciddx_sign_out").click().run()
        at.run()
    assert not at.exception, at.exception
    assert "PATIENT" not in shown(at) and at.title[0].value == "Sign in to LucidDx"
    assert "diagnosis_results" not in at.session_state and "film_levels" not in at.session_state
    with pytest.raises(PermissionDeniedError, match="session has ended"):
        download()  # a button drawn before the boundary never hands out the report after it

    sign_in(at, "bea")
    assert "PATIENT" not in shown(at) and "diagnosis_results" not in at.session_state
    assert auth_is_signed_in(at, "bea")


def auth_is_signed_in(at: AppTest, name: str) -> bool:
    return at.session_state["luciddx_session"]["name"] == name


def idle_for_two_hours(at) -> None:
    """Two hours without activity, on the tab and on the server (every tab of the browser would have aged it)."""
    import sqlalchemy as sa

    from core.access import store

    then = datetime.now(timezone.utc) - timedelta(hours=2)
    at.session_state["luciddx_session"]["last_seen"] = then
    with store.begin() as db:
        db.execute(store.browser_sessions.update().values(last_seen=then))
