#!/usr/bin/env bash
# Install LucidDx and its test tools into ./.venv, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
# Debian packages the tests use: Chromium for the browser test (Playwright's own browser download is
# never used), PostgreSQL server binaries (the access store tests start a throwaway server), dcmtk,
# dicom3tools (dciodvfy validates the result objects), CJK fonts and poppler-utils. Installed only when missing.
MISSING=""
for pair in chromium:/usr/bin/chromium chromium-driver:/usr/bin/chromedriver dcmtk:/usr/bin/dcmdump \
            poppler-utils:/usr/bin/pdftotext fonts-noto-cjk:/usr/share/fonts/opentype/noto \
            dicom3tools:/usr/bin/dciodvfy; do
  [ -e "${pair#*:}" ] || MISSING="$MISSING ${pair%%:*}"
done
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || MISSING="$MISSING postgresql"
if [ -n "$MISSING" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $MISSING >/dev/null
fi
# Lint, format and types (configured in pyproject.toml) before the tests: a finding stops the run.
.venv/bin/ruff check core pages ui app.py server.py
.venv/bin/ruff format --check core pages ui app.py server.py
.venv/bin/mypy core pages ui
# Two worker processes (pytest-xdist) share one Ray head; tests/conftest.py lets the controller stop it.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n 2 tests "$@"
