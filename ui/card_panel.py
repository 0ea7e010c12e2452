"""The compact 'how far to trust this model' panel shown beside every prediction."""

from __future__ import annotations

import streamlit as st

from core import registry


def model_card_panel(model_spec: str) -> None:
    """Version, intended use, key validation metrics and limitations, with a link to the full card."""
    ref = registry.resolve(model_spec)
    validation = ref.meta.get("validation", {})
    with st.container(border=True):
        st.markdown(f"**Model** `{ref.spec}` · {ref.meta.get('architecture', '')}")
        cols = st.columns(3)
        for col, key in zip(cols, ("auc", "sensitivity", "specificity")):
            if validation.get(key) is not None:
                col.metric(f"Validation {key.upper() if key == 'auc' else key}", f"{validation[key]:.3f}")
        st.page_link("pages/model_cards.py", label="Read the full model card", icon="📇")
