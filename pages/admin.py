"""Administration: the first-run checklist, locking evaluation sets, accounts and roles, API keys, and the audit
log (filter, verify, export)."""

from __future__ import annotations

from datetime import UTC, datetime, time

import streamlit as st

from core.errors import LucidDxError
from core.i18n import _
from core.services import admin, catalog, eval_sets, jobs, readiness
from core.services.audit import record
from ui.auth import require_page
from ui.language import apply_language


def _act(action, *args, success: str) -> None:
    """Run one admin step (a button callback); its outcome is shown on the next run."""
    try:
        action(USER, *args)
        st.session_state["admin_message"] = ("success", success)
    except (LucidDxError, ValueError) as exc:
        st.session_state["admin_message"] = ("error", str(exc))


def show_message() -> None:
    message = st.session_state.pop("admin_message", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])


def add_account_form() -> None:
    with st.form("admin_add_account", clear_on_submit=True, enter_to_submit=False):
        st.markdown("**" + _("Add an account") + "**")
        c1, c2 = st.columns(2)
        name = c1.text_input(_("Name"), key="admin_new_name")
        role = c2.selectbox(
            _("Role"),
            admin.ROLES,
            key="admin_new_role",
            format_func={r: admin.role_name(r) for r in admin.ROLES}.__getitem__,
        )
        password = c1.text_input(_("Password"), type="password")  # no key: never kept in session_state
        again = c2.text_input(_("Password again"), type="password")
        submitted = st.form_submit_button(_("Add account"), icon=":material/person_add:")
    if not submitted:
        return
    if password != again:
        st.error(_("The two passwords differ; nothing was changed."))
        return
    _act(
        admin.add_account,
        name.strip(),
        role,
        password,
        success=_("Account {name} created with role {role}.").format(name=name.strip(), role=role),
    )
    st.rerun()


def accounts_section() -> None:
    st.subheader(_("Accounts and roles"))
    rows = admin.list_accounts(USER)
    st.dataframe(rows, hide_index=True)
    names = [r["name"] for r in rows]
    if names:
        c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
        name = c1.selectbox(_("Account"), names, key="admin_account")
        role = c2.selectbox(
            _("New role"),
            admin.ROLES,
            key="admin_role",
            format_func={r: admin.role_name(r) for r in admin.ROLES}.__getitem__,
        )
        c3.button(
            _("Set role"),
            key="admin_set_role",
            on_click=_act,
            args=(admin.set_role, name, role),
            kwargs={"success": _("{name} is now a {role}.").format(name=name, role=role)},
        )
        disabled = next(r["disabled"] for r in rows if r["name"] == name)
        label, success = (
            (_("Enable"), _("{name} enabled and unlocked."))
            if disabled
            else (_("Disable"), _("{name} disabled: signed out, API keys stopped."))
        )
        c4.button(
            label,
            key="admin_toggle",
            on_click=_act,
            args=(admin.set_enabled, name, disabled),
            kwargs={"success": success.format(name=name)},
        )
    add_account_form()


def api_keys_section() -> None:
    st.subheader(_("API keys"))
    keys = admin.list_api_keys(USER)
    if keys:
        st.dataframe(keys, hide_index=True)
    names = [r["name"] for r in admin.list_accounts(USER)]
    c1, c2 = st.columns(2)
    owner = c1.selectbox(_("Key for account"), names, key="admin_key_owner") if names else None
    if owner and c1.button(_("Create a key"), key="admin_create_key", icon=":material/key:"):
        try:
            st.session_state["admin_new_key"] = admin.create_api_key(USER, owner)
        except LucidDxError as exc:
            st.error(str(exc))
    if st.session_state.get("admin_new_key"):
        st.warning(_("Shown once: copy this key now. It acts with the account's role."), icon=":material/key:")
        st.code(st.session_state.pop("admin_new_key"), language=None)
    active = [k["prefix"] for k in keys if not k["revoked"]]
    if active:
        prefix = c2.selectbox(_("Revoke key"), active, key="admin_revoke_prefix")
        c2.button(
            _("Revoke"),
            key="admin_revoke",
            on_click=_act,
            args=(admin.revoke_api_key, prefix),
            kwargs={"success": _("Key {prefix} revoked.").format(prefix=prefix)},
        )


def checklist_section() -> None:
    """What a fresh install still lacks before clinicians rely on it, model by model."""
    rows = readiness.checklist(USER)
    missing = [r for r in rows if not r["ok"]]
    st.subheader(_("First-run checklist"))
    if missing:
        st.warning(
            _("{n} of {total} checks are open: the quality gate and the figures clinicians see depend on them.").format(
                n=len(missing), total=len(rows)
            ),
            icon=":material/checklist:",
        )
    else:
        st.success(_("Every check is done."), icon=":material/task_alt:")
    st.dataframe(
        [
            {_("model"): r["model"], _("check"): r["check"], _("done"): bool(r["ok"]), _("detail"): r["detail"]}
            for r in rows
        ],
        hide_index=True,
        key="admin_checklist",
    )


