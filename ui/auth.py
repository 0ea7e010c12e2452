"""The sign-in gate: nothing of the dashboard renders before a person signs in with their account.

``app.py`` calls :func:`gate` before it draws anything; a page that needs more than a clinician calls
``require_page("train")`` (etc.) at its top. A session lives in ``st.session_state`` and on the server
(``core.access.sessions``): after sign-in the browser is handed an HttpOnly, SameSite=Strict cookie by the
dashboard's ``/auth/session`` route (``ui/session_routes.py``, served when the dashboard runs as
``streamlit run server.py``), so a reload, a bookmark or a second tab resumes the same session. It ends on
sign-out (in any tab), after ``LUCIDDX_SESSION_IDLE_MINUTES`` without activity, after
``LUCIDDX_SESSION_MAX_HOURS`` in all, or when the account is disabled. The account is re-read on every
run, so disabling an account or changing its role takes effect at the next click.

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
from datetime import UTC, datetime

import streamlit as st

from core import i18n
from core.errors import AuthenticationError, LucidDxError, PermissionDeniedError
from core.i18n import _
from core.services import signin
from core.services.audit import Who
from core.services.signin import Account, EndReason

log = logging.getLogger(__name__)

SESSION_KEY = "luciddx_session"
SETUP_COMMAND = "python -m core users add NAME --role admin"


def enabled() -> bool:
    return os.environ.get("LUCIDDX_AUTH", "on").strip().lower() not in ("off", "0", "false", "no")


def _now() -> datetime:
    return datetime.now(UTC)


def _audit_failed(exc: LucidDxError) -> None:
    """An audit record (or the session store behind it) could not be written: logged (never a name or a
    value) and shown on this screen, never dropped."""
    log.error("Sign-in bookkeeping failed: %s", type(exc).__name__)
    st.session_state["luciddx_audit_problem"] = str(exc)


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(signin.COOKIE_NAME)
    except (AttributeError, RuntimeError, KeyError):  # no browser request behind this run (headless tests)
        return None
    return value if isinstance(value, str) else None


def _resumed() -> Account | None:
    """The account of a live browser session whose cookie this browser sent (reload, bookmark, new tab)."""
    found = signin.resume(_cookie())
    if found is None:
        return None
    account, session = found
    _start_session(account, session.id)
    return account


def current_user() -> Account | None:
    """The signed-in, enabled account of this session, or None (expired sessions are ended here).

    A tab with no session of its own resumes the browser's (the session cookie); a tab whose server
    session ended elsewhere (sign-out in another tab, the shift's limit, a disabled account) ends too.
    """
    session = st.session_state.get(SESSION_KEY)
    if not session:
        return _resumed()
    idle = signin.session_expired(session["last_seen"], _now())
    if idle and not session.get("sid"):  # a tab without a server session: its own clock decides
        _end(session, _("Your session ended after a period without activity; sign in again."), "idle")
        return None
    account = signin.find(session["name"])
    if account is None or account.disabled:
        _end(session, _("Your account was disabled; ask an administrator."), "disabled")
        return None
    # With a server session, idle time is the server's, which every tab of this browser keeps fresh: a tab
    # left alone while the person works in another one carries on; once the session ended, every tab ends.
    if session.get("sid") and signin.alive(session["sid"]) is None:
        _end(
            session,
            _("Your session ended after a period without activity; sign in again.")
            if idle
            else _("Your session has ended (signed out in another tab, or its time is over); sign in again."),
            "expired",
        )
        return None
    session["last_seen"] = _now()
    return account


def _end(session: dict, reason: str, kind: EndReason) -> None:
    sign_out(reason, kind)
    if session.get("sso"):
        # The identity provider's cookie would sign the next run straight back in: idle expiry and a
        # disabled account must end it too.
        st.logout()


# What may outlive a session boundary in this tab: nothing about a patient, only the reader's language and
# the sign-in screen's own bookkeeping. Everything else (films, results, heatmaps, risk values, tables,
# reports, archive and validation results, widget values) is dropped before anything is drawn.
KEPT_ACROSS_SESSIONS = frozenset(
    {
        "language",
        "luciddx_signed_out_because",
        "luciddx_sso_refused",
        "luciddx_tab_owner",
        "luciddx_clear_cookie",
        "luciddx_audit_problem",
    }
)


def clear_patient_state() -> None:
    """Forget every patient-derived value of this tab (all of session_state but KEPT_ACROSS_SESSIONS)."""
    for key in list(st.session_state.keys()):
        if key not in KEPT_ACROSS_SESSIONS:
            del st.session_state[key]


def sign_out(reason: str | None = None, kind: EndReason | None = None) -> None:
    """End this tab's session (sign-out, idle expiry, disabled account): its patient state goes with it,
    the server session ends (so the cookie signs no other tab in) and the browser is told to drop the cookie.

    ``reason``: the message to show (None: the person signed out, which is recorded); ``kind``: "idle",
    "expired" or "disabled" when ``reason`` is given.
    """
    session = st.session_state.get(SESSION_KEY)
    if session:
        session["ended"] = True  # download callables drawn before now check this (see guarded)
        try:
            signin.end_session(session["name"], session["role"], session.get("sid"), None if reason is None else kind)
        except LucidDxError as exc:
            _audit_failed(exc)
    clear_patient_state()
    st.session_state["luciddx_clear_cookie"] = True
    if reason:
        st.session_state["luciddx_signed_out_because"] = reason


def guarded(produce: Callable[[], bytes]) -> Callable[[], bytes]:
    """``produce`` for a download button, refused once the session that drew the button has ended or expired:
    a button left on screen never hands out a report after sign-out or idle expiry."""
    session = st.session_state.get(SESSION_KEY) if enabled() else None

    def checked() -> bytes:
        if enabled() and (
            session is None or session.get("ended") or signin.session_expired(session["last_seen"], _now())
        ):
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
    return signin.sso_configured(_auth_section(), _authlib_present())


def _start_session(account: Account, session_id: str, handoff: str | None = None, via_sso: bool = False) -> None:
    """This tab is signed in as ``account`` (server session ``session_id``); ``handoff``: the one-time code
    that gets the browser its session cookie, sent with the next page drawn (:func:`_hand_over_cookie`)."""
    if st.session_state.get("luciddx_tab_owner") != account.name:
        clear_patient_state()  # another person signs in on this tab: nothing of the last one's patients stays
    st.session_state["luciddx_tab_owner"] = account.name
    st.session_state[SESSION_KEY] = {
        "name": account.name,
        "role": account.role,
        "last_seen": _now(),
        "sso": via_sso,
        "sid": session_id,
    }
    st.session_state.pop("luciddx_clear_cookie", None)
    if handoff:
        st.session_state["luciddx_cookie_handoff"] = handoff
    if account.language:  # the language this person chose last time, on any machine
        st.session_state["language"] = i18n.set_language(account.language)


def _script(body: str) -> None:
    """Run a few lines of our own JavaScript in this browser (no user input is ever placed in them)."""
    st.html(f"<script>{body}</script>", unsafe_allow_javascript=True)


def _hand_over_cookie() -> None:
    """Once after sign-in: the browser posts the one-time code to /auth/session, whose answer sets the
    HttpOnly session cookie (a page script can neither read nor write it)."""
    code = st.session_state.pop("luciddx_cookie_handoff", None)
    if code and code.replace("-", "").replace("_", "").isalnum():
        _script(
            "fetch('/auth/session', {method: 'POST', credentials: 'same-origin', "
            "headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'code=" + code + "'});"
        )


def _drop_cookie() -> None:
    """After a session ended: the browser asks /auth/signout to expire the (already worthless) cookie."""
    if st.session_state.pop("luciddx_clear_cookie", None):
        _script("fetch('/auth/signout', {method: 'POST', credentials: 'same-origin'});")


def remember_language() -> None:
    """The language picker's on_change: a signed-in person's choice is kept with their account."""
    session = st.session_state.get(SESSION_KEY)
    if not (enabled() and session):
        return
    try:
        signin.remember_language(session["name"], st.session_state["language"])
    except LucidDxError as exc:  # the choice still holds for this session; only remembering it failed
        log.warning("The language choice could not be saved: %s", exc)


def _sso_session() -> Account | None:
    """After ``st.login``: the local account of the hospital identity, or a refusal (audited once) and stop."""
    claims = dict(st.user)  # a mapping: attribute access raises when [auth] is missing from the real secrets
    if not claims.get("is_logged_in"):
        return None
    try:
        account = signin.sso_account(claims)
    except AuthenticationError as exc:
        if not st.session_state.get("luciddx_sso_refused"):
            st.session_state["luciddx_sso_refused"] = True
            signin.record_sso_refusal()  # the identity itself may name a person: not recorded
        st.title(_("Sign in to LucidDx"))
        st.error(str(exc))
        if st.button(_("Sign out of the hospital account"), key="luciddx_sso_logout"):
            st.session_state.pop("luciddx_sso_refused", None)
            st.logout()
        st.stop()
    session, code = signin.open_after_sso(account)
    _start_session(account, session.id, code, via_sso=True)
    return account


def _client() -> str:
    """Who is trying to sign in, for the back-off: the browser's address; where Streamlit does not know it
    (this machine, or a proxy on it), the browser session."""
    address = st.context.ip_address
    if isinstance(address, str) and address:
        return "ip:" + address
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    context = get_script_run_ctx()
    return "session:" + (context.session_id if context else "unknown")


def _sign_in_form() -> None:
    st.title(_("Sign in to LucidDx"))
    _drop_cookie()
    reason = st.session_state.pop("luciddx_signed_out_because", None)
    if reason:
        st.warning(reason)
    problem = st.session_state.pop("luciddx_audit_problem", None)
    if problem:
        st.error(problem)
    if sso_enabled():
        if st.button(_("Sign in with the hospital account"), key="luciddx_sso_login", type="primary"):
            st.login(signin.sso_provider())
        st.caption(_("Or sign in with a LucidDx name and password:"))
    with st.form("luciddx_sign_in"):
        name = st.text_input(_("Name"), key="luciddx_sign_in_name")
        password = st.text_input(_("Password"), type="password")  # no key: never kept in session_state
        submitted = st.form_submit_button(_("Sign in"), type="primary")
    if not submitted:
        return
    try:
        account, session, code = signin.sign_in(name, password, client=_client())
    except AuthenticationError as exc:
        st.error(str(exc))
        return
    except LucidDxError as exc:  # the account store or the audit trail cannot be written: nobody signs in unrecorded
        log.error("Sign-in could not be recorded: %s (%s)", type(exc).__name__, exc)  # names the database, no one
        st.error(str(exc))
        return
    _start_session(account, session.id, code)
    st.rerun()


def gate() -> Account | None:
    """The signed-in account; otherwise draw the sign-in form (or the set-up instruction) and stop."""
    if not enabled():
        return None
    try:
        if not signin.has_admin():
            st.title(_("Set up LucidDx"))
            st.info(
                _(
                    "No administrator account exists yet, and LucidDx has no default password. "
                    "On the server, as the user that runs LucidDx, create the first administrator "
                    "(the password is asked for, never typed on the command line):"
                )
            )
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
    _hand_over_cookie()
    return user


def require_page(action: str) -> Account | None:
    """At the top of a page: stop it with a translated message unless the user's role allows ``action``."""
    if not enabled():
        return None
    user = current_user()
    if user is None:  # a page reached by its address before sign-in: sign in here, the address (and its
        user = gate()  # query) stays, so the reader lands where the link pointed
    try:
        signin.require(user, action)  # a signed-in person's refusal is recorded as denied
    except PermissionDeniedError as exc:
        st.error(str(exc))
        st.stop()
    except LucidDxError as exc:
        _audit_failed(exc)
        st.error(str(exc))
        st.stop()
    return user


def allows(user: Who | None, action: str) -> bool:
    """Whether this session may do ``action`` (always, when sign-in is switched off)."""
    return not enabled() or signin.allowed(user, action)


def sidebar(user: Account | None) -> None:
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
