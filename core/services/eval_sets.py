"""Locked evaluation sets as every front end uses them: lock, show, and score a version on the locked cases.

Images: a labeled folder or zip (one subfolder per class, named like the model's classes). Risk models:
a CSV with the model's columns and its outcome column. Either must lie inside ``LUCIDDX_DATA_ROOTS``
(as retraining's server folders do), or be an upload stored under ``$LUCIDDX_HOME/eval_sets/uploads``: the
set is read again at every gate, so it lives where the server's data lives. Every case must be readable
when the set is locked; the gate then scores exactly those cases, after checking that none changed. The
dashboard locks a set as an engine job (:func:`start_lock`), the command line in its own process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import EvalSetError, LucidDxError
from core.i18n import _
from core.imaging import intake
from core.imaging.datasets import class_images, find_class_root, subfolders
from core.models import eval_sets, kinds, registry, site_validation
from core.models.eval_sets import Item
from core.services import audit, training


@dataclass
class Cases:
    """The set's cases as found now: items (content digest + label), and how to read each one for scoring."""

    items: list[Item]
    positive_labels: list[str]
    sources: list[Any]  # image paths, or validated patient rows, in the order of ``items``


def _image_cases(folder: Path, ref: registry.ModelRef) -> Cases:
    from core.imaging.door import load_image

    classes = list(ref.meta.get("classes", []))
    by_lower = {c.lower(): c for c in classes}
    root = find_class_root(folder)
    items, paths = [], []
    for class_dir in subfolders(root):
        label = by_lower.get(class_dir.name.lower())
        if label is None:
            raise EvalSetError(
                _(
                    "{folder}: the folder {name} matches no class of {model} ({classes}); remove it or rename it."
                ).format(folder=folder, name=class_dir.name, model=ref.spec, classes=", ".join(classes))
            )
        for path in class_images(class_dir):
            try:
                load_image(path)
            except LucidDxError as exc:
                raise EvalSetError(
                    _("A locked evaluation set holds only readable films; this one is not: {reason}").format(
                        reason=str(exc)
                    )
                ) from exc
            items.append(Item(eval_sets.digest(path.read_bytes()), label))
            paths.append(path)
    positive = ref.meta.get("positive_class")
    if not positive:
        raise EvalSetError(
            _("{model} has no positive class: the quality gate compares two-class models only.").format(model=ref.spec)
        )
    return Cases(items, [positive], paths)


def _table_cases(csv_path: Path, ref: registry.ModelRef) -> Cases:
    from core.tabular import batch, columns
    from core.tabular.schema import Schema

    schema = Schema.from_meta(ref.meta)
    _header, rows = batch.read_patient_csv(csv_path, schema)
    if not schema.target or any(schema.target not in row for row in rows[:1]):
        raise EvalSetError(
            _("{file}: the outcome column {target} is missing; an evaluation set needs each patient's outcome.").format(
                file=csv_path.name, target=schema.target or "?"
            )
        )
    outcomes = [row.get(schema.target, "") for row in rows]
    y, _classes, _positive = columns.target_labels(outcomes, schema.target, schema.positive_value)
    items, clean_rows = [], []
    for i, (row, label) in enumerate(zip(rows, y)):
        clean, issues = schema.check_patient(row, from_csv=True)
        errors = [x.message for x in issues if x.severity == "error"]
        if errors or label not in (0, 1):
            reason = " ".join(errors) or _("no usable outcome")
            raise EvalSetError(
                _("{file}, row {row}: {reason}. A locked evaluation set holds only complete rows.").format(
                    file=csv_path.name, row=i + 1, reason=reason
                )
            )
        cells = json.dumps([row.get(n, "") for n in [*schema.names, schema.target]]).encode("utf-8")
        items.append(Item(eval_sets.digest(cells), str(columns.level_text(outcomes[i]))))
        clean_rows.append(clean)
    positive_labels = sorted({item.label for item, label in zip(items, y) if label == 1})
    return Cases(items, positive_labels, clean_rows)


@contextmanager
def open_cases(location: Path, ref: registry.ModelRef) -> Iterator[Cases]:
    """The cases at ``location`` for ``ref``'s kind (a zip is extracted for the duration)."""
    if ref.kind == kinds.TABULAR_RISK:
        yield _table_cases(location, ref)
        return
    if ref.kind != kinds.IMAGE_CLASSIFIER:
        raise EvalSetError(_("{model}: evaluation sets exist for image and risk models only.").format(model=ref.spec))
    with intake.open_dataset(location) as folder:
        yield _image_cases(folder, ref)


UPLOAD_SUFFIXES = (".zip", ".csv")


def lock(actor: audit.Who | None, name: str, data: str | Path) -> dict[str, Any]:
    """Lock the evaluation set of ``name`` (admin): every case's digest and label, who and when; audited.

    ``data``: inside the data roots, or an upload :func:`start_lock` stored under ``eval_sets/uploads`` (a
    stored upload that cannot be locked is removed again, unless a locked set still reads it).
    """
    audit.authorize(actor, "eval-set")
    stored = _stored_upload(data)
    if stored is None:
        return _lock_at(actor, name, training.server_dataset(data))
    try:
        return _lock_at(actor, name, stored)
    except BaseException:
        if not _still_read(stored):
            stored.unlink(missing_ok=True)
        raise


