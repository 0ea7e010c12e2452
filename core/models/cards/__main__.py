"""``python -m core.models.cards rebuild NAME[:VERSION] ...``: recompute cards (a build step for bundled models)."""

import sys

from core.models.cards import rebuild_card

if len(sys.argv) < 3 or sys.argv[1] != "rebuild":
    sys.exit("usage: python -m core.models.cards rebuild NAME[:VERSION] ...")
for spec in sys.argv[2:]:
    built = rebuild_card(spec)
    print(f"{spec}: card rebuilt ({built['generated']['fingerprint'][:12]})", file=sys.stderr)
