"""Benchmark: per-patient exact SHAP explanation vs a model-agnostic SHAP explainer (KernelExplainer).

Run: ``python bench/bench_risk.py [--model diabetes_risk] [--baseline-patients 20]``
Prints a table of median / p95 milliseconds per patient and the speed-up, plus how far the sampled
baseline's values are from the exact ones (log-odds). The target is < 50 ms median per patient.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.tabular.model import single_threaded  # noqa: E402
from core.tabular.predictor import load_risk_model  # noqa: E402

def per_patient_ms(fn, rows: np.ndarray) -> list[float]:
    """Milliseconds of ``fn(row[None])`` for each row, one patient at a time."""
    times = []
    for row in rows:
        start = time.perf_counter()
        fn(row[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(times: list[float]) -> tuple[float, float]:
    return statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="diabetes_risk")
    parser.add_argument("--baseline-patients", type=int, default=10)
    parser.add_argument("--background", type=int, default=0,
                        help="background rows for the KernelExplainer (0 = all training rows, the exact explainer's background)")
    args = parser.parse_args()

    import shap

    predictor = load_risk_model(args.model)
    model = predictor.model
    X = model.background_  # the model's own training rows (N, F), NaN for not measured
    with single_threaded():
        model.explain(X[:1])  # build the explainer once, as the page does (cached with the model)
        exact = per_patient_ms(model.explain, X)
        full = per_patient_ms(lambda row: predictor.predict(
            [predictor.schema.from_matrix_row(row[0])]), X[:200])

        rng = np.random.default_rng(0)
        size = args.background or len(X)
        background = X if size >= len(X) else X[rng.choice(len(X), size, replace=False)]
        kernel = shap.KernelExplainer(model.decision_function, background)
        subset = X[: args.baseline_patients]
        kernel_values = []

        def kernel_one(row: np.ndarray) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kernel_values.append(np.asarray(kernel.shap_values(row, silent=True)).reshape(-1))

        baseline = per_patient_ms(kernel_one, subset)
    _base, exact_values = model.explain(subset)
    gap = np.abs(np.array(kernel_values) - exact_values)

    e_med, e_p95 = summary(exact)
    f_med, f_p95 = summary(full)
    k_med, k_p95 = summary(baseline)
    print(f"model {predictor.spec} ({model.family}), {predictor.meta['explanation']['explainer']}")
    print()
    print("| explainer | patients | median ms/patient | p95 ms/patient | ratio vs baseline |")
    print("|---|---:|---:|---:|---:|")
    print(f"| exact SHAP, explanation only | {len(exact)} | {e_med:.2f} | {e_p95:.2f} | {k_med / e_med:,.0f}x faster |")
    print(f"| exact SHAP + risk + bootstrap interval (predict) | {len(full)} | {f_med:.2f} | {f_p95:.2f} | {k_med / f_med:,.0f}x faster |")
    print(f"| KernelExplainer (model-agnostic, {len(background)} background rows, nsamples auto) | {len(baseline)} | {k_med:.1f} | {k_p95:.1f} | 1x (baseline) |")
    print()
    print(f"KernelExplainer vs exact: mean |difference| {gap.mean():.1e}, max {gap.max():.1e} log-odds "
          f"(exact values are the reference; with the same full background the gap is only numerical)")
    print(f"target: median < 50 ms per patient -> {'PASS' if e_med < 50 else 'FAIL'}")


if __name__ == "__main__":
    main()
