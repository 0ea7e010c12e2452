"""A data report on a labelled table before training: what each column is, what is wrong with it, the class balance.

It types columns with ``core.tabular.columns`` and measures leaks with ``core.tabular.training`` (the same rules
training applies), so what the report says will be dropped or refused is what training drops or refuses.

The data's journey::

    rows of CSV cells + outcome choice  --table_report-->  TableReport (one ColumnReport per column)
    TableReport                          --review_rows-->   the rows a researcher confirms (use, unit, range, codes)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.i18n import _
from core.tabular import columns, labelled
from core.tabular.schema import level_text

USED_KINDS = ("numeric", "binary", "categorical")
CODE_GAP = 3.0  # zeros count as a "not measured" code when the smallest real value is this many typical steps above 0


@dataclass(frozen=True)
class ColumnReport:
    """One column: its inferred kind, missingness, range, what looks wrong, and what training will do with it."""

    column: str
    kind: str  # numeric, binary, categorical, identifier, date, text, empty or outcome
    missing: int
    missing_fraction: float
    levels: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    notes: tuple[str, ...] = ()
    suggested_codes: tuple[str, ...] = ()
    leak_auc: float | None = None
    constant: bool = False
    drop_reason: str | None = None

    @property
    def used(self) -> bool:
        """Whether training would use it as a predictor as the table stands."""
        return self.kind in USED_KINDS and self.drop_reason is None

    @property
    def leaks(self) -> bool:
        return self.leak_auc is not None and self.leak_auc >= labelled.LEAK_AUC


@dataclass(frozen=True)
class TableReport:
    """The whole table: rows, outcome and class balance, every column, and what stops training (problems)."""

    rows: int
    target: str
    classes: tuple[str, str]
    class_counts: dict[str, int]
    columns: tuple[ColumnReport, ...]
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def features(self) -> list[ColumnReport]:
        return [c for c in self.columns if c.used]

    @property
    def dropped(self) -> list[dict[str, str]]:
        return [{"column": c.column, "reason": c.drop_reason} for c in self.columns if c.drop_reason]


def table_report(
    table: Sequence[Sequence[str]],
    target: str,
    positive: str | Sequence[str] | None,
    negative: str | Sequence[str] | None = None,
) -> TableReport:
    """The report on ``table`` (header row first) for predicting ``positive`` value(s) of ``target``.

    Raises InvalidDatasetError when the outcome cannot be used (missing column, one class, unknown value).
    """
    header = [h.strip() for h in table[0]]
    data = table[1:]
    target = labelled.find_target(header, target, _("the table"))
    t = header.index(target)
    y, classes, _positive = columns.target_labels(
        [r[t] if t < len(r) else "" for r in data], target, positive, negative
    )
    reports = [
        _column_report(name, [r[k] if k < len(r) else "" for r in data], y)
        for k, name in enumerate(header)
        if name != target
    ]
    outcome = ColumnReport(target, "outcome", int((y == -1).sum()), float((y == -1).mean()) if len(y) else 0.0)
    counts = {classes[0]: int((y == 0).sum()), classes[1]: int((y == 1).sum())}
    excluded = int((y == columns.EXCLUDED).sum())
    if excluded:
        counts[_("left out (other outcome values)")] = excluded
    if outcome.missing:
        counts[_("outcome blank")] = outcome.missing
    return TableReport(
        len(data),
        target,
        (classes[0], classes[1]),
        counts,
        (outcome, *reports),
        _problems(counts, classes, reports),
        _warnings(reports),
    )


def _problems(counts: dict[str, int], classes: Sequence[str], reports: Sequence[ColumnReport]) -> tuple[str, ...]:
    out = []
    if min(counts[classes[0]], counts[classes[1]]) < labelled.MIN_PER_CLASS:
        out.append(
            _(
                "Too few patients to train on: {neg} '{neg_name}' and {pos} '{pos_name}' rows; each outcome needs "
                "at least {minimum}."
            ).format(
                neg=counts[classes[0]],
                neg_name=classes[0],
                pos=counts[classes[1]],
                pos_name=classes[1],
                minimum=labelled.MIN_PER_CLASS,
            )
        )
    if not any(r.used for r in reports):
        out.append(_("No usable predictor column is left after dropping identifiers, dates and free text."))
    return tuple(out)


def _warnings(reports: Sequence[ColumnReport]) -> tuple[str, ...]:
    return tuple(
        _(
            "Column '{column}' alone separates the outcomes almost perfectly (AUC {auc:.3f}): probably the "
            "outcome itself or recorded after it. It is left out unless you keep it; training refuses a "
            "leaking column."
        ).format(column=r.column, auc=r.leak_auc)
        for r in reports
        if r.leaks
    )


def _column_report(name: str, cells: list[str], y: np.ndarray) -> ColumnReport:
    col = columns.classify(name, cells)
    missing = sum(level_text(c) is None for c in cells)
    base: dict[str, Any] = {
        "column": name,
        "kind": col.kind,
        "missing": missing,
        "missing_fraction": missing / len(cells) if cells else 0.0,
    }
    if col.kind == "empty":
        return ColumnReport(
            **base,
            notes=(_("empty in every row"),),
            drop_reason=_("empty in every row: training refuses it; remove the column or fill it in")
            if name
            else _("unnamed and empty"),
        )
    if col.kind in columns.DROP_REASONS:
        return ColumnReport(**base, drop_reason=columns.DROP_REASONS[col.kind])
    labelled = y >= 0
    if col.kind == "numeric":
        values = np.array([np.nan if v is None else v for v in col.values], dtype=float)
        notes, codes = numeric_notes(values[~np.isnan(values)])
        present = values[~np.isnan(values)]
        return ColumnReport(
            **base,
            low=float(present.min()),
            high=float(present.max()),
            notes=notes,
            suggested_codes=codes,
            leak_auc=_leak(values[labelled], y[labelled], False),
        )
    levels = tuple(sorted({v for v in col.values if v is not None}, key=columns.level_key))
    encoded = np.array([np.nan if v is None else levels.index(v) for v in col.values], dtype=float)
    constant = len(levels) < 2
    notes = (_("constant: one value ({value}) in every row").format(value=levels[0]),) if constant else ()
    return ColumnReport(
        **base,
        levels=levels,
        notes=notes,
        constant=constant,
        leak_auc=None if constant else _leak(encoded[labelled], y[labelled], True),
    )


def _leak(col: np.ndarray, y: np.ndarray, categorical: bool) -> float | None:
    if len(np.unique(y)) < 2 or np.isnan(col).all():
        return None
    return float(labelled.single_column_auc(col, y, categorical))


def numeric_notes(values: np.ndarray) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(what looks implausible, suggested "not measured" codes) for a numeric column's present values."""
    notes: list[str] = []
    codes: list[str] = []
    if len(np.unique(values)) < 2:
        return (_("constant: one value in every row"),), ()
    zeros = int((values == 0).sum())
    if zeros and _zero_is_a_code(values):
        notes.append(
            _("{n} zeros far below every other value ({low:g}): probably 'not measured'").format(
                n=zeros, low=float(values[values > 0].min())
            )
        )
        codes.append("0")
    negative = values[values < 0]
    if 0 < len(negative) <= 0.05 * len(values):
        notes.append(_("{n} negative values where the others are 0 or more").format(n=len(negative)))
        if len(np.unique(negative)) == 1:
            codes.append(level_text(str(float(negative[0]))) or "")
    for code in _nines(values):
        notes.append(_("{code} looks like a 'not measured' code (far above every other value)").format(code=code))
        codes.append(code)
    return tuple(notes), tuple(dict.fromkeys(c for c in codes if c))


