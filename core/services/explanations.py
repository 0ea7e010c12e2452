"""How far to trust each explanation, measured: the verb every front end (CLI, lab page, card script) shares.

A labelled folder or zip (one subfolder per class, named like the model's classes) -> the films ->
``core.imaging.faithfulness.evaluate`` for the chosen methods -> the CLI.md ``explain-eval`` object.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError, InvalidExplanationError, LucidDxError
from core.i18n import _
from core.imaging import intake
from core.imaging.datasets import class_images, find_class_root, subfolders
from core.imaging.methods import METHODS
from core.models import registry
from core.models.cards.sections import EXPLANATIONS_FILE

DEFAULT_LIMIT = 40


def labelled_films(root: Path, classes: Sequence[str], limit: int | None, seed: int = 0) -> list[tuple[Path, int]]:
    """(file, class index) of the images under ``root``'s class folders, at most ``limit`` in all.

    With a limit, each class gives an equal share (the rest to the classes that have more), drawn at
    random with ``seed`` so a rerun measures the same films.
    """
    root = find_class_root(Path(root))
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    per_class = {by_lower[p.name.lower()]: class_images(p) for p in subfolders(root) if p.name.lower() in by_lower}
    if len(per_class) < 2:
        raise InvalidDatasetError(
            _(
                "{data_dir}: needs a subfolder per class named like the model's classes {classes} (any case); "
                "found {found}."
            ).format(data_dir=root, classes=list(classes), found=sorted(p.name for p in subfolders(root)) or _("none"))
        )
    rng = np.random.default_rng(seed)
    if limit is None:
        return [(path, label) for label, paths in sorted(per_class.items()) for path in paths]
    chosen: list[tuple[Path, int]] = []
    remaining, labels = int(limit), sorted(per_class, key=lambda k: len(per_class[k]))
    for position, label in enumerate(labels):
        share = remaining // (len(labels) - position)
        paths = per_class[label]
        take = sorted(rng.choice(len(paths), size=min(share, len(paths)), replace=False).tolist())
        chosen.extend((paths[k], label) for k in take)
        remaining -= len(take)
    return chosen


def check_methods(methods: Sequence[str] | None) -> list[str]:
    """The methods asked for (None = all), validated against the ones LucidDx offers."""
    methods = list(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidExplanationError(
            _("Unknown explanation method '{method}'; choose one of {items}.").format(
                method=", ".join(unknown), items=", ".join(METHODS)
            )
        )
    return methods


def evaluate_films(
    films: Sequence[tuple[Path, int]],
    spec: str | None = None,
    methods: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
    root: Path | None = None,
) -> dict[str, Any]:
    """The ``explain-eval`` object for these (file, class index) films; unreadable files are skipped."""
    from core.imaging import faithfulness  # TensorFlow: only when something is measured
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image

    methods = check_methods(methods)
    model = load_classifier(spec)
    prepared, names, labels, skipped = [], [], [], []
    for path, label in films:
        shown = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
        try:
            prepared.append(model.prepare(load_image(path).pixels))
        except LucidDxError as exc:
            skipped.append({"file": shown, "error": str(exc)})
            continue
        names.append(shown)
        labels.append(label)
    if not prepared:
        raise InvalidDatasetError(_("No readable images among the films to explain; check the folder."))
    result = faithfulness.evaluate(model, prepared, methods, progress, seed=seed)
    for row in result["disagreement"]:
        row["file"] = names[row["film"]]
        row["label"] = model.classes[labels[row["film"]]]
    counts = {c: int(sum(1 for label in labels if label == k)) for k, c in enumerate(model.classes)}
    return {"model": model.spec, "n": result.pop("n"), "classes": counts, **result, "skipped": skipped}


def evaluate_explanations(
    data: Path,
    spec: str | None = None,
    methods: Sequence[str] | None = None,
    limit: int | None = DEFAULT_LIMIT,
    progress: Callable[[int, int], None] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Faithfulness, randomisation sanity check and stability of each method on a labelled folder or zip.

    Raises:
        InvalidDatasetError: the folder does not hold the model's classes, or no readable film.
        InvalidExplanationError: an unknown method.
    """
    from core.imaging.classifier import load_classifier

    check_methods(methods)
    model = load_classifier(spec)
    with intake.open_dataset(Path(data)) as folder:
        root = find_class_root(folder)
        films = labelled_films(root, model.classes, limit, seed)
        return evaluate_films(films, model.spec, methods, progress, seed, root)


def measured_faithfulness(spec: str | None = None) -> dict[str, dict[str, Any]]:
    """Each method's stored faithfulness for a model version (its ``explanations.json``), {} when unmeasured."""
    import json

    path = registry.resolve(spec).path / EXPLANATIONS_FILE
    try:
        return dict(json.loads(path.read_text()).get("methods") or {})
    except (OSError, ValueError):
        return {}


def method_label(method: str, measured: dict[str, dict[str, Any]]) -> str:
    """A method's name with its measured faithfulness beside it (the image page's picker)."""
    name = METHODS.get(method, method)
    figures = measured.get(method)
    if not figures:
        return name
    return _("{method} (deletion AUC {deletion} vs random {random}; randomised r {corr})").format(
        method=name,
        deletion=f"{figures['deletion_auc']:.2f}",
        random=f"{figures['random_deletion_auc']:.2f}",
        corr=f"{figures['randomization_rank_corr']:.2f}",
    )
