"""A tabular risk model's input schema: its fields, classes and subgroups, stored in (and read back from) meta.json.

The data's journey::

    form / CSV row  --Schema.check_patient-->  {feature: float | level | None}   (None = not measured)
                    --Schema.to_matrix-->      (N, F) float64, NaN for not measured, level index for categories

Nothing here knows any particular dataset: every field, unit and range comes from the schema a model
version stores in its ``meta.json`` (``features``, ``classes``, ``positive_class`` and ``schema``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from core.errors import InvalidModelError, InvalidPatientDataError
from core.i18n import N_, _, translated

# Help that core.tabular.columns writes from training values when nobody described the field (English, stored).
GENERATED_HELP = re.compile(r"^(Seen in training: \S+ to \S+\.( May be left blank\.)?|One of: .*\.)$", re.S)

Value = float | str | None
MISSING_TEXT = {"", "na", "nan", "n/a", "none", "null", "?"}

# Units that are words, translated where shown; symbols (mg/dL, mm Hg, kg/m²) read the same in every language.
UNIT_WORDS = {
    "years": N_("years"),
    "months": N_("months"),
    "days": N_("days"),
    "hours": N_("hours"),
    "count": N_("count"),
    "times": N_("times"),
}


@dataclass(frozen=True)
class FeatureSpec:
    """One patient field: its unit, the range the model was trained on, what is impossible, its categories."""

    name: str
    label: str
    unit: str = ""
    plausible: tuple[float, float] = (-math.inf, math.inf)  # outside: a warning (the model extrapolates)
    hard_limits: tuple[float, float] = (-math.inf, math.inf)  # outside: impossible, refused
    optional: bool = False  # may be left blank ("not measured"): the model imputes it and says so
    help: str = ""
    integer: bool = False
    step: float = 1.0
    levels: tuple[str, ...] = ()  # categorical (or binary) field: the allowed values; code = index
    zero_means_missing: bool = False  # a 0 in a CSV means "not measured" (e.g. the Pima convention)
    missing_codes: tuple[str, ...] = ()  # CSV cells (as level_text) that mean "not measured", e.g. "-9", "999"

    @property
    def categorical(self) -> bool:
        return bool(self.levels)

    def format_value(self, value: Value) -> str:
        """``148 mg/dL`` / ``0.627`` / ``M`` / ``not measured``: how a value is shown to a clinician."""
        if value is None:
            return "not measured"
        if isinstance(value, str):
            return value
        text = f"{value:.0f}" if self.integer or float(value).is_integer() else f"{value:g}"
        return f"{text} {self.display_unit}".strip()

    @property
    def display_unit(self) -> str:
        """The unit in the reader's language where it is a word ("years" -> "岁"); symbols (mg/dL) stay."""
        return _(UNIT_WORDS[self.unit]) if self.unit in UNIT_WORDS else self.unit

    def reader_help(self) -> str | None:
        """The model author's help in the current language; None where training wrote it from the data alone
        ("Seen in training: ...", "One of: ..."): the form states the range and the levels itself."""
        if not self.help or GENERATED_HELP.match(self.help):
            return None
        return translated(self.help) or self.help

    def display_label(self) -> str:
        """The field's label as a person reads it, in the current language (a bundled model's is in the catalog)."""
        label = translated(self.label) or self.label
        return f"{label} ({self.display_unit})" if self.unit else label

    def to_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "unit": self.unit,
            "plausible_range": _finite_pair(self.plausible),
            "hard_limits": _finite_pair(self.hard_limits),
            "optional": self.optional,
            "integer": self.integer,
            "help": self.help,
            "step": self.step,
            "type": "categorical" if self.levels else "numeric",
            "missing": "may be blank (not measured): imputed with a missing indicator" if self.optional else "required",
        }
        if self.levels:
            out["levels"] = list(self.levels)
        if self.zero_means_missing:
            out["zero_means_missing"] = True
        if self.missing_codes:
            out["missing_codes"] = list(self.missing_codes)
        return out

    @classmethod
    def from_meta(cls, entry: Mapping[str, Any]) -> FeatureSpec:
        """A spec from its meta.json entry. Raises InvalidModelError when the entry is unusable."""
        try:
            name = str(entry["name"])
            return cls(
                name=name,
                label=str(entry.get("label") or name),
                unit=str(entry.get("unit") or ""),
                plausible=_pair(entry.get("plausible_range")),
                hard_limits=_pair(entry.get("hard_limits")),
                optional=bool(entry.get("optional", False)),
                help=str(entry.get("help") or ""),
                integer=bool(entry.get("integer", False)),
                step=float(entry.get("step") or 1.0),
                levels=tuple(str(v) for v in entry.get("levels") or ()),
                zero_means_missing=bool(entry.get("zero_means_missing", False)),
                missing_codes=tuple(str(c) for c in entry.get("missing_codes") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidModelError(
                _("A feature entry in the model's meta.json is unusable ({entry!r}): {exc}.").format(
                    entry=entry, exc=exc
                )
            ) from exc


def _pair(raw: object) -> tuple[float, float]:
    if not raw:
        return (-math.inf, math.inf)
    lo, hi = raw  # type: ignore[misc]
    return (-math.inf if lo is None else float(lo), math.inf if hi is None else float(hi))


def _finite_pair(pair: tuple[float, float]) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in pair]


@dataclass(frozen=True)
class FieldIssue:
    """A message to show beside one field: an ``error`` refuses the patient, a ``warning`` does not."""

    field: str
    severity: Literal["error", "warning"]
    message: str


@dataclass(frozen=True)
class Schema:
    """Everything a risk model needs to know about its input and output, and nothing about any dataset."""

    features: tuple[FeatureSpec, ...]
    classes: tuple[str, str]
    positive_class: str
    target: str = ""
    positive_value: str = ""
    subgroups: dict[str, Any] | None = None  # {"feature": NAME, "bands": [[lo, hi, label], ...]} or {"feature": NAME}
    example: dict[str, Value] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def by_name(self) -> dict[str, FeatureSpec]:
        return {f.name: f for f in self.features}

    def to_meta(self) -> dict[str, Any]:
        """The meta.json keys that hold the schema (``features``, ``classes``, ``positive_class``, ``schema``)."""
        return {
            "features": [f.to_meta() for f in self.features],
            "classes": list(self.classes),
            "positive_class": self.positive_class,
            "schema": {
                "target": self.target,
                "positive_value": self.positive_value,
                "subgroups": self.subgroups,
                "example": dict(self.example),
            },
        }

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Schema:
        """Read the schema back from a version's meta.json. Raises InvalidModelError if it is missing."""
        entries = meta.get("features")
        classes = meta.get("classes")
        if not entries or not isinstance(entries, list) or not classes or len(classes) != 2:
            raise InvalidModelError(
                _(
                    "Model '{name}:{version}' has no usable feature schema in its meta.json (it needs 'features' and two "
                    "'classes'); retrain it with python -m core train-risk."
                ).format(name=meta.get("name", "?"), version=meta.get("version", "?"))
            )
        extra = meta.get("schema") or {}
        return cls(
            features=tuple(FeatureSpec.from_meta(e) for e in entries),
            classes=(str(classes[0]), str(classes[1])),
            positive_class=str(meta.get("positive_class") or classes[1]),
            target=str(extra.get("target") or ""),
            positive_value=str(extra.get("positive_value") or ""),
            subgroups=extra.get("subgroups"),
            example=dict(extra.get("example") or {}),
        )

    # ------------------------------------------------------------------------------------------------
    # Validation: one door for form values and CSV rows
    # ------------------------------------------------------------------------------------------------

    def check_patient(
        self, values: Mapping[str, object], from_csv: bool = False
    ) -> tuple[dict[str, Value], list[FieldIssue]]:
        """Check one patient's fields against the schema.

        Args:
            values: feature name -> number, numeric text, category, or None/blank (not measured).
            from_csv: apply the CSV conventions (a 0 means "not measured" in fields flagged so).

        Returns:
            (clean values with None for not measured, issues). The patient can be scored when no issue
            has severity "error"; warnings say a value is outside the training range.
        """
        clean: dict[str, Value] = {}
        issues: list[FieldIssue] = []
        for spec in self.features:
            value, issue = check_field(spec, values.get(spec.name), from_csv)
            if issue is not None:
                issues.append(issue)
            if issue is None or issue.severity == "warning":
                clean[spec.name] = value
        return clean, issues

    def validate_patient(
        self, values: Mapping[str, object], from_csv: bool = False, where: str = ""
    ) -> dict[str, Value]:
        """Clean values, or InvalidPatientDataError naming every bad field (``where``: e.g. "row 3: ")."""
        clean, issues = self.check_patient(values, from_csv)
        errors = [i.message for i in issues if i.severity == "error"]
        if errors:
            raise InvalidPatientDataError(" ".join(filter(None, [where.strip(), *errors])))
        return clean

    def to_matrix(self, patients: Sequence[Mapping[str, Value]]) -> np.ndarray:
        """Clean patients -> (N, F) float64 in ``names`` order: NaN for not measured, level index for categories."""
        rows = [[encode(spec, p.get(spec.name)) for spec in self.features] for p in patients]
        return np.array(rows, dtype=np.float64).reshape(len(patients), len(self.features))

    def from_matrix_row(self, row: np.ndarray) -> dict[str, Value]:
        """The inverse of ``to_matrix`` for one row (levels back to their text)."""
        return {spec.name: decode(spec, float(v)) for spec, v in zip(self.features, row)}

    def subgroup_labels(self, X: np.ndarray) -> np.ndarray:
        """(N,) subgroup label per row of an encoded matrix; "all" when the schema defines none."""
        definition = self.subgroups or {}
        name = definition.get("feature")
        if name not in self.names:
            return np.full(len(X), "all")
        spec, col = self.by_name[name], X[:, self.names.index(name)]
        if spec.categorical:
            return np.array([decode(spec, v) or "not recorded" for v in col])
        bands = definition.get("bands") or []
        return np.array([_band(v, bands) for v in col])


def _band(value: float, bands: Sequence[Sequence[Any]]) -> str:
    if math.isnan(value):
        return "not recorded"
    for _lo, hi, label in bands:
        if value <= hi:
            return str(label)
    return str(bands[-1][2]) if bands else "all"


def encode(spec: FeatureSpec, value: Value) -> float:
    """A clean value -> the model's number: NaN for None, level index for a category."""
    if value is None:
        return math.nan
    if spec.categorical:
        return float(spec.levels.index(str(value)))
    return float(value)


def decode(spec: FeatureSpec, number: float) -> Value:
    if math.isnan(number):
        return None
    return spec.levels[int(number)] if spec.categorical else number


class AmbiguousNumberError(ValueError):
    """Text like "1,000" that reads as a thousand to some and as one to others (its message says how to write it)."""


def parse_number(raw: object) -> float | None:
    """A number, or None for blank. Raises ValueError for text that is not a number."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw.lower() in MISSING_TEXT:
            return None
        if re.fullmatch(r"[+-]?\d{1,3},\d{3}", raw):
            # "1,000" is a thousands separator to some and a decimal comma to others: refuse to guess.
            raise AmbiguousNumberError(
                _("'{raw}' is ambiguous; write it without a comma (e.g. 1000) or with a point (1.0)").format(raw=raw)
            )
        return float(raw.replace(",", ".")) if raw.count(",") == 1 and "." not in raw else float(raw)
    if isinstance(raw, bool):
        raise ValueError(_("a yes/no value is not a number"))
    value = float(raw)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def level_text(raw: object) -> str | None:
    """A category as text ("1.0" and 1 -> "1"), or None for blank."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None
    text = str(raw).strip()
    if text.lower() in MISSING_TEXT:
        return None
    try:
        number = float(text)
        if number.is_integer() and re.fullmatch(r"[+-]?\d+(\.0+)?", text):
            return str(int(number))
    except ValueError:
        pass
    return text


def _check_level(spec: FeatureSpec, raw: object) -> tuple[Value, FieldIssue | None]:
    text = level_text(raw)
    if text is None:
        return None, None if spec.optional else FieldIssue(
            spec.name, "error", _("{name} is required; choose a value.").format(name=spec.name)
        )
    matches = [lv for lv in spec.levels if lv.lower() == text.lower()]
    if not matches:
        return None, FieldIssue(
            spec.name,
            "error",
            _("{name}: '{text}' is not one of the values the model knows ({levels}).").format(
                name=spec.name, text=text, levels=", ".join(spec.levels)
            ),
        )
    return matches[0], None


def check_field(spec: FeatureSpec, raw: object, from_csv: bool = False) -> tuple[Value, FieldIssue | None]:
    """One field -> (clean value, the issue to show at it or None)."""
    if from_csv and spec.missing_codes and level_text(raw) in spec.missing_codes:
        raw = None  # the table's own "not measured" code, confirmed when the model was trained
    if spec.categorical:
        return _check_level(spec, raw)
    label = f"{spec.name} ({spec.unit})" if spec.unit else spec.name  # the column name: what a CSV user can find
    try:
        value = parse_number(raw)
    except (TypeError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, AmbiguousNumberError) else _("'{raw}' is not a number").format(raw=raw)
        return None, FieldIssue(spec.name, "error", _("{label}: {reason}.").format(label=label, reason=reason))
    if value is not None and not math.isfinite(value):
        return None, FieldIssue(
            spec.name, "error", _("{label}: '{value}' is not a finite number.").format(label=label, value=value)
        )
    if value is not None and from_csv and spec.zero_means_missing and value == 0:
        value = None
    if value is None:
        return None, None if spec.optional else FieldIssue(
            spec.name, "error", _("{label} is required; enter a value.").format(label=label)
        )
    return value, _range_issue(spec, label, value)


def _range_issue(spec: FeatureSpec, label: str, value: float) -> FieldIssue | None:
    lo, hi = spec.hard_limits
    if not lo <= value <= hi:
        message = (
            _(
                "{label} = {value:g} is physiologically impossible (allowed {low:g} to {high:g}); check the value "
                "and its unit. Leave it blank if it was not measured."
            )
            if spec.optional
            else _(
                "{label} = {value:g} is physiologically impossible (allowed {low:g} to {high:g}); check the "
                "value and its unit."
            )
        )
        return FieldIssue(spec.name, "error", message.format(label=label, value=value, low=lo, high=hi))
    if spec.integer and not float(value).is_integer():
        return FieldIssue(
            spec.name, "error", _("{label} must be a whole number, not {value:g}.").format(label=label, value=value)
        )
    p_lo, p_hi = spec.plausible
    if not p_lo <= value <= p_hi:
        return FieldIssue(
            spec.name,
            "warning",
            _(
                "{label} = {value:g} is outside the range the model was trained on ({low:g} "
                "to {high:g}); the risk is an extrapolation, interpret it with care."
            ).format(label=label, value=value, low=p_lo, high=p_hi),
        )
    return None
