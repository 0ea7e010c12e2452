"""The model catalogue every front end shows: which versions exist, and each one's card.

``python -m core models`` / ``card`` and the REST API's ``GET /v1/models`` / ``/v1/models/{name}/card``
call these, so a listing or a card looks the same everywhere.
"""

from __future__ import annotations

import json
from typing import Any

from core.i18n import _
from core.models import cards, kinds, metrics, registry
from core.models.registry import ModelRef
from core.services.audit import Who, authorize, record

# What pages need to name kinds and metrics; the values live with the models package.
IMAGE_CLASSIFIER, TABULAR_RISK = kinds.IMAGE_CLASSIFIER, kinds.TABULAR_RISK
BINARY_METRICS, METRIC_LABELS = metrics.BINARY_METRICS, metrics.METRIC_LABELS

__all__ = [
    "BINARY_METRICS",
    "IMAGE_CLASSIFIER",
    "METRIC_LABELS",
    "TABULAR_RISK",
    "ModelRef",
    "active_version",
    "approved_version",
    "card_document",
    "card_markdown",
    "card_summary",
    "card_text",
    "compare_versions",
    "delete_version",
    "display_card",
    "is_approved",
    "key_metrics",
    "kind_name",
    "missing_sections",
    "model_card",
    "model_listing",
    "models_by_name",
    "resolve",
    "version_key",
]


def kind_name(kind: str | None) -> str:
    """A model kind as a reader sees it ("image classifier"), in their language."""
    return kinds.kind_name(kind)


def models_by_name(kind: str | None = None) -> dict[str, list[ModelRef]]:
    """Every registered model name (optionally of one ``kind``) -> its versions, oldest first."""
    return registry.list_models(kind=kind)


def active_version(name: str) -> ModelRef:
    """The version of ``name`` that predictions use now; ModelNotFoundError when ``name`` is unknown,
    ModelNotApprovedError when no version of it is approved yet."""
    return registry.active_version(name)


def approved_version(name: str) -> ModelRef | None:
    """The approved (active) version of ``name``, or None while no administrator has activated one."""
    return registry.approved_version(name)


def is_approved(ref: ModelRef) -> bool:
    """Whether ``ref`` is its name's approved (active) version, the only one clinicians may use."""
    return registry.is_approved(ref)


def resolve(spec: str | None, kind: str | None = None) -> ModelRef:
    """``NAME`` (its active version) or ``NAME:VERSION`` -> the registered version; ModelNotFoundError if none."""
    return registry.resolve(spec, kind=kind)


def version_key(version: str) -> tuple[int, str]:
    """Sort key that orders versions numerically (2 before 10)."""
    return registry.version_key(version)


def delete_version(actor: Who | None, name: str, version: str) -> None:
    """Delete a user-trained version (never a bundled or the active one), authorized and audited here."""
    authorize(actor, "delete")
    registry.delete_version(name, version)
    record(actor, "delete", model=f"{name}:{version}")


def model_listing() -> list[dict[str, Any]]:
    """Every registered version: ``model`` (NAME:VERSION), ``kind``, ``bundled``, ``active``, ``approved``, ``created``.

    ``approved`` equals ``active``: only the active version is approved for clinical use.
    """
    listing = []
    for name, versions in registry.list_models().items():
        approved = registry.approved_version(name)
        for ref in versions:
            active = approved is not None and ref.version == approved.version
            listing.append(
                {
                    "model": ref.spec,
                    "kind": ref.kind,
                    "bundled": ref.bundled,
                    "active": active,
                    "approved": active,
                    "created": ref.meta.get("created"),
                }
            )
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
    note = (
        ""
        if card.get("approved", True)
        else "**" + _("Not approved for clinical use: an administrator has not activated this version.") + "**\n\n"
    )
    return note + cards.render_markdown(card)


def card_summary(card: dict[str, Any]) -> dict[str, Any]:
    """What a compact display (a report page, a panel) needs: spec, key metrics with 95% CIs, intended use, and
    ``headline``: the figures that apply here (a site validation's when one is recorded) with the threshold's source."""
    details = card.get("model_details", {})
    return {
        "model": f"{details.get('name')}:{details.get('version')}",
        "metrics": cards.key_metrics(card),
        "intended_use": list(card.get("intended_use", {}).get("primary_uses", [])),
        "out_of_scope": list(card.get("intended_use", {}).get("out_of_scope", [])),
        "headline": (card.get("evidence") or {}).get("headline"),
    }


def display_card(ref: ModelRef, card: dict[str, Any]) -> dict[str, Any]:
    """``card`` (as stored for ``ref``) with the site's validations and threshold attached, in the reader's
    language: validations and site thresholds change without the model's files changing."""
    card = dict(card)
    card["model_details"] = dict(card["model_details"])
    cards.attach_site_evidence(card, ref)
    return cards.localized(card)


def card_markdown(card: dict[str, Any]) -> str:
    return cards.render_markdown(card)


def missing_sections(card: dict[str, Any]) -> list[str]:
    """Sections a complete card has and this one lacks (Mitchell et al. 2019)."""
    return cards.missing_sections(card)


def key_metrics(card: dict[str, Any], shown: Any = None) -> dict[str, Any]:
    """The headline metrics with 95% intervals, as the compact panel shows them."""
    return cards.key_metrics(card) if shown is None else cards.key_metrics(card, shown)


def compare_versions(spec_a: str, spec_b: str) -> dict[str, Any]:
    """Two versions' metrics side by side, with deltas and intervals."""
    return cards.compare_versions(spec_a, spec_b)


def headline_lines(headline: dict[str, Any]) -> tuple[str, str | None]:
    """The figures that apply here in one sentence, and the caution when the threshold was chosen on those cases."""
    return cards.headline_lines(headline)


def threshold_source_text(headline: dict[str, Any]) -> str:
    """Where the threshold in force comes from, in words (stored, or a site validation's id and date)."""
    return cards.threshold_source_text(headline)
