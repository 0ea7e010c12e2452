#!/usr/bin/env bash
# Start the dashboard from an installed ./.venv (scripts/run.sh installs first, then calls this).
# It listens on 127.0.0.1 only; to serve the hospital network set LUCIDDX_ADDRESS (e.g. 0.0.0.0) and
# LUCIDDX_PUBLIC_HOST (the name clinicians type), on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
address="${LUCIDDX_ADDRESS:-127.0.0.1}"
# Naming the address users type also stops Streamlit from looking up this machine's external IP on a
# public web service at start (it does that for a wildcard address): nothing leaves the machine.
public_host="${LUCIDDX_PUBLIC_HOST:-$([ "$address" = "0.0.0.0" ] && hostname || echo localhost)}"
python="${LUCIDDX_PYTHON:-.venv/bin/python}"
# First start: there is no default password, so say once how to create the first administrator.
if ! "$python" -c "import sys; from core.access import accounts; sys.exit(0 if accounts.has_admin() else 3)" 2>/dev/null; then
  echo "LucidDx has no administrator account yet (and no default password). Create the first one, then sign in:" >&2
  echo "    $python -m core users add NAME --role admin     # the password is asked for, never typed on the command line" >&2
fi
exec "$python" -m streamlit run server.py --server.headless true \
  --server.address "$address" --browser.serverAddress "$public_host" "$@"
