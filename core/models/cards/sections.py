"""The descriptive sections of a card (Mitchell et al.), each from the version's own metadata."""

from __future__ import annotations

from typing import Any

import numpy as np

from core.i18n import N_
from core.models import kinds, metrics
from core.models.cards.prose import (
    decision_text,
    evaluation_description,
    explanation_advice,
    explanation_verdicts,
    uncertainty_text,
)
from core.models.cards.risk_explanations import advice as risk_advice
from core.models.cards.risk_explanations import verdicts as risk_verdicts

EXPLANATIONS_FILE = "explanations.json"


def model_details(meta: dict[str, Any], documented: bool) -> dict[str, Any]:
    training = meta.get("training") or {}
    binary = meta.get("threshold") is not None and len(meta["classes"]) == 2
    return {
        "name": meta.get("name", ""),
        "version": meta.get("version", ""),
        "kind": kinds.normalise(meta.get("kind")) or kinds.IMAGE_CLASSIFIER,
        "date": meta.get("created"),
        "architecture": meta.get("architecture"),
        "framework": meta.get("framework"),
        "input": meta.get("input") or {"features": [f.get("name") for f in meta.get("features", [])]},
        "classes": list(meta["classes"]),
        "positive_class": meta.get("positive_class"),
        "threshold": meta.get("threshold"),
        "threshold_rule": meta.get("threshold_rule") or (None if binary else N_("argmax of class probabilities")),
        "training_command": training.get("command") or N_("(not recorded: trained through the API or the Retrain page)"),
        "training_device": training.get("device"),
        "training_seconds": training.get("seconds"),
        "documented_model": documented,
    }


def metrics_section(meta: dict[str, Any], binary: bool) -> dict[str, Any]:
    """Which metrics are reported, what each means, how decisions and intervals are made."""
    details = {"classes": list(meta["classes"]), "positive_class": meta.get("positive_class") if binary else None,
               "threshold": meta.get("threshold") if binary else None, "threshold_rule": meta.get("threshold_rule")}
    return {
        "reported": [{"name": k, "label": metrics.METRIC_LABELS[k], "meaning": metrics.METRIC_DESCRIPTIONS[k]}
                     for k in metrics.BINARY_METRICS],
        "decision": decision_text(details),
        "uncertainty": uncertainty_text(),
        "curves": [N_("ROC"), N_("precision-recall"), N_("reliability (calibration)")]
        + ([N_("threshold table"), N_("decision curve (net benefit)")] if binary else []),
    }


def evaluation_data(meta: dict[str, Any], labels: np.ndarray, subgroups: np.ndarray) -> dict[str, Any]:
    """What the card's figures were computed on: description, size, class and subgroup counts."""
    training, classes = meta.get("training") or {}, list(meta["classes"])
    tabular = kinds.normalise(meta.get("kind")) == kinds.TABULAR_RISK
    folds = (meta.get("validation") or {}).get("cv_folds") if tabular else None
    fraction = None if tabular else (training.get("config") or {}).get("validation_fraction")
    counts = np.bincount(labels, minlength=len(classes))
    held_apart = bool(training.get("holdout_images")) and training.get("holdout_images") != training.get("validation_images")
    return {
        "description": evaluation_description(meta.get("kind"), folds, fraction, held_apart),
        "cv_folds": folds,  # kept so the description can be rendered again in the reader's language
        "validation_fraction": fraction,
        "held_apart": held_apart,
        "n": int(len(labels)),
        "class_counts": {c: int(n) for c, n in zip(classes, counts)},
        "subgroup_counts": {str(g): int(n) for g, n in zip(*np.unique(subgroups, return_counts=True))},
    }


def training_data(meta: dict[str, Any]) -> dict[str, Any]:
    """Provenance of the training data (the stored dataset description, or 'the user's own data')."""
    training, provenance = meta.get("training") or {}, meta.get("dataset") or {}
    section = {
        "dataset": provenance.get("name", ("The user's own table (" if kinds.normalise(meta.get("kind")) == kinds.TABULAR_RISK
                                            else "The user's own folder (") + str(training.get("data", "unknown")) + ")"),
        "source": provenance.get("source", N_("Supplied by the user who trained this version; not documented here.")),
        "license": provenance.get("license", N_("Unknown: set by whoever supplied the data.")),
        "population": provenance.get("population", N_("Unknown.")),
        "class_counts": training.get("class_counts")
        or ({"rows": training.get("rows"), "positives": training.get("positives")} if training.get("rows") else None),
        "train_images": training.get("train_images"),
        "skipped_files": len(training.get("skipped") or []),
        "split": training.get("split"),
    }
    if meta.get("recipe"):
        section["recipe"] = meta["recipe"]  # language-neutral: rendered with core.models.recipe_text
    pretraining = training.get("pretraining")
    if pretraining:
        runs = pretraining.get("runs") or [{}]
        section["pretraining"] = {
            "epochs": pretraining.get("epochs"),
            "images": pretraining.get("images"),
            "loss": [runs[0]["loss"][0], runs[0]["loss"][-1]] if runs[0].get("loss") else None,
        }
    if "paper" in provenance:
        section["paper"] = provenance["paper"]
    return section


def factors(texts: dict[str, Any], analyses: dict[str, Any]) -> dict[str, Any]:
    evaluated = [{"subgroup": e["subgroup"], "label": e["label"], "n": e["n"]} for e in analyses.get("subgroups", [])]
    return {"relevant": texts["factors"],
            "evaluated": evaluated or [{"subgroup": "all", "label": N_("no subgroups available"), "n": analyses["n"]}]}


def explanations(model_dir: Any) -> dict[str, Any] | None:
    """The measured faithfulness of each explanation method (``explanations.json``, written by
    scripts/explain_card.py on the version's held-out films), with which method to trust; None without one."""
    import json
    from pathlib import Path

    path = Path(model_dir) / EXPLANATIONS_FILE
    if not path.is_file():
        return None
    stored = json.loads(path.read_text())
    if kinds.normalise(stored.get("kind")) == kinds.TABULAR_RISK:
        return risk_explanations_section(stored)
    keep = ("n", "classes", "removal", "steps", "blur_sigma", "noise_sigma", "cascade", "headline_stage", "methods",
            "labels", "command", "films_from", "held_out_total", "measured", "seconds")
    section = {k: stored[k] for k in keep if k in stored}
    section["verdicts"] = explanation_verdicts(section.get("methods") or {})
    section["advice"] = explanation_advice(section)
    return section


RISK_KEEP = ("kind", "model", "family", "exact_explainer", "space", "features", "folds", "settings", "labels", "n",
             "positives", "folds_used", "methods", "exact_seconds_per_patient", "stability", "patients_from",
             "stability_from", "command", "measured", "seconds")


def risk_explanations_section(stored: dict[str, Any]) -> dict[str, Any]:
    """A risk model's measured explanation agreement and stability (``core.tabular.agreement``), with what to trust."""
    section = {k: stored[k] for k in RISK_KEEP if k in stored}
    section["verdicts"] = risk_verdicts(section)
    section["advice"] = risk_advice(section)
    return section
