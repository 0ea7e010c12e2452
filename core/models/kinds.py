"""The kinds of model LucidDx registers. Every front end dispatches on a version's ``kind``."""

from __future__ import annotations

from core.i18n import N_, _

IMAGE_CLASSIFIER = "image-classifier"
TABULAR_RISK = "tabular-risk"
KINDS = (IMAGE_CLASSIFIER, TABULAR_RISK)
# Versions written before the kinds had these names; read as their new names, never rewritten.
LEGACY_NAMES = {"image_classifier": IMAGE_CLASSIFIER, "risk": TABULAR_RISK}


def normalise(kind: str | None) -> str:
    """A stored kind under its current name ('' when absent)."""
    return LEGACY_NAMES.get(kind or "", kind or "")

KIND_NAMES = {IMAGE_CLASSIFIER: N_("image classifier"), TABULAR_RISK: N_("risk model from a table")}


def kind_name(kind: str | None) -> str:
    """A kind as a reader sees it, in their language (the code stays in meta.json, JSON and logs)."""
    kind = normalise(kind)
    return _(KIND_NAMES[kind]) if kind in KIND_NAMES else kind
