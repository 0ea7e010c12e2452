"""The dashboard server: ``app.py`` (Streamlit) plus the routes that keep a browser's session cookie.

Started by ``scripts/serve.sh`` as ``streamlit run server.py``: Streamlit finds the ``st.App`` below and
serves it with uvicorn, with every ``--server.*`` option as for ``streamlit run app.py``.
"""

import streamlit as st

from ui.session_routes import routes

app = st.App("app.py", routes=routes())
