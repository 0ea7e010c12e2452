"""Model cards (Mitchell et al., 2019, "Model Cards for Model Reporting"), computed, never typed.

A card is built from what a model version stores about itself: ``meta.json`` (what it is, how it
was trained, its threshold) and ``validation_predictions.npz`` (labels (N,), probabilities (N, K),
subgroups (N,) of its held-out or out-of-fold cases). Every number on the card comes from
``core.models.metrics`` over those predictions, from ``core.imaging.ood.measure_rates`` over real images, or from
numbers the training code measured and stored in meta.json (named as such). Only prose (intended
use, ethical considerations...) comes from the small per-model table below.

The card is written as ``card.json`` beside the model when the version is registered
(:func:`write_card`, called by training on the staging folder), so a retrained version gets its
own fresh card. :func:`load_card` rebuilds a card whose schema version or input fingerprint (hash
of meta.json and the stored predictions/OOD statistics) no longer matches: a card cannot go stale.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from core import config
from core.models import curves, kinds, metrics, registry, thresholds

CARD_SCHEMA_VERSION = 1
PREDICTIONS_FILE = "validation_predictions.npz"
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
        "factors": ["As available in the data: age bands below."],
        "ethical": ["The training data's consent and licence are the responsibility of whoever supplied it."],
        "caveats": ["Retrained by a user: NOT independently evaluated; cross-validated figures are optimistic."],
    },
}


# ---------------------------------------------------------------------------------------------
# Inputs and fingerprint
# ---------------------------------------------------------------------------------------------


def load_predictions(model_dir: Path) -> dict[str, np.ndarray]:
    """labels (N,) int, probabilities (N, K) float, subgroups (N,) str from the version folder."""
    with np.load(Path(model_dir) / PREDICTIONS_FILE, allow_pickle=False) as data:
        labels = np.asarray(data["labels"], dtype=np.int64)
        out = {"labels": labels, "probabilities": np.asarray(data["probabilities"], dtype=np.float64)}
        out["subgroups"] = data["subgroups"].astype(str) if "subgroups" in data else np.full(len(labels), "all")
    return out


def fingerprint(model_dir: Path) -> str:
    """SHA-256 over what the card is computed from (meta.json without name/version, predictions, OOD stats, weights).

    Name and version are left out because registration sets them after the card is written.
    """
    model_dir = Path(model_dir)
    digest = hashlib.sha256()
    meta = json.loads((model_dir / registry.META_FILE).read_text())
    meta = {k: v for k, v in meta.items() if k not in ("name", "version")}
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    for name in (PREDICTIONS_FILE, "ood.npz", str(meta.get("model_file", ""))):
        path = model_dir / name
        if name and path.is_file():
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _texts_for(meta: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The card's prose, and whether it comes from a documented dataset's description (in meta.json)."""
    if meta.get("card_text") and meta.get("dataset"):
        return meta["card_text"], True
    return KIND_TEXTS[kinds.normalise(meta.get("kind")) or kinds.IMAGE_CLASSIFIER], False


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def build_card(model_dir: Path, measure_ood: bool = True) -> dict[str, Any]:
    """Compute the full card of the model version in ``model_dir`` (see module docstring)."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / registry.META_FILE).read_text())
    preds = load_predictions(model_dir)
    texts, documented = _texts_for(meta)
    classes = list(meta["classes"])
    positive_class = meta.get("positive_class")
    positive = classes.index(positive_class) if positive_class in classes else None
    threshold = meta.get("threshold")
    binary = positive is not None and threshold is not None and len(classes) == 2
    labels, probs = preds["labels"], preds["probabilities"]
    kind = kinds.normalise(meta.get("kind")) or kinds.IMAGE_CLASSIFIER

    analyses: dict[str, Any] = {"n": int(len(labels))}
    if binary:
        is_pos, scores = labels == positive, probs[:, positive]
        said = scores >= threshold
        analyses["overall"] = metrics.binary_metrics_with_ci(is_pos, scores, threshold)
        analyses["confusion_matrix"] = {
            "classes": classes,
            "counts": metrics.confusion_matrix(labels, np.where(said, positive, 1 - positive), len(classes)),
        }
        analyses["roc_curve"] = curves.roc_points(is_pos, scores)
        analyses["pr_curve"] = curves.pr_points(is_pos, scores)
        analyses["calibration"] = curves.reliability_bins(is_pos, scores)
        analyses["threshold_table"] = thresholds.threshold_table(is_pos, scores, threshold)
        analyses["decision_curve"] = curves.decision_curve(is_pos, scores)
        if len(np.unique(preds["subgroups"])) > 1:  # one subgroup would only repeat the overall figures
            analyses["subgroups"] = metrics.subgroup_metrics(is_pos, scores, preds["subgroups"], threshold)
    else:
        analyses["overall"] = metrics.multiclass_metrics_with_ci(labels, probs)
        predicted = probs.argmax(1)
        analyses["confusion_matrix"] = {"classes": classes, "counts": metrics.confusion_matrix(labels, predicted, len(classes))}
        analyses["roc_curve_by_class"] = {c: curves.roc_points(labels == k, probs[:, k]) for k, c in enumerate(classes)}
        analyses["pr_curve_by_class"] = {c: curves.pr_points(labels == k, probs[:, k]) for k, c in enumerate(classes)}
        confidence = probs.max(1)
        analyses["calibration"] = curves.reliability_bins(predicted == labels, confidence)
        analyses["calibration"]["of"] = "top-class confidence vs accuracy"
    labels_for = meta.get("subgroup_labels") or {"unspecified": "no subgroup in file name"}
    for entry in analyses.get("subgroups", []):
        entry["label"] = labels_for.get(entry["subgroup"], entry["subgroup"])
    validation = meta.get("validation") or {}
    if validation.get("robustness_auc"):
        analyses["robustness_auc"] = {
            "values": validation["robustness_auc"],
            "computed_by": "core.imaging.training: AUC on the validation films after each simulated acquisition change",
        }
    if kind == kinds.IMAGE_CLASSIFIER:
        analyses["out_of_distribution"] = _ood_section(model_dir, meta) if measure_ood else {"measured": False}
    else:
        analyses["out_of_distribution"] = {
            "measured": False,
            "note": "Not an image model: inputs outside each field's hard limits are refused, and values outside "
            "the training range are warned about (see the feature schema).",
        }

    counts = np.bincount(labels, minlength=len(classes))
    training = meta.get("training") or {}
    provenance = meta.get("dataset")
    card: dict[str, Any] = {
        "schema_version": CARD_SCHEMA_VERSION,
        "generated": {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "by": "core.models.cards.build_card",
            "from": [registry.META_FILE, PREDICTIONS_FILE] + (["ood.npz"] if (model_dir / "ood.npz").exists() else []),
            "fingerprint": fingerprint(model_dir),
        },
        "model_details": {
            "name": meta.get("name", ""),
            "version": meta.get("version", ""),
            "kind": kind,
            "date": meta.get("created"),
            "architecture": meta.get("architecture"),
            "framework": meta.get("framework"),
            "input": meta.get("input") or {"features": [f.get("name") for f in meta.get("features", [])]},
            "classes": classes,
            "positive_class": positive_class,
            "threshold": threshold,
            "threshold_rule": meta.get("threshold_rule") or ("argmax of class probabilities" if not binary else None),
            "training_command": training.get("command") or "(not recorded: trained through the API or the Retrain page)",
            "training_device": training.get("device"),
            "training_seconds": training.get("seconds"),
            "documented_model": documented,
        },
        "intended_use": {
            "primary_uses": texts["primary_uses"],
            "primary_users": texts["primary_users"],
            "out_of_scope": texts["out_of_scope"],
        },
        "factors": {
            "relevant": texts["factors"],
            "evaluated": [
                {"subgroup": e["subgroup"], "label": e["label"], "n": e["n"]} for e in analyses.get("subgroups", [])
            ] or [{"subgroup": "all", "label": "no subgroups available", "n": int(len(labels))}],
        },
        "metrics": {
            "reported": [{"name": k, "label": metrics.METRIC_LABELS[k], "meaning": metrics.METRIC_DESCRIPTIONS[k]}
                         for k in metrics.BINARY_METRICS],
            "decision": (f"'{positive_class}' when its probability >= {threshold:.4g} ({meta.get('threshold_rule', '')})"
                         if binary else "the class with the highest probability; metrics are macro one-vs-rest averages"),
            "uncertainty": f"95% percentile bootstrap intervals, {metrics.DEFAULT_RESAMPLES} resamples stratified by "
            f"class, seed {metrics.DEFAULT_SEED}",
            "curves": ["ROC", "precision-recall", "reliability (calibration)"]
            + (["threshold table", "decision curve (net benefit)"] if binary else []),
        },
        "evaluation_data": _evaluation_data(meta, labels, preds["subgroups"], classes, counts),
        "training_data": {
            "dataset": (provenance or {}).get("name", "The user's own folder (" + str(training.get("data", "unknown")) + ")"),
            "source": (provenance or {}).get("source", "Supplied by the user who trained this version; not documented here."),
            "license": (provenance or {}).get("license", "Unknown: set by whoever supplied the data."),
            "population": (provenance or {}).get("population", "Unknown."),
            "class_counts": training.get("class_counts")
            or ({"rows": training.get("rows"), "positives": training.get("positives")} if training.get("rows") else None),
            "train_images": training.get("train_images"),
            "skipped_files": len(training.get("skipped") or []),
            "split": training.get("split"),
        },
        "quantitative_analyses": analyses,
        "ethical_considerations": texts["ethical"],
        "caveats_and_recommendations": list(texts["caveats"]) + _computed_caveats(analyses, binary),
    }
    if provenance and "paper" in provenance:
        card["training_data"]["paper"] = provenance["paper"]
    return card


def _evaluation_data(meta: dict[str, Any], labels: np.ndarray, subgroups: np.ndarray, classes: list[str], counts: np.ndarray) -> dict[str, Any]:
    """What the card's figures were computed on: description, size, class and subgroup counts."""
    training = meta.get("training") or {}
    if kinds.normalise(meta.get("kind")) == kinds.TABULAR_RISK:
        folds = (meta.get("validation") or {}).get("cv_folds")
        description = ("Out-of-fold predictions from cross-validation on the training data"
                       + (f" ({folds}-fold)" if folds else "") + ": every case is predicted by a model that did not see it.")
    else:
        fraction = (training.get("config") or {}).get("validation_fraction")
        description = ("Held-out validation split of the training folder"
                       + (f" ({fraction:.0%})" if fraction else "")
                       + ", split by patient (file-name prefixes) so no patient is on both sides.")
    return {
        "description": description,
        "n": int(len(labels)),
        "class_counts": {c: int(n) for c, n in zip(classes, counts)},
        "subgroup_counts": {str(g): int(n) for g, n in zip(*np.unique(subgroups, return_counts=True))},
    }


