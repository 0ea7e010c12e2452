"""The model catalogue every front end shows: which versions exist, and each one's card.

``python -m core models`` / ``card`` and the REST API's ``GET /v1/models`` / ``/v1/models/{name}/card``
call these, so a listing or a card looks the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from core.models import cards, registry


def model_listing() -> list[dict[str, Any]]:
    """Every registered version: ``model`` (NAME:VERSION), ``kind``, ``bundled``, ``active``, ``created``."""
    listing = []
    for name, versions in registry.list_models().items():
        active = registry.active_version(name).version
        for ref in versions:
            listing.append({"model": ref.spec, "kind": ref.kind, "bundled": ref.bundled, "active": ref.version == active,
                            "created": ref.meta.get("created")})
    return listing


def model_card(spec: str) -> dict[str, Any]:
    """The current card of ``NAME`` (its active version) or ``NAME:VERSION``; ModelNotFoundError when missing."""
    return cards.load_card(registry.resolve(spec))


def card_text(card: dict[str, Any], fmt: str = "json") -> str:
    """The card as Markdown (``fmt="md"``) or JSON text."""
    return cards.render_markdown(card) if fmt == "md" else json.dumps(card, default=float)


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """What a compact display (a report page, a panel) needs: spec, key metrics with 95% CIs, intended use, and
    ``headline``: the figures that apply here (a site validation's when one is recorded) with the threshold's source."""
    details = card.get("model_details", {})
    return {"model": f"{details.get('name')}:{details.get('version')}", "metrics": cards.key_metrics(card),
            "intended_use": list(card.get("intended_use", {}).get("primary_uses", [])),
            "out_of_scope": list(card.get("intended_use", {}).get("out_of_scope", [])),
            "headline": (card.get("evidence") or {}).get("headline")}
