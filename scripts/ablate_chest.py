"""Ablation of the chest model's robustness ingredients on a patient-wise split of the training folder.

Each configuration is trained with the product's own code (``core.imaging.fitting``) on the same
patients, then measured on held-out patients that took no part in training, early stopping,
temperature or threshold: clean AUC, AUC over simulated acquisition changes, accuracy at the
threshold each rule picks on the tuning patients, leave-one-change-out accuracy (threshold chosen
without that change, scored on it: the nearest thing to "a site it has not seen" this folder holds),
and calibration (ECE) before and after temperature scaling. Eval-only ingredients (snapshot
ensembles, test-time augmentation, temperature, threshold rule) are measured on every run.

    python scripts/ablate_chest.py --data ../shared/data/chest_xray/train --size 128 --epochs 10 \
        --out docs/ablation

Writes ``OUT.json`` and ``OUT.md`` (a table per question), appending each run as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.imaging import datasets, fitting, network as network_mod, preprocessing  # noqa: E402
from core.imaging.perturbations import PERTURBATIONS, perturb  # noqa: E402
from core.imaging.holdout import RECIPE, split_validation  # noqa: E402
from core.imaging.training import load_prepared  # noqa: E402
from core.models import calibration  # noqa: E402
from core.models.metrics import auc_score, binary_metrics, paired_auc_difference  # noqa: E402
from core.models.thresholds import THRESHOLD_RULES, rule_threshold  # noqa: E402

CONFIGS = {
    "baseline": dict(augmentation="standard", mixup=0.0, snapshots=0),
    "strong_aug": dict(augmentation="strong", mixup=0.0, snapshots=0),
    "strong_aug+mixup": dict(augmentation="strong", mixup=0.2, snapshots=0),
    "strong_aug+snapshots": dict(augmentation="strong", mixup=0.0, snapshots=3),
    "strong_aug+snapshots": dict(augmentation="strong", mixup=0.0, snapshots=3),
    "strong_aug+mixup+snapshots": dict(augmentation="strong", mixup=0.2, snapshots=3),
}
CACHE_SIZE = 224


def load(data: Path, size: int, cache: Path, seed: int) -> dict[str, np.ndarray]:
    """Films decoded once per size (cached), the patient-wise train / tuning / held-out indices."""
    dataset = datasets.scan_labeled_folder(data, None, seed)
    cached = cache / f"chest_{CACHE_SIZE}.npz"  # decoding dominates: decode once, shrink per run
    if cached.is_file():
        arrays = dict(np.load(cached))
    else:
        _, resized, ok, _ = load_prepared(dataset.files, CACHE_SIZE, RECIPE)
        arrays = {"resized": resized.astype(np.float16), "ok": ok}
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cached, **arrays)
    dataset = dataset.keep(arrays["ok"])
    resized = arrays["resized"][arrays["ok"]].astype(np.float32)
    if size != CACHE_SIZE:
        resized = np.stack([preprocessing.resize_square(r, size) for r in resized])
    train_idx, val_idx = datasets.split_by_patient(dataset, 0.2, seed)
    tune_idx, hold_idx = split_validation(dataset, val_idx, seed)
    return {"resized": resized, "labels": dataset.labels, "train": train_idx, "tune": tune_idx, "hold": hold_idx}


def inputs(resized: np.ndarray) -> np.ndarray:
    return np.stack([preprocessing.finish(r, RECIPE) for r in resized])[..., None]


def tta_views(resized: np.ndarray) -> list[np.ndarray]:
    """Test-time views: the film, a 6% tighter crop, and +-4 degree rotations (all within training jitter)."""
    from scipy import ndimage

    h = resized.shape[1]
    cut = int(h * 0.03)
    tight = ndimage.zoom(resized[:, cut:h - cut, cut:h - cut], (1, h / (h - 2 * cut), h / (h - 2 * cut)), order=1)[:, :h, :h]
    rotate = [np.clip(ndimage.rotate(resized, a, axes=(1, 2), reshape=False, order=1), 0, 1) for a in (-4, 4)]
    return [resized, tight, *rotate]


def score(model, resized: np.ndarray, tta: bool) -> np.ndarray:
    """Positive-class probability (N,), averaged over test-time views when ``tta``."""
    views = tta_views(resized) if tta else [resized]
    return np.mean([model.predict(inputs(v), batch_size=128, verbose=0)[:, 1] for v in views], axis=0)


def shifted(model, resized: np.ndarray, tta: bool) -> dict[str, np.ndarray]:
    return {kind: score(model, perturb(resized, kind, seed=i), tta) for i, kind in enumerate(PERTURBATIONS)}


def evaluate(model, d: dict[str, np.ndarray], tta: bool, reference: np.ndarray | None) -> dict:
    """Every held-out measure of one model (see the module docstring)."""
    y_tune, y_hold = d["labels"][d["tune"]] == 1, d["labels"][d["hold"]] == 1
    tune, hold = shifted(model, d["resized"][d["tune"]], tta), shifted(model, d["resized"][d["hold"]], tta)
    kinds = list(PERTURBATIONS)
    pooled_hold = np.concatenate([hold[k] for k in kinds])
    pooled_y = np.concatenate([y_hold] * len(kinds))
    out = {"auc_clean": auc_score(y_hold, hold["clean"]), "auc_shifted": auc_score(pooled_y, pooled_hold),
           "auc_worst": min(auc_score(y_hold, hold[k]) for k in kinds),
           "worst_change": min(kinds, key=lambda k: auc_score(y_hold, hold[k]))}
    if reference is not None:
        out["auc_shifted_vs_reference"] = paired_auc_difference(pooled_y, reference, pooled_hold, n_resamples=500)
    for rule in THRESHOLD_RULES:
        t = rule_threshold(rule, np.stack([y_tune] * len(kinds)), np.stack([tune[k] for k in kinds]))
        at = binary_metrics(y_hold, hold["clean"], t)
        loco = []
        for left_out in kinds:
            rest = [k for k in kinds if k != left_out]
            t_k = rule_threshold(rule, np.stack([y_tune] * len(rest)), np.stack([tune[k] for k in rest]))
            loco.append(binary_metrics(y_hold, hold[left_out], t_k))
        out[rule] = {"threshold": t, **{k: at[k] for k in ("accuracy", "sensitivity", "specificity")},
                     "loco_accuracy": float(np.mean([m["accuracy"] for m in loco])),
                     "loco_specificity": float(np.mean([m["specificity"] for m in loco])),
                     "loco_min_sensitivity": float(min(m["sensitivity"] for m in loco))}
    out["_pooled_scores"], out["_clean_scores"] = pooled_hold, hold["clean"]
    return out


def calibration_row(model_t1, model_t, d) -> dict:
    y_hold = d["labels"][d["hold"]] == 1
    raw, scaled = score(model_t1, d["resized"][d["hold"]], False), score(model_t, d["resized"][d["hold"]], False)
    return {"ece_raw": calibration.expected_calibration_error(y_hold, raw),
            "ece_scaled": calibration.expected_calibration_error(y_hold, scaled)}


def train(config: dict, d: dict, size: int, epochs: int, seed: int) -> tuple[list, float]:
    from core.imaging.tfsetup import keras, tf

    keras.utils.set_random_seed(seed)
    settings = fitting.FitSettings(epochs, 32, 2e-3, 7, seed, None, **config)
    steps = fitting.steps_per_epoch(len(d["train"]), 32)
    network, trainer = fitting.compile_trainer(settings, size, 2, tf.distribute.get_strategy(), steps)
    x_train, y_train = inputs(d["resized"][d["train"]]), d["labels"][d["train"]]
    x_tune, y_tune = inputs(d["resized"][d["tune"]]), d["labels"][d["tune"]]
    snapshots: list = []
    started = time.monotonic()
    fitting.fit(trainer, settings, 2, (x_train, y_train), (x_tune, y_tune), 1, None, None, network, snapshots)
    return (snapshots or [network.get_weights()]), time.monotonic() - started


def run(name: str, d: dict, args, results: dict) -> None:
    members, seconds = train(CONFIGS[name], d, args.size, args.epochs, args.seed)
    x_tune, y_tune = inputs(d["resized"][d["tune"]]), d["labels"][d["tune"]]
    baseline = results.get("baseline", {}).get("last", {}).get("_pooled_scores")
    variants = {"last": members[-1:]}
    if len(members) > 1:
        variants.update({f"ensemble_{k}": members[-k:] for k in range(2, len(members) + 1)})
    entry: dict = {"config": CONFIGS[name], "train_seconds": round(seconds, 1)}
    for label, chosen in variants.items():
        raw = network_mod.build_ensemble(args.size, 2, chosen, 1.0)
        t = calibration.fit_temperature(raw.predict(x_tune, batch_size=128, verbose=0), y_tune)
        model = network_mod.build_ensemble(args.size, 2, chosen, t)
        # The reference: the baseline for a run's last snapshot; that last snapshot for its ensembles and TTA.
        reference = baseline if label == "last" else entry["last"]["_pooled_scores"]
        entry[label] = {"temperature": t, **evaluate(model, d, False, reference), **calibration_row(raw, model, d)}
        if label == "last" and name == "baseline" or label == list(variants)[-1]:
            entry[label + "+tta"] = evaluate(model, d, True, entry[label]["_pooled_scores"])
    results[name] = entry


def write(results: dict, out: Path, meta: dict) -> None:
    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items() if not k.startswith("_")}
        return o

    out.with_suffix(".json").write_text(json.dumps({"setup": meta, "runs": clean(results)}, indent=1, default=float))
    if "_pooled_scores" in results.get("baseline", {}).get("last", {}):
        np.save(out.with_suffix(".baseline.npy"), results["baseline"]["last"]["_pooled_scores"])
    lines = ["Reference for ΔAUC (paired bootstrap over held-out films x changes): the baseline's model for a run's "
             "last snapshot; that run's last snapshot for its ensembles; the same model without TTA for +tta.", "",
             f"Held-out patients: {meta['hold']} films; tuning patients: {meta['tune']}; training: {meta['train']}; "
             f"{meta['size']} px, {meta['epochs']} epochs, seed {meta['seed']}.", "",
             "| run | variant | T | AUC clean | AUC shifted | ΔAUC shifted vs reference [95% CI] | worst change (AUC) | "
             "ECE raw → scaled | rule | threshold | acc | sens | spec | leave-one-change-out acc / spec / min sens |",
             "|" + "---|" * 14]
    for name, entry in results.items():
        for variant, m in entry.items():
            if not isinstance(m, dict) or "auc_clean" not in m:
                continue
            delta = m.get("auc_shifted_vs_reference")
            delta_text = f"{delta[0]:+.4f} [{delta[1]:+.4f}, {delta[2]:+.4f}]" if delta else "—"
            ece = f"{m['ece_raw']:.3f} → {m['ece_scaled']:.3f}" if "ece_raw" in m else "—"
            for rule in THRESHOLD_RULES:
                r = m[rule]
                lines.append(f"| {name} | {variant} | {m.get('temperature', float('nan')):.2f} | {m['auc_clean']:.4f} | "
                             f"{m['auc_shifted']:.4f} | {delta_text} | {m['worst_change']} ({m['auc_worst']:.4f}) | {ece} | "
                             f"{rule} | {r['threshold']:.3f} | {r['accuracy']:.3f} | {r['sensitivity']:.3f} | "
                             f"{r['specificity']:.3f} | {r['loco_accuracy']:.3f} / {r['loco_specificity']:.3f} / "
                             f"{r['loco_min_sensitivity']:.3f} |")
        lines.append(f"| {name} | training time {entry['train_seconds']:.0f} s | | | | | | | | | | | | |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--runs", nargs="*", default=list(CONFIGS))
    parser.add_argument("--cache", type=Path, default=Path("var/cache"))
    parser.add_argument("--out", type=Path, default=Path("docs/ablation"))
    parser.add_argument("--resume", action="store_true", help="keep the runs already in OUT.json (same setup)")
    args = parser.parse_args()
    d = load(args.data, args.size, args.cache, args.seed)
    meta = {"size": args.size, "epochs": args.epochs, "seed": args.seed,
            **{k: int(len(d[k])) for k in ("train", "tune", "hold")}}
    results: dict = {}
    earlier = args.out.with_suffix(".json")
    if args.resume and earlier.is_file():  # runs measured by an earlier invocation with the same setup
        stored = json.loads(earlier.read_text())
        if stored["setup"] == meta:
            results = stored["runs"]
            if args.out.with_suffix(".baseline.npy").is_file():
                results["baseline"]["last"]["_pooled_scores"] = np.load(args.out.with_suffix(".baseline.npy"))
    for name in args.runs:
        print(f"{time.strftime('%H:%M:%S')} {name} ...", flush=True)
        run(name, d, args, results)
        write(results, args.out, meta)
        print(f"{time.strftime('%H:%M:%S')} {name} done in {results[name]['train_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
