"""Scoring an archive on the engine's workers (CLI.md ``score-folder``): every film under a folder or zip,
one CSV row each, a bad file a failed row, never a stopped run.

The films travel to the workers as bytes through Ray's object store, so a worker on another machine
needs no access to the folder, only to the models (the registry path every node mounts). Each worker
is a Ray actor that loads the model once and scores batches with the same ``diagnose`` verb the
dashboard, the REST API and the DICOM node use: one decision per film at the threshold in force.
An actor whose node dies is restarted elsewhere and its batch retried; a batch that still fails comes
back as failed rows naming the reason.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core import config, engine
from core.exports import csv_text
from core.i18n import _
from core.imaging import datasets, intake
from core.services import audit, catalog
from core.services.audit import Who

BATCH_FILES = 8  # films per actor call: large enough to amortise the call, small enough for a smooth bar
MAX_FILE_BYTES = 512 * 1024 * 1024  # the upload limit of every other route
ProgressFn = Callable[[int, int], None]


def list_films(root: Path) -> list[Path]:
    """Every file under ``root`` (recursively) that looks like an image or DICOM, in a stable order;
    hidden and system folders are left out, and nothing that leaves ``root`` through a link is read."""
    return datasets.archive_images(root)[0]


class _Scorer:
    """One worker: the model loaded once, batches of (name, bytes) scored without a heatmap."""

    def __init__(self, spec: str, home: str) -> None:
        os.environ["LUCIDDX_HOME"] = home  # the same registry and site thresholds as the caller
        from core.services import imaging

        self.model = imaging.load_model(spec)

    def score(self, batch: list[tuple[str, bytes | None, str | None]]) -> list[dict[str, Any]]:
        import ray

        from core.services import imaging
        from core.services.results import prediction_json

        node = ray.get_runtime_context().get_node_id()
        rows = []
        for name, data, error in batch:
            if data is None:
                rows.append({"file": name, "ok": False, "error": error, "node": node, "sha256": None})
                continue
            result = imaging.diagnose(data, name, self.model, explain=False)
            rows.append({**prediction_json(name, result), "node": node, "sha256": audit.sha256_of(data)})
        return rows


def _read(path: Path, label: str) -> tuple[str, bytes | None, str | None]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return (
                label,
                None,
                _("{file}: {size} MB is over the {limit} MB limit per file.").format(
                    file=label, size=size // 2**20, limit=MAX_FILE_BYTES // 2**20
                ),
            )
        return label, path.read_bytes(), None
    except OSError as exc:
        return label, None, _("{file}: could not be read ({reason}).").format(file=label, reason=type(exc).__name__)


def _batches(root: Path, films: list[Path]) -> Iterator[list[tuple[str, bytes | None, str | None]]]:
    for start in range(0, len(films), BATCH_FILES):
        yield [_read(p, str(p.relative_to(root))) for p in films[start : start + BATCH_FILES]]


def _failed_batch(batch: list[tuple[str, bytes | None, str | None]], reason: str) -> list[dict[str, Any]]:
    return [
        {
            "file": name,
            "ok": False,
            "error": _("{file}: not scored: {reason}").format(file=name, reason=reason),
            "node": None,
            "sha256": None,
        }
        for name, _data, _error in batch
    ]


def _score_all(root: Path, films: list[Path], spec: str, progress: ProgressFn | None) -> list[dict[str, Any]]:
    """Keep one batch in flight per worker; a batch whose worker died goes to another worker (twice at most)."""
    import ray
    from ray.exceptions import RayActorError, RayError

    # SPREAD: one scorer per node before two on one, so a second machine adds throughput at once.
    remote = ray.remote(num_cpus=1, scheduling_strategy="SPREAD")(_Scorer)
    count = max(1, min(engine.cluster_cpus(), -(-len(films) // BATCH_FILES)))
    free = [remote.remote(spec, str(config.luciddx_home())) for _i in range(count)]
    alive = set(free)
    retry: list[tuple[list, int]] = []
    batches = _batches(root, films)
    pending: dict[Any, tuple[Any, list, int]] = {}
    rows: list[dict[str, Any]] = []
    try:
        while True:
            while free and (retry or (batch := next(batches, None)) is not None):
                batch, attempt = retry.pop() if retry else (batch, 0)
                actor = free.pop()
                pending[actor.score.remote(batch)] = (actor, batch, attempt)
            if not pending:
                break
            done, _rest = ray.wait(list(pending), num_returns=1)
            actor, batch, attempt = pending.pop(done[0])
            try:
                rows.extend(ray.get(done[0]))
                free.append(actor)
            except RayActorError as exc:  # its node or process died: another worker takes the batch
                alive.discard(actor)
                if attempt < 2 and alive:
                    retry.append((batch, attempt + 1))
                else:
                    rows.extend(
                        _failed_batch(batch, _("its worker stopped ({reason})").format(reason=type(exc).__name__))
                    )
            except RayError as exc:
                rows.extend(_failed_batch(batch, _("its worker failed ({reason})").format(reason=type(exc).__name__)))
                free.append(actor)
            if not alive:  # every worker is gone: what is left is reported, never silently dropped
                rows.extend(row for b in _remaining(retry, batches) for row in _failed_batch(b, _("no worker is left")))
                retry.clear()
            if progress:
                progress(len(rows), len(films))
    finally:
        for actor in alive:
            ray.kill(actor)
    order = {str(p.relative_to(root)): i for i, p in enumerate(films)}
    return sorted(rows, key=lambda r: order.get(r["file"], len(order)))


def _remaining(retry: list[tuple[list, int]], batches: Iterator[list]) -> Iterator[list]:
    yield from (batch for batch, _attempt in retry)
    yield from batches


def csv_columns(classes: list[str]) -> list[str]:
    """CLI.md ``score-folder``'s row: the predict fields, one probability column per class."""
    return [
        "file",
        "ok",
        "error",
        "model",
        "label",
        "assessable",
        *[f"probability_{c}" for c in classes],
        "threshold",
        "threshold_source",
    ]