def _computed_caveats(analyses: dict[str, Any], binary: bool) -> list[str]:
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


def _ood_section(model_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Measure the detector on this model (validation films and non-chest images)."""
    from core.imaging import ood
    from core.imaging.classifier import ImageClassifier

    if not (model_dir / ood.OOD_FILE).exists():
        return {"measured": False, "note": "This version has no out-of-distribution detector."}
    try:
        model = ImageClassifier(registry.ModelRef(meta.get("name", ""), meta.get("version", ""), model_dir, False, meta))
        result = ood.measure_rates(model, ood.validation_image_files(meta))
    except Exception as exc:  # noqa: BLE001 - a failed measurement must not lose a finished training run
        # The card says so, and is_current() treats it as stale, so the next load_card measures again.
        return {"measured": False, "note": f"Measurement failed ({type(exc).__name__}: {exc}); it is retried "
                "when the card is next loaded."}
    if result["validation_flag_rate"] is None:
        stored = (meta.get("ood") or {}).get("validation_flag_rate")
        result.update(validation_flag_rate=stored, validation_n=(meta.get("validation") or {}).get("n"),
                      validation_source="measured by core.training at registration (training folder no longer available)")
    result["measured"] = True
    return result


# ---------------------------------------------------------------------------------------------
# Storing and loading
# ---------------------------------------------------------------------------------------------


def write_card(model_dir: Path) -> dict[str, Any]:
    """Build the card of the version in ``model_dir`` and store it as ``card.json`` there."""
    card = build_card(model_dir)
    registry.write_json_atomic(Path(model_dir) / registry.CARD_FILE, card)
    return card


def _cache_path(ref: registry.ModelRef) -> Path:
    return config.luciddx_home() / "cards" / ref.name / ref.version / registry.CARD_FILE


def is_current(card: dict[str, Any] | None, model_dir: Path) -> bool:
    """Whether ``card`` was built by this schema from exactly the files now in ``model_dir``."""
    if not (
        isinstance(card, dict)
        and card.get("schema_version") == CARD_SCHEMA_VERSION
        and (card.get("generated") or {}).get("fingerprint") == fingerprint(model_dir)
    ):
        return False
    ood_section = card.get("quantitative_analyses", {}).get("out_of_distribution", {})
    unmeasured_detector = (Path(model_dir) / "ood.npz").exists() and not ood_section.get("measured")
    return not unmeasured_detector


def load_card(ref: registry.ModelRef | str) -> dict[str, Any]:
    """The current card of a model version, rebuilt if missing, from an older schema, or stale.

    A rebuilt card is stored beside a user model; bundled models are read-only, so theirs is
    cached under ``$LUCIDDX_HOME/cards``. Name and version always come from the registry.
    """
    if isinstance(ref, str):
        ref = registry.resolve(ref)
    card = None
    for path in (ref.path / registry.CARD_FILE, _cache_path(ref)):
        if path.exists():
            candidate = json.loads(path.read_text())
            if is_current(candidate, ref.path):
                card = candidate
                break
    if card is None:
        card = build_card(ref.path)
        card["model_details"].update(name=ref.name, version=ref.version)
        registry.write_json_atomic(_cache_path(ref) if ref.bundled else ref.path / registry.CARD_FILE, card)
    elif not ref.bundled and (card["model_details"].get("name"), card["model_details"].get("version")) != (ref.name, ref.version):
        # Written in the staging folder before registration numbered the version: record the number now.
        card["model_details"].update(name=ref.name, version=ref.version)
        registry.write_json_atomic(ref.path / registry.CARD_FILE, card)
    card["model_details"].update(name=ref.name, version=ref.version, bundled=ref.bundled)
    return card


def rebuild_card(ref: registry.ModelRef | str) -> dict[str, Any]:
    """Recompute a version's card now and store it beside the model (a build step for bundled models)."""
    if isinstance(ref, str):
        ref = registry.resolve(ref)
    card = build_card(ref.path)
    card["model_details"].update(name=ref.name, version=ref.version)
    registry.write_json_atomic(ref.path / registry.CARD_FILE, card)
    return card


def missing_sections(card: dict[str, Any]) -> list[str]:
    """Mitchell et al. sections that are absent or empty (an empty list means the card is complete)."""
    return [s for s in SECTIONS if not card.get(s)]


def key_metrics(card: dict[str, Any], names: tuple[str, ...] = ("auc", "sensitivity", "specificity")) -> dict[str, Any]:
    """The headline metrics ``{name: {"value", "ci95"}}`` for compact displays."""
    overall = card.get("quantitative_analyses", {}).get("overall", {})
    return {k: overall[k] for k in names if k in overall}


# ---------------------------------------------------------------------------------------------
# Comparing versions
# ---------------------------------------------------------------------------------------------


def compare_versions(ref_a: registry.ModelRef | str, ref_b: registry.ModelRef | str) -> dict[str, Any]:
    """Metric deltas (b - a) with 95% bootstrap intervals between two versions' stored predictions."""
    refs = [registry.resolve(r) if isinstance(r, str) else r for r in (ref_a, ref_b)]
    sides = []
    for ref in refs:
        preds = load_predictions(ref.path)
        classes = list(ref.meta["classes"])
        positive = classes.index(ref.meta["positive_class"]) if ref.meta.get("positive_class") in classes else None
        sides.append({**preds, "positive": positive, "threshold": ref.meta.get("threshold")})
    deltas = metrics.delta_with_ci(sides[0], sides[1])
    return {"a": refs[0].spec, "b": refs[1].spec, "deltas": deltas,
            "method": f"b - a; 95% percentile bootstrap of the difference, {metrics.DEFAULT_RESAMPLES} resamples"}


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _metric_cell(entry: dict[str, Any]) -> str:
    low, high = entry.get("ci95") or [None, None]
    if entry.get("value") is None:
        return "n/a"
    if low is None:
        return _fmt(entry["value"])
    return f"{entry['value']:.3f} ({low:.3f}-{high:.3f})"


def _bullets(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items]


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: every section, tables for metrics, thresholds and subgroups."""
    d = card["model_details"]
    qa = card["quantitative_analyses"]
    lines = [f"# Model card: {d['name']}:{d['version']}", ""]
    lines += [f"_Computed by `{card['generated']['by']}` at {card['generated']['at']} from "
              f"{', '.join(card['generated']['from'])} (card schema {card['schema_version']})._", ""]
    lines += ["## Model details", ""]
    for key in ("kind", "date", "architecture", "framework", "classes", "positive_class", "threshold",
                "threshold_rule", "training_device", "training_seconds"):
        lines.append(f"- **{key.replace('_', ' ').capitalize()}**: {d.get(key) if d.get(key) is not None else 'n/a'}")
    lines.append(f"- **Input**: {json.dumps(d.get('input'))}")
    lines.append(f"- **Training command**: `{d.get('training_command')}`")
    lines += ["", "## Intended use", "", "**Primary uses**", ""] + _bullets(card["intended_use"]["primary_uses"])
    lines += ["", "**Primary users**", ""] + _bullets(card["intended_use"]["primary_users"])
    lines += ["", "**Out of scope**", ""] + _bullets(card["intended_use"]["out_of_scope"])
    lines += ["", "## Factors", ""] + _bullets(card["factors"]["relevant"])
    lines += ["", "Evaluated subgroups: " + ", ".join(f"{e['label']} (n={e['n']})" for e in card["factors"]["evaluated"])]
    m = card["metrics"]
    lines += ["", "## Metrics", "", f"- **Decision**: {m['decision']}", f"- **Uncertainty**: {m['uncertainty']}",
              f"- **Curves**: {', '.join(m['curves'])}", ""]
    lines += [f"- **{r['label']}**: {r['meaning']}" for r in m["reported"]]
    e = card["evaluation_data"]
    lines += ["", "## Evaluation data", "", e["description"], "", f"- n = {e['n']}",
              "- Class counts: " + ", ".join(f"{c}: {n}" for c, n in e["class_counts"].items())]
    t = card["training_data"]
    lines += ["", "## Training data", ""]
    for key in ("dataset", "source", "paper", "license", "population", "split"):
        if t.get(key):
            lines.append(f"- **{key.capitalize()}**: {t[key]}")
    if t.get("class_counts"):
        lines.append("- **Counts**: " + ", ".join(f"{k}: {v}" for k, v in t["class_counts"].items()))
    lines += ["", "## Quantitative analyses", "", f"Overall (n = {qa['n']}), value (95% CI):", "",
              "| Metric | Value (95% CI) |", "|---|---|"]
    lines += [f"| {metrics.METRIC_LABELS[k]} | {_metric_cell(v)} |" for k, v in qa["overall"].items()]
    cm = qa["confusion_matrix"]
    lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(cm["classes"]) + " |", "|---" * (len(cm["classes"]) + 1) + "|"]
    lines += [f"| {c} | " + " | ".join(str(n) for n in row) + " |" for c, row in zip(cm["classes"], cm["counts"])]
    if qa.get("threshold_table"):
        lines += ["", "Threshold table:", "", "| Threshold | Sensitivity | Specificity | PPV | NPV | Flagged | Note |",
                  "|---|---|---|---|---|---|---|"]
        for row in qa["threshold_table"]:
            mark = "**" if row["chosen"] else ""
            lines.append(f"| {mark}{row['threshold']:.4g}{mark} | {_fmt(row['sensitivity'])} | {_fmt(row['specificity'])} | "
                         f"{_fmt(row['ppv'])} | {_fmt(row['npv'])} | {row['flagged']} | {row['note']} |")
    if qa.get("subgroups"):
        lines += ["", "Subgroups (95% CI):", "", "| Subgroup | n | pos/neg | AUC | Sensitivity | Specificity | AUC vs all negatives |",
                  "|---|---|---|---|---|---|---|"]
        for s in qa["subgroups"]:
            vs = _metric_cell(s["auc_vs_all_negatives"]) if "auc_vs_all_negatives" in s else ""
            lines.append(f"| {s['label']} | {s['n']} | {s['positives']}/{s['negatives']} | {_metric_cell(s['metrics']['auc'])} | "
                         f"{_metric_cell(s['metrics']['sensitivity'])} | {_metric_cell(s['metrics']['specificity'])} | {vs} |")
    cal = qa.get("calibration", {})
    if cal:
        lines += ["", f"Calibration: expected calibration error {_fmt(cal.get('expected_calibration_error'))} over "
                  f"{len(cal.get('bins', []))} non-empty bins."]
    if qa.get("robustness_auc"):
        lines += ["", "Robustness (AUC after simulated acquisition changes): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in qa["robustness_auc"]["values"].items())]
    o = qa.get("out_of_distribution", {})
    lines += ["", "Out-of-distribution check:"]
    if o.get("measured"):
        lines += [f"- Method: {o['method']}",
                  f"- Flags {_pct(o.get('validation_flag_rate'))} of {o.get('validation_n')} validation chest X-rays",
                  f"- Flags {_pct(o.get('non_chest_flag_rate'))} of {o.get('non_chest_n')} non-chest images ({o.get('non_chest_sources')})",
                  f"- Detector cost: {o.get('detector_ms_per_image')} ms per image"]
    else:
        lines.append(f"- {o.get('note', 'not measured')}")
    lines += ["", "## Ethical considerations", ""] + _bullets(card["ethical_considerations"])
    lines += ["", "## Caveats and recommendations", ""] + _bullets(card["caveats_and_recommendations"])
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


if __name__ == "__main__":  # python -m core.models.cards rebuild NAME[:VERSION] ...
    import sys

    if len(sys.argv) < 3 or sys.argv[1] != "rebuild":
        sys.exit("usage: python -m core.models.cards rebuild NAME[:VERSION] ...")
    for spec in sys.argv[2:]:
        built = rebuild_card(spec)
        print(f"{spec}: card rebuilt ({built['generated']['fingerprint'][:12]})", file=sys.stderr)
