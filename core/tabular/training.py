"""Train a risk model from any labelled table: infer the schema, refuse bad tables, select by CV, register.

Model selection is declared in advance (``SELECTION_RULE``): penalised logistic regression (plain and
on spline bases) and gradient-boosted trees are compared by stratified k-fold cross-validation on the
same folds; calibration, the threshold and every figure come from the pooled out-of-fold
probabilities, computed with ``core.models.metrics`` and ``core.models.thresholds`` only.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidOptionError
from core.i18n import _
from core.models import metrics, provenance, registry
from core.models.thresholds import youden_threshold
from core.tabular.labelled import TrainingTable, load_training_table
from core.tabular.model import (
    FAMILIES,
    FAMILY_DESCRIPTIONS,
    FAMILY_EXPLAINERS,
    RiskModel,
    build_estimator,
    save_model,
    single_threaded,
)
from core.tabular.overrides import Overrides
from core.tabular.predictor import EXPLANATION_SPACE, KIND
from core.tabular.schema import Schema

SELECTION_RULE = (
    "highest pooled out-of-fold AUC over the same stratified folds; a more complex family "
    "(logistic < spline_logistic < gradient_boosting) is chosen only if it beats every simpler "
    "one by at least 0.005 AUC, otherwise the simpler, more readable model wins"
)


def cross_validate_family(
    family: str,
    X: np.ndarray,
    y: np.ndarray,
    schema: Schema,
    folds: int = 10,
    seed: int = 0,
    on_fold: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Out-of-fold probabilities (N,) and metrics of one family by stratified k-fold CV (``on_fold`` after each fold)."""
    names, optional, levels = _design_args(schema, X)
    oof = np.zeros(len(y))
    fold_aucs = []
    for train, test in cv_splits(y, folds, seed):
        est = build_estimator(family, names, optional, levels, seed).fit(X[train], y[train])
        oof[test] = est.predict_proba(X[test])[:, 1]
        fold_aucs.append(metrics.auc_score(y[test] == 1, oof[test]))
        if on_fold is not None:
            on_fold()
    slope, intercept = metrics.calibration_fit(y, oof)
    return {
        "family": family,
        "description": FAMILY_DESCRIPTIONS[family],
        "explainer": FAMILY_EXPLAINERS[family],
        "cv_auc": metrics.auc_score(y == 1, oof),
        "cv_auc_ci95": metrics.auc_with_ci(y == 1, oof)["ci95"],
        "cv_auc_fold_mean": float(np.mean(fold_aucs)),
        "cv_auc_fold_sd": float(np.std(fold_aucs, ddof=1)),
        "brier": metrics.binary_metrics(y == 1, oof, 0.5)["brier"],
        "calibration_slope": slope,
        "calibration_intercept": intercept,
        "oof": oof,
    }


def cv_splits(y: np.ndarray, folds: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of each stratified, shuffled fold: the folds every family is validated on.

    Anything that must reproduce which patients a cross-validated figure held out (the explanation
    agreement of the card) asks here, so the split is written once.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros((len(y), 1)), y))


def recipe_fitter(family: str, schema: Schema, X: np.ndarray) -> Callable[[np.ndarray, np.ndarray], RiskModel]:
    """The product's own fit of ``family`` on this table, as a function of (rows of X, their labels).

    The design (which features may be missing, how many levels) is decided on the whole table, as
    training decides it, so a refit on some rows (a fold, a bootstrap resample) is the same recipe as
    the registered model. Refits carry no bootstrap replicas (``n_bootstrap=0``): only the fit is needed.
    """
    names, optional, levels = _design_args(schema, X)

    def fit(rows: np.ndarray, labels: np.ndarray) -> RiskModel:
        return RiskModel(family, names, optional, levels, n_bootstrap=0).fit(rows, labels)

    return fit


def _design_args(schema: Schema, X: np.ndarray) -> tuple[list[str], list[bool], list[int]]:
    """Per feature: name, whether the model must handle missing values, number of categories (0 = numeric)."""
    optional = [bool(s.optional or np.isnan(X[:, j]).any()) for j, s in enumerate(schema.features)]
    return schema.names, optional, [len(s.levels) for s in schema.features]


def choose_family(comparison: Sequence[Mapping[str, Any]], margin: float = 0.005) -> str:
    """Apply SELECTION_RULE to the family comparison (ordered simplest first)."""
    chosen = comparison[0]
    for candidate in comparison[1:]:
        if candidate["cv_auc"] >= chosen["cv_auc"] + margin:
            chosen = candidate
    return str(chosen["family"])


