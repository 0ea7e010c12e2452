"""The risk model itself: estimator families, ``RiskModel`` (fit / log-odds / interval / explain), load and save.

Input everywhere: (N, F) float64 in the schema's feature order, NaN for "not measured", level index
for categorical fields (``Schema.to_matrix``). Output: ``decision_function`` log-odds (N,),
``predict_proba`` (N, 2) in [0, 1], ``explain`` -> (base value, (N, F) contributions in log-odds).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidModelError
from core.i18n import _
from core.tabular import explain as exact

FAMILIES = ("logistic", "spline_logistic", "gradient_boosting")
FAMILY_DESCRIPTIONS = {
    "logistic": "penalised (L2) logistic regression; median imputation + missing indicators; one-hot categories; "
    "standardised; L2 strength by inner 5-fold CV (log-loss)",
    "spline_logistic": "GAM-style penalised logistic regression on cubic B-spline bases (5 knots, constant extrapolation) "
    "per numeric feature; one-hot categories; median imputation + missing indicators; "
    "L2 strength by inner 5-fold CV (log-loss)",
    "gradient_boosting": "histogram gradient-boosted trees (depth 2, 100 rounds, learning rate 0.05), missing values "
    "routed natively",
}
FAMILY_EXPLAINERS = {
    "logistic": "shap.LinearExplainer (interventional, full training background)",
    "spline_logistic": "shap.LinearExplainer (interventional, full training background)",
    "gradient_boosting": "shap.TreeExplainer (tree_path_dependent)",
}
_CS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def single_threaded() -> Any:
    """A context limiting BLAS/OpenMP to one thread: these models are tiny, and threads only contend."""
    import sklearn.ensemble  # noqa: F401  (load the OpenMP runtime first so the limit reaches it)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _feature_block(family: str, optional: bool, n_levels: int) -> Any:
    """The design block of one original feature (its columns can be summed back exactly)."""
    from sklearn.impute import MissingIndicator, SimpleImputer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

    if n_levels:
        encode = [
            OneHotEncoder(
                categories=[np.arange(n_levels, dtype=np.float64)], handle_unknown="ignore", sparse_output=False
            )
        ]
        impute = SimpleImputer(strategy="most_frequent")
    else:
        encode = (
            [SplineTransformer(n_knots=5, degree=3, extrapolation="constant")] if family == "spline_logistic" else []
        )
        impute = SimpleImputer(strategy="median")
    if optional:
        step = make_union(make_pipeline(impute, *encode), MissingIndicator(features="all"))
    elif encode:
        step = make_pipeline(*encode)
    else:
        return StandardScaler()
    return make_pipeline(step, StandardScaler())


def build_estimator(
    family: str,
    names: Sequence[str],
    optional: Sequence[bool],
    levels: Sequence[int],
    seed: int = 0,
    C: float | None = None,
) -> Any:
    """An unfitted sklearn estimator for ``family`` taking the (N, F) NaN-for-missing matrix.

    Args:
        names, optional, levels: per feature, its name, whether it may be missing, its number of
            categories (0 = numeric).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline

    if family == "gradient_boosting":
        return HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.05, max_depth=2, min_samples_leaf=30, random_state=seed
        )
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; expected one of {FAMILIES}")
    parts = [
        (name, _feature_block(family, opt, n), [i]) for i, (name, opt, n) in enumerate(zip(names, optional, levels))
    ]
    design = ColumnTransformer(parts, verbose_feature_names_out=True)
    if C is not None:
        clf = LogisticRegression(C=C, solver="newton-cholesky", max_iter=1000)
    else:
        # newton-cholesky: exact Newton steps, ~10x faster than lbfgs for these few dozen design columns.
        clf = LogisticRegressionCV(
            Cs=list(_CS),
            l1_ratios=(0,),
            cv=5,
            scoring="neg_log_loss",
            solver="newton-cholesky",
            max_iter=1000,
            use_legacy_attributes=False,
        )
    return make_pipeline(design, clf)


