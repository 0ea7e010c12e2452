"""A researcher's confirmations of an inferred schema: which columns to use, units, plausible ranges, "not measured" codes.

The data's journey::

    data review (page)  --parse_overrides-->  {column: FeatureOverride}
    raw cells           --blank_codes-->      cells with the codes blanked (typing and ranges never see them)
    inferred FeatureSpec --apply_override-->  the spec stored in the model's meta.json

Stored as JSON (``{"features": {COLUMN: {...}}, "removed": [{"column", "reason"}]}``) so a background
training process reads the same choices the researcher confirmed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidOptionError
from core.i18n import _
from core.tabular.schema import FeatureSpec, level_text

LEFT_OUT = "left out by the researcher at the data review"


@dataclass(frozen=True)
class FeatureOverride:
    """One column's confirmed choices; None keeps what was inferred."""

    use: bool = True
    unit: str | None = None
    plausible: tuple[float | None, float | None] | None = None  # outside: impossible, the row is refused
    missing_codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Overrides:
    """Every column's choices, and the columns removed before the table reached training (with why)."""

    features: dict[str, FeatureOverride] = dataclasses.field(default_factory=dict)
    removed: tuple[dict[str, str], ...] = ()

    def get(self, column: str) -> FeatureOverride | None:
        return self.features.get(column)

    def to_json(self) -> dict[str, Any]:
        return {
            "features": {
                name: {
                    "use": o.use,
                    "unit": o.unit,
                    "plausible_range": list(o.plausible) if o.plausible else None,
                    "missing_codes": list(o.missing_codes),
                }
                for name, o in self.features.items()
            },
            "removed": [dict(r) for r in self.removed],
        }


def _number(value: object, column: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidOptionError(
            _("Column '{column}': the plausible limit {value} is not a number.").format(
                column=column, value=repr(value)
            )
        ) from exc
    return None if math.isnan(number) else number


def parse_codes(raw: object) -> tuple[str, ...]:
    """'0, -9; 999' or [0, -9] -> ('0', '-9', '999'), each spelled as the CSV reader spells a cell."""
    items = str(raw).replace(";", ",").split(",") if isinstance(raw, str) else list(raw or [])
    codes = [level_text(item) for item in items]
    return tuple(dict.fromkeys(c for c in codes if c is not None))


def parse_override(column: str, entry: Mapping[str, Any]) -> FeatureOverride:
    """One column's entry -> FeatureOverride. Raises InvalidOptionError naming the column and the bad value."""
    bounds = entry.get("plausible_range")
    plausible = None
    if bounds:
        lo, hi = (_number(b, column) for b in bounds)
        if lo is not None and hi is not None and lo >= hi:
            raise InvalidOptionError(
                _("Column '{column}': the lowest plausible value ({low}) must be below the highest ({high}).").format(
                    column=column, low=f"{lo:g}", high=f"{hi:g}"
                )
            )
        plausible = None if lo is None and hi is None else (lo, hi)
    unit = entry.get("unit")
    return FeatureOverride(
        use=bool(entry.get("use", True)),
        unit=None if unit is None else str(unit).strip(),
        plausible=plausible,
        missing_codes=parse_codes(entry.get("missing_codes")),
    )


def parse_overrides(raw: Mapping[str, Any] | None) -> Overrides:
    """The stored JSON (see the module docstring) -> Overrides; None or {} -> no overrides."""
    if not raw:
        return Overrides()
    features = raw.get("features") or {}
    if not isinstance(features, Mapping):
        raise InvalidOptionError(_("The overrides' 'features' must map each column name to its choices."))
    removed = tuple({"column": str(r["column"]), "reason": str(r["reason"])} for r in raw.get("removed") or [])
    return Overrides({str(k): parse_override(str(k), v) for k, v in features.items()}, removed)


def blank_codes(cells: Sequence[str], codes: Sequence[str]) -> tuple[list[str], int]:
    """The cells with every "not measured" code blanked, and how many were blanked."""
    if not codes:
        return list(cells), 0
    wanted = set(codes)
    out = ["" if level_text(c) in wanted else c for c in cells]
    return out, sum(1 for a, b in zip(cells, out) if a != b)


def apply_override(spec: FeatureSpec, override: FeatureOverride | None, had_codes: bool) -> FeatureSpec:
    """The inferred spec with the researcher's unit, plausible range and codes (a field with codes may be blank)."""
    if override is None:
        return spec
    changes: dict[str, Any] = {"missing_codes": override.missing_codes, "optional": spec.optional or had_codes}
    if override.unit is not None and not spec.categorical:
        changes["unit"] = override.unit
    if override.plausible is not None and not spec.categorical:
        lo = spec.hard_limits[0] if override.plausible[0] is None else override.plausible[0]
        hi = spec.hard_limits[1] if override.plausible[1] is None else override.plausible[1]
        seen_lo, seen_hi = max(spec.plausible[0], lo), min(spec.plausible[1], hi)
        changes["hard_limits"] = (lo, hi)
        changes["plausible"] = (seen_lo, seen_hi) if seen_lo < seen_hi else (lo, hi)
    return dataclasses.replace(spec, **changes)


def from_review(rows: Sequence[Mapping[str, Any]], removed: Sequence[Mapping[str, str]] = ()) -> Overrides:
    """The researcher's confirmed review rows (column, use, unit, low, high, codes) -> Overrides.

    Raises InvalidOptionError naming the column when a limit is not a number or the range is inverted.
    """
    features = {}
    for row in rows:
        column = str(row["column"])
        features[column] = parse_override(
            column,
            {
                "use": row.get("use", True),
                "unit": row.get("unit") or "",
                "plausible_range": [row.get("low"), row.get("high")],
                "missing_codes": row.get("codes") or "",
            },
        )
    return Overrides(features, tuple({"column": str(r["column"]), "reason": str(r["reason"])} for r in removed))
