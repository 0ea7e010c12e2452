"""Benchmark every bundled risk model: training time, and per-patient exact SHAP against KernelExplainer.

Run: ``python bench/bench_risk.py [--patients 50] [--background 50] [--no-train] [--models diabetes_risk,...]``

For each bundled risk model (diabetes_risk, thyroid_risk, hypertension_risk):

* training: ``core.tabular.training.train_risk_model`` with the arguments of the model's own recorded
  ``python -m core train-risk`` command, on the real table in ../shared/data, into a throw-away
  LUCIDDX_HOME (the same code path as the bundled command; 10-fold CV of every family, bootstrap refits);
* explanation: the median milliseconds per patient of our exact explainer (linear or tree SHAP, one patient
  at a time, explainer built once as the page does) and of ``shap.KernelExplainer`` (model-agnostic,
  ``nsamples="auto"``) on the same patients, with a background of ``--background`` training rows sampled
  at random (seed 0); the ratio is Kernel median / exact median. Patients are sampled from the model's own
  training rows (seed 1). The Kernel values are also compared with the exact ones (with a sampled
  background they differ by more than rounding: it explains against a different baseline).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.tabular.model import single_threaded  # noqa: E402
from core.tabular.predictor import load_risk_model  # noqa: E402

MODELS = ("diabetes_risk", "thyroid_risk", "hypertension_risk")


def per_patient_ms(fn, rows: np.ndarray) -> list[float]:
    """Milliseconds of ``fn(row[None])`` for each row, one patient at a time."""
    times = []
    for row in rows:
        start = time.perf_counter()
        fn(row[None, :])
        times.append((time.perf_counter() - start) * 1000)
    return times


def training_arguments(command: str) -> dict[str, Any]:
    """The recorded ``python -m core train-risk ...`` command -> train_risk_model's keyword arguments."""
    args = shlex.split(command)
    options = {a.lstrip("-"): v for a, v in zip(args, args[1:]) if a.startswith("--")}
    csv = Path(options["csv"])
    out: dict[str, Any] = {"csv_path": csv if csv.is_absolute() else ROOT / csv, "target": options.get("target"),
                           "positive": options.get("positive"), "negative": options.get("negative")}
    if "folds" in options:
        out["folds"] = int(options["folds"])
    if "families" in options:
        out["families"] = options["families"].split(",")
    return out


def time_training(name: str) -> tuple[float, str]:
    """Seconds to train ``name`` again from its recorded command, in a temporary home; and the family chosen."""
    from core.tabular import training

    command = load_risk_model(name).meta["training"]["command"]
    kwargs = training_arguments(command)
    old = os.environ.get("LUCIDDX_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["LUCIDDX_HOME"] = home
        try:
            start = time.perf_counter()
            payload = training.train_risk_model(name=name, command=command, **kwargs)
            return time.perf_counter() - start, payload["family"]
        finally:
            if old is None:
                os.environ.pop("LUCIDDX_HOME", None)
            else:
                os.environ["LUCIDDX_HOME"] = old


def time_explanations(name: str, patients: int, background_rows: int) -> dict[str, Any]:
    """Median ms/patient of the exact explainer and of KernelExplainer on the same sampled patients."""
    import shap

    predictor = load_risk_model(name)
    model = predictor.model
    X = model.background_  # the model's own training rows (N, F), NaN for not measured
    subset = X[np.random.default_rng(1).choice(len(X), min(patients, len(X)), replace=False)]
    background = X[np.random.default_rng(0).choice(len(X), min(background_rows, len(X)), replace=False)]
    with single_threaded():
        model.explain(X[:1])  # build the explainer once, as the page does (cached with the model)
        exact = per_patient_ms(model.explain, subset)
        kernel = shap.KernelExplainer(model.decision_function, background)
        values: list[np.ndarray] = []

        def kernel_one(row: np.ndarray) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                values.append(np.asarray(kernel.shap_values(row, silent=True)).reshape(-1))

        baseline = per_patient_ms(kernel_one, subset)
    _base, exact_values = model.explain(subset)
    return {"spec": predictor.spec, "family": model.family, "features": X.shape[1], "patients": len(subset),
            "background": len(background), "exact_ms": statistics.median(exact),
            "kernel_ms": statistics.median(baseline),
            "gap": float(np.mean(np.abs(np.array(values) - exact_values)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated (default: every bundled risk model)")
    parser.add_argument("--patients", type=int, default=50, help="patients explained per model (median over them)")
    parser.add_argument("--background", type=int, default=50, help="KernelExplainer background: sampled training rows")
    parser.add_argument("--no-train", action="store_true", help="skip the training timing")
    args = parser.parse_args()

    print(f"KernelExplainer: nsamples auto, background {args.background} randomly sampled training rows (seed 0); "
          f"patients: {args.patients} sampled training rows (seed 1); single-threaded; one patient per call")
    print()
    print("| model | family | features | training s | patients | exact median ms/patient | "
          "Kernel median ms/patient | Kernel / exact | mean abs(Kernel - exact) log-odds |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        trained = "skipped" if args.no_train else f"{time_training(name)[0]:.1f}"
        r = time_explanations(name, args.patients, args.background)
        print(f"| {r['spec']} | {r['family']} | {r['features']} | {trained} | {r['patients']} | {r['exact_ms']:.2f} | "
              f"{r['kernel_ms']:.1f} | {r['kernel_ms'] / r['exact_ms']:,.0f}x | {r['gap']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
