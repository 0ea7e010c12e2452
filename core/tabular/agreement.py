"""How far a risk model's explanation can be trusted, measured on patients its fit never saw (issue 25).

Two questions, each against a baseline that shows what "no agreement" looks like:

* **Do other explainers agree with the exact one, patient by patient?** The product shows exact SHAP
  (``core.tabular.explain``: LinearExplainer / TreeExplainer, log-odds). For each held-out patient it
  is compared with ``shap.KernelExplainer`` on the same model's log-odds (same units; background
  ``BACKGROUND`` training rows drawn at random, blanks kept as the model sees them; a fixed
  ``nsamples``) and with LIME tabular (``lime.lime_tabular``; it fits a local surrogate of the
  *probability*, so only ranks and signs are compared, never sizes). Per patient: Spearman rank
  correlation of |contribution| over features, the share of the exact top ``TOP_K`` that the other
  method also puts in its top ``TOP_K``, and the share of the exact top ``TOP_K`` whose sign it
  matches. The **random baseline** is the exact contributions shuffled across features (per patient,
  seeded): its rank correlation is about 0 by construction, so an agreement that does not beat it
  measures nothing.
* **Is the global importance stable?** ``refits`` bootstrap resamples of the training rows (each drawn
  patient kept once, so none sits on both sides of the recipe's inner cross-validation) are refitted
  with the product's own recipe; global importance = mean |exact SHAP| per feature on fixed held-out
  rows. Reported per feature: median and 95% interval of importance and of rank (tied features share
  the best rank); per refit: Spearman correlation of its importances with the reference fit's (all
  training rows); how often the top ``TOP_K`` set is unchanged, beside what chance gives
  (1 / C(F, TOP_K)) and a random ranking's r.

LIME cannot perturb "not measured": a blank field is shown to it at the training median, and every
sample it draws keeps that field blank for the model, so LIME explains the patient's real prediction
and gives the blank field no weight (exact SHAP gives "not measured" the contribution it has).

Inputs everywhere: (N, F) float64 in the schema's order, NaN for "not measured" (``Schema.to_matrix``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.i18n import N_
from core.models.metrics import bootstrap_means, percentile_interval, rank_corr
from core.tabular.model import RiskModel, single_threaded

TOP_K = 3
METHODS = ("kernel_shap", "lime", "random")
METRICS = ("rank_corr", "top_overlap", "top_sign_agreement")
METHOD_LABELS = {
    "kernel_shap": N_("KernelSHAP"),
    "lime": N_("LIME"),
    "random": N_("random baseline (exact values shuffled)"),
}

Fit = Callable[[np.ndarray, np.ndarray], RiskModel]


@dataclass(frozen=True)
class Settings:
    """How much work each approximate explainer may do per patient (fixed, so reruns measure the same)."""

    background: int = 100  # KernelSHAP background rows, drawn at random from the fit's training rows
    kernel_samples: int = 1000  # KernelSHAP coalitions per patient
    lime_samples: int = 1000  # LIME perturbations per patient
    seed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "background": self.background,
            "kernel_samples": self.kernel_samples,
            "lime_samples": self.lime_samples,
            "top_k": TOP_K,
            "seed": self.seed,
        }


def compare(exact: np.ndarray, other: np.ndarray, k: int = TOP_K) -> dict[str, float]:
    """One patient: rank correlation of |contributions|, top-k overlap and sign agreement on the exact top k.

    Args:
        exact, other: (F,) contributions of one patient (any units; only order and sign are used).
    """
    exact, other = np.asarray(exact, dtype=np.float64), np.asarray(other, dtype=np.float64)
    k = min(k, len(exact))
    top_exact = np.argsort(-np.abs(exact), kind="stable")[:k]
    top_other = np.argsort(-np.abs(other), kind="stable")[:k]
    return {
        "rank_corr": rank_corr(np.abs(exact), np.abs(other)),
        "top_overlap": len(set(top_exact.tolist()) & set(top_other.tolist())) / k,
        "top_sign_agreement": float(np.mean(np.sign(exact[top_exact]) == np.sign(other[top_exact]))),
    }


def shuffled(exact: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The random baseline: each patient's exact contributions permuted across features, (N, F)."""
    return np.stack([rng.permutation(row) for row in np.asarray(exact, dtype=np.float64)])


def kernel_contributions(model: RiskModel, X: np.ndarray, settings: Settings) -> np.ndarray:
    """KernelSHAP of the model's log-odds, (N, F), background drawn from the model's own training rows."""
    import shap

    background = shap.sample(
        model.background_, min(settings.background, len(model.background_)), random_state=settings.seed
    )
    explainer = shap.KernelExplainer(model.decision_function, background)
    values = explainer.shap_values(np.asarray(X, dtype=np.float64), nsamples=settings.kernel_samples, silent=True)
    return np.asarray(values, dtype=np.float64).reshape(len(X), -1)