def _uploads_dir() -> Path:
    return eval_sets.sets_dir() / "uploads"


def _stored_upload(data: str | Path) -> Path | None:
    """``data`` if it is a file this service stored under ``eval_sets/uploads`` (links resolved first)."""
    path = Path(data).resolve()
    uploads = _uploads_dir().resolve()
    return path if path.is_file() and path.is_relative_to(uploads) else None


def _still_read(path: Path) -> bool:
    """Whether a locked set reads ``path`` (a re-upload of the same content)."""
    for record_file in eval_sets.sets_dir().glob("*.json"):
        try:
            location = json.loads(record_file.read_text()).get("location")
        except (OSError, ValueError):
            continue
        if location and Path(location).resolve() == path:
            return True
    return False


def start_lock(
    actor: audit.Who | None, name: str, data: str | None = None, upload: tuple[bytes, str] | None = None
) -> str:
    """Lock the evaluation set of ``name`` as an engine job (admin); return the job's id.

    The cases: ``data`` (inside the data roots) or ``upload`` (bytes, file name: a .zip of labeled films or a
    risk model's .csv), stored first under ``eval_sets/uploads`` because the gate reads it again at every
    activation. Authorized before anything is stored or started; the job acts for ``actor``.

    Raises:
        PermissionDeniedError: ``actor`` may not lock sets. EvalSetError / LucidDxError: a bad name or upload.
    """
    from core.jobs.checks import EvalSetJobRequest
    from core.services import jobs

    audit.authorize(actor, "eval-set")
    try:
        registry.check_model_name(name)
        if upload is not None:
            location = str(_store_upload(name, *upload))
        elif (data or "").strip():
            location = str(training.server_dataset(str(data).strip()))
        else:
            raise EvalSetError(_("Choose a .zip of labeled films or a .csv first."))
    except LucidDxError:
        audit.record(actor, "eval-set", model=name, outcome="bad-input")
        raise
    return jobs.start(actor, EvalSetJobRequest(name, location), action="eval-set")


def lock_result(job_id: str) -> dict[str, Any] | None:
    """The locked set a finished lock job reports (as :func:`show`); None until it succeeded."""
    from core.jobs import runner

    if runner.refresh(job_id).get("state") != "succeeded":
        return None
    return dict(json.loads((runner.job_dir(job_id) / runner.RESULT_FILE).read_text()))


def _store_upload(name: str, data: bytes, filename: str) -> Path:
    suffix = Path(filename).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise EvalSetError(
            _(
                "{file}: upload a .zip of labeled films (one folder per class) or a risk model's .csv "
                "with its outcome column."
            ).format(file=Path(filename).name)
        )
    target = _uploads_dir() / f"{name}-{eval_sets.digest(data)[:16]}{suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(target)
    return target


def _lock_at(actor: audit.Who | None, name: str, location: Path) -> dict[str, Any]:
    # The set is for the name, so any version tells its kind and classes: a first version awaiting
    # activation needs a locked set before its gate can run.
    versions = registry.list_versions(name)
    ref = registry.approved_version(name) or (versions[-1] if versions else registry.active_version(name))
    with open_cases(location, ref) as cases:
        record = eval_sets.build(
            name, ref.kind, location, cases.items, cases.positive_labels, actor.name if actor else "anonymous"
        )
    eval_sets.save(record)
    audit.record(actor, "eval-set", model=name, digest=record["fingerprint"])
    return eval_sets.public(record)


def show(name: str) -> dict[str, Any] | None:
    """The locked set of ``name`` without its per-case digests, or None."""
    record = eval_sets.load(name)
    return eval_sets.public(record) if record else None


def _scores(ref: registry.ModelRef, cases: Cases) -> np.ndarray:
    """``ref``'s positive-class probability (N,) for each case, in the order of ``cases``."""
    if ref.kind == kinds.TABULAR_RISK:
        from core.tabular.predictor import load_risk_model

        predictor = load_risk_model(ref.spec)
        return predictor.model.predict_proba(predictor.schema.to_matrix(cases.sources))[:, 1]
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image

    model = load_classifier(ref.spec)
    positive = model.classes.index(model.positive_class)
    pixels = (load_image(path).pixels for path in cases.sources)
    return np.concatenate([probs[:, positive] for probs, _features in model.predict_pixels(pixels)])


def scored_cases(record: dict[str, Any], refs: list[registry.ModelRef]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(is_positive (N,), each ref's scores (N,)) on the locked cases; EvalSetError if they changed."""
    with open_cases(Path(record["location"]), refs[0]) as cases:
        eval_sets.verify(record, cases.items)
        is_positive = np.asarray([item.label in record["positive_labels"] for item in cases.items])
        return is_positive, [_scores(ref, cases) for ref in refs]


def threshold_of(ref: registry.ModelRef) -> tuple[float, str]:
    """The threshold in force for ``ref`` (the site's once adopted) and where it came from."""
    threshold, source = site_validation.threshold_in_force(ref)
    if threshold is None:
        raise EvalSetError(_("{model} has no operating threshold: the quality gate needs one.").format(model=ref.spec))
    return float(threshold), source
