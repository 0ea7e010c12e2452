"""The card's words: the sections it must have, and the cautious prose for models of undescribed data.

A model trained on a documented dataset carries its own prose in ``meta.json`` (``card_text``, copied
from ``assets/datasets`` at training). Anything else gets the generic text of its kind below.
"""

from __future__ import annotations

from typing import Any

from core.models import kinds

SECTIONS = (
    "model_details",
    "intended_use",
    "factors",
    "metrics",
    "evaluation_data",
    "training_data",
    "quantitative_analyses",
    "ethical_considerations",
    "caveats_and_recommendations",
)
SECTION_TITLES = {s: s.replace("_", " ").capitalize() for s in SECTIONS}
# Prose for a model whose data has no description in assets/datasets (a user's own folder or table).
KIND_TEXTS: dict[str, dict[str, Any]] = {
    kinds.IMAGE_CLASSIFIER: {
        "primary_uses": ["Research use: classify images like those in the folder it was trained on into its classes."],
        "primary_users": ["The researcher or clinician who trained it, for evaluation before any clinical use."],
        "out_of_scope": ["Any clinical decision: this model has not been independently evaluated.",
                         "Images unlike its training images (other body parts, modalities, views or populations)."],
        "factors": ["Unknown: the training folder did not describe patients or acquisition; evaluate per site and scanner."],
        "ethical": ["The training data, its consent and its licence are the responsibility of whoever supplied the folder.",
                    "Subgroup performance is unknown unless the data name subgroups."],
        "caveats": ["Retrained by a user on their own folder: NOT independently evaluated. The figures below come "
                    "from a held-out part of that same folder and are likely optimistic.",
                    "Read every prediction with the image; treat flagged out-of-distribution inputs as unreliable."],
    },
    kinds.TABULAR_RISK: {
        "primary_uses": ["Research use: estimate risk for records like those it was trained on."],
        "primary_users": ["The researcher who trained it, for evaluation before any clinical use."],
        "out_of_scope": ["Any clinical decision: this model has not been independently evaluated."],
        "factors": ["Only what the table records: subgroups (age bands or sex, when the table has such a column) "
                    "are evaluated below; every other factor is unknown."],
        "ethical": ["The training data's consent and licence are the responsibility of whoever supplied it.",
                    "Columns that identify patients are dropped before training; check the card's feature list."],
        "caveats": ["Trained by a user on their own table: NOT independently evaluated; cross-validated figures "
                    "are optimistic.",
                    "Values outside a field's training range are extrapolations and are flagged at the field."],
    },
}


def texts_for(meta: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The card's prose, and whether it comes from a documented dataset's description (in meta.json)."""
    if meta.get("card_text") and meta.get("dataset"):
        return meta["card_text"], True
    return KIND_TEXTS[kinds.normalise(meta.get("kind")) or kinds.IMAGE_CLASSIFIER], False


def computed_caveats(analyses: dict[str, Any]) -> list[str]:
    """Caveats that follow from the numbers (small subgroups, wide intervals, poor calibration, OOD rates)."""
    out = []
    overall = analyses.get("overall", {})
    prevalence = analyses.get("pr_curve", {}).get("prevalence")
    if prevalence is not None:
        out.append(f"Prevalence of the positive class in the evaluation data is {prevalence:.1%}; recompute PPV and "
                   "NPV for your own prevalence before relying on them.")
    auc = overall.get("auc", {})
    if auc.get("ci95") and auc["ci95"][0] is not None and auc["ci95"][1] - auc["ci95"][0] > 0.1:
        out.append(f"The AUC interval is wide ({auc['ci95'][0]:.3f}-{auc['ci95'][1]:.3f}): few validation cases.")
    for entry in analyses.get("subgroups", []):
        if entry["n"] < 30:
            out.append(f"Subgroup '{entry['label']}' has only {entry['n']} cases; its figures are imprecise.")
    ece = analyses.get("calibration", {}).get("expected_calibration_error")
    if ece is not None and ece > 0.1:
        out.append(f"Probabilities are poorly calibrated (expected calibration error {ece:.2f}): read them as "
                   "scores, not as risks.")
    ood = analyses.get("out_of_distribution", {})
    if ood.get("non_chest_flag_rate") is not None and ood["non_chest_flag_rate"] < 0.9:
        out.append(f"The out-of-distribution check missed {1 - ood['non_chest_flag_rate']:.0%} of non-chest images.")
    if ood.get("validation_flag_rate") is not None and ood["validation_flag_rate"] > 0.05:
        out.append(f"The out-of-distribution check flags {ood['validation_flag_rate']:.0%} of genuine validation films.")
    return out