def _filled(rows: np.ndarray, categorical: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Rows with blanks filled (numeric: median; categorical: most frequent level) and the fill per column."""
    fill = np.zeros(rows.shape[1])
    for j in range(rows.shape[1]):
        column = rows[:, j][np.isfinite(rows[:, j])]
        if column.size and categorical[j]:
            levels, counts = np.unique(column, return_counts=True)
            fill[j] = levels[np.argmax(counts)]
        elif column.size:
            fill[j] = float(np.median(column))
    return np.where(np.isnan(rows), fill, rows), fill


def lime_weights(model: RiskModel, X: np.ndarray, categorical: Sequence[bool], settings: Settings) -> np.ndarray:
    """LIME's local weights for the positive class's probability, (N, F) (see the module note on blanks)."""
    from lime.lime_tabular import LimeTabularExplainer

    training, fill = _filled(model.background_, categorical)
    explainer = LimeTabularExplainer(
        training,
        mode="classification",
        feature_names=list(model.names),
        categorical_features=[j for j, c in enumerate(categorical) if c],
        discretize_continuous=True,
        random_state=settings.seed,
    )
    out = np.zeros((len(X), len(model.names)))
    for i, row in enumerate(np.asarray(X, dtype=np.float64)):
        blank = np.isnan(row)

        def probability(samples: np.ndarray, blank: np.ndarray = blank) -> np.ndarray:
            samples = np.array(samples, dtype=np.float64)
            samples[:, blank] = np.nan  # the model sees the patient's blanks as blanks in every sample
            return model.predict_proba(samples)

        explanation = explainer.explain_instance(
            np.where(blank, fill, row),
            probability,
            labels=(1,),
            num_features=len(model.names),
            num_samples=settings.lime_samples,
        )
        for j, weight in explanation.as_map()[1]:
            out[i, j] = weight
    return out


def explain_patients(
    model: RiskModel, X: np.ndarray, categorical: Sequence[bool], settings: Settings, stream: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Exact, KernelSHAP, LIME and random-baseline contributions (each (N, F)) and seconds per patient per method.

    ``stream`` keeps each fold's shuffles (the random baseline) apart from every other fold's.
    """
    X = np.asarray(X, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    steps: list[tuple[str, Callable[[], np.ndarray]]] = [
        ("exact", lambda: model.explain(X)[1]),
        ("kernel_shap", lambda: kernel_contributions(model, X, settings)),
        ("lime", lambda: lime_weights(model, X, categorical, settings)),
    ]
    for name, run in steps:
        started = time.perf_counter()
        out[name] = run()
        seconds[name] = (time.perf_counter() - started) / max(len(X), 1)
    out["random"] = shuffled(out["exact"], np.random.default_rng([settings.seed, stream]))
    return out, seconds


def held_out_patients(
    y: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int, seed: int
) -> list[np.ndarray]:
    """Per fold, the rows to explain: ``n`` patients in all, drawn at random within each outcome (seeded)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    chosen: list[int] = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        share = int(round(n * len(members) / len(y)))
        chosen.extend(rng.choice(members, size=min(share, len(members)), replace=False).tolist())
    picked = np.zeros(len(y), dtype=bool)
    picked[chosen] = True
    return [np.sort(test[picked[test]]) for _train, test in splits]


def summarise(per_patient: dict[str, dict[str, np.ndarray]], seed: int) -> dict[str, dict[str, Any]]:
    """Per method and metric: mean and median over patients, each with its 95% bootstrap interval (paired resamples)."""
    out: dict[str, dict[str, Any]] = {}
    n = len(next(iter(next(iter(per_patient.values())).values())))
    for method, values in per_patient.items():
        means = bootstrap_means(values, n, seed)
        medians = bootstrap_means(values, n, seed, statistic=np.nanmedian)
        out[method] = {
            metric: {
                "mean": float(np.nanmean(v)),
                "mean_ci95": means[metric],
                "median": float(np.nanmedian(v)),
                "median_ci95": medians[metric],
            }
            for metric, v in values.items()
        }
    return out


def agreement(
    fit: Fit,
    X: np.ndarray,
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    categorical: Sequence[bool],
    n_patients: int = 60,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Per-patient agreement of KernelSHAP, LIME and the random baseline with exact SHAP, cross-fitted.

    Every patient is explained by the model of the fold that held it out (``fit`` on the other folds'
    rows), so no explanation comes from a model that trained on that patient.

    Returns ``{"n", "classes" (count per outcome), "folds_used", "methods": {method: {metric: {...},
    "seconds_per_patient"}}, "exact_seconds_per_patient"}``.
    """
    settings = settings or Settings()
    rows = held_out_patients(y, splits, n_patients, settings.seed)
    per_patient: dict[str, dict[str, list[float]]] = {m: {k: [] for k in METRICS} for m in METHODS}
    seconds: dict[str, list[float]] = {m: [] for m in ("exact", "kernel_shap", "lime")}
    used, done, total = 0, 0, sum(len(r) for r in rows)
    with single_threaded():
        for (train, _test), chosen in zip(splits, rows):
            if not len(chosen):
                continue
            used += 1
            model = fit(X[train], y[train])
            values, fold_seconds = explain_patients(model, X[chosen], categorical, settings, stream=used)
            for method in METHODS:
                for i in range(len(chosen)):
                    for metric, value in compare(values["exact"][i], values[method][i]).items():
                        per_patient[method][metric].append(value)
            for method, s in fold_seconds.items():
                seconds[method].extend([s] * len(chosen))
            done += len(chosen)
            if progress is not None:
                progress(done, total)
    arrays = {m: {k: np.asarray(v) for k, v in metrics.items()} for m, metrics in per_patient.items()}
    methods = summarise(arrays, settings.seed)
    for method in ("kernel_shap", "lime"):
        methods[method]["seconds_per_patient"] = float(np.mean(seconds[method]))
    picked = np.concatenate(rows)
    return {
        "n": int(len(picked)),
        "positives": int(np.asarray(y)[picked].sum()),
        "folds_used": used,
        "methods": methods,
        "exact_seconds_per_patient": float(np.mean(seconds["exact"])),
    }


def global_importance(model: RiskModel, X: np.ndarray) -> np.ndarray:
    """Mean |exact SHAP| per feature over the rows ``X``, (F,), log-odds."""
    return np.mean(np.abs(model.explain(X)[1]), axis=0)


def _ranks(importance: np.ndarray) -> np.ndarray:
    """Rank of each feature, 1 = most important; tied features share the best rank (features a tree never
    uses all have importance 0, and no order among them should be read)."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(importance), method="min")


def stability(
    fit: Fit,
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    held_out: np.ndarray,
    names: Sequence[str],
    refits: int = 30,
    seed: int = 0,
) -> dict[str, Any]:
    """Global importance over ``refits`` bootstrap refits on the ``train`` rows, read on the ``held_out`` rows.

    The reference is the same recipe fitted on all ``train`` rows. Returns per feature the reference
    importance and rank, the median and 95% interval of importance and of rank over refits and the share
    of refits that put it in the top ``TOP_K``; per refit, the rank correlation with the reference
    (median and interval), beside a random ranking's; the share of refits whose top-``TOP_K`` set equals
    the reference's, beside chance.
    """
    rng = np.random.default_rng(seed)
    with single_threaded():
        reference = global_importance(fit(X[train], y[train]), X[held_out])
        draws = []
        for _refit in range(refits):
            # Each drawn patient once: a duplicate would sit on both sides of the recipe's inner CV and
            # weaken its chosen regularisation, inflating every refit's importances against the reference.
            rows = np.unique(train[rng.integers(0, len(train), len(train))])
            draws.append(global_importance(fit(X[rows], y[rows]), X[held_out]))
    importance = np.stack(draws)  # (B, F)
    ranks = np.stack([_ranks(v) for v in importance])
    k = min(TOP_K, len(names))
    reference_ranks = _ranks(reference)
    top_ref = set(np.flatnonzero(reference_ranks <= k).tolist())
    in_top = ranks <= k
    correlations = np.asarray([rank_corr(v, reference) for v in importance])
    random_corr = np.asarray([rank_corr(rng.permutation(reference), reference) for _ in range(max(refits, 100))])
    first = int(np.argmax(reference))
    features = [
        {
            "name": name,
            "reference_importance": float(reference[j]),
            "reference_rank": int(reference_ranks[j]),
            "importance": float(np.median(importance[:, j])),
            "importance_ci95": percentile_interval(importance[:, j]),
            "rank": float(np.median(ranks[:, j])),
            "rank_ci95": percentile_interval(ranks[:, j]),
            "top_share": float(in_top[:, j].mean()),
        }
        for j, name in ((j, names[j]) for j in np.argsort(reference_ranks, kind="stable"))
    ]
    return {
        "refits": refits,
        "train_rows": int(len(train)),
        "held_out_rows": int(len(held_out)),
        "features": features,
        "rank_corr": {"median": float(np.median(correlations)), "ci95": percentile_interval(correlations)},
        "random_rank_corr": {"median": float(np.median(random_corr)), "ci95": percentile_interval(random_corr)},
        "top_unchanged": float(np.mean([set(np.flatnonzero(r <= k).tolist()) == top_ref for r in ranks])),
        "top_chance": 1.0 / math.comb(len(names), k),
        "top_feature": names[first],
        "top_feature_share": float(np.mean(ranks[:, first] == 1)),
    }
