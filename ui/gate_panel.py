"""The quality gate where administrators activate a version: the comparison table, then the right button.

The gate's result (``core.services.activation.run_gate``) is computed once per candidate, active
version and locked set, and kept in the session: scoring a set with two models is too slow to repeat
on every click. The button activates through the service, which runs the gate again, so a table read
minutes ago can never let a version through that no longer passes.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import LucidDxError
from core.i18n import _
from core.services import activation, audit, eval_sets

RESULT_KEY = "luciddx_gate_result"


def confirm_key(action: str, name: str, version: str) -> str:
    """One confirmation per action and version: a tick for one never arms another, nor the same action on another
    version (changing the selected version shows a fresh, unticked box)."""
    return f"registry_confirm_{action}_{name}_{version}"


def confirmed(action: str, name: str, version: str) -> bool:
    """Whether this very action on this very version was confirmed; the confirmation is used up by asking."""
    return bool(st.session_state.pop(confirm_key(action, name, version), False))


def reason_key(name: str, version: str) -> str:
    return f"registry_override_reason_{name}_{version}"


def _interval(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "–"
    low, high = entry["ci95"]
    shown = ["–" if x is None else f"{x:.3f}" for x in (low, high)]
    return _("{value} (95% CI {low} to {high})").format(value=f"{entry['value']:.3f}", low=shown[0], high=shown[1])


def gate_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """The table: one row per version and one for the AUC difference, every figure with its interval."""
    rows = []
    for role, side in ((_("candidate"), result.get("candidate")), (_("active"), result.get("active"))):
        if side and "auc" in side:
            rows.append(
                {
                    _("version"): f"{role}: {side['model']}",
                    _("AUC"): _interval(side["auc"]),
                    _("sensitivity"): _interval(side["sensitivity"]),
                    _("specificity"): _interval(side["specificity"]),
                    _("threshold"): f"{side['threshold']:.3f} ({side['threshold_source']})",
                }
            )
    if result.get("auc_difference"):
        rows.append(
            {
                _("version"): _("difference (candidate - active)"),
                _("AUC"): _interval(result["auc_difference"]),
                _("sensitivity"): "",
                _("specificity"): "",
                _("threshold"): _("margin -{margin}").format(margin=result["margin"]),
            }
        )
    return rows


def _result(name: str, version: str, active: str) -> dict[str, Any]:
    record = eval_sets.show(name)
    key = (name, version, active, record["fingerprint"] if record else None)
    cached = st.session_state.get(RESULT_KEY)
    if not cached or cached[0] != key:
        try:
            with st.spinner(_("Scoring the locked evaluation set with both versions...")):
                result = activation.run_gate(name, version)
        except LucidDxError as exc:
            result = activation.gate_not_run(f"{name}:{version}", f"{name}:{active}" if active else None, str(exc))
        cached = (key, result)
        st.session_state[RESULT_KEY] = cached
    return cached[1]


def _activate(actor: audit.Who | None, name: str, version: str, override: bool) -> None:
    reason = None
    if override:
        if not confirmed("override", name, version):  # the click must match the box ticked for this version
            st.session_state["registry_message"] = (
                "error",
                _("Tick the confirmation for overriding the gate for {name}:{version} first.").format(
                    name=name, version=version
                ),
            )
            return
        reason = st.session_state.get(reason_key(name, version))
    try:
        done = activation.activate(actor, name, version, reason)
        message = _("{spec} is now the active version of {name}.").format(spec=done["model"], name=name)
        if done["override"]:
            message += " " + _("The gate was overridden; the reason is kept in the activation record.")
        st.session_state["registry_message"] = ("success", message)
        st.session_state.pop(RESULT_KEY, None)
    except LucidDxError as exc:
        st.session_state["registry_message"] = ("error", str(exc))


def gate_and_activate(actor: audit.Who | None, name: str, version: str, active: str | None, may_activate: bool) -> None:
    """Draw the gate's table and verdict for ``name:version`` against ``active`` (None: no version approved yet),
    then the activation button; an override shows the evidence it sets aside and needs its own confirmation."""
    if not may_activate or version == active:
        st.button(_("Make active (roll back or forward)"), key="registry_activate", disabled=True)
        return
    result = _result(name, version, active)
    st.markdown(_("**Quality gate** against the active version on the locked evaluation set"))
    rows = gate_rows(result)
    if rows:
        st.dataframe(rows, hide_index=True)
    passed = activation.gate_passed(result)
    (st.success if passed else st.warning)(activation.gate_explanation(result))
    if passed:
        st.button(
            _("Make active (roll back or forward)"),
            key="registry_activate",
            type="primary",
            on_click=_activate,
            args=(actor, name, version, False),
        )
        return
    st.error(
        _("Overriding sets aside this evidence: {evidence}").format(
            evidence=activation.evidence_text(activation.evidence(name, version))
        ),
        icon=":material/gpp_maybe:",
    )
    reason = st.text_input(
        _(
            "Reason for overriding the gate: what was checked instead (at least {words} words; kept in "
            "the activation record; no patient details)"
        ).format(words=activation.MIN_REASON_WORDS),
        key=reason_key(name, version),
    )
    substantial = True
    try:
        activation.check_reason(reason)
    except LucidDxError:
        substantial = False
    confirm = st.checkbox(
        _("I have read the evidence above and override the quality gate for {name}:{version}").format(
            name=name, version=version
        ),
        key=confirm_key("override", name, version),
    )
    st.button(
        _("Override and activate"),
        key="registry_activate",
        disabled=not (substantial and confirm),
        on_click=_activate,
        args=(actor, name, version, True),
    )
