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

from core.errors import (
    InvalidDatasetError,
    InvalidExplanationError,
    InvalidModelError,
    InvalidOptionError,
    LucidDxError,
)
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
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if stored.get("kind") == "tabular-risk":  # a risk model's agreement figures, not saliency faithfulness
        return {}
    return dict(stored.get("methods") or {})


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


# --- Risk models (issue 25): does another explainer agree with the exact SHAP the product shows, and is
# the global importance stable? Measured on patients the explaining model did not train on.
RISK_PATIENTS = 60
RISK_REFITS = 30


def _cv_scheme(ref: registry.ModelRef) -> tuple[int, int]:
    """(folds, seed) of the version's cross-validation, read from its meta.json ``validation.method``."""
    import re

    method = str((ref.meta.get("validation") or {}).get("method", ""))
    folds, seed = re.search(r"(\d+)-fold", method), re.search(r"seed (\d+)", method)
    if not folds or not seed:
        raise InvalidModelError(
            _(
                "Model '{spec}': its meta.json does not say how it was cross-validated ('{method}'), so the patients "
                "each fold held out cannot be rebuilt; retrain it."
            ).format(spec=ref.spec, method=method)
        )
    return int(folds.group(1)), int(seed.group(1))


def risk_training_table(ref: registry.ModelRef, data: Path | None = None) -> Any:
    """The version's training table, read again exactly as training read it; refused unless it matches.

    Raises:
        InvalidDatasetError: the table is not where meta.json says (or at ``data``), or it no longer has the
            rows, outcomes and features the version was trained on.
    """
    from core.tabular import labelled

    recorded = ref.meta.get("training") or {}
    path = Path(data or recorded.get("data", ""))
    schema = ref.meta.get("schema") or {}
    if not path.is_file():
        raise InvalidDatasetError(
            _("Model '{spec}': its training table {path} is not here; pass the table it was trained on.").format(
                spec=ref.spec, path=path
            )
        )
    table = labelled.load_training_table(path, schema.get("target"), schema.get("positive_value"))
    names = [f.get("name") for f in ref.meta.get("features", [])]
    found = (len(table.y), int(table.y.sum()), table.schema.names)
    if found != (recorded.get("rows"), recorded.get("positives"), names):
        raise InvalidDatasetError(
            _(
                "{path}: has {rows} usable rows ({positives} positive) and features {features}, but model '{spec}' was "
                "trained on {rows_meta} rows ({positives_meta} positive) and {features_meta}; pass the table it was "
                "trained on."
            ).format(
                path=path,
                rows=found[0],
                positives=found[1],
                features=found[2],
                spec=ref.spec,
                rows_meta=recorded.get("rows"),
                positives_meta=recorded.get("positives"),
                features_meta=names,
            )
        )
    return table


def evaluate_risk_explanations(
    spec: str | None = None,
    patients: int = RISK_PATIENTS,
    refits: int = RISK_REFITS,
    data: Path | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Agreement of KernelSHAP and LIME with exact SHAP per held-out patient, and stability of global importance.

    Patients come from the version's own cross-validation folds (same folds, seed and recipe): each is
    explained by the model of the fold that held it out. Stability: ``refits`` bootstrap refits of the
    recipe on the first fold's training rows, importance read on that fold's held-out rows. See
    ``core.tabular.agreement``. Raises InvalidDatasetError / InvalidModelError when the version's held-out
    patients cannot be rebuilt.
    """
    import time

    from core.models import kinds
    from core.tabular import agreement, training

    if patients < 2 or refits < 2:
        raise InvalidOptionError(
            _("Measure at least 2 patients and 2 refits (asked: {patients} and {refits}).").format(
                patients=patients, refits=refits
            )
        )
    started = time.monotonic()
    ref = registry.resolve(spec, kind=kinds.TABULAR_RISK)
    folds, cv_seed = _cv_scheme(ref)
    table = risk_training_table(ref, data)
    X, y, schema = table.X, table.y, table.schema
    fit = training.recipe_fitter(str(ref.meta["family"]), schema, X)
    splits = training.cv_splits(y, folds, cv_seed)
    settings = agreement.Settings(seed=seed)
    categorical = [f.categorical for f in schema.features]
    per_patient = agreement.agreement(fit, X, y, splits, categorical, patients, settings, progress)
    train, held_out = splits[0]
    stable = agreement.stability(fit, X, y, train, held_out, schema.names, refits, seed)
    return {
        "kind": kinds.TABULAR_RISK,
        "model": ref.spec,
        "family": ref.meta["family"],
        "exact_explainer": (ref.meta.get("explanation") or {}).get("explainer"),
        "space": "log-odds",
        "features": len(schema.names),
        "folds": folds,
        "settings": settings.as_dict(),
        "labels": dict(agreement.METHOD_LABELS),
        **per_patient,
        "stability": stable,
        "patients_from": f"out-of-fold: each patient explained by the model of the {folds}-fold cross-validation fold "
        f"(seed {cv_seed}, the version's own folds and recipe) that held it out",
        "stability_from": f"{refits} bootstrap refits of the recipe on fold 1's {len(train)} training rows; "
        f"importance read on its {len(held_out)} held-out rows",
        "seconds": round(time.monotonic() - started, 1),
    }


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