def _lock(name: str, source: str) -> None:
    """Lock the evaluation set of ``name`` from the upload or the server folder (a button callback)."""
    replacing = eval_sets.show(name) is not None
    if replacing and not st.session_state.pop(f"admin_evalset_replace_{name}", False):
        st.session_state["admin_message"] = (
            "error",
            _("Tick the confirmation to replace the locked set of {name}.").format(name=name),
        )
        return
    try:
        # Reading and hashing every case runs on the engine (a job): the page stays responsive.
        if source == "upload":
            upload = st.session_state.get("admin_evalset_upload")
            if upload is None:
                raise LucidDxError(_("Choose a .zip of labeled films or a .csv first."))
            job_id = eval_sets.start_lock(USER, name, upload=(upload.getvalue(), upload.name))
        else:
            job_id = eval_sets.start_lock(USER, name, data=st.session_state.get("admin_evalset_path", "").strip())
        st.session_state[LOCK_JOB_KEY] = job_id
    except LucidDxError as exc:
        st.session_state["admin_message"] = ("error", str(exc))


LOCK_JOB_KEY = "admin_evalset_job"


@st.fragment(run_every=2.0)
def lock_job() -> None:
    """The lock this session started: a bar while its cases are read, then what it locked or why it could not."""
    job_id = st.session_state.get(LOCK_JOB_KEY)
    if not job_id:
        return
    progress = jobs.follow(job_id)
    name = progress.request.get("name")
    if progress.active:
        st.progress(0.0, text=_("Reading every case of the evaluation set of {name}…").format(name=name))
        return
    st.session_state.pop(LOCK_JOB_KEY, None)
    locked = eval_sets.lock_result(job_id)
    if locked is not None:
        st.session_state["admin_message"] = (
            "success",
            _("The evaluation set of {name} is locked: {n} cases, prevalence {prevalence}.").format(
                name=name, n=locked["n"], prevalence=f"{locked['prevalence']:.2f}"
            ),
        )
    else:
        st.session_state["admin_message"] = ("error", progress.error or _("The lock failed; see the log."))
    st.rerun()


def eval_set_section() -> None:
    """Lock a model name's evaluation set: the fixed cases every later version must do no worse on."""
    st.subheader(_("Evaluation sets (quality gate)"))
    st.caption(
        _(
            "A locked set is scored at every activation; a new version goes live only if it is no worse than the "
            "active one on it. Images: a .zip or folder with one subfolder per class. Risk models: a .csv with the "
            "outcome column."
        )
    )
    names = sorted({row["model"].partition(":")[0] for row in catalog.model_listing()})
    if not names:
        return
    c1, c2 = st.columns(2)
    name = c1.selectbox(_("Model"), names, key="admin_evalset_model")
    sources = {"upload": _("Upload (.zip or .csv)"), "server": _("Folder or file under the data roots")}
    source = c2.radio(
        _("Cases from"), list(sources), format_func=sources.get, key="admin_evalset_source", horizontal=True
    )
    if source == "upload":
        st.file_uploader(_("Evaluation set"), type=["zip", "csv"], key="admin_evalset_upload")
    else:
        st.text_input(_("Path on the server"), key="admin_evalset_path")
    current = eval_sets.show(name)
    if current:
        st.info(
            _("Locked now: {n} cases by {by} at {at}.").format(
                n=current["n"], by=current.get("locked_by"), at=current.get("locked_at")
            ),
            icon=":material/lock:",
        )
        st.checkbox(_("Replace the locked set of {name}").format(name=name), key=f"admin_evalset_replace_{name}")
    st.button(
        _("Lock evaluation set"), key="admin_evalset_lock", icon=":material/lock:", on_click=_lock, args=(name, source)
    )
    lock_job()


def audit_section() -> None:
    st.subheader(_("Audit log"))
    c1, c2, c3 = st.columns(3)
    since_day = c1.date_input(_("Since"), value=None, key="audit_since")
    user = c2.text_input(_("User"), key="audit_user").strip()
    action = c3.selectbox(
        _("Action"),
        ["", *admin.AUDIT_ACTIONS],
        key="audit_action",
        format_func={a: admin.action_name(a) if a else _("all") for a in ["", *admin.AUDIT_ACTIONS]}.__getitem__,
    )
    since = datetime.combine(since_day, time.min, tzinfo=UTC) if since_day else None
    rows = admin.audit_records(USER, since, user, action)
    st.caption(_("{n} records").format(n=len(rows)))
    st.dataframe(rows, hide_index=True, column_order=admin.AUDIT_COLUMNS)
    st.download_button(
        _("Export (CSV)"),
        admin.audit_csv(rows),
        file_name="luciddx_audit.csv",
        mime="text/csv",
        key="audit_export",
        icon=":material/download:",
        on_click=record,
        args=(USER, "export"),
    )
    if st.button(_("Verify the hash chain"), key="audit_verify", icon=":material/verified:"):
        result = admin.verify_audit(USER)
        if result.ok:
            st.success(
                _("The audit log is intact: {n} records, head {head}.").format(n=result.records, head=result.head)
            )
        else:
            st.error(
                _("The audit log is broken at record {seq}: {reason}").format(seq=result.broken, reason=result.reason)
            )


apply_language()
USER = require_page("users")
st.title(_("Administration"))
show_message()
try:
    checklist_section()
    eval_set_section()
    accounts_section()
    api_keys_section()
    audit_section()
except LucidDxError as exc:
    st.error(str(exc), icon=":material/block:")
