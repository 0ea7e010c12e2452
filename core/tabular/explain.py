"""Exact SHAP explanations of a risk model, in log-odds: never sampled, always additive.

A linear-in-log-odds model (logistic regression, optionally on spline bases or one-hot categories) is
explained with ``shap.LinearExplainer`` over an independent (interventional) background; the design
columns that come from one original feature (its value, spline bases or one-hot columns, and its
missing indicator) are summed back into that feature, which keeps the sum exact. A tree model is
explained with ``shap.TreeExplainer``. Either way, per patient::

    base_value + sum(contributions) == log-odds of the positive class
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TREE_FAMILIES = ("gradient_boosting",)


def is_tree(family: str) -> bool:
    return family in TREE_FAMILIES


def build_explainer(family: str, estimator: Any, background: np.ndarray) -> Any:
    """The exact explainer for a fitted estimator.

    Args:
        family: the model family ("gradient_boosting" -> TreeExplainer, else LinearExplainer).
        estimator: the fitted sklearn pipeline (linear: ``[design, LogisticRegression]``).
        background: (N, F) training matrix, NaN for not measured.
    """
    import shap

    if is_tree(family):
        return shap.TreeExplainer(estimator, feature_perturbation="tree_path_dependent")
    design, clf = estimator[0], estimator[-1]
    Z = design.transform(background)
    return shap.LinearExplainer((clf.coef_[0], clf.intercept_[0]), shap.maskers.Independent(Z, max_samples=len(Z)))


def shap_values(
    explainer: Any, family: str, estimator: Any, X: np.ndarray, Z: np.ndarray | None, names: Sequence[str]
) -> tuple[float, np.ndarray]:
    """(base value, (N, F) contributions in log-odds, one column per original feature).

    Args:
        X: (N, F) model input. Z: the linear design ``estimator[0].transform(X)`` (None for trees).
    """
    if is_tree(family):  # trees explain the raw features directly
        values = np.asarray(explainer.shap_values(X, check_additivity=False), dtype=np.float64)
        base = float(np.ravel(explainer.expected_value)[-1])
        return base, values.reshape(len(X), len(names))
    design = estimator[0]
    if Z is None:
        Z = design.transform(X)
    design_values = np.asarray(explainer.shap_values(Z), dtype=np.float64).reshape(len(X), -1)
    contributions = np.zeros((len(X), len(names)))
    for j, name in enumerate(names):
        contributions[:, j] = design_values[:, design.output_indices_[name]].sum(axis=1)
    return float(np.ravel(explainer.expected_value)[0]), contributions


def additivity_error(base: float, contributions: np.ndarray, output: np.ndarray) -> float:
    """max |base + sum(contributions) - output| over the patients: 0 up to rounding for exact SHAP."""
    return float(np.max(np.abs(base + np.asarray(contributions).sum(axis=1) - np.asarray(output)), initial=0.0))
