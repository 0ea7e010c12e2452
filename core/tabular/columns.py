"""Any table -> a schema: infer each column's type (numeric, binary, categorical, identifier, date), find the outcome.

``infer_schema`` reads raw CSV cells only; a dataset description (``assets/datasets``) may override
labels, units, limits and "0 means not measured" for the fields it documents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import InvalidDatasetError
from core.i18n import _
from core.tabular.schema import FeatureSpec, level_text, parse_number

MAX_LEVELS = 20
ID_NAME = re.compile(r"^(id|.*[_ ]id|.*id_|patient.?id|record.?id|subject.?id|mrn|uuid)$", re.IGNORECASE)
DATE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}([ T].*)?$|^\d{1,2}[/.]\d{1,2}[/.]\d{2,4}$")
AGE_BANDS = [[0, 29, "<30"], [30, 49, "30-49"], [50, 64, "50-64"], [65, 200, "65+"]]


@dataclass(frozen=True)
class Column:
    """What a column turned out to be: ``kind`` is numeric, binary, categorical, identifier, date or text."""

    name: str
    kind: str
    values: list[Any]  # parsed: float/None for numeric, level text/None otherwise


def _numbers(cells: Sequence[str]) -> list[float | None] | None:
    out: list[float | None] = []
    for cell in cells:
        try:
            out.append(parse_number(cell))
        except (TypeError, ValueError):
            return None
    return out


def classify(name: str, cells: Sequence[str]) -> Column:
    """One column's kind from its name and cells (blank cells are missing)."""
    present = [c.strip() for c in cells if level_text(c) is not None]
    if not present:
        return Column(name, "empty", [None] * len(cells))
    if ID_NAME.match(name.strip()):
        return Column(name, "identifier", list(cells))
    if sum(bool(DATE.match(c)) for c in present) >= 0.9 * len(present):
        return Column(name, "date", list(cells))
    numbers = _numbers(cells)
    if numbers is not None:
        if len({v for v in numbers if v is not None}) <= 2:
            return Column(name, "binary", [level_text(c) for c in cells])
        return Column(name, "numeric", numbers)
    levels = [level_text(c) for c in cells]
    distinct = {v for v in levels if v is not None}
    if len(distinct) == len(present) and len(present) > MAX_LEVELS:
        return Column(name, "identifier", levels)
    if len(distinct) > MAX_LEVELS:
        return Column(name, "text", levels)
    return Column(name, "binary" if len(distinct) <= 2 else "categorical", levels)


DROP_REASONS = {
    "identifier": "identifier (unique per row or named like an ID): carries no clinical signal",
    "date": "date: dates are not used as predictors",
    "text": f"free text (more than {MAX_LEVELS} distinct values)",
}


def numeric_spec(name: str, values: Sequence[float | None], described: Mapping[str, Any] | None) -> FeatureSpec:
    """A numeric field from its training values; a description's entry wins where it documents the field."""
    if described:
        return FeatureSpec.from_meta({**described, "name": name})
    seen = np.array([v for v in values if v is not None], dtype=float)
    lo, hi = float(seen.min()), float(seen.max())
    span = hi - lo or max(abs(hi), 1.0)
    hard_lo = max(0.0, lo - span) if lo >= 0 else lo - span
    integer = bool(np.all(seen == np.round(seen)))
    optional = any(v is None for v in values)
    return FeatureSpec(
        name,
        name,
        "",
        (lo, hi),
        (hard_lo, hi + span),
        optional,
        f"Seen in training: {lo:g} to {hi:g}." + (" May be left blank." if optional else ""),
        integer=integer,
        step=1.0 if integer else _step(seen),
    )


def _step(seen: np.ndarray) -> float:
    span = float(np.ptp(seen)) or 1.0
    return float(10 ** math.floor(math.log10(span / 100))) if span > 0 else 1.0


def categorical_spec(name: str, values: Sequence[str | None], described: Mapping[str, Any] | None) -> FeatureSpec:
    levels = tuple(sorted({v for v in values if v is not None}, key=level_key))
    optional = any(v is None for v in values)
    base = {"label": name, "help": "One of: " + ", ".join(levels) + "."}
    return FeatureSpec.from_meta(
        {**base, **(described or {}), "name": name, "levels": list(levels), "optional": optional}
    )


