"""Site validation: measure a model version on a hospital's own labeled cases, record it, adopt a threshold.

The data's journey: labels (N,) and the model's probabilities (N, K) on the site's cases ->
``evaluate_site`` (metrics at the stored threshold with 95% bootstrap intervals, ROC, calibration,
and candidate operating thresholds) -> ``record`` (an external validation under
``$LUCIDDX_HOME/validations/<name>/<version>/<id>/``) -> ``adopt_threshold`` (an administrator's
choice; the version's own files never change, ``reset_threshold`` restores the stored one).

A threshold chosen on the same cases it is then scored on looks better than it will be. Each candidate
therefore also carries a cross-fitted estimate: the threshold is chosen on four fifths of the cases and
scored on the fifth it never saw, over five folds.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from core import config
from core.i18n import _
from core.errors import InvalidDatasetError, RegistryError
from core.models import curves, metrics, registry, thresholds

RULES = ("stored", "target-sensitivity", "youden")
DEFAULT_TARGET_SENSITIVITY = 0.95
CROSS_FIT_FOLDS = 5
_ID_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")


def _choose(rule: str, is_pos: np.ndarray, scores: np.ndarray, stored: float, target: float) -> float:
    if rule == "stored":
        return stored
    if rule == "target-sensitivity":
        return thresholds.threshold_at_sensitivity(is_pos, scores, target)
    return thresholds.youden_threshold(is_pos, scores)


def _operating_point(is_pos: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | None]:
    point = metrics.binary_metrics(is_pos, scores, threshold)
    return {k: metrics.finite_or_none(point[k]) for k in ("sensitivity", "specificity", "ppv", "npv", "accuracy")}


def _cross_fitted(rule: str, is_pos: np.ndarray, scores: np.ndarray, target: float, seed: int = 0) -> dict[str, Any]:
    """Sensitivity and specificity of ``rule`` when the threshold is chosen without the cases it is scored on."""
    rng = np.random.default_rng(seed)
    folds = np.empty(len(is_pos), dtype=int)
    for value in (True, False):  # stratified: each fold keeps the site's prevalence
        members = rng.permutation(np.flatnonzero(is_pos == value))
        folds[members] = np.arange(len(members)) % CROSS_FIT_FOLDS
    said = np.zeros(len(is_pos), dtype=bool)
    for k in range(CROSS_FIT_FOLDS):
        held = folds == k
        cut = _choose(rule, is_pos[~held], scores[~held], 0.5, target)
        said[held] = scores[held] >= cut
    point = metrics.binary_metrics(is_pos, said.astype(np.float64), 0.5)
    return {"method": f"{CROSS_FIT_FOLDS}-fold cross-fitting (threshold chosen without the scored cases)",
            "sensitivity": metrics.finite_or_none(point["sensitivity"]),
            "specificity": metrics.finite_or_none(point["specificity"])}


def candidate_thresholds(is_pos: np.ndarray, scores: np.ndarray, stored: float, target: float) -> list[dict[str, Any]]:
    """The stored threshold, the one reaching ``target`` sensitivity, and Youden's, each with its figures."""
    rows = []
    for rule in RULES:
        cut = _choose(rule, is_pos, scores, stored, target)
        row: dict[str, Any] = {"rule": rule, "threshold": float(cut), **_operating_point(is_pos, scores, cut)}
        if rule == "target-sensitivity":
            row["target"] = target
        if rule != "stored":
            row["chosen_on_these_cases"] = True
            row["cross_fitted"] = _cross_fitted(rule, is_pos, scores, target)
        rows.append(row)
    return rows


