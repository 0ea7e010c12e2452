"""How far to trust each explanation, measured: the verb every front end (CLI, lab page, card script) shares.

A labelled folder or zip (one subfolder per class, named like the model's classes) -> the films ->
``core.imaging.faithfulness.evaluate`` for the chosen methods -> the CLI.md ``explain-eval`` object.
The lab page measures as a background job (``start_job``: ``python -m core explain-eval`` in its own
process, followed through ``core.services.jobs``), so a reload or a second tab sees the same run.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError, InvalidExplanationError, LucidDxError
from core.i18n import _
from core.imaging import intake
from core.imaging.datasets import class_images, find_class_root, subfolders
from core.imaging.methods import METHODS
from core.imaging.road import PERCENTAGES as ROAD_PERCENTAGES
from core.imaging.road import check_percentages
from core.jobs import explain as explain_jobs
from core.jobs import runner
from core.models import registry
from core.models.cards.sections import EXPLANATIONS_FILE
from core.services import jobs
from core.services.audit import Who, authorize, record
from core.services.training import server_dataset

Events = Callable[[dict[str, Any]], None]

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
    events: Events | None = None,
    road: Sequence[int] | None = ROAD_PERCENTAGES,
) -> dict[str, Any]:
    """The ``explain-eval`` object for these (file, class index) films; unreadable files are skipped.

    ``events`` receives the job events ``core.jobs.runner.read_progress`` understands: ``loading`` per
    film read, ``started``, then ``step`` (with ``eta_seconds``) after each film measured; an exception
    it raises (a cancel) stops the run between films. ``road``: the removal percentages of ROAD's curves
    (``core.imaging.road``); None or empty leaves ROAD out.
    """
    from core.imaging import faithfulness  # TensorFlow: only when something is measured
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image

    methods = check_methods(methods)
    percentages = check_percentages(road) if road else None
    model = load_classifier(spec)
    send = events or (lambda _event: None)
    prepared, names, labels, skipped = [], [], [], []
    for k, (path, label) in enumerate(films):
        shown = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name
        send({"event": "loading", "done": k, "total": len(films)})
        try:
            prepared.append(model.prepare(load_image(path).pixels))
        except LucidDxError as exc:
            skipped.append({"file": shown, "error": str(exc)})
            continue
        names.append(shown)
        labels.append(label)
    if not prepared:
        raise InvalidDatasetError(_("No readable images among the films to explain; check the folder."))
    send({"event": "loading", "done": len(films), "total": len(films)})
    # epochs=1: the runner's progress fraction then follows the steps (one step = one film).
    send({"event": "started", "epochs": 1, "steps": len(prepared), "methods": methods, "device": "CPU"})
    began = time.monotonic()

    def on_film(done: int, total: int) -> None:
        if progress:
            progress(done, total)
        eta = (time.monotonic() - began) / done * (total - done)
        send({"event": "step", "step": done, "steps": total, "eta_seconds": eta})

    result = faithfulness.evaluate(model, prepared, methods, on_film, seed=seed, road_percentages=percentages)
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
    events: Events | None = None,
    road: Sequence[int] | None = ROAD_PERCENTAGES,
) -> dict[str, Any]:
    """Faithfulness, randomisation sanity check and stability of each method on a labelled folder or zip.

    Raises:
        InvalidDatasetError: the folder does not hold the model's classes, or no readable film.
        InvalidExplanationError: an unknown method.
    """
    from core.imaging.classifier import load_classifier

    check_methods(methods)
    if road:
        check_percentages(road)
    model = load_classifier(spec)
    with intake.open_dataset(Path(data)) as folder:
        root = find_class_root(folder)
        films = labelled_films(root, model.classes, limit, seed)
        return evaluate_films(films, model.spec, methods, progress, seed, root, events, road)


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


def check_upload(data: bytes, filename: str) -> None:
    """Refuse an uploaded zip that is empty, not a zip, or unsafe (size, bombs, paths) before a job starts.

    Raises:
        InvalidDatasetError: naming the upload and what is wrong with it.
    """
    if not data:
        raise InvalidDatasetError(_("{filename}: the upload is empty.").format(filename=filename))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            intake.check_archive(archive, filename)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, ValueError) as exc:
        raise InvalidDatasetError(
            _(
                "{label}: not a zip archive, or a damaged one ({exc}). Give a .zip of a folder with one "
                "subfolder per class."
            ).format(label=filename, exc=exc)
        ) from exc


def start_job(
    actor: Who | None,
    spec: str | None,
    methods: Sequence[str],
    limit: int,
    server_path: str | None = None,
    upload: tuple[bytes, str] | None = None,
    seed: int = 0,
    road: Sequence[int] | None = ROAD_PERCENTAGES,
) -> str:
    """Measure ``methods`` of a model version on labelled films as a background job; return its id.

    The films: ``server_path`` (a folder or .zip inside the configured data roots, links resolved first)
    or ``upload`` (bytes, file name) of a zip, kept in the job folder only while the job runs. ``road``:
    ROAD's removal percentages (None or empty: no ROAD).
    Researchers and administrators only; audited as "evaluate" (a refused request as bad input).

    Raises:
        PermissionDeniedError: ``actor`` may not evaluate models.
        InvalidDatasetError: the path is outside the data roots or missing, or the upload is not a safe zip.
        InvalidExplanationError, InvalidOptionError: unknown methods, a film count out of range.
    """
    authorize(actor, "evaluate")
    inputs: dict[str, bytes] = {}
    try:
        request = explain_jobs.ExplainJobRequest(
            model=registry.resolve(spec).spec,  # pinned: a later activation does not change what is measured
            methods=check_methods(methods),
            limit=int(limit),
            seed=seed,
            road=list(check_percentages(road)) if road else [],
        )
        if upload is not None:
            check_upload(*upload)
            request.upload_name = Path(upload[1]).name
            inputs[explain_jobs.UPLOAD_FILE] = upload[0]
        elif not (server_path or "").strip():
            raise InvalidDatasetError(_("Give a folder on the server or upload a zip of the labeled films."))
        else:
            request.data = str(server_dataset(str(server_path).strip()))
    except LucidDxError:
        record(actor, "evaluate", outcome="bad-input")
        raise
    return jobs.start(actor, request, inputs, action="evaluate")


def list_jobs() -> list[dict[str, Any]]:
    """The explanation lab's jobs, newest first."""
    return jobs.list_jobs(explain_jobs.KIND)


def job_result(job_id: str) -> dict[str, Any] | None:
    """The ``explain-eval`` document a finished job wrote (its ``result.json``); None until it succeeded."""
    status = runner.refresh(job_id)
    if status.get("state") != "succeeded":
        return None
    try:
        result = json.loads((runner.job_dir(job_id) / runner.RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) and "methods" in result else None
