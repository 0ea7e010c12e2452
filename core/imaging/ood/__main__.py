"""``python -m core.imaging.ood measure NAME[:VERSION]|MODEL_DIR`` | ``refit MODEL_DIR`` (then rebuild the card).

``measure`` stores the detector's flag rates (validation films, non-chest images) in the model's
meta.json "ood" section; ``refit`` refits the detector itself from the training record.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from core.errors import LucidDxError
from core.imaging.ood import measure as measurement

USAGE = "usage: python -m core.imaging.ood measure NAME[:VERSION]|MODEL_DIR | refit MODEL_DIR"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("measure", "refit"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        section = measurement.measure(argv[1]) if argv[0] == "measure" else measurement.refit(Path(argv[1]))
    except LucidDxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(section, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