def validation_record(
    comparison: Sequence[Mapping[str, Any]], family: str, y: np.ndarray, folds: int
) -> dict[str, Any]:
    """The meta.json ``validation`` block: the chosen family's pooled out-of-fold figures and the comparison."""
    best = next(c for c in comparison if c["family"] == family)
    oof = best["oof"]
    threshold = youden_threshold(y == 1, oof)
    at = metrics.binary_metrics(y == 1, oof, threshold)
    keys = (
        "cv_auc",
        "cv_auc_ci95",
        "cv_auc_fold_mean",
        "cv_auc_fold_sd",
        "brier",
        "calibration_slope",
        "calibration_intercept",
    )
    return {
        "method": f"{folds}-fold stratified cross-validation (shuffled, seed 0); metrics on pooled out-of-fold predictions",
        "n": int(len(y)),
        "auc": best["cv_auc"],
        **{k: best[k] for k in keys},
        "cv_auc_ci_method": f"stratified percentile bootstrap of out-of-fold predictions, {metrics.DEFAULT_RESAMPLES} resamples",
        "brier_reference_prevalence": float(np.mean(y) * (1 - np.mean(y))),
        "threshold": threshold,
        "accuracy": at["accuracy"],
        "sensitivity": at["sensitivity"],
        "specificity": at["specificity"],
        "selection_rule": SELECTION_RULE,
        "families": [
            {
                **{k: v for k, v in c.items() if k != "oof"},
                f"auc_difference_vs_{comparison[0]['family']}_ci95": metrics.paired_auc_difference(
                    y == 1, comparison[0]["oof"], c["oof"]
                ),
            }
            for c in comparison
        ],
    }


@dataclass(frozen=True)
class RunOptions:
    """What a front end adds to a training run: confirmed overrides, how the data is named, structured progress."""

    overrides: Overrides = field(default_factory=Overrides)
    data_label: str | None = None  # recorded instead of the CSV's path (an upload's file name is never kept)
    events: Callable[[dict[str, Any]], None] | None = None  # {"event": "started"|"step", "step", "steps"}


def train_risk_model(
    csv_path: Path,
    name: str,
    target: str | None = None,
    positive: str | None = None,
    command: str = "",
    activate: bool = True,
    families: Sequence[str] = FAMILIES,
    folds: int = 10,
    n_bootstrap: int = 30,
    progress: Callable[[str], None] | None = None,
    negative: str | None = None,
    options: RunOptions | None = None,
) -> dict[str, Any]:
    """Compare model families by k-fold CV, fit the chosen one on all rows and register it with its card.

    ``activate=False`` registers without changing which version is used when ``name`` is given alone.
    ``positive`` may list several outcome values ('A,B'); with ``negative`` named, other rows are left out.
    Returns the CLI's JSON payload. Raises a LucidDxError for an unusable table (nothing is registered).
    """
    registry.check_model_name(name)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families or folds < 2:
        raise InvalidOptionError(
            _(
                "Cannot train with families {families} and {folds} folds: families must be among {items} and folds "
                "at least 2."
            ).format(families=list(families), folds=folds, items=", ".join(FAMILIES))
        )
    with single_threaded():
        return _train(
            Path(csv_path),
            name,
            target,
            (positive, negative),
            command,
            activate,
            families,
            folds,
            n_bootstrap,
            progress or (lambda _msg: None),
            options or RunOptions(),
        )


def _stepper(options: RunOptions, steps: int) -> Callable[[], None]:
    """A callback that reports one more of ``steps`` units of work done (folds, then the final fit)."""
    done = [0]
    if options.events is not None:
        options.events({"event": "started", "epochs": 1, "steps": steps, "device": "CPU"})

    def step() -> None:
        done[0] += 1
        if options.events is not None:
            options.events({"event": "step", "step": done[0], "steps": steps})

    return step


def _train(
    csv_path: Path,
    name: str,
    target: str | None,
    outcome: tuple[str | None, str | None],
    command: str,
    activate: bool,
    families: Sequence[str],
    folds: int,
    n_bootstrap: int,
    say: Callable[[str], None],
    options: RunOptions,
) -> dict[str, Any]:
    started = time.monotonic()
    table = load_training_table(csv_path, target, *outcome, overrides=options.overrides)
    X, y, schema = table.X, table.y, table.schema
    step = _stepper(options, len(families) * folds + 1)
    comparison = []
    for family in families:
        say(f"cross-validating {family} ({folds} folds)")
        comparison.append(cross_validate_family(family, X, y, schema, folds, on_fold=step))
        c = comparison[-1]
        say(
            f"  {family}: AUC {c['cv_auc']:.3f} [{c['cv_auc_ci95'][0]:.3f}, {c['cv_auc_ci95'][1]:.3f}], Brier {c['brier']:.4f}"
        )
    family = choose_family(comparison)
    validation = validation_record(comparison, family, y, folds)
    say(f"fitting {family} on all {len(y)} rows")
    names, optional, levels = _design_args(schema, X)
    model = RiskModel(family, names, optional, levels, n_bootstrap=n_bootstrap).fit(X, y)
    step()
    oof = next(c for c in comparison if c["family"] == family)["oof"]
    meta = version_meta(table, model, validation, command, options.data_label or str(csv_path), started)
    ref = _register(name, model, meta, y, oof, schema.subgroup_labels(X), activate)
    say(f"registered {ref.spec}")
    return _payload(ref, table, validation, comparison, family, folds, name, started)


