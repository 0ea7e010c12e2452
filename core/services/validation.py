"""Site validation as every front end runs it: a labeled folder or zip -> evaluation -> optional record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.imaging import intake
from core.imaging.classifier import load_classifier
from core.imaging.evaluation import collect_labeled_predictions
from core.models import registry, site_validation


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
