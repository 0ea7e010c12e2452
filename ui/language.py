"""The session's language, applied at the top of every script run (the entrypoint and each page)."""

from __future__ import annotations

import streamlit as st

from core import i18n


def apply_language() -> str:
    """Speak this session's language for the rest of the run; the first visit takes the browser's.

    Pages call it too, not only ``app.py``: a page must not depend on the entrypoint having run first
    in the same context (Streamlit's test harness reruns a page on its own).
    """
    if "language" not in st.session_state:
        st.session_state["language"] = i18n.negotiate(st.context.headers.get("Accept-Language"))
    return i18n.set_language(st.session_state["language"])
