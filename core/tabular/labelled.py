"""A labelled table read for training: its schema inferred, its outcome found, each row checked, and the
table refused when it cannot give an honest model (too few of an outcome, a column that leaks it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError
from core.i18n import _
from core.models import metrics, provenance
from core.tabular import batch, columns
from core.tabular.overrides import LEFT_OUT, Overrides, apply_override, blank_codes
from core.tabular.schema import Schema

MIN_PER_CLASS = 50
LEAK_AUC = 0.995  # one column alone separating the outcomes this well is almost surely the outcome in disguise


@dataclass
class TrainingTable:
    """A table ready to fit: schema, X (N, F) encoded, y (N,) in {0, 1}, and what was left out."""

    schema: Schema
    X: np.ndarray
    y: np.ndarray
    dropped: list[dict[str, str]]
    skipped: list[dict[str, Any]]
    description: dict[str, Any] | None


def find_target(header: Sequence[str], target: str, label: str) -> str:
    for column in header:
        if column.strip().lower() == target.strip().lower():
            return column
    raise InvalidDatasetError(
        _("{label}: has no column '{target}' to predict; its columns: {items}.").format(
            label=label, target=target, items=", ".join(header)
        )
    )


def _infer_features(
    header: Sequence[str], rows: Sequence[Sequence[str]], target: str, tabular: Mapping[str, Any], overrides: Overrides
) -> tuple[list[Any], list[dict[str, str]], list[columns.Column]]:
    described = {f["name"]: f for f in tabular.get("features", [])}
    zero_missing = set(tabular.get("zero_means_missing", []))
    specs, dropped, kept = [], [], []
    for k, name in enumerate(header):
        if name == target:
            continue
        override = overrides.get(name)
        if override is not None and not override.use:
            dropped.append({"column": name, "reason": LEFT_OUT})
            continue
        cells, blanked = blank_codes(
            [r[k] if k < len(r) else "" for r in rows], override.missing_codes if override else ()
        )
        col = columns.classify(name, cells)
        if col.kind == "empty" and not name:
            dropped.append({"column": name, "reason": "unnamed and empty in every row (a trailing comma in the file)"})
            continue
        if col.kind == "empty":
            raise InvalidDatasetError(
                _("Column '{name}' is empty in every row: remove it (or fill it in) and train again.").format(name=name)
            )
        if col.kind in columns.DROP_REASONS:
            dropped.append({"column": name, "reason": columns.DROP_REASONS[col.kind]})
            continue
        entry = dict(described.get(name) or {}) | ({"zero_means_missing": True} if name in zero_missing else {})
        if col.kind == "numeric":
            spec = columns.numeric_spec(name, col.values, entry or None)
        else:
            spec = columns.categorical_spec(name, col.values, entry or None)
        specs.append(apply_override(spec, override, blanked > 0))
        kept.append(col)
    if not specs:
        raise InvalidDatasetError(
            _("No usable predictor column is left after dropping identifiers, dates and free text.")
        )
    return specs, dropped, kept


def load_training_table(
    csv_path: Path,
    target: str | None = None,
    positive: str | None = None,
    negative: str | None = None,
    overrides: Overrides | None = None,
) -> TrainingTable:
    """Read, type and check a labelled CSV. Raises InvalidDatasetError (or InvalidPatientDataError) when unusable.

    ``overrides``: the researcher's confirmed units, plausible ranges, "not measured" codes and left-out columns.
    """
    overrides = overrides or Overrides()
    description = provenance.find_description(csv_path)
    tabular = (description or {}).get("tabular", {})
    target = target or tabular.get("target")
    if not target:
        raise InvalidDatasetError(
            _("{name}: name the outcome column to predict with --target COLUMN.").format(name=csv_path.name)
        )
    table = batch.read_table(Path(csv_path))
    header = [h.strip() for h in table[0]]
    target = find_target(header, target, csv_path.name)
    data = table[1:]
    y_all, classes, positive_value = columns.target_labels(
        [r[header.index(target)] if header.index(target) < len(r) else "" for r in data],
        target,
        positive or tabular.get("positive"),
        negative or tabular.get("negative"),
    )
    specs, dropped, kept = _infer_features(header, data, target, tabular, overrides)
    dropped = [*overrides.removed, *dropped]
    schema = Schema(
        features=tuple(specs),
        classes=tuple(tabular.get("classes") or classes),
        positive_class=str(tabular.get("positive_class") or classes[1]),
        target=target,
        positive_value=positive_value,
        subgroups=columns.subgroup_definition(kept, tabular.get("subgroups")),
        example=dict(tabular.get("example") or {}),
    )
    patients, labels, skipped = [], [], []
    for i, raw in enumerate(data):
        row = dict(zip(header, raw))
        if y_all[i] == columns.EXCLUDED:
            skipped.append(
                {
                    "row": i + 1,
                    "error": _(
                        "row {row}: the outcome '{value}' is neither a positive nor a negative value; left out."
                    ).format(row=i + 1, value=raw[header.index(target)]),
                }
            )
            continue
        if y_all[i] < 0:
            skipped.append(
                {
                    "row": i + 1,
                    "error": _("row {row}: the outcome '{target}' is blank.").format(row=i + 1, target=target),
                }
            )
            continue
        clean, issues = schema.check_patient(row, from_csv=True)
        errors = [x.message for x in issues if x.severity == "error"]
        if errors:
            skipped.append({"row": i + 1, "error": _("row {row}: {errors}").format(row=i + 1, errors=" ".join(errors))})
            continue
        patients.append(clean)
        labels.append(int(y_all[i]))
    out = TrainingTable(
        schema, schema.to_matrix(patients), np.asarray(labels, dtype=int), dropped, skipped, description
    )
    check_table(out)
    return out


def check_table(table: TrainingTable) -> None:
    """Refuse a table that cannot give an honest model: too few of a class, or a column that leaks the outcome."""
    counts = np.bincount(table.y, minlength=2) if len(table.y) else np.zeros(2, dtype=int)
    classes = table.schema.classes
    if counts.min() < MIN_PER_CLASS:
        raise InvalidDatasetError(
            _(
                "Too few patients to train on: {n_first} '{first}' and {n_second} '{second}' usable rows; each "
                "outcome needs at least {minimum}."
            ).format(
                n_first=int(counts[0]),
                first=classes[0],
                n_second=int(counts[1]),
                second=classes[1],
                minimum=MIN_PER_CLASS,
            )
        )
    for j, spec in enumerate(table.schema.features):
        auc = single_column_auc(table.X[:, j], table.y, spec.categorical)
        if auc >= LEAK_AUC:
            raise InvalidDatasetError(
                _(
                    "Column '{name}' alone separates the outcomes almost perfectly (AUC {auc:.3f}): it is probably "
                    "the outcome itself or recorded after it (a leak). Remove it from the table and train again."
                ).format(name=spec.name, auc=auc)
            )


def single_column_auc(col: np.ndarray, y: np.ndarray, categorical: bool) -> float:
    """How well one column alone separates the outcomes, either direction (0.5 = not at all, 1 = perfectly)."""
    col = np.where(np.isnan(col), -1.0 if categorical else np.nanmedian(col) if np.isfinite(col).any() else 0.0, col)
    if categorical:  # score each level by its outcome rate
        rates = {v: float(y[col == v].mean()) for v in np.unique(col)}
        col = np.array([rates[v] for v in col])
    auc = metrics.auc_score(y == 1, col)
    return max(auc, 1.0 - auc)