def table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scored rows flattened to the CSV's columns (a probability column per class)."""
    flat_rows = []
    for row in rows:
        flat = {
            k: row.get(k)
            for k in ("file", "ok", "error", "model", "label", "assessable", "threshold", "threshold_source")
        }
        flat.update({f"probability_{c}": round(p, 6) for c, p in (row.get("probabilities") or {}).items()})
        flat_rows.append(flat)
    return flat_rows


def score_folder(
    actor: Who | None, data: Path, out: Path | None, spec: str | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Score every film under ``data`` (a folder, or a zip checked like any upload) on the engine and write
    ``out`` (CSV; None: the rows are only returned, as the dashboard keeps them in memory). Returns CLI.md's ``{"model", "n", "ok", "failed", "seconds", "films_per_s", "nodes_used",
    "out"}``. Each film is audited by its SHA-256 (never its name), as a ``predict``.

    Raises:
        PermissionDeniedError: ``actor`` may not evaluate models.
        LucidDxError: ``data`` is missing or holds no film; the engine cannot start.
    """
    from core.errors import InvalidDatasetError

    audit.authorize(actor, "evaluate")
    ref = catalog.resolve(spec or config.default_model(catalog.IMAGE_CLASSIFIER), kind=catalog.IMAGE_CLASSIFIER)
    started = time.perf_counter()
    with intake.open_dataset(Path(data)) as root:
        films, escaping = datasets.archive_images(root)
        if not films:
            raise InvalidDatasetError(
                _("{folder}: no image or DICOM file was found in it (or its subfolders).").format(
                    folder=Path(data).name
                )
            )
        engine.connect()
        rows = _score_all(root, films, ref.spec, progress)
        rows += [
            {
                "file": str(p.relative_to(root)),
                "ok": False,
                "node": None,
                "sha256": None,
                "error": _("{file}: is a link that leads outside the archive; it was not read.").format(
                    file=p.relative_to(root)
                ),
            }
            for p in escaping
        ]
    seconds = time.perf_counter() - started
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        temporary = out.with_name(out.name + ".partial")
        temporary.write_text(
            csv_text(csv_columns(list(ref.meta.get("classes", []))), table_rows(rows)), encoding="utf-8"
        )
        temporary.replace(out)  # a reader never sees half a table
    for row in rows:
        audit.record(
            actor, "predict", model=ref.spec, digest=row.get("sha256"), outcome="ok" if row["ok"] else "bad-input"
        )
    ok = sum(1 for r in rows if r["ok"])
    return {
        "model": ref.spec,
        "n": len(rows),
        "ok": ok,
        "failed": len(rows) - ok,
        "seconds": round(seconds, 2),
        "films_per_s": round(len(rows) / seconds, 2) if seconds else None,
        "nodes_used": len({r["node"] for r in rows if r.get("node")}),
        "out": str(out) if out else None,
        "rows": rows,
    }


def engine_status() -> dict[str, Any]:
    """CLI.md ``engine status``: where work runs (embedded Ray or a named cluster), its nodes and served models."""
    from core.engine import serving

    return engine.status() | {"deployments": serving.deployments()}


def stop_engine() -> bool:
    """Stop this machine's own Ray head (every job and served model on it ends); False when none ran.

    Raises:
        EngineError: a cluster is named (LUCIDDX_RAY_ADDRESS): it is stopped with Ray's own tools there.
    """

    if not engine.embedded():
        raise engine.EngineError(
            _("A cluster is named ({variable}); stop it on its head with 'ray stop'.").format(
                variable=engine.ADDRESS_VARIABLE
            )
        )
    return engine.stop_local_head()
