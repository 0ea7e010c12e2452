"""LucidDx dashboard entrypoint: navigation, shared sidebar, language. Run with ``streamlit run app.py``."""

import streamlit as st

from core import i18n
from core.config import ASSETS_DIR
from core.i18n import _
from core.services import training as training_service
from ui import auth
from ui.language import apply_language

# A file this server serves: a ":material/...:" favicon is fetched by the browser from a public font CDN.
st.set_page_config(page_title="LucidDx", page_icon=str(ASSETS_DIR / "favicon.png"), layout="wide")


@st.cache_resource(show_spinner=False)
def housekeeping() -> int:
    """Once per server process: remove build folders and extracted datasets that killed jobs left behind."""
    return len(training_service.clean_up())


housekeeping()
apply_language()

# Each page with the action it needs: a page is listed only to roles that may use it (and checks again itself).
PAGES = [
    (
        st.Page("pages/image_diagnosis.py", title=_("Image diagnosis"), icon=":material/radiology:", default=True),
        "predict",
    ),
    (st.Page("pages/patient_risk.py", title=_("Patient risk"), icon=":material/monitor_heart:"), "risk"),
    (st.Page("pages/model_cards.py", title=_("Model cards"), icon=":material/fact_check:"), "cards"),
    (st.Page("pages/worklist.py", title=_("DICOM worklist"), icon=":material/list_alt:"), "worklist"),
    (st.Page("pages/retrain.py", title=_("Retrain"), icon=":material/model_training:"), "train"),
    (
        st.Page("pages/risk_training.py", title=_("Risk model from a table"), icon=":material/table_chart:"),
        "train-risk",
    ),
    (st.Page("pages/site_validation.py", title=_("Site validation"), icon=":material/verified:"), "validate"),
    (st.Page("pages/archive_scoring.py", title=_("Score an archive"), icon=":material/dataset:"), "evaluate"),
    (st.Page("pages/explanation_lab.py", title=_("Explanation lab"), icon=":material/biotech:"), "evaluate"),
    (st.Page("pages/admin.py", title=_("Administration"), icon=":material/admin_panel_settings:"), "users"),
]
# Every page stays reachable by its address, so a bookmark or a link a colleague sent opens that page after
# sign-in, and a page this role may not open says so itself (require_page) instead of silently showing another.
# The sidebar lists only the pages this role may use.
# Streamlit also auto-discovers the pages/ folder and can flash that raw list on a direct URL load;
# .streamlit/config.toml hides automatic navigation and the sidebar draws these links instead.
navigation = st.navigation([page for page, _action in PAGES], position="hidden")
# The pages are declared before the gate, so the address a reader came with (a page and its query) is still
# the one shown after sign-in; nothing of a page renders before then.
user = auth.gate()  # the sign-in form (or the one-time set-up instruction) and stop, until someone signs in
LISTED = [page for page, action in PAGES if auth.allows(user, action)]
with st.sidebar:
    st.markdown("### :material/radiology: LucidDx")
    for page in LISTED:
        st.page_link(page)
    st.divider()
    auth.sidebar(user)
    st.selectbox(
        _("Language"),
        list(i18n.LANGUAGES),
        format_func=i18n.LANGUAGES.get,
        key="language",
        on_change=auth.remember_language,
    )
    st.caption(
        _(
            "LucidDx is decision support for qualified clinicians. It does not diagnose: every prediction "
            "needs a clinician's review. Read each model's card before trusting it."
        )
    )
navigation.run()
