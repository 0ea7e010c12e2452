"""Server-kept browser sessions (issue 22.10), on SQLite and on a real PostgreSQL: what a cookie is worth."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.access import accounts, sessions, store
from core.services import admin, signin
from core.services.audit import Actor

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture
def doctor() -> str:
    accounts.add("admin1", "admin", PASSWORD)
    accounts.add("doc1", "clinician", PASSWORD)
    return "doc1"


def handed_over(name: str) -> tuple[str, sessions.Session]:
    session, code = sessions.open_session(name)
    found = sessions.exchange(code)
    assert found is not None
    return found


def test_a_code_hands_over_one_cookie_once_and_only_digests_are_stored(doctor: str) -> None:
    session, code = sessions.open_session(doctor)
    cookie, same = sessions.exchange(code)
    assert same.id == session.id and sessions.resume(cookie).account == doctor
    assert sessions.exchange(code) is None  # used up
    token = cookie.split(".")[0]
    with store.begin() as db:
        stored = " ".join(str(v) for row in db.execute(sa.select(store.browser_sessions)).all() for v in row)
    assert token not in stored and code not in stored and cookie not in stored


def test_an_old_code_is_refused(doctor: str) -> None:
    _session, code = sessions.open_session(doctor)
    assert sessions.exchange(code, accounts.utcnow() + timedelta(minutes=2)) is None


def test_a_forged_or_altered_cookie_is_refused_before_the_database(doctor: str) -> None:
    cookie, _session = handed_over(doctor)
    token, mac = cookie.split(".")
    altered = token[:-1] + ("A" if token[-1] != "A" else "B") + "." + mac
    for bad in (altered, token + "." + "0" * 64, token, "", None, "x" * 4000, cookie + "é"):
        assert sessions.resume(bad) is None
    assert sessions.resume(cookie) is not None  # the real one still works


def test_idle_and_shift_limits_end_a_session_for_good(doctor: str, monkeypatch) -> None:
    cookie, _session = handed_over(doctor)
    assert sessions.resume(cookie, accounts.utcnow() + timedelta(minutes=31)) is None  # idle past 30 minutes
    assert sessions.resume(cookie) is None  # ended, not merely skipped
    monkeypatch.setenv("LUCIDDX_SESSION_MAX_HOURS", "1")
    cookie, _session = handed_over(doctor)
    later = accounts.utcnow()
    for minutes in (20, 40, 59):  # active all along ...
        assert sessions.resume(cookie, later + timedelta(minutes=minutes)) is not None
    assert sessions.resume(cookie, later + timedelta(minutes=61)) is None  # ... yet the shift's limit holds


def test_sign_out_ends_every_tab_and_disabling_ends_every_browser(doctor: str) -> None:
    account, session, code = signin.sign_in(doctor, PASSWORD, client="ip:192.0.2.1")
    cookie, _same = signin.exchange(code)
    assert signin.resume(cookie)[0].name == doctor and signin.alive(session.id)
    signin.end_session(account.name, account.role, session.id, None)
    assert signin.resume(cookie) is None and signin.alive(session.id) is None

    cookies = [handed_over(doctor)[0] for _ in range(2)]  # two browsers
    admin.set_enabled(Actor("admin1", "admin"), doctor, False)
    assert all(sessions.resume(c) is None for c in cookies)
    admin.set_enabled(Actor("admin1", "admin"), doctor, True)
    assert all(sessions.resume(c) is None for c in cookies)  # enabling again does not revive them


def test_sign_in_and_sign_out_are_recorded_and_a_failure_opens_no_session(doctor: str) -> None:
    from core.access import audit
    from core.errors import AuthenticationError

    with pytest.raises(AuthenticationError):
        signin.sign_in(doctor, "wrong password here", client="ip:192.0.2.2")
    with store.begin() as db:
        assert db.execute(sa.select(sa.func.count()).select_from(store.browser_sessions)).scalar() == 0
    account, session, _code = signin.sign_in(doctor, PASSWORD, client="ip:192.0.2.2")
    signin.end_session(account.name, account.role, session.id, None)
    outcomes = [(r.user, r.action, r.outcome) for r in audit.records()][-3:]
    assert outcomes == [(doctor, "login", "failed"), (doctor, "login", "ok"), (doctor, "logout", "ok")]


def test_a_sign_in_that_cannot_be_recorded_leaves_no_live_session(doctor: str, monkeypatch) -> None:
    from core.access import audit
    from core.errors import AccessStoreError

    def unwritable(*_args, **_kwargs):
        raise AccessStoreError("the audit log cannot be written")

    monkeypatch.setattr(audit, "record", unwritable)
    with pytest.raises(AccessStoreError):
        signin.sign_in(doctor, PASSWORD, client="ip:192.0.2.3")
    with store.begin() as db:
        rows = db.execute(sa.select(store.browser_sessions)).all()
    assert len(rows) == 1 and rows[0].ended is not None and rows[0].handoff_sha256 is None  # opened, then ended
