"""A model name's registered versions: the table, the quality gate and activation, deletion, the card.

Shared by the Retrain page (image models) and the risk-training page (risk models): the same admin
controls for every kind, so activating a risk model never needs the command line.
"""

from __future__ import annotations

import streamlit as st

from core.errors import LucidDxError
from core.i18n import _
from core.services import catalog
from core.services.audit import Who
from ui.auth import allows
from ui.card_panel import model_card_panel
from ui.gate_panel import confirm_key, confirmed, gate_and_activate


def _delete(user: Who | None, name: str, version: str) -> None:
    if not confirmed("delete", name, version):  # the click must match the box ticked for this version
        st.session_state["registry_message"] = (
            "error",
            _("Tick the confirmation for deleting {name}:{version} first.").format(name=name, version=version),
        )
        return
    try:
        catalog.delete_version(user, name, version)
        st.session_state["registry_message"] = (
            "success",
            _("{name}:{version} was deleted.").format(name=name, version=version),
        )
    except LucidDxError as exc:
        st.session_state["registry_message"] = ("error", str(exc))


def _versions_table(models: list[catalog.ModelRef], active: str | None) -> None:
    st.dataframe(
        [
            {
                _("version"): r.version,
                _("active"): r.version == active,
                _("approval"): _("approved") if r.version == active else _("not approved"),
                _("source"): _("bundled") if r.bundled else _("trained here"),
                _("created"): r.meta.get("created"),
                _("classes"): ", ".join(r.meta.get("classes", [])),
                _("validation AUC"): (r.meta.get("validation") or {}).get("auc"),
            }
            for r in models
        ],
        hide_index=True,
    )


def show(user: Who | None, kind: str, heading: str, empty: str) -> None:
    """Every registered model of ``kind``: pick a name and a version; admins activate (through the gate) and delete."""
    st.subheader(heading)
    models = catalog.models_by_name(kind)
    if not models:
        st.info(empty)
        return
    name = st.selectbox(_("Model"), list(models), key="registry_model")
    approved = catalog.approved_version(name)
    active = approved.version if approved else None
    _versions_table(models[name], active)
    versions = [r.version for r in models[name]]
    if active is None:
        st.warning(
            _(
                "No version of {name} is approved yet: clinicians cannot use it until an administrator activates one."
            ).format(name=name),
            icon=":material/pending:",
        )
    if st.session_state.get(f"registry_version_{name}") not in versions:
        st.session_state.pop(f"registry_version_{name}", None)  # e.g. just deleted
    # Labels made now, in this run's language (a format_func translating later may run in another context).
    labels = {
        v: _("{version} (active)").format(version=v) if v == active else _("{version} (not approved)").format(version=v)
        for v in versions
    }
    version = st.selectbox(
        _("Version"),
        versions,
        index=versions.index(active or versions[-1]),
        key=f"registry_version_{name}",
        format_func=labels.__getitem__,
    )
    admin = allows(user, "activate")
    gate_and_activate(user, name, version, active, admin)
    c2, c3 = st.columns([1, 2])
    bundled = next(r.bundled for r in models[name] if r.version == version)
    confirm = c2.checkbox(
        _("Confirm deleting {name}:{version}").format(name=name, version=version),
        key=confirm_key("delete", name, version),
        disabled=not admin or bundled,
    )
    c3.button(
        _("Delete this version"),
        key="registry_delete",
        on_click=_delete,
        args=(user, name, version),
        disabled=not confirm or bundled,
        type="secondary",
    )
    if bundled:
        st.caption(_("Bundled versions are read-only: they cannot be deleted."))
    if not admin:
        st.caption(_("Activating and deleting versions is for administrators."))
    message = st.session_state.pop("registry_message", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])
    model_card_panel(f"{name}:{version}")
