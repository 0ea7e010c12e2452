"""DICOM worklist: every film the PACS sent to the DICOM node, its status and the model's call."""

from __future__ import annotations

import streamlit as st

from core.i18n import _
from core.services import worklist
from ui.auth import require_page
from ui.language import apply_language

STATUSES = worklist.STATUSES


def rows_for_reading(entries: list[dict]) -> list[dict]:
    """The worklist as a reader sees it: one meaning per column, no patient field (none is stored)."""
    table = []
    for e in entries:
        probabilities = e.get("probabilities") or {}
        table.append(
            {
                _("Received"): e["received"],
                _("Modality"): e["modality"] or "-",
                _("Status"): worklist.status_text(e["status"]),
                _("Finding"): _("Not assessable") if e["out_of_distribution"] else (e["label"] or ""),
                _("Probability of the finding"): round(probabilities.get(e["label"], 0.0), 2) if e["label"] else None,
                _("Unlike the training films"): bool(e["out_of_distribution"]),
                _("Reason"): e.get("reason") or "",
                _("Result objects"): len(e.get("results") or []),
                _("Instance UID"): e["sop_instance_uid"],
            }
        )
    return table


@st.fragment(run_every=5.0)
def live_worklist() -> None:
    """Redrawn every 5 s from the node's index, so new studies appear without a reload."""
    chosen = st.session_state.get("worklist_status") or None
    entries = worklist.entries(status=chosen)
    if not entries:
        st.info(_("No DICOM instances received yet. Start the node with: python -m core dicom-node --port 11112"))
        return
    counts = {s: sum(1 for e in worklist.entries() if e["status"] == s) for s in STATUSES}
    st.caption(" · ".join(_("{status}: {n}").format(status=worklist.status_text(s), n=n) for s, n in counts.items()))
    st.dataframe(rows_for_reading(entries), hide_index=True)


apply_language()
require_page("worklist")
st.title(_("DICOM worklist"))
st.caption(
    _(
        "Films a PACS sent to LucidDx's DICOM node, newest first. Each is scored in the background; results "
        "go back as a Secondary Capture with the heatmap and a structured report. Decision support only."
    )
)
# Labels are made in this run, in the reader's language (a format function may be called outside it).
status_labels = {s: worklist.status_text(s) if s else _("all") for s in ["", *STATUSES]}
st.selectbox(_("Show"), list(status_labels), key="worklist_status", format_func=status_labels.__getitem__)
live_worklist()
