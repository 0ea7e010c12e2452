"""Model cards (placeholder until the model-card issue lands: records what meta.json measured)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import registry


def write_card(model_dir: Path) -> dict[str, Any]:
    meta = json.loads((model_dir / registry.META_FILE).read_text())
    card = {"model_details": {k: meta.get(k) for k in ("name", "version", "created", "architecture", "classes", "threshold")},
            "metrics": meta.get("validation", {})}
    registry.write_json_atomic(model_dir / registry.CARD_FILE, card)
    return card