class RiskModel:
    """A fitted risk model with exact SHAP explanations (scikit-learn style: fit returns self, learned state ends in _)."""

    def __init__(
        self,
        family: str = "spline_logistic",
        names: Sequence[str] = (),
        optional: Sequence[bool] = (),
        levels: Sequence[int] = (),
        seed: int = 0,
        n_bootstrap: int = 30,
    ) -> None:
        self.family = family
        self.names = list(names)
        self.optional = list(optional)
        self.levels = list(levels)
        self.seed = seed
        self.n_bootstrap = n_bootstrap

    def _estimator(self, C: float | None = None) -> Any:
        return build_estimator(self.family, self.names, self.optional, self.levels, self.seed, C)

    def fit(self, X: np.ndarray, y: np.ndarray) -> RiskModel:
        """Fit on all rows; keep them as the explanation background; fit bootstrap replicas for the risk interval."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=int)
        self.estimator_ = self._estimator().fit(X, y)
        self.C_ = None if exact.is_tree(self.family) else float(self.estimator_[-1].C_)
        self.background_ = X.copy()
        rng = np.random.default_rng(self.seed)
        self.bootstrap_: list[Any] = []  # trees: whole refits; linear: (coef (D,), intercept) on the fixed design
        design = None if exact.is_tree(self.family) else self.estimator_[0]
        Z = design.transform(X) if design is not None else None
        for _round in range(self.n_bootstrap):
            idx = rng.integers(0, len(X), len(X))
            if design is None:
                self.bootstrap_.append(self._estimator().fit(X[idx], y[idx]))
            else:
                clf = self._estimator(C=self.C_)[-1].fit(Z[idx], y[idx])
                self.bootstrap_.append((clf.coef_[0].copy(), float(clf.intercept_[0])))
        self._explainer = None
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_explainer"] = None  # rebuilt on load: shap objects are not part of the saved model
        return state

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of the positive class, (N,)."""
        return np.asarray(self.estimator_.decision_function(np.asarray(X, dtype=np.float64)), dtype=np.float64).reshape(
            -1
        )

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """(N, 2) probabilities [negative class, positive class]."""
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p, p])

    def risk_interval(self, X: np.ndarray, level: float = 0.95) -> np.ndarray:
        """(N, 2) percentile interval of the risk over bootstrap refits: how much the model itself is unsure."""
        X = np.asarray(X, dtype=np.float64)
        if not exact.is_tree(self.family):
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
        coefs = np.stack([c for c, _b in self.bootstrap_])
        intercepts = np.array([b for _c, b in self.bootstrap_])
        risks = 1.0 / (1.0 + np.exp(-(coefs @ Z.T + intercepts[:, None])))
        tail = (1 - level) / 2 * 100
        return np.percentile(risks, [tail, 100 - tail], axis=0).T

    def imputed_values(self) -> dict[str, float | None]:
        """The number the model substitutes for a blank field (None: required field, or trees route missing natively)."""
        if exact.is_tree(self.family):
            return {n: None for n in self.names}
        design = self.estimator_[0]
        out: dict[str, float | None] = {}
        for name, optional in zip(self.names, self.optional):
            block = design.named_transformers_[name]
            out[name] = float(block[0].transformer_list[0][1][0].statistics_[0]) if optional else None
        return out

    @property
    def explainer(self) -> Any:
        if getattr(self, "_explainer", None) is None:
            self._explainer = exact.build_explainer(self.family, self.estimator_, self.background_)
        return self._explainer

    def explain(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """Exact SHAP values in log-odds: (base value, (N, F) contributions per original feature)."""
        X = np.asarray(X, dtype=np.float64)
        return exact.shap_values(self.explainer, self.family, self.estimator_, X, None, self.names)

    def predict_explained(self, X: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
        """(log-odds (N,), base value, contributions (N, F), risk interval (N, 2)) sharing one design transform."""
        X = np.asarray(X, dtype=np.float64)
        if exact.is_tree(self.family):
            base, contributions = self.explain(X)
            return self.decision_function(X), base, contributions, self.risk_interval(X)
        Z = self.estimator_[0].transform(X)
        output = np.asarray(self.estimator_[-1].decision_function(Z), dtype=np.float64).reshape(-1)
        base, contributions = exact.shap_values(self.explainer, self.family, self.estimator_, X, Z, self.names)
        return output, base, contributions, self._interval_from_design(Z, output)


def save_model(model: RiskModel, path: Path) -> None:
    import joblib

    joblib.dump(model, path, compress=3)


def load_model(path: Path) -> RiskModel:
    """Load a saved RiskModel. Raises InvalidModelError naming the file when it is missing or damaged."""
    import joblib

    try:
        model = joblib.load(path)
    except FileNotFoundError as exc:
        raise InvalidModelError(
            _("{path}: the model file is missing; reinstall or retrain this model version.").format(path=path)
        ) from exc
    except Exception as exc:  # a truncated, foreign or incompatible pickle: joblib raises many kinds
        raise InvalidModelError(
            _(
                "{path}: the model file is damaged or was written by an incompatible version ({error_type}); "
                "retrain this model version."
            ).format(path=path, error_type=type(exc).__name__)
        ) from exc
    if not isinstance(model, RiskModel) or not hasattr(model, "estimator_"):
        raise InvalidModelError(
            _("{path}: does not hold a fitted LucidDx risk model ({error_type}).").format(
                path=path, error_type=type(model).__name__
            )
        )
    return model