def _payload(
    ref: registry.ModelRef,
    table: TrainingTable,
    validation: dict[str, Any],
    comparison: Sequence[Mapping[str, Any]],
    family: str,
    folds: int,
    name: str,
    started: float,
) -> dict[str, Any]:
    """The CLI's JSON document (CLI.md, train-risk)."""
    y, schema = table.y, table.schema
    return {
        "model": ref.spec,
        "family": family,
        "n": int(len(y)),
        "classes": {schema.classes[0]: int((y == 0).sum()), schema.classes[1]: int((y == 1).sum())},
        "features": schema.names,
        "dropped": table.dropped,
        "cv": {
            "auc": validation["cv_auc"],
            "auc_ci95": validation["cv_auc_ci95"],
            "brier": validation["brier"],
            "folds": folds,
        },
        "threshold": validation["threshold"],
        "active": registry.is_approved(ref),
        "seconds": round(time.monotonic() - started, 1),
        "dataset": {"rows": int(len(y)), "positives": int(y.sum()), "skipped": table.skipped},
        "validation": {
            k: validation[k]
            for k in (
                "auc",
                "cv_auc_ci95",
                "brier",
                "calibration_slope",
                "calibration_intercept",
                "threshold",
                "sensitivity",
                "specificity",
            )
        },
        "families": [{k: c[k] for k in ("family", "cv_auc", "cv_auc_ci95", "brier")} for c in comparison],
        "path": str(ref.path),
    }


def version_meta(
    table: TrainingTable, model: RiskModel, validation: dict[str, Any], command: str, data: str, started: float
) -> dict[str, Any]:
    """Everything about the new version, schema included: the predictor and the card read only this."""
    import shap
    import sklearn

    schema, X, y = table.schema, table.X, table.y
    tabular = (table.description or {}).get("tabular", {})
    intended = tabular.get("intended_use") or (
        f"Research use: estimate the probability that '{schema.target}' is '{schema.positive_value}' for records "
        f"like those in {Path(data).name}; not independently evaluated."
    )
    meta = {
        "name": "",
        "version": "",
        "kind": KIND,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "framework": f"scikit-learn {sklearn.__version__} / shap {shap.__version__}",
        "architecture": FAMILY_DESCRIPTIONS[model.family] + (f"; C = {model.C_:g}" if model.C_ else ""),
        "family": model.family,
        "model_file": "model.joblib",
        **schema.to_meta(),
        "threshold": validation["threshold"],
        "threshold_rule": "maximise Youden's J (sensitivity + specificity - 1) on the out-of-fold probabilities",
        "intended_use": intended,
        "imputation": {k: v for k, v in model.imputed_values().items() if v is not None},
        "training": {
            "command": command,
            "data": data,
            "rows": int(len(y)),
            "positives": int(y.sum()),
            "dropped_columns": table.dropped,
            "skipped": table.skipped,
            "missing_counts": {n: int(np.isnan(X[:, j]).sum()) for j, n in enumerate(schema.names)},
            "seed": 0,
            "seconds": round(time.monotonic() - started, 1),
        },
        "validation": validation,
        "explanation": {
            "explainer": FAMILY_EXPLAINERS[model.family],
            "space": EXPLANATION_SPACE,
            "background": f"all {len(y)} training rows (interventional / independent features)",
            "aggregation": "design columns of one original feature (value, spline bases or one-hot "
            "columns + missing indicator) are summed into that feature: still exact",
        },
        "uncertainty": {
            "method": f"95% percentile interval of the risk over {model.n_bootstrap} bootstrap refits "
            "(linear families: the logistic layer refit on the fixed design, same C; trees: whole refits)"
        },
    }
    meta.update(provenance.carried_metadata(table.description))
    return meta


def _register(
    name: str,
    model: RiskModel,
    meta: dict[str, Any],
    y: np.ndarray,
    oof: np.ndarray,
    subgroups: np.ndarray,
    activate: bool,
) -> registry.ModelRef:
    from core.models import cards

    staging = registry.new_staging_dir()
    try:
        save_model(model, staging / "model.joblib")
        np.savez(
            staging / "validation_predictions.npz",
            labels=y,
            probabilities=np.column_stack([1 - oof, oof]),
            subgroups=subgroups,
        )
        registry.write_json_atomic(staging / registry.META_FILE, meta)
        cards.write_card(staging)
        return registry.commit_version(staging, name, activate_it=activate)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