def evaluate_site(
    labels: np.ndarray, probabilities: np.ndarray, meta: dict[str, Any], target_sensitivity: float = DEFAULT_TARGET_SENSITIVITY
) -> dict[str, Any]:
    """The site's evaluation of a two-class model with a stored threshold.

    Args:
        labels: (N,) class indices of the site's cases. probabilities: (N, K) the model's outputs.
        meta: the version's metadata (classes, positive class, threshold).
        target_sensitivity: the sensitivity the site wants to reach, in (0, 1].

    Raises:
        InvalidDatasetError: fewer than two classes among the cases, or a model without an operating threshold.
    """
    classes, positive_class, stored = list(meta["classes"]), meta.get("positive_class"), meta.get("threshold")
    if positive_class not in classes or stored is None or len(classes) != 2:
        raise InvalidDatasetError(_("Site validation needs a two-class model with a positive class and a threshold."))
    if not 0.0 < target_sensitivity <= 1.0:
        raise InvalidDatasetError(_("The target sensitivity must be between 0 and 1; got {target_sensitivity}.").format(target_sensitivity=target_sensitivity))
    labels, probabilities = np.asarray(labels, dtype=np.int64), np.asarray(probabilities, dtype=np.float64)
    is_pos = labels == classes.index(positive_class)
    if is_pos.all() or not is_pos.any():
        raise InvalidDatasetError(_("Site validation needs cases of both classes ({items}); these {count} cases have only one.").format(items=', '.join(classes), count=len(labels)))
    scores = probabilities[:, classes.index(positive_class)]
    overall = metrics.binary_metrics_with_ci(is_pos, scores, float(stored))
    return {
        "n": int(len(labels)),
        "prevalence": float(is_pos.mean()),
        "positive_class": positive_class,
        "threshold": float(stored),
        **{k: overall[k]["value"] for k in ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv")},
        "intervals": {k: overall[k]["ci95"] for k in ("auc", "accuracy", "sensitivity", "specificity", "ppv", "npv")},
        "thresholds": candidate_thresholds(is_pos, scores, float(stored), target_sensitivity),
        "roc_curve": curves.roc_points(is_pos, scores),
        "calibration": curves.reliability_bins(is_pos, scores),
    }


def _validations_dir(ref: registry.ModelRef) -> Path:
    return config.luciddx_home() / "validations" / ref.name / ref.version


def record(ref: registry.ModelRef, result: dict[str, Any], labels: np.ndarray, probabilities: np.ndarray,
           source: str) -> str:
    """Store ``result`` and the predictions it was computed from as an external validation; returns its id.

    ``source`` describes the data in words (never file names: they may carry patient names).
    """
    validation_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    folder = _validations_dir(ref) / validation_id
    folder.mkdir(parents=True)
    np.savez(folder / "predictions.npz", labels=np.asarray(labels), probabilities=np.asarray(probabilities))
    entry = {"id": validation_id, "model": ref.spec, "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "source": source, **result}
    registry.write_json_atomic(folder / "validation.json", entry)
    return validation_id


def list_validations(ref: registry.ModelRef) -> list[dict[str, Any]]:
    """Every recorded external validation of this version, oldest first."""
    root = _validations_dir(ref)
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        path = folder / "validation.json"
        if path.is_file():
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError) as exc:
                raise RegistryError(_("{spec}: the recorded validation {name} is damaged ({error_type}); remove {folder} or restore it "
                        "from a backup.").format(spec=ref.spec, name=folder.name, error_type=type(exc).__name__, folder=folder)) from exc
    return found


def load_validation(ref: registry.ModelRef, validation_id: str) -> dict[str, Any]:
    if not _ID_PATTERN.match(validation_id or ""):
        raise RegistryError(_("'{validation_id}' is not a validation id (they look like 20261125-043000-1a2b3c).").format(validation_id=validation_id))
    for entry in list_validations(ref):
        if entry["id"] == validation_id:
            return entry
    raise RegistryError(_("{spec} has no recorded validation '{validation_id}'; see `python -m core card --model {spec}`.").format(spec=ref.spec, validation_id=validation_id))


HEADLINE_METRICS = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy")


def figures_at(ref: registry.ModelRef, validation: dict[str, Any], threshold: float) -> dict[str, dict[str, Any]]:
    """A recorded validation's figures ``{metric: {"value", "ci95"}}`` at ``threshold``, recomputed from its
    stored predictions (the recorded ones are at the threshold of the day it was recorded).

    When the predictions file is gone, the recorded figures are returned if they were taken at ``threshold``.

    Raises:
        RegistryError: the predictions are missing and the recorded figures are at another threshold.
    """
    if validation.get("threshold") is not None and abs(float(validation["threshold"]) - threshold) < 1e-12:
        return {k: {"value": validation.get(k), "ci95": validation["intervals"].get(k, [None, None])} for k in HEADLINE_METRICS}
    path = _validations_dir(ref) / validation["id"] / "predictions.npz"
    if not path.is_file():
        raise RegistryError(_("{spec}: the predictions of validation {id} are missing ({path}); record the validation "
                              "again.").format(spec=ref.spec, id=validation["id"], path=path))
    key = (str(path), path.stat().st_mtime_ns, float(threshold))
    if key not in _FIGURES:  # every page that shows a prediction asks again: bootstrap once per threshold
        with np.load(path) as stored:
            labels, probabilities = stored["labels"], stored["probabilities"]
        positive = list(ref.meta["classes"]).index(validation.get("positive_class") or ref.meta["positive_class"])
        figures = metrics.binary_metrics_with_ci(labels == positive, probabilities[:, positive], float(threshold))
        _FIGURES[key] = {k: {"value": metrics.finite_or_none(figures[k]["value"]), "ci95": figures[k]["ci95"]}
                         for k in HEADLINE_METRICS}
    return _FIGURES[key]


_FIGURES: dict[tuple[str, int, float], dict[str, dict[str, Any]]] = {}


def adopted_record(ref: registry.ModelRef) -> dict[str, Any] | None:
    """The adopted site threshold's record (threshold, source, rule, adopted, by, stored_threshold), or None."""
    path = _threshold_file(ref)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RegistryError(_("{spec}: the adopted site threshold file {path} is damaged; run `python -m core threshold "
                "--model NAME:VERSION --reset`.").format(spec=ref.spec, path=path)) from exc


def _threshold_file(ref: registry.ModelRef) -> Path:
    return config.home_models_dir() / ref.name / "site_thresholds" / f"{ref.version}.json"


def adopt_threshold(ref: registry.ModelRef, validation_id: str, rule: str, by: str) -> dict[str, Any]:
    """Use the threshold that ``rule`` found in a recorded site validation for every later prediction."""
    if rule not in RULES:
        raise RegistryError(_("Unknown threshold rule '{rule}'; choose one of {items}.").format(rule=rule, items=', '.join(RULES)))
    validation = load_validation(ref, validation_id)
    row = next(r for r in validation["thresholds"] if r["rule"] == rule)
    before, before_source = threshold_in_force(ref)
    adopted = {"threshold": row["threshold"], "source": f"site:{validation_id}", "rule": rule,
               "adopted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": by,
               "stored_threshold": ref.meta.get("threshold")}
    registry.write_json_atomic(_threshold_file(ref), adopted)
    adopted["sha256"] = _record_change(ref, {"model": ref.spec, "threshold": adopted["threshold"], "source": adopted["source"],
                                             "rule": rule, "previous": {"threshold": before, "source": before_source},
                                             "time": adopted["adopted"], "by": by})
    return adopted


def reset_threshold(ref: registry.ModelRef, by: str = "") -> str:
    """Go back to the threshold stored with the version; returns the SHA-256 of the change's record."""
    before, before_source = threshold_in_force(ref)
    _threshold_file(ref).unlink(missing_ok=True)
    stored = ref.meta.get("threshold")
    return _record_change(ref, {"model": ref.spec, "threshold": stored, "source": "stored", "rule": "stored",
                                "previous": {"threshold": before, "source": before_source},
                                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": by})


def _history_dir(ref: registry.ModelRef) -> Path:
    return config.home_models_dir() / ref.name / "site_thresholds" / "history"


def _record_change(ref: registry.ModelRef, change: dict[str, Any]) -> str:
    """Keep what a threshold change did (old -> new) as a file; its SHA-256 is what the audit record carries."""
    import hashlib

    body = json.dumps(change, indent=2).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    folder = _history_dir(ref)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{digest[:16]}.json").write_bytes(body)
    return digest


def threshold_changes(name: str) -> dict[str, dict[str, Any]]:
    """Every recorded threshold change of any version of ``name``, by the SHA-256 its audit record carries."""
    import hashlib

    root = config.home_models_dir() / name / "site_thresholds" / "history"
    return {hashlib.sha256(path.read_bytes()).hexdigest(): json.loads(path.read_text())
            for path in sorted(root.glob("*.json"))} if root.is_dir() else {}


def threshold_in_force(ref: registry.ModelRef) -> tuple[float | None, str]:
    """(threshold, where it came from: "stored" or "site:<validation id>") for predictions now."""
    path = _threshold_file(ref)
    if path.is_file():
        try:
            adopted = json.loads(path.read_text())
            return float(adopted["threshold"]), str(adopted["source"])
        except (OSError, ValueError, KeyError) as exc:
            raise RegistryError(_("{spec}: the adopted site threshold file {path} is damaged; run `python -m core threshold "
                    "--model NAME:VERSION --reset`.").format(spec=ref.spec, path=path)) from exc
    stored = ref.meta.get("threshold")
    return (float(stored) if stored is not None else None), "stored"
