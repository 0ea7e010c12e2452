"""LucidDx dashboard entrypoint: navigation, shared sidebar. Run with ``streamlit run app.py``."""

import streamlit as st

st.set_page_config(page_title="LucidDx", page_icon="🩻", layout="wide")

PAGES = [
    st.Page("pages/image_diagnosis.py", title="Image diagnosis", icon="🩻", default=True),
    st.Page("pages/patient_risk.py", title="Patient risk", icon="🩺"),
    st.Page("pages/model_cards.py", title="Model cards", icon="📇"),
    st.Page("pages/retrain.py", title="Retrain", icon="🧪"),
]

# Streamlit also auto-discovers the pages/ folder and can flash that raw list on a direct URL load;
# .streamlit/config.toml hides automatic navigation and the sidebar draws these links instead.
navigation = st.navigation(PAGES, position="hidden")
with st.sidebar:
    st.markdown("### 🩻 LucidDx")
    for page in PAGES:
        st.page_link(page)
    st.divider()
    st.caption(
        "LucidDx is decision support for qualified clinicians. It does not diagnose: every prediction "
        "needs a clinician's review. Read each model's card before trusting it."
    )
navigation.run()
