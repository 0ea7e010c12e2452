"""Build a card from what a model version stores about itself: ``meta.json`` and its predictions.

Every number comes from ``core.models.metrics``/``curves``/``thresholds`` over the stored held-out or
out-of-fold predictions, or from measurements the training code stored in meta.json (named as such:
robustness AUCs, out-of-distribution rates). Nothing here loads a network or reads training data.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core import i18n
from core.errors import InvalidModelError
from core.i18n import N_, _
from core.models import curves, kinds, metrics, registry, thresholds
import core.models.cards.sections as sections
from core.models.cards.prose import computed_caveats, texts_for

CARD_SCHEMA_VERSION = 2
PREDICTIONS_FILE = "validation_predictions.npz"
OOD_FILE = "ood.npz"


def load_predictions(model_dir: Path) -> dict[str, np.ndarray]:
    """labels (N,) int, probabilities (N, K) float, subgroups (N,) str from the version folder.

    Raises:
        InvalidModelError: the file is missing or unreadable (the version cannot show evidence).
    """
    path = Path(model_dir) / PREDICTIONS_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            labels = np.asarray(data["labels"], dtype=np.int64)
            out = {"labels": labels, "probabilities": np.asarray(data["probabilities"], dtype=np.float64)}
            out["subgroups"] = data["subgroups"].astype(str) if "subgroups" in data else np.full(len(labels), "all")
    except (OSError, ValueError, KeyError) as exc:
        raise InvalidModelError(
            _("{name}: its stored validation predictions ({file}) are missing or damaged, so no "
                "model card can be computed; retrain or delete this version.").format(name=path.parent.name, file=PREDICTIONS_FILE)
        ) from exc
    return out


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The version's meta.json. Raises InvalidModelError naming the folder when it is unreadable."""
    path = Path(model_dir) / registry.META_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidModelError(_("{path}: unreadable model metadata ({error_type}).").format(path=path, error_type=type(exc).__name__)) from exc
    if not isinstance(meta.get("classes"), list) or not meta["classes"]:
        raise InvalidModelError(_("{path}: the model metadata names no classes.").format(path=path))
    return meta


def fingerprint(model_dir: Path) -> str:
    """SHA-256 over what the card is computed from (meta.json without name/version, predictions, OOD stats, weights).

    Name and version are left out because registration sets them after the card is written.
    """
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    meta = {k: v for k, v in read_meta(model_dir).items() if k not in ("name", "version")}
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name in (PREDICTIONS_FILE, OOD_FILE, str(meta.get("model_file", "")), sections.EXPLANATIONS_FILE):
        path = model_dir / name
        if name and path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _positive_index(meta: dict[str, Any]) -> int | None:
    """Index of the positive class for a two-class model with a threshold, else None (argmax decisions)."""
    classes, positive_class = list(meta["classes"]), meta.get("positive_class")
    if len(classes) == 2 and positive_class in classes and meta.get("threshold") is not None:
        return classes.index(positive_class)
    return None


def _binary_analyses(meta: dict[str, Any], preds: dict[str, np.ndarray], positive: int) -> dict[str, Any]:
    labels, probs, threshold = preds["labels"], preds["probabilities"], float(meta["threshold"])
    is_pos, scores = labels == positive, probs[:, positive]
    said = np.where(scores >= threshold, positive, 1 - positive)
    analyses: dict[str, Any] = {
        "overall": metrics.binary_metrics_with_ci(is_pos, scores, threshold),
        "confusion_matrix": {"classes": list(meta["classes"]), "counts": metrics.confusion_matrix(labels, said, 2)},
        "roc_curve": curves.roc_points(is_pos, scores),
        "pr_curve": curves.pr_points(is_pos, scores),
        "calibration": curves.reliability_bins(is_pos, scores),
        "threshold_table": thresholds.threshold_table(is_pos, scores, threshold),
        "decision_curve": curves.decision_curve(is_pos, scores),
    }
    if len(np.unique(preds["subgroups"])) > 1:  # one subgroup would only repeat the overall figures
        labels_for = meta.get("subgroup_labels") or {"unspecified": "no subgroup in file name"}
        analyses["subgroups"] = metrics.subgroup_metrics(is_pos, scores, preds["subgroups"], threshold)
        for entry in analyses["subgroups"]:
            entry["label"] = labels_for.get(entry["subgroup"], entry["subgroup"])
    return analyses