def _zero_is_a_code(values: np.ndarray) -> bool:
    """Zeros look like a code when the rest is positive and starts many typical steps above zero (glucose 0, then 44)."""
    if (values < 0).any():
        return False
    positive = np.unique(values[values > 0])
    if len(positive) < 3:
        return False
    step = float(np.median(np.diff(positive[:11])))
    return bool(positive[0] > CODE_GAP * step)


def _nines(values: np.ndarray) -> list[str]:
    """Values spelled with nines only (99, 999, -9) that sit far outside the rest: classic missing-value codes."""
    found = []
    for value in np.unique(values):
        text = level_text(str(float(value))) or ""
        if not text.lstrip("-") or set(text.lstrip("-")) != {"9"}:
            continue
        rest = values[values != value]
        if len(rest) and (value > 1.5 * max(float(rest.max()), 0.0) > 0 or (value < 0 <= float(rest.min()))):
            found.append(text)
    return found


def review_rows(report: TableReport) -> list[dict[str, Any]]:
    """The rows a researcher confirms before training, prefilled from the report (one per usable column).

    Keys: column, type, use, unit, low, high, codes (comma-separated "not measured" codes).
    Leaking and constant columns start unticked: training would refuse or ignore them.
    """
    rows = []
    for c in report.features:
        numeric = c.kind == "numeric"
        rows.append(
            {
                "column": c.column,
                "type": c.kind,
                "use": not (c.leaks or c.constant),
                "unit": "",
                "low": _suggested_low(c) if numeric else None,
                "high": None,
                "codes": ", ".join(c.suggested_codes),
            }
        )
    return rows


def _suggested_low(c: ColumnReport) -> float | None:
    """0 for a column of non-negative measurements (a negative value is then impossible), else no limit."""
    return 0.0 if c.low is not None and (c.low >= 0 or c.suggested_codes) else None
