"""Optional OIDC single sign-on: when it is offered, and which hospital identities map to which accounts."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts, audit, sso
from core.errors import AuthenticationError

PASSWORD = "correct horse battery"
AUTH = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
        "client_id": "luciddx", "client_secret": "x", "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}


@pytest.mark.parametrize(("env", "section", "library", "offered"), [
    ("", AUTH, True, False),                      # off by default
    ("oidc", None, True, False),                  # no [auth] secrets
    ("oidc", {"client_id": "x"}, True, False),    # incomplete secrets
    ("oidc", AUTH, False, False),                 # Authlib not installed
    ("OIDC", AUTH, True, True),
])
def test_sso_is_offered_only_when_switched_on_and_configured(env, section, library, offered, monkeypatch) -> None:
    monkeypatch.setenv(sso.MODE_VARIABLE, env)
    assert sso.configured(section, library) is offered


def test_identities_map_to_enabled_local_accounts_only() -> None:
    accounts.add("alice@hospital.org", "researcher", PASSWORD)
    accounts.add("u-123", "clinician", PASSWORD)
    accounts.add("bob@hospital.org", "admin", PASSWORD)
    accounts.disable("bob@hospital.org")
    found = sso.account_for({"email": "Alice@Hospital.org", "email_verified": True, "sub": "zzz"})
    assert (found.name, found.role) == ("alice@hospital.org", "researcher")  # the role is ours, not the IdP's
    # An unverified e-mail proves nothing: only the subject may then map.
    assert sso.account_for({"email": "alice@hospital.org", "email_verified": False, "sub": "u-123"}).name == "u-123"
    with pytest.raises(AuthenticationError, match="no LucidDx account"):
        sso.account_for({"email": "alice@hospital.org", "email_verified": False, "sub": "other"})
    with pytest.raises(AuthenticationError, match="disabled"):
        sso.account_for({"email": "bob@hospital.org", "sub": "b"})
    with pytest.raises(AuthenticationError, match="no LucidDx account"):
        sso.account_for({"email": "mallory@elsewhere.org", "sub": "m; DROP TABLE"})


def _gate_page():
    import streamlit as st

    from ui import auth

    auth.gate()
    st.write("SIGNED IN CONTENT")


@pytest.mark.parametrize("switched_on", [False, True])
def test_the_hospital_button_appears_only_when_configured(switched_on, monkeypatch) -> None:
    from ui import auth

    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    monkeypatch.setenv(sso.MODE_VARIABLE, "oidc" if switched_on else "")
    monkeypatch.setattr(auth, "_authlib_present", lambda: True)
    monkeypatch.setattr(auth, "_auth_section", lambda: dict(AUTH))
    accounts.add("admin", "admin", PASSWORD)
    at = AppTest.from_function(_gate_page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    keys = [b.key for b in at.button]
    assert ("luciddx_sso_login" in keys) is switched_on
    assert at.text_input(key="luciddx_sign_in_name") is not None  # local accounts still sign in
    assert "SIGNED IN CONTENT" not in [m.value for m in at.markdown]


def test_an_unknown_identity_is_refused_and_audited_as_a_failed_login(monkeypatch) -> None:
    from ui import auth

    accounts.add("admin", "admin", PASSWORD)
    monkeypatch.setattr(auth, "sso_enabled", lambda: True)

    import streamlit as st

    monkeypatch.setattr(st, "user", {"is_logged_in": True, "email": "mallory@elsewhere.org", "sub": "m"})
    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    at = AppTest.from_function(_gate_page, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any("no LucidDx account" in e.value for e in at.error)
    assert "SIGNED IN CONTENT" not in [m.value for m in at.markdown]
    failed = [r for r in audit.records(action="login") if r.outcome == "failed"]
    assert [(r.user, r.role) for r in failed] == [("unknown", "none")]

    monkeypatch.setattr(st, "user", {"is_logged_in": True, "email": "admin", "sub": "admin"})
    at = AppTest.from_function(_gate_page, default_timeout=60)
    at.run()
    assert "SIGNED IN CONTENT" in [m.value for m in at.markdown]
    assert audit.records(action="login")[-1].user == "admin"
