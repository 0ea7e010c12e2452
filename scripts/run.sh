#!/usr/bin/env bash
# Install LucidDx into ./.venv (once) and start the dashboard with the bundled models (scripts/serve.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
exec bash scripts/serve.sh "$@"
