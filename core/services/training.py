"""Training housekeeping every front end shares: let go of extracted datasets and abandoned build folders."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import InvalidDatasetError
from core.i18n import _
from core.imaging import intake
from core.jobs import runner
from core.models import registry


def release_dataset(folder: str | Path) -> bool:
    """Delete a dataset LucidDx extracted from a zip once no queued or running job trains on it.

    Returns True if it was deleted. A user's own server folder is never touched.
    """
    folder = Path(folder)
    if not intake.is_managed_dataset(folder):
        return False
    in_use = any(
        job["state"] in runner.ACTIVE_STATES
        and Path(job.get("request", {}).get("data", "")).resolve() == folder.resolve()
        for job in runner.list_jobs()
    )
    if in_use:
        return False
    intake.remove_dataset(folder)
    return True


RETENTION_HOURS = float(os.environ.get("LUCIDDX_RETENTION_HOURS", "24"))


def clean_up(max_age_hours: float = RETENTION_HOURS, now: float | None = None) -> list[Path]:
    """Remove what killed or abandoned jobs left behind: build folders and extracted datasets.

    Nothing is removed while a training job is queued or running (its folders may be in use), and only
    folders untouched for ``max_age_hours``. Extracted datasets hold full DICOMs: they must not pile up.
    Returns the removed folders.
    """
    if any(job["state"] in runner.ACTIVE_STATES for job in runner.list_jobs()):
        return []
    cutoff = (time.time() if now is None else now) - max_age_hours * 3600
    removed = []
    for root in (registry.staging_root(), intake.datasets_dir()):
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def data_roots() -> list[Path]:
    """Server folders the dashboard may read datasets from (``LUCIDDX_DATA_ROOTS``, separated by ``:``)."""
    return [Path(p).resolve() for p in os.environ.get("LUCIDDX_DATA_ROOTS", "").split(os.pathsep) if p.strip()]


def server_dataset(path: str | Path) -> Path:
    """A server folder or zip a dashboard user named, allowed only inside a configured data root.

    The dashboard runs with the server's permissions: without this, anyone could list /etc or read the
    DICOMs of any folder. Symbolic links are resolved before the check.

    Raises:
        InvalidDatasetError: no data root is configured, the path is not one a person can type (a NUL
            byte, thousands of characters), or it is outside every root.
    """
    roots = data_roots()
    if not roots:
        raise InvalidDatasetError(
            _(
                "Reading datasets from server folders is switched off: an administrator can allow folders by "
                "setting LUCIDDX_DATA_ROOTS (e.g. /data/radiology). Upload a zip instead."
            )
        )
    resolved = intake.typed_path(path).resolve()
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise InvalidDatasetError(
            _("{path}: outside the folders this server may read datasets from ({allowed}).").format(
                path=path, allowed=allowed
            )
        )
    return resolved


DatasetReport = intake.DatasetReport


def dataset_report(folder: Path, progress: Callable[[int, int], None] | None = None) -> intake.DatasetReport:
    """Read every file of a labeled folder once: counts, unreadable files, duplicates, sizes, thumbnails."""
    return intake.dataset_report(folder, progress=progress)


def import_upload(data: bytes, filename: str) -> Path:
    """An uploaded zip, checked (size, bombs, unsafe paths) and extracted into a folder LucidDx manages."""
    return intake.import_upload(data, filename)


def open_server_folder(path: str) -> Path:
    """A folder or .zip under the configured data roots, ready to read (a zip is extracted, checked)."""
    folder, _extracted = intake.resolve_source(server_dataset(path))
    return folder


def train_image(
    source: Path,
    name: str,
    config: Any,
    progress: Callable[[dict[str, Any]], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    command: str | None = None,
    redact_files: bool = False,
    schedule: str = "auto",
) -> dict[str, Any]:
    """Train and register a new version of ``name`` on a labeled folder or zip (``python -m core train``).

    ``config``: a :class:`core.imaging.training.TrainConfig` used as given, or a dict of the TrainConfig
    fields the researcher set (None = none): the rest are chosen from the data (``schedule``: "auto" or a
    preset, see :mod:`core.imaging.recipes`) and the choice is recorded. ``redact_files``: a background job's output
    is kept on disk, so skipped files are listed without their names. Returns the CLI.md ``train`` JSON.
    """
    from core.imaging import datasets
    from core.imaging.training import train_image_model

    with intake.open_dataset(Path(source)) as folder:
        recipe = None
        if config is None or isinstance(config, dict):
            config, recipe = automatic_config(folder, config or {}, schedule)
            if progress:
                progress({"event": "recipe", "recipe": recipe})
        result = train_image_model(
            folder, name, config, progress=progress, cancel=cancel, command=command, recipe=recipe
        )
    payload = result.as_dict()
    if redact_files:
        payload["dataset"]["skipped"] = datasets.redacted(payload["dataset"]["skipped"])
    return payload


def recipe_choices() -> dict[str, Any]:
    """What the ``train`` command offers: the default TrainConfig, augmentations and threshold rules."""
    from core.imaging.network import AUGMENTATIONS
    from core.imaging.recipes import SCHEDULES
    from core.imaging.training import TrainConfig
    from core.models.thresholds import THRESHOLD_RULES

    return {
        "defaults": TrainConfig(),
        "config": TrainConfig,
        "augmentations": AUGMENTATIONS,
        "threshold_rules": list(THRESHOLD_RULES),
        "schedules": list(SCHEDULES),
    }


def check_members(members: object) -> int:
    """``members`` if it is a usable deep-ensemble size (a whole number, 1 or more); InvalidOptionError otherwise."""
    from core.imaging.training import check_members as check

    return check(members)


def check_pretrain_epochs(epochs: object) -> int:
    """``epochs`` if it is a usable number of self-supervised pretraining epochs (0 = none); InvalidOptionError otherwise."""
    from core.imaging.pretraining import check_epochs

    return check_epochs(epochs)


def data_facts(folder: Path, seed: int = 1234) -> Any:
    """What the recipe rule reads of a labeled folder (``recipes.DataFacts``): headers and a small sample."""
    from core.imaging import recipes

    return recipes.describe(Path(folder), seed=seed)


def plan_recipe(
    folder: Path, explicit: dict[str, Any] | None = None, schedule: str = "auto", facts: Any = None
) -> dict[str, Any]:
    """The recipe LucidDx would train ``folder`` with, and why (``recipes.Recipe.as_dict``), without training.

    ``facts``: ``data_facts(folder)`` already read (a page keeps them while the researcher edits settings).
    """
    from core.imaging import recipes

    facts = facts or data_facts(folder, int((explicit or {}).get("seed") or 1234))
    # chest-likeness is measured with the bundled chest model: measured means it is there to start from
    return recipes.choose(facts, explicit, schedule, transfer_available=facts.chest_like is not None).as_dict()


def automatic_config(folder: Path, explicit: dict[str, Any], schedule: str = "auto") -> tuple[Any, dict[str, Any]]:
    """(TrainConfig with the fields ``explicit`` leaves open chosen from the data, the recipe record)."""
    from core.imaging.training import TrainConfig

    recipe = plan_recipe(folder, explicit, schedule)
    return TrainConfig(**(explicit | recipe["settings"])), recipe


def recipe_explanation(recipe: dict[str, Any]) -> str:
    """ "<what LucidDx trains with>, because <the rules that fired>." in the reader's language."""
    from core.models.recipe_text import explanation

    return explanation(recipe)
