"""The sign-in gate: nothing of the dashboard renders before a person signs in with their account.

``app.py`` calls :func:`gate` before it draws anything; a page that needs more than a clinician calls
``require_page("train")`` (etc.) at its top. A session lives in ``st.session_state`` and ends after
``LUCIDDX_SESSION_IDLE_MINUTES`` without activity. The account is re-read on every run, so disabling an
account or changing its role takes effect at the next click.

With no administrator account yet, the page shows the one-time set-up command instead of a sign-in
form: there is no default password. ``LUCIDDX_AUTH=off`` switches the gate off for development and
the automated page tests only; the sidebar then says so on every page.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

import streamlit as st

from core.access import accounts, audit, roles
from core.errors import AccountLockedError, AuthenticationError, LucidDxError, PermissionDeniedError
from core.i18n import _

SESSION_KEY = "luciddx_session"
SETUP_COMMAND = "python -m core users add NAME --role admin"


def enabled() -> bool:
    return os.environ.get("LUCIDDX_AUTH", "on").strip().lower() not in ("off", "0", "false", "no")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _record(user: str, role: str, action: str, outcome: str) -> None:
    try:
        audit.record(user, role, action, outcome=outcome)
    except (LucidDxError, ValueError):  # the audit store being down must not hide the page's own message
        pass


def current_user() -> accounts.Account | None:
    """The signed-in, enabled account of this session, or None (expired sessions are ended here)."""
    session = st.session_state.get(SESSION_KEY)
    if not session:
        return None
    if accounts.session_expired(session["last_seen"], _now()):
        sign_out(_("Your session ended after a period without activity; sign in again."))
        return None
    account = accounts.find(session["name"])
    if account is None or account.disabled:
        sign_out(_("Your account was disabled; ask an administrator."))
        return None
    session["last_seen"] = _now()
    return account


def sign_out(reason: str | None = None) -> None:
    session = st.session_state.pop(SESSION_KEY, None)
    if session and reason is None:
        _record(session["name"], session["role"], "logout", "ok")
    if reason:
        st.session_state["luciddx_signed_out_because"] = reason


def _sign_in_form() -> None:
    st.title(_("Sign in to LucidDx"))
    reason = st.session_state.pop("luciddx_signed_out_because", None)
    if reason:
        st.warning(reason)
    with st.form("luciddx_sign_in"):
        name = st.text_input(_("Name"), key="luciddx_sign_in_name")
        password = st.text_input(_("Password"), type="password")  # no key: never kept in session_state
        submitted = st.form_submit_button(_("Sign in"), type="primary")
    if not submitted:
        return
    try:
        account = accounts.authenticate(name.strip(), password)
    except AuthenticationError as exc:
        known = accounts.find(name.strip()) if accounts.NAME_PATTERN.match(name.strip() or "-") else None
        # A name that is no account may be a password typed in the wrong box: it is never recorded.
        _record(known.name if known else "unknown", known.role if known else "none", "login",
                "locked" if isinstance(exc, AccountLockedError) else "failed")
        st.error(str(exc))
        return
    st.session_state[SESSION_KEY] = {"name": account.name, "role": account.role, "last_seen": _now()}
    _record(account.name, account.role, "login", "ok")
    st.rerun()


def gate() -> accounts.Account | None:
    """The signed-in account; otherwise draw the sign-in form (or the set-up instruction) and stop."""
    if not enabled():
        return None
    try:
        if not accounts.has_admin():
            st.title(_("Set up LucidDx"))
            st.info(_("No administrator account exists yet, and LucidDx has no default password. "
                      "On the server, as the user that runs LucidDx, create the first administrator "
                      "(the password is asked for, never typed on the command line):"))
            st.code(SETUP_COMMAND, language="bash")
            st.caption(_("Then reload this page and sign in. See docs/access.md."))
            st.stop()
        user = current_user()
    except LucidDxError as exc:
        st.error(str(exc))
        st.stop()
    if user is None:
        _sign_in_form()
        st.stop()
    return user


def require_page(action: str) -> accounts.Account | None:
    """At the top of a page: stop it with a translated message unless the user's role allows ``action``."""
    if not enabled():
        return None
    user = current_user()
    try:
        roles.require(user, action)
    except PermissionDeniedError as exc:
        if user is not None:
            _record(user.name, user.role, action, "denied")
        st.error(str(exc))
        st.stop()
    return user


def allows(user: accounts.Account | None, action: str) -> bool:
    """Whether this session may do ``action`` (always, when sign-in is switched off)."""
    return not enabled() or (user is not None and roles.allowed(user.role, action))


def sidebar(user: accounts.Account | None) -> None:
    """Who is signed in, and the sign-out button (in the sidebar)."""
    if not enabled():
        st.warning(_("Sign-in is switched off (LUCIDDX_AUTH=off): for development only."))
        return
    if user is None:
        return
    st.caption(_("Signed in as {name} ({role})").format(name=user.name, role=user.role))
    if st.button(_("Sign out"), key="luciddx_sign_out"):
        sign_out()
        st.rerun()
