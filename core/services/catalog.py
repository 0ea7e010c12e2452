"""The model catalogue every front end shows: which versions exist, and each one's card.

``python -m core models`` / ``card`` and the REST API's ``GET /v1/models`` / ``/v1/models/{name}/card``
call these, so a listing or a card looks the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from core.i18n import _
from core.models import cards, registry


def model_listing() -> list[dict[str, Any]]:
    """Every registered version: ``model`` (NAME:VERSION), ``kind``, ``bundled``, ``active``, ``approved``, ``created``.

    ``approved`` equals ``active``: only the active version is approved for clinical use.
    """
    listing = []
    for name, versions in registry.list_models().items():
        approved = registry.approved_version(name)
        for ref in versions:
            active = approved is not None and ref.version == approved.version
            listing.append({"model": ref.spec, "kind": ref.kind, "bundled": ref.bundled, "active": active,
                            "approved": active, "created": ref.meta.get("created")})
    return listing


def model_card(spec: str) -> dict[str, Any]:
    """The current card of ``NAME`` (its active version) or ``NAME:VERSION``; ModelNotFoundError when missing."""
    return cards.load_card(registry.resolve(spec))


def card_document(spec: str) -> dict[str, Any]:
    """``model_card`` with ``approved``: whether the version is approved (active) for clinical use."""
    ref = registry.resolve(spec)
    return {**cards.load_card(ref), "approved": registry.is_approved(ref)}


def card_text(card: dict[str, Any], fmt: str = "json") -> str:
    """The card as Markdown (``fmt="md"``) or JSON text; Markdown of a version not approved says so first."""
    if fmt != "md":
        return json.dumps(card, default=float)
    note = "" if card.get("approved", True) else "**" + _("Not approved for clinical use: an administrator has not "
                                                           "activated this version.") + "**\n\n"
    return note + cards.render_markdown(card)


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """What a compact display (a report page, a panel) needs: spec, key metrics with 95% CIs, intended use."""
    details = card.get("model_details", {})
    return {"model": f"{details.get('name')}:{details.get('version')}", "metrics": cards.key_metrics(card),
            "intended_use": list(card.get("intended_use", {}).get("primary_uses", [])),
            "out_of_scope": list(card.get("intended_use", {}).get("out_of_scope", []))}