def _multiclass_analyses(meta: dict[str, Any], preds: dict[str, np.ndarray]) -> dict[str, Any]:
    labels, probs, classes = preds["labels"], preds["probabilities"], list(meta["classes"])
    predicted = probs.argmax(1)
    calibration = curves.reliability_bins(predicted == labels, probs.max(1))
    calibration["of"] = N_("top-class confidence vs accuracy")
    return {
        "overall": metrics.multiclass_metrics_with_ci(labels, probs),
        "confusion_matrix": {"classes": classes, "counts": metrics.confusion_matrix(labels, predicted, len(classes))},
        "roc_curve_by_class": {c: curves.roc_points(labels == k, probs[:, k]) for k, c in enumerate(classes)},
        "pr_curve_by_class": {c: curves.pr_points(labels == k, probs[:, k]) for k, c in enumerate(classes)},
        "calibration": calibration,
    }


def ood_section(meta: dict[str, Any]) -> dict[str, Any]:
    """The out-of-distribution rates the model's training (or ``core.imaging.ood measure``) stored."""
    if kinds.normalise(meta.get("kind")) != kinds.IMAGE_CLASSIFIER:
        return {"measured": False, "note": N_("Not an image model: inputs outside each field's hard limits are refused, "
                                              "and values outside the training range are warned about (see the feature schema).")}
    stored = meta.get("ood") or {}
    if stored.get("measured"):
        return dict(stored)
    if stored:
        return {"measured": False, "validation_flag_rate": stored.get("validation_flag_rate"),
                "note": N_("The detector's rates on non-chest images were not measured for this version "
                           "(python -m core.imaging.ood measure MODEL_DIR measures and stores them).")}
    return {"measured": False, "note": N_("This version has no out-of-distribution detector.")}


def quantitative_analyses(meta: dict[str, Any], preds: dict[str, np.ndarray]) -> dict[str, Any]:
    """Overall metrics with intervals, confusion matrix, curves, subgroups, robustness and OOD rates."""
    positive = _positive_index(meta)
    analyses: dict[str, Any] = {"n": int(len(preds["labels"]))}
    analyses.update(_binary_analyses(meta, preds, positive) if positive is not None else _multiclass_analyses(meta, preds))
    robustness = (meta.get("validation") or {}).get("robustness_auc")
    if robustness:
        analyses["robustness_auc"] = {"values": robustness, "computed_by": "core.imaging.training: AUC on the validation "
                                      "films after each simulated acquisition change"}
    analyses["out_of_distribution"] = ood_section(meta)
    return analyses


def build_card(model_dir: Path) -> dict[str, Any]:
    """Compute the full card of the model version in ``model_dir`` (see module docstring).

    The stored card is always English (the msgids); :func:`core.models.cards.localize.localized` renders its
    prose in the reader's language.
    """
    with i18n.using(i18n.DEFAULT_LANGUAGE):
        return _build_card(Path(model_dir))


def _build_card(model_dir: Path) -> dict[str, Any]:
    meta = read_meta(model_dir)
    preds = load_predictions(model_dir)
    texts, documented = texts_for(meta)
    analyses = quantitative_analyses(meta, preds)
    binary = _positive_index(meta) is not None
    card = {
        "schema_version": CARD_SCHEMA_VERSION,
        "generated": {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "by": "core.models.cards.build_card",
            "from": [registry.META_FILE, PREDICTIONS_FILE] + ([OOD_FILE] if (model_dir / OOD_FILE).exists() else []),
            "fingerprint": fingerprint(model_dir),
        },
        "model_details": sections.model_details(meta, documented),
        "intended_use": {k: texts[k] for k in ("primary_uses", "primary_users", "out_of_scope")},
        "factors": sections.factors(texts, analyses),
        "metrics": sections.metrics_section(meta, binary),
        "evaluation_data": sections.evaluation_data(meta, preds["labels"], preds["subgroups"]),
        "training_data": sections.training_data(meta),
        "quantitative_analyses": analyses,
        "ethical_considerations": texts["ethical"],
        "caveats_and_recommendations": list(texts["caveats"]) + computed_caveats(analyses),
    }
    explained = sections.explanations(model_dir)
    if explained is not None:
        card["explanations"] = explained
        card["generated"]["from"].append(sections.EXPLANATIONS_FILE)
    return card
