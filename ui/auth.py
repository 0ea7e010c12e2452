"""The sign-in gate: nothing of the dashboard renders before a person signs in with their account.

``app.py`` calls :func:`gate` before it draws anything; a page that needs more than a clinician calls
``require_page("train")`` (etc.) at its top. A session lives in ``st.session_state`` and ends after
``LUCIDDX_SESSION_IDLE_MINUTES`` without activity. The account is re-read on every run, so disabling an
account or changing its role takes effect at the next click.

With no administrator account yet, the page shows the one-time set-up command instead of a sign-in
form: there is no default password. ``LUCIDDX_AUTH=off`` switches the gate off for development and
the automated page tests only; the sidebar then says so on every page.

With ``LUCIDDX_SSO=oidc`` and Streamlit's ``[auth]`` settings in ``.streamlit/secrets.toml`` (and Authlib
installed), the sign-in screen also offers the hospital's identity provider (``st.login``); the identity
must name an enabled local account (``core.access.sso``), and that account's role applies.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from datetime import datetime, timezone

import streamlit as st

from core.access import accounts, audit, roles, sso
from core.errors import AccountLockedError, AuthenticationError, LucidDxError, PermissionDeniedError
from core import i18n
from core.i18n import _

log = logging.getLogger(__name__)

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
        _end(session, _("Your session ended after a period without activity; sign in again."))
        return None
    account = accounts.find(session["name"])
    if account is None or account.disabled:
        _end(session, _("Your account was disabled; ask an administrator."))
        return None
    session["last_seen"] = _now()
    return account


def _end(session: dict, reason: str) -> None:
    sign_out(reason)
    if session.get("sso"):
        # The identity provider's cookie would sign the next run straight back in: idle expiry and a
        # disabled account must end it too.
        st.logout()


# What may outlive a session boundary in this tab: nothing about a patient, only the reader's language and
# the sign-in screen's own bookkeeping. Everything else (films, results, heatmaps, risk values, tables,
# reports, archive and validation results, widget values) is dropped before anything is drawn.
KEPT_ACROSS_SESSIONS = frozenset({"language", "luciddx_signed_out_because", "luciddx_sso_refused", "luciddx_tab_owner"})


def clear_patient_state() -> None:
    """Forget every patient-derived value of this tab (all of session_state but KEPT_ACROSS_SESSIONS)."""
    for key in list(st.session_state.keys()):
        if key not in KEPT_ACROSS_SESSIONS:
            del st.session_state[key]


def sign_out(reason: str | None = None) -> None:
    """End this tab's session (sign-out, idle expiry, disabled account): its patient state goes with it."""
    session = st.session_state.get(SESSION_KEY)
    if session:
        session["ended"] = True  # download callables drawn before now check this (see guarded)
        if reason is None:
            _record(session["name"], session["role"], "logout", "ok")
    clear_patient_state()
    if reason:
        st.session_state["luciddx_signed_out_because"] = reason


def guarded(produce: Callable[[], bytes]) -> Callable[[], bytes]:
    """``produce`` for a download button, refused once the session that drew the button has ended or expired:
    a button left on screen never hands out a report after sign-out or idle expiry."""
    session = st.session_state.get(SESSION_KEY) if enabled() else None

    def checked() -> bytes:
        if enabled() and (session is None or session.get("ended")
                          or accounts.session_expired(session["last_seen"], _now())):
            raise PermissionDeniedError(_("Your session has ended; sign in again to download."))
        return produce()

    return checked


def _auth_section() -> dict | None:
    """Streamlit's ``[auth]`` secrets, or None when there is no secrets file or no such section."""
    if not st.secrets.load_if_toml_exists() or "auth" not in st.secrets:
        return None
    return dict(st.secrets["auth"])


def _authlib_present() -> bool:
    return importlib.util.find_spec("authlib") is not None


def sso_enabled() -> bool:
    """Whether the sign-in screen offers the hospital account (see core.access.sso.configured)."""
    return sso.configured(_auth_section(), _authlib_present())


def _start_session(account: accounts.Account, via_sso: bool = False) -> None:
    if st.session_state.get("luciddx_tab_owner") != account.name:
        clear_patient_state()  # another person signs in on this tab: nothing of the last one's patients stays
    st.session_state["luciddx_tab_owner"] = account.name
    st.session_state[SESSION_KEY] = {"name": account.name, "role": account.role, "last_seen": _now(), "sso": via_sso}
    _record(account.name, account.role, "login", "ok")
    if account.language:  # the language this person chose last time, on any machine
        st.session_state["language"] = i18n.set_language(account.language)


def remember_language() -> None:
    """The language picker's on_change: a signed-in person's choice is kept with their account."""
    session = st.session_state.get(SESSION_KEY)
    if not (enabled() and session):
        return
    try:
        accounts.set_language(session["name"], st.session_state["language"])
    except LucidDxError as exc:  # the choice still holds for this session; only remembering it failed
        log.warning("The language choice could not be saved: %s", exc)


def _sso_session() -> accounts.Account | None:
    """After ``st.login``: the local account of the hospital identity, or a refusal (audited once) and stop."""
    claims = dict(st.user)  # a mapping: attribute access raises when [auth] is missing from the real secrets
    if not claims.get("is_logged_in"):
        return None
    try:
        account = sso.account_for(claims)
    except AuthenticationError as exc:
        if not st.session_state.get("luciddx_sso_refused"):
            st.session_state["luciddx_sso_refused"] = True
            _record("unknown", "none", "login", "failed")  # the identity itself may name a person: not recorded
        st.title(_("Sign in to LucidDx"))
        st.error(str(exc))
        if st.button(_("Sign out of the hospital account"), key="luciddx_sso_logout"):
            st.session_state.pop("luciddx_sso_refused", None)
            st.logout()
        st.stop()
    _start_session(account, via_sso=True)
    return account


def _sign_in_form() -> None:
    st.title(_("Sign in to LucidDx"))
    reason = st.session_state.pop("luciddx_signed_out_because", None)
    if reason:
        st.warning(reason)
    if sso_enabled():
        if st.button(_("Sign in with the hospital account"), key="luciddx_sso_login", type="primary"):
            st.login(sso.provider())
        st.caption(_("Or sign in with a LucidDx name and password:"))
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
    _start_session(account)
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
        if user is None and sso_enabled():
            user = _sso_session()
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
        via_sso = (st.session_state.get(SESSION_KEY) or {}).get("sso")
        sign_out()
        if via_sso:
            st.logout()  # also end the identity provider's cookie, or the next run would sign in again
        st.rerun()
