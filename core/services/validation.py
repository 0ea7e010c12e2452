"""Site validation as every front end runs it: a labeled folder or zip -> evaluation -> optional record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.imaging import intake
from core.imaging.classifier import load_classifier
from core.errors import LucidDxError
from core.imaging.evaluation import collect_labeled_predictions, evaluate_folder
from core.models import registry, site_validation
from core.services.audit import Actor, authorize, record


def validate_image_model(data: Path, spec: str | None = None, target_sensitivity: float = 0.95,
                         record: bool = False, source: str = "") -> dict[str, Any]:
    """Evaluate an image model on a site's labeled films (CLI.md ``validate``); record it if asked.

    Returns the ``evaluate`` fields plus prevalence, intervals, candidate thresholds, ROC, calibration,
    the skipped files and ``recorded`` (the validation id, or None).
    """
    model = load_classifier(spec)
    ref = registry.resolve(model.spec)
    with intake.open_dataset(Path(data)) as folder:
        collected = collect_labeled_predictions(folder, model)
    labels, probabilities = collected["labels"], collected["probabilities"]
    result = site_validation.evaluate_site(labels, probabilities, ref.meta, target_sensitivity)
    recorded = None
    if record:
        described = source or f"{len(labels)} labeled films validated with `python -m core validate`"
        recorded = site_validation.record(ref, result, labels, probabilities, described)
    return {"model": ref.spec, **result, "skipped": collected["skipped"], "recorded": recorded}


def evaluate_image_model(data: Path, spec: str | None = None) -> dict[str, Any]:
    """``python -m core evaluate``: AUC, accuracy, sensitivity, specificity of a model on a labeled folder."""
    return evaluate_folder(Path(data), spec)


def threshold_in_force(spec: str) -> dict[str, Any]:
    """``{"model", "threshold", "threshold_source"}`` of ``NAME:VERSION`` as predictions use it now."""
    ref = registry.resolve(spec)
    threshold, source = site_validation.threshold_in_force(ref)
    return {"model": ref.spec, "threshold": threshold, "threshold_source": source}


def adopt_threshold(actor: Actor | None, spec: str, validation_id: str, rule: str) -> dict[str, Any]:
    """Adopt the threshold ``rule`` found in a recorded site validation (admins), audited with what changed."""
    authorize(actor, "threshold")
    ref = registry.resolve(spec)
    try:
        site_validation.adopt_threshold(ref, validation_id, rule, by=actor.name if actor else "anonymous")
    except LucidDxError:
        record(actor, "threshold", model=ref.spec, outcome="bad-input")
        raise
    record(actor, "threshold", model=ref.spec)
    return threshold_in_force(ref.spec)


def reset_threshold(actor: Actor | None, spec: str) -> dict[str, Any]:
    """Go back to the threshold stored with the version (admins), audited."""
    authorize(actor, "threshold")
    ref = registry.resolve(spec)
    site_validation.reset_threshold(ref)
    record(actor, "threshold", model=ref.spec)
    return threshold_in_force(ref.spec)
