#!/usr/bin/env bash
# Install LucidDx into ./.venv (once) and start the dashboard with the bundled models.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
exec .venv/bin/streamlit run app.py --server.headless true "$@"
