"""A registered tabular risk model, loaded entirely from its version folder: meta.json (schema) + model.joblib.

Build once, call many times: ``load_risk_model(spec).predict(patients)`` gives ``RiskResult`` objects
with the risk, its bootstrap interval, and the exact SHAP explanation in log-odds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core import config
from core.errors import InvalidModelError, InvalidPatientDataError
from core.i18n import _
from core.models import kinds, registry
from core.tabular.model import RiskModel, load_model, single_threaded
from core.tabular.schema import FeatureSpec, Schema, Value

KIND = kinds.TABULAR_RISK
EXPLANATION_SPACE = "log-odds"


@dataclass
class RiskResult:
    """One patient's risk with its exact explanation (log-odds space)."""

    model: str
    risk: float  # P(positive class), in [0, 1]
    risk_interval: tuple[float, float]  # 95% bootstrap interval of the risk
    threshold: float
    base_value: float
    output: float  # log-odds; == base_value + sum(contributions)
    contributions: dict[str, float]
    values: dict[str, Value]  # as entered, None = not measured
    imputed: dict[str, float | None]  # value used by the model where not measured
    specs: dict[str, FeatureSpec] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)

    @property
    def above_threshold(self) -> bool:
        return self.risk >= self.threshold

    def explanation(self) -> dict[str, Any]:
        """The CLI.md explanation object."""
        return {
            "space": EXPLANATION_SPACE,
            "base_value": self.base_value,
            "output": self.output,
            "contributions": dict(self.contributions),
        }

    def value_labels(self) -> dict[str, str]:
        """``Glucose = 148 mg/dL`` / ``Insulin = not measured (imputed 125 µU/mL)`` per feature."""
        labels = {}
        for name, value in self.values.items():
            spec = self.specs.get(name) or FeatureSpec(name, name)
            text = f"{name} = {spec.format_value(value)}"
            imputed = self.imputed.get(name)
            if value is None and imputed is not None:
                shown = spec.levels[int(imputed)] if spec.categorical else round(imputed, 3)
                text += f" (imputed {spec.format_value(shown)})"
            labels[name] = text
        return labels


class RiskPredictor:
    """A registered risk model loaded from disk, with its metadata and schema. Build once, call many times."""

    def __init__(self, ref: registry.ModelRef, model: RiskModel, schema: Schema) -> None:
        if list(model.names) != schema.names:
            raise InvalidModelError(
                _(
                    "Model '{spec}': its meta.json lists the features {names}, but the saved model was fitted on "
                    "{fitted}; retrain it."
                ).format(spec=ref.spec, names=schema.names, fitted=list(model.names))
            )
        self.ref = ref
        self.model = model
        self.schema = schema
        self.meta = ref.meta
        try:
            self.threshold = float(ref.meta["threshold"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidModelError(
                _("Model '{spec}': meta.json has no usable 'threshold'.").format(spec=ref.spec)
            ) from exc
        self._imputed = model.imputed_values()
        self._global: tuple[float, np.ndarray] | None = None

    @property
    def spec(self) -> str:
        return self.ref.spec

    def predict(
        self, patients: Sequence[Mapping[str, Value]], warnings: Sequence[list[str]] | None = None
    ) -> list[RiskResult]:
        """Risks and exact explanations for already-validated patients (see ``Schema.check_patient``)."""
        if not patients:
            return []
        names = self.schema.names
        X = self.schema.to_matrix(patients)
        with single_threaded():
            output, base, contributions, intervals = self.model.predict_explained(X)
        results = []
        for i, patient in enumerate(patients):
            results.append(
                RiskResult(
                    model=self.spec,
                    risk=float(1.0 / (1.0 + math.exp(-output[i]))),
                    risk_interval=(float(intervals[i, 0]), float(intervals[i, 1])),
                    threshold=self.threshold,
                    base_value=base,
                    output=float(output[i]),
                    contributions={n: float(contributions[i, j]) for j, n in enumerate(names)},
                    values={n: patient.get(n) for n in names},
                    imputed={n: (self._imputed.get(n) if patient.get(n) is None else None) for n in names},
                    specs=self.schema.by_name,
                    warnings=list(warnings[i]) if warnings else [],
                )
            )
        return results

    def predict_one(self, values: Mapping[str, object]) -> RiskResult:
        """Validate and score one patient from a form. Raises InvalidPatientDataError naming the bad fields."""
        clean, issues = self.schema.check_patient(values)
        errors = [i.message for i in issues if i.severity == "error"]
        if errors:
            raise InvalidPatientDataError(" ".join(errors))
        return self.predict([clean], [[i.message for i in issues]])[0]

    def global_explanation(self) -> tuple[np.ndarray, float, np.ndarray]:
        """(X (N, F) training values with NaN, base value, SHAP (N, F)) over the training data; cached."""
        if self._global is None:
            with single_threaded():
                self._global = self.model.explain(self.model.background_)
        base, values = self._global
        return self.model.background_, base, values

    def summary(self) -> dict[str, Any]:
        """Headline validation figures for display (CV AUC with CI, Brier, calibration, threshold)."""
        v = self.meta.get("validation", {})
        return {
            k: v.get(k)
            for k in (
                "cv_auc",
                "cv_auc_ci95",
                "brier",
                "calibration_slope",
                "calibration_intercept",
                "sensitivity",
                "specificity",
                "threshold",
                "n",
            )
        }


def load_risk_model(spec: str | None = None) -> RiskPredictor:
    """Load a registered risk model ("NAME" or "NAME:VERSION"; None = the configured default of its kind).

    Raises ModelNotFoundError for an unknown model and InvalidModelError for damaged files or metadata.
    """
    ref = registry.resolve(spec, kind=KIND)
    schema = Schema.from_meta(ref.meta)
    model = load_model(ref.path / str(ref.meta.get("model_file", "model.joblib")))
    return RiskPredictor(ref, model, schema)


def model_choices() -> tuple[list[str], int]:
    """Every registered risk model version ("NAME:VERSION") and the index of the default's active one."""
    specs: list[str] = []
    default_index = 0
    for name, versions in registry.list_models(kind=KIND).items():
        for ref in versions:
            if registry.is_approved(ref) and name == config.default_model(KIND):
                default_index = len(specs)
            specs.append(ref.spec)
    return specs, default_index
