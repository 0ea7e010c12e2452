"""Site validation as every front end runs it: a labeled folder or zip -> evaluation -> optional record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import LucidDxError
from core.imaging import intake
from core.imaging.classifier import load_classifier
from core.imaging.evaluation import collect_labeled_predictions, evaluate_folder
from core.models import registry, site_validation
from core.services.audit import Who, authorize, record


@dataclass
class SiteEvaluation:
    """A model measured on a site's labeled films, kept until it is recorded (or dropped).

    ``labels`` (N,) class indices and ``probabilities`` (N, K) stay in memory only; ``result`` is the
    CLI.md ``validate`` object (intervals, candidate thresholds, ROC, calibration).
    """

    spec: str
    result: dict[str, Any]
    labels: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    skipped: list[dict[str, str]]


def evaluate_site_films(
    actor: Who | None, data: Path, spec: str | None = None, target_sensitivity: float = 0.95
) -> SiteEvaluation:
    """Measure an image model on a site's labeled films (one subfolder per class; a folder or a zip).

    Raises:
        PermissionDeniedError: ``actor`` may not validate.
        LucidDxError: the folder does not match the model's classes, or holds one class only.
    """
    authorize(actor, "validate")
    model = load_classifier(spec)
    ref = registry.resolve(model.spec)
    with intake.open_dataset(Path(data)) as folder:
        collected = collect_labeled_predictions(folder, model)
    labels, probabilities = collected["labels"], collected["probabilities"]
    result = site_validation.evaluate_site(labels, probabilities, ref.meta, target_sensitivity)
    return SiteEvaluation(ref.spec, result, labels, probabilities, collected["skipped"])


def record_site_validation(actor: Who | None, evaluation: SiteEvaluation, source: str) -> str:
    """Store ``evaluation`` as an external validation of its version (the card then lists it); returns its id.

    ``source`` describes the films in words, never their file names.
    """
    authorize(actor, "validate")
    ref = registry.resolve(evaluation.spec)
    validation_id = site_validation.record(ref, evaluation.result, evaluation.labels, evaluation.probabilities, source)
    record(actor, "validate", model=ref.spec)
    return validation_id


def validate_image_model(
    data: Path,
    spec: str | None = None,
    target_sensitivity: float = 0.95,
    record: bool = False,
    source: str = "",
    actor: Who | None = None,
    with_scores: bool = False,
) -> dict[str, Any]:
    """Evaluate an image model on a site's labeled films (CLI.md ``validate``); record it if asked.

    Returns the ``evaluate`` fields plus prevalence, intervals, candidate thresholds, ROC, calibration,
    the skipped files and ``recorded`` (the validation id, or None); ``with_scores``: also each case's
    ``labels`` (class index) and ``probabilities``, from which a validation job's page records it later.
    """
    evaluation = evaluate_site_films(actor, data, spec, target_sensitivity)
    recorded = None
    if record:
        described = source or f"{len(evaluation.labels)} labeled films validated with `python -m core validate`"
        recorded = record_site_validation(actor, evaluation, described)
    out = {"model": evaluation.spec, **evaluation.result, "skipped": evaluation.skipped, "recorded": recorded}
    if with_scores:
        out |= {"labels": evaluation.labels.tolist(), "probabilities": evaluation.probabilities.tolist()}
    return out


def start_site_validation(actor: Who | None, data: Path, spec: str | None, target_sensitivity: float) -> str:
    """Measure ``spec`` on a site's labeled films as an engine job (``validate`` on a worker); return its id.

    ``data``: a folder or zip already on the server (inside the data roots, or a stored upload). Authorized
    before anything starts; the job acts for ``actor`` in its own records.

    Raises:
        PermissionDeniedError: ``actor`` may not validate.
        LucidDxError: unknown model, a target out of range, missing data.
    """
    from core.jobs.checks import ValidationJobRequest
    from core.services import jobs

    authorize(actor, "validate")
    try:
        model = registry.resolve(spec).spec  # pinned: a later activation does not change what is measured
        request = ValidationJobRequest(model, str(data), float(target_sensitivity))
    except LucidDxError:
        record(actor, "validate", outcome="bad-input")
        raise
    return jobs.start(actor, request, action="validate")


def site_evaluation_of(job_id: str) -> SiteEvaluation | None:
    """The SiteEvaluation a finished validation job measured (None until it succeeded), ready to show and record."""
    import json

    from core.jobs import runner

    if runner.refresh(job_id).get("state") != "succeeded":
        return None
    result = json.loads((runner.job_dir(job_id) / runner.RESULT_FILE).read_text())
    labels = np.asarray(result.pop("labels"), dtype=int)
    probabilities = np.asarray(result.pop("probabilities"), dtype=float)
    spec, skipped = result.pop("model"), result.pop("skipped")
    result.pop("recorded", None)
    return SiteEvaluation(spec, result, labels, probabilities, skipped)


def evaluate_image_model(data: Path, spec: str | None = None) -> dict[str, Any]:
    """``python -m core evaluate``: AUC, accuracy, sensitivity, specificity of a model on a labeled folder."""
    return evaluate_folder(Path(data), spec)


def threshold_in_force(spec: str) -> dict[str, Any]:
    """``{"model", "threshold", "threshold_source"}`` of ``NAME:VERSION`` as predictions use it now."""
    ref = registry.resolve(spec)
    threshold, source = site_validation.threshold_in_force(ref)
    return {"model": ref.spec, "threshold": threshold, "threshold_source": source}


def adopt_threshold(actor: Who | None, spec: str, validation_id: str, rule: str) -> dict[str, Any]:
    """Adopt the threshold ``rule`` found in a recorded site validation (admins), audited with what changed."""
    authorize(actor, "threshold")
    ref = registry.resolve(spec)
    try:
        adopted = site_validation.adopt_threshold(ref, validation_id, rule, by=actor.name if actor else "anonymous")
    except LucidDxError:
        record(actor, "threshold", model=ref.spec, outcome="bad-input")
        raise
    record(actor, "threshold", model=ref.spec, digest=adopted["sha256"])  # the record of old -> new
    return threshold_in_force(ref.spec)


def reset_threshold(actor: Who | None, spec: str) -> dict[str, Any]:
    """Go back to the threshold stored with the version (admins), audited."""
    authorize(actor, "threshold")
    ref = registry.resolve(spec)
    change = site_validation.reset_threshold(ref, by=actor.name if actor else "anonymous")
    record(actor, "threshold", model=ref.spec, digest=change)  # the record of old -> new
    return threshold_in_force(ref.spec)
