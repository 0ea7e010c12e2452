"""A card's prose in the reader's language, rendered when the card is shown.

The stored card (``card.json``, the JSON download) keeps English: its sentences are the catalog's msgids.
Prose computed from numbers (the decision, the evaluation data, the caveats the figures imply, which
evidence to read) is generated again here in the current language; text a model stores about itself
(its dataset's description, intended use, limits) goes through gettext, so a bundled model's text is
translated and a user's own model keeps the English it was written in. Keys, numbers, class names and
rule identifiers are never touched.
"""

from __future__ import annotations

import copy
from typing import Any

from core import i18n
from core.i18n import N_, _
from core.models.cards.prose import (computed_caveats, decision_text, evaluation_description, explanation_advice,
                                     uncertainty_text)

# The simulated acquisition changes of core.imaging.perturbations, as a reader names them.
ACQUISITION_CHANGES = {"clean": N_("unchanged"), "blur": N_("blur"), "sharpen": N_("sharpening"), "noise": N_("noise"),
                       "low_resolution": N_("low resolution"), "overexposed": N_("overexposure"),
                       "underexposed": N_("underexposure"), "low_contrast": N_("low contrast"),
                       "wide_field": N_("wider field"), "tight_field": N_("tighter collimation"), "tilted": N_("7° tilt")}


def acquisition_change(name: str) -> str:
    """A simulated acquisition change's name in the reader's language (unknown names unchanged)."""
    return _(ACQUISITION_CHANGES[name]) if name in ACQUISITION_CHANGES else name


_STORED_TEXT = {"intended_use": ("primary_uses", "primary_users", "out_of_scope"),
                "training_data": ("dataset", "source", "license", "population", "paper", "split")}


def _text(value: Any) -> Any:
    """gettext for stored strings; anything else (None, numbers) unchanged."""
    return _(value) if isinstance(value, str) and value else value


def _caveats(card: dict[str, Any]) -> list[str]:
    qa = card["quantitative_analyses"]
    with i18n.using(i18n.DEFAULT_LANGUAGE):
        stored_computed = set(computed_caveats(qa))
    written = [_text(c) for c in card["caveats_and_recommendations"] if c not in stored_computed]
    return written + computed_caveats(qa)


def _analyses(qa: dict[str, Any]) -> None:
    for row in qa.get("threshold_table") or []:
        row["note"] = _text(row.get("note"))
    for entry in qa.get("subgroups") or []:
        entry["label"] = _text(entry.get("label"))
    if isinstance(qa.get("calibration"), dict) and qa["calibration"].get("of"):
        qa["calibration"]["of"] = _text(qa["calibration"]["of"])
    if qa.get("robustness_auc"):
        qa["robustness_auc"]["computed_by"] = _text(qa["robustness_auc"].get("computed_by"))
    ood = qa.get("out_of_distribution") or {}
    for key in ("note", "method", "validation_source", "non_chest_sources"):
        if key in ood:
            ood[key] = _text(ood[key])


def _evidence(card: dict[str, Any]) -> None:
    from core.models.cards.store import reading_advice  # store imports this module's callers

    evidence = card.get("evidence")
    if not evidence:
        return
    evidence["internal"]["label"] = _("internal validation")
    evidence["internal"]["description"] = card["evaluation_data"]["description"]
    for entry in evidence["external"]:
        entry["label"] = _("external validation {id}").format(id=entry["id"])
    evidence["read"] = reading_advice(card, evidence["external"])
    headline = evidence.get("headline")
    if headline:
        headline["label"] = (_("site validation {id}").format(id=headline["id"]) if headline["scope"] == "site"
                             else _("internal validation"))


def localized(card: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``card`` whose prose is in the current language (a card already in it is returned as is)."""
    if card.get("language") == i18n.language():
        return card
    out = copy.deepcopy(card)
    details = out["model_details"]
    details["threshold_rule"] = _text(details.get("threshold_rule"))
    details["architecture"] = _text(details.get("architecture"))
    details["training_command"] = _text(details.get("training_command"))
    for section, keys in _STORED_TEXT.items():
        for key in keys:
            value = out[section].get(key)
            out[section][key] = [_text(v) for v in value] if isinstance(value, list) else _text(value)
    out["factors"]["relevant"] = [_text(v) for v in out["factors"]["relevant"]]
    for entry in out["factors"]["evaluated"]:
        entry["label"] = _text(entry["label"])
    metrics = out["metrics"]
    metrics["decision"] = decision_text({**card["model_details"], "classes": card["model_details"]["classes"]})
    metrics["uncertainty"] = uncertainty_text()
    for entry in metrics["reported"]:
        entry["label"], entry["meaning"] = _text(entry["label"]), _text(entry["meaning"])
    evaluation = out["evaluation_data"]
    evaluation["description"] = (evaluation_description(details.get("kind"), evaluation.get("cv_folds"),
                                                        evaluation.get("validation_fraction"), bool(evaluation.get("held_apart")))
                                 if "cv_folds" in evaluation else _text(evaluation["description"]))
    out["ethical_considerations"] = [_text(v) for v in out["ethical_considerations"]]
    out["caveats_and_recommendations"] = _caveats(card)
    _analyses(out["quantitative_analyses"])
    _evidence(out)
    if out.get("explanations"):
        out["explanations"]["advice"] = explanation_advice(out["explanations"])
    out["language"] = i18n.language()
    return out
