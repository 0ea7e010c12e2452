"""The card's words: the sections it must have, and the cautious prose for models of undescribed data.

A model trained on a documented dataset carries its own prose in ``meta.json`` (``card_text``, copied
from ``assets/datasets`` at training). Anything else gets the generic text of its kind below.
"""

from __future__ import annotations

from typing import Any

from core.i18n import N_, _, format_percent, format_threshold, translated
from core.models import kinds, metrics
from core.models.cards.risk_explanations import advice as risk_advice

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
        "primary_uses": [N_("Research use: classify images like those in the folder it was trained on into its classes.")],
        "primary_users": [N_("The researcher or clinician who trained it, for evaluation before any clinical use.")],
        "out_of_scope": [N_("Any clinical decision: this model has not been independently evaluated."),
                         N_("Images unlike its training images (other body parts, modalities, views or populations).")],
        "factors": [N_("Unknown: the training folder did not describe patients or acquisition; evaluate per site and scanner.")],
        "ethical": [N_("The training data, its consent and its licence are the responsibility of whoever supplied the folder."),
                    N_("Subgroup performance is unknown unless the data name subgroups.")],
        "caveats": [N_("Retrained by a user on their own folder: NOT independently evaluated. The figures below come "
                    "from a held-out part of that same folder and are likely optimistic."),
                    N_("Read every prediction with the image; treat flagged out-of-distribution inputs as unreliable.")],
    },
    kinds.TABULAR_RISK: {
        "primary_uses": [N_("Research use: estimate risk for records like those it was trained on.")],
        "primary_users": [N_("The researcher who trained it, for evaluation before any clinical use.")],
        "out_of_scope": [N_("Any clinical decision: this model has not been independently evaluated.")],
        "factors": [N_("Only what the table records: subgroups (age bands or sex, when the table has such a column) "
                    "are evaluated below; every other factor is unknown.")],
        "ethical": [N_("The training data's consent and licence are the responsibility of whoever supplied it."),
                    N_("Columns that identify patients are dropped before training; check the card's feature list.")],
        "caveats": [N_("Trained by a user on their own table: NOT independently evaluated; cross-validated figures "
                    "are optimistic."),
                    N_("Values outside a field's training range are extrapolations and are flagged at the field.")],
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
        out.append(_("Prevalence of the positive class in the evaluation data is {prevalence}; recompute PPV and NPV "
                     "for your own prevalence before relying on them.").format(prevalence=format_percent(prevalence)))
    auc = overall.get("auc", {})
    if auc.get("ci95") and auc["ci95"][0] is not None and auc["ci95"][1] - auc["ci95"][0] > 0.1:
        out.append(_("The AUC interval is wide ({low}-{high}): few validation cases.").format(
            low=f"{auc['ci95'][0]:.3f}", high=f"{auc['ci95'][1]:.3f}"))
    for entry in analyses.get("subgroups", []):
        if entry["n"] < 30:
            out.append(_("Subgroup '{label}' has only {n} cases; its figures are imprecise.").format(
                label=translated(entry["label"]), n=entry["n"]))
    ece = analyses.get("calibration", {}).get("expected_calibration_error")
    if ece is not None and ece > 0.1:
        out.append(_("Probabilities are poorly calibrated (expected calibration error {ece}): read them as scores, "
                     "not as risks.").format(ece=f"{ece:.2f}"))
    ood = analyses.get("out_of_distribution", {})
    if ood.get("non_chest_flag_rate") is not None and ood["non_chest_flag_rate"] < 0.9:
        out.append(_("The out-of-distribution check missed {rate} of non-chest images.").format(
            rate=format_percent(1 - ood["non_chest_flag_rate"], 0)))
    if ood.get("validation_flag_rate") is not None and ood["validation_flag_rate"] > 0.05:
        out.append(_("The out-of-distribution check flags {rate} of genuine validation films.").format(
            rate=format_percent(ood["validation_flag_rate"], 0)))
    return out


def decision_text(details: dict[str, Any]) -> str:
    """How the model decides, in the current language (thresholds as readings show them)."""
    if details.get("positive_class") is None or details.get("threshold") is None or len(details["classes"]) != 2:
        return _("the class with the highest probability; metrics are macro one-vs-rest averages")
    return _("'{positive}' when its probability >= {threshold} ({rule})").format(
        positive=details["positive_class"], threshold=format_threshold(details["threshold"]),
        rule=_(details.get("threshold_rule") or ""))


def uncertainty_text() -> str:
    return _("95% percentile bootstrap intervals, {resamples} resamples stratified by class, seed {seed}").format(
        resamples=metrics.DEFAULT_RESAMPLES, seed=metrics.DEFAULT_SEED)


def evaluation_description(kind: str | None, folds: int | None, fraction: float | None, held_apart: bool = False) -> str:
    """What the card's figures were computed on, in words."""
    if held_apart and kinds.normalise(kind) != kinds.TABULAR_RISK:
        return _("Held-out half of the patient-wise validation split of the training folder ({fraction}): these "
                 "patients trained nothing and chose neither the threshold nor the temperature (the other half "
                 "did).").format(fraction=format_percent(fraction or 0.0, 0))
    if kinds.normalise(kind) == kinds.TABULAR_RISK:
        if folds:
            return _("Out-of-fold predictions from cross-validation on the training data ({folds}-fold): every case is "
                     "predicted by a model that did not see it.").format(folds=folds)
        return _("Out-of-fold predictions from cross-validation on the training data: every case is predicted by a "
                 "model that did not see it.")
    if fraction:
        return _("Held-out validation split of the training folder ({fraction}), split by patient (file-name prefixes) "
                 "so no patient is on both sides.").format(fraction=format_percent(fraction, 0))
    return _("Held-out validation split of the training folder, split by patient (file-name prefixes) so no patient "
             "is on both sides.")


# --- Explanations (issue 25): which saliency method a reader may trust for this model, from measured figures.
TRUST_MAX_RANDOMIZED_CORR = 0.5  # the map of a network with its top layers re-initialised must differ this much
TRUST_MIN_STABILITY = 0.8  # the map of the film plus invisible noise must keep this rank correlation


def explanation_verdicts(methods: dict[str, dict[str, Any]]) -> dict[str, dict[str, bool]]:
    """Per method: beats a random order on deletion, and on insertion (the whole 95% interval of the gain
    above 0), and passes the randomisation sanity check (upper bound of the rank correlation below the limit)."""
    out = {}
    for method, s in methods.items():
        intervals = s.get("intervals") or {}
        low_del = (intervals.get("deletion_gain") or [None])[0]
        low_ins = (intervals.get("insertion_gain") or [None])[0]
        high_rand = (intervals.get("randomization_rank_corr") or [None, None])[1]
        low_stable = (intervals.get("stability_rank_corr") or [None])[0]
        out[method] = {"stable": low_stable is None or low_stable >= TRUST_MIN_STABILITY,
                       "beats_random_deletion": low_del is not None and low_del > 0,
                       "beats_random_insertion": low_ins is not None and low_ins > 0,
                       "passes_randomization": high_rand is not None and high_rand < TRUST_MAX_RANDOMIZED_CORR}
    return out


def explanation_advice(section: dict[str, Any]) -> str:
    """In words: which method to trust for this model and why (current language), from the stored figures.

    The randomisation check and stability are the gates (a map that survives re-initialising the model cannot
    show what the model learned, however faithful it scores; one that changes under invisible noise cannot be
    read for one film); among the methods that pass, the one whose deletion curve beats a random order by the
    most is trusted first; insertion is reported beside it.
    """
    if kinds.normalise(section.get("kind")) == kinds.TABULAR_RISK:
        return risk_advice(section)
    methods = section.get("methods") or {}
    labels = section.get("labels") or {}
    verdicts = explanation_verdicts(methods)
    trusted = [m for m, v in verdicts.items() if v["beats_random_deletion"] and v["passes_randomization"] and v["stable"]]
    name = lambda m: labels.get(m, m)  # noqa: E731
    if not trusted:
        return _("No method both beat a random pixel order and changed when the model's top layers were re-initialised, "
                 "on {n} held-out films: read every map of this model as a rough hint, not as what the model used.").format(n=section.get("n"))
    best = max(trusted, key=lambda m: methods[m]["deletion_gain"])
    figures = methods[best]
    text = _("Trust {method} first for this model: on {n} held-out films its map beat a random pixel order (deletion AUC "
             "{deletion} vs {random_deletion}, insertion {insertion} vs {random_insertion}) and changed when the model's top "
             "layers were re-initialised (rank correlation {corr}).").format(
        method=name(best), n=figures.get("n", section.get("n")), deletion=f"{figures['deletion_auc']:.2f}",
        random_deletion=f"{figures['random_deletion_auc']:.2f}", insertion=f"{figures['insertion_auc']:.2f}",
        random_insertion=f"{figures['random_insertion_auc']:.2f}", corr=f"{figures['randomization_rank_corr']:.2f}")
    if not verdicts[best]["beats_random_insertion"]:
        text += " " + _("Its insertion curve is not clearly above random's: removing the pixels it ranks first lowers "
                        "the model's score, but revealing them alone restores it hardly faster than random pixels do.")
    others = [name(m) for m in trusted if m != best]
    if others:
        text += " " + _("{methods} also passed every check, with a smaller gain over random.").format(methods=", ".join(others))
    shaky = [name(m) for m, v in verdicts.items() if v["passes_randomization"] and not v["stable"]]
    if shaky:
        text += " " + _("{methods}: the map changes under noise too small to see, so one film's map cannot be relied on.").format(
            methods=", ".join(shaky))
    copied = [name(m) for m, v in verdicts.items() if not v["passes_randomization"]]
    if copied:
        text += " " + _("{methods}: the map stays much the same on a model with re-initialised top layers, so it shows the "
                        "film's structure more than what the model learned; do not read it as the model's reasons.").format(
            methods=", ".join(copied))
    return text