def level_key(level: str) -> tuple[int, float, str]:
    try:
        return (0, float(level), level)
    except ValueError:
        return (1, 0.0, level.lower())


EXCLUDED = -2  # y for a row whose outcome is neither a positive nor a named negative value


def _as_values(spec: str | Sequence[str] | None) -> list[str]:
    """'A,B' or ['A', 'B'] -> ['A', 'B']; None -> []."""
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    return [str(v).strip() for v in items if str(v).strip()]


def _match(wanted: list[str], distinct: Sequence[str], target: str, option: str) -> list[str]:
    """The outcome values named by ``wanted`` (case-insensitive), each of which must occur in the column."""
    found = []
    for value in wanted:
        matches = [d for d in distinct if d.lower() == value.lower()]
        if not matches:
            raise InvalidDatasetError(
                _("{option} {value!r} is not a value of '{target}'; its values: {items}.").format(
                    option=option, value=value, target=target, items=", ".join(distinct[:20])
                )
            )
        found.extend(matches)  # 'yes' and 'Yes' are the same outcome
    return found


def _spelled(value: str, distinct: Sequence[str]) -> str:
    """``value`` as the column spells it (exactly if it occurs so, else its first case-insensitive match)."""
    return value if value in distinct else next(d for d in distinct if d.lower() == value.lower())


def target_labels(
    cells: Sequence[str], target: str, positive: str | Sequence[str] | None, negative: str | Sequence[str] | None = None
) -> tuple[np.ndarray, list[str], str]:
    """(y (N,) 1/0, -1 for missing, EXCLUDED; classes [negative, positive]; positive value(s)) from the outcome.

    ``positive`` may name several values ('A,B,C': any of them is the outcome). With ``negative`` named
    too, rows whose outcome is in neither list are left out (EXCLUDED) instead of counted as negative.
    Raises InvalidDatasetError for one class, or more than two values without ``positive``.
    """
    values = [level_text(c) for c in cells]
    distinct = sorted({v for v in values if v is not None}, key=level_key)
    if len(distinct) < 2:
        raise InvalidDatasetError(
            _(
                "The outcome column '{target}' has only one value ({values}): a risk model needs examples of both "
                "outcomes."
            ).format(target=target, values=", ".join(distinct) or _("none"))
        )
    if positive is None:
        if len(distinct) > 2:
            shown = ", ".join(distinct[:10]) + (" ..." if len(distinct) > 10 else "")
            raise InvalidDatasetError(
                _(
                    "The outcome column '{target}' has {count} values ({shown}); name the one to predict with "
                    "--positive VALUE (every other value counts as negative)."
                ).format(target=target, count=len(distinct), shown=shown)
            )
        positive = _default_positive(distinct)
    positives = set(_match(_as_values(positive), distinct, target, "--positive"))
    negatives = set(_match(_as_values(negative), distinct, target, "--negative"))
    others = [d for d in distinct if d not in positives]
    shown_positive = ",".join(_spelled(v, distinct) for v in _as_values(positive))
    negative_label = (
        ",".join(sorted(negatives, key=level_key))
        if negatives
        else (others[0] if len(others) == 1 else f"not {shown_positive}")
    )

    def label(v: str | None) -> int:
        if v is None:
            return -1
        if v in positives:
            return 1
        return 0 if not negatives or v in negatives else EXCLUDED

    y = np.array([label(v) for v in values], dtype=int)
    return y, [negative_label, shown_positive], shown_positive


def _default_positive(distinct: Sequence[str]) -> str:
    """For a two-valued outcome: 1, yes, true, positive... else the second in sort order."""
    for candidate in distinct:
        if candidate.lower() in {"1", "yes", "y", "true", "positive", "pos"}:
            return candidate
    return distinct[-1]


def subgroup_definition(columns: Sequence[Column], described: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Subgroups for the card: the description's, else age bands from an 'age' column, else a sex column."""
    if described:
        return dict(described)
    by_lower = {c.name.lower(): c for c in columns}
    if "age" in by_lower and by_lower["age"].kind == "numeric":
        return {"feature": by_lower["age"].name, "bands": AGE_BANDS}
    for key in ("sex", "gender"):
        if key in by_lower and by_lower[key].kind in {"binary", "categorical"}:
            return {"feature": by_lower[key].name}
    return None
