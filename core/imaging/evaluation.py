"""Evaluate an image model on a labeled folder (one subfolder per class)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError, LucidDxError
from core.i18n import _
from core.imaging import classifier as classifier_mod
from core.imaging.datasets import class_images, find_class_root, subfolders
from core.imaging.door import load_image
from core.models.metrics import binary_metrics, multiclass_auc, multiclass_point_metrics

BATCH = 64


def collect_labeled_predictions(data_dir: Path, model: classifier_mod.ImageClassifier) -> dict[str, Any]:
    """Predict every image under ``data_dir``'s class folders (matched to the model's classes, any case).

    Returns labels (N,), probabilities (N, K), file names, subgroups and the skipped files.
    """
    root = find_class_root(Path(data_dir))
    by_lower = {c.lower(): i for i, c in enumerate(model.classes)}
    folders = [p for p in subfolders(root) if p.name.lower() in by_lower]
    unknown = [p.name for p in subfolders(root) if p.name.lower() not in by_lower]
    if len(folders) < 2:
        raise InvalidDatasetError(
            _(
                "{data_dir}: needs a subfolder per class named like the model's classes {classes} (any case); "
                "found {found}."
            ).format(
                data_dir=data_dir,
                classes=model.classes,
                found=sorted(p.name for p in root.iterdir() if p.is_dir()) or _("none"),
            )
        )
    labels: list[int] = []
    names: list[str] = []
    skipped: list[dict[str, str]] = [
        {"file": n, "error": "folder does not match any class of the model"} for n in unknown
    ]

    def readable_images() -> Iterator[np.ndarray]:
        for folder in folders:
            for path in class_images(folder):
                try:
                    pixels = load_image(path).pixels
                except LucidDxError as exc:
                    skipped.append({"file": str(path.relative_to(root)), "error": str(exc)})
                    continue
                labels.append(by_lower[folder.name.lower()])
                names.append(str(path.relative_to(root)))
                yield pixels

    probs = [batch_probs for batch_probs, _features in model.predict_pixels(readable_images(), BATCH)]
    if not labels:
        raise InvalidDatasetError(_("{data_dir}: no readable images in the class folders.").format(data_dir=data_dir))
    return {
        "labels": np.asarray(labels),
        "probabilities": np.concatenate(probs),
        "files": names,
        "skipped": skipped,
    }


def evaluate_folder(data_dir: Path, spec: str | None = None) -> dict[str, Any]:
    """The CLI's ``evaluate``: AUC, accuracy, sensitivity, specificity at the stored threshold."""
    model = classifier_mod.load_classifier(spec)
    collected = collect_labeled_predictions(data_dir, model)
    labels, probs = collected["labels"], collected["probabilities"]
    positive = model.classes.index(model.positive_class) if model.positive_class else None
    predicted = np.asarray([model.classes.index(model.decide(row)) for row in probs])
    present = np.unique(labels)
    result: dict[str, Any] = {"model": model.spec, "n": int(len(labels))}
    result["auc"] = multiclass_auc(labels, probs, positive) if len(present) > 1 else None
    result["accuracy"] = float((predicted == labels).mean())
    if positive is not None and model.threshold is not None:
        at_threshold = binary_metrics(labels == positive, probs[:, positive], model.threshold)
    else:
        at_threshold = multiclass_point_metrics(labels, probs)
    result["sensitivity"], result["specificity"] = at_threshold["sensitivity"], at_threshold["specificity"]
    result.update(
        threshold=model.threshold,
        positive_class=model.positive_class,
        confusion_matrix={
            "classes": model.classes,
            "counts": [
                [int(((labels == t) & (predicted == p)).sum()) for p in range(len(model.classes))]
                for t in range(len(model.classes))
            ],
        },
        skipped=collected["skipped"],
    )
    return result
