"""Does self-supervised pretraining on the training films help? Measured on held-out patients.

The trunk is pretrained by contrast (``core.imaging.pretraining``, SimCLR) on the films of the
training patients only, labels unused. Then, for every label budget (the full training split, and
subsets of 100, 300 and 1,000 labeled films from it), the same recipe is fitted twice, from a random
start and from the pretrained trunk, and both are measured on the same held-out patients
(``scripts/ablate_chest.py``'s split and measures: clean AUC, AUC pooled over the simulated
acquisition changes with its paired bootstrap difference, worst change, accuracy at each threshold
rule's cut on the tuning patients). A linear probe (logistic regression on frozen pooled features
of the labeled films, scored on the held-out films) says what the trunk knew before any fine-tuning.

    python scripts/measure_pretraining.py --data ../shared/data/chest_xray/train --size 128 \\
        --pretrain-epochs 40 --out docs/pretraining_runs

Writes OUT.json and OUT.md after every run. The recipes are the product's: the chest recipe (strong
augmentation, three cosine cycles) on the full split, the small-data recipe (standard augmentation,
plateau decay, early stopping on the tuning patients) on the subsets, as ``core.imaging.recipes``
would choose them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ablate_chest  # noqa: E402

from core.imaging import fitting, pretraining  # noqa: E402
from core.imaging import network as network_mod
from core.models.metrics import auc_score  # noqa: E402

RECIPES = {
    "chest": dict(augmentation="strong", snapshots=3, epochs=9, patience=7),
    "small": dict(augmentation="standard", snapshots=0, epochs=30, patience=7),
}


def labeled_subset(d: dict, n: int | None, seed: int) -> np.ndarray:
    """``n`` training films, stratified by class (all of them when ``n`` is None)."""
    train = d["train"]
    if n is None or n >= len(train):
        return train
    rng = np.random.default_rng(seed)
    labels = d["labels"][train]
    picked = []
    for k in np.unique(labels):
        members = train[labels == k]
        share = max(2, round(n * len(members) / len(train)))
        picked.append(rng.choice(members, size=min(share, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def fine_tune(d: dict, idx: np.ndarray, recipe: dict, size: int, seed: int, start: list | None):
    """(network, seconds): the product's fit of ``recipe`` on films ``idx``, from ``start`` or at random."""
    from core.imaging.tfsetup import keras, tf

    keras.utils.set_random_seed(seed)
    settings = fitting.FitSettings(
        recipe["epochs"], 32, 2e-3, recipe["patience"], seed, None, recipe["augmentation"], 0.0, recipe["snapshots"]
    )
    steps = fitting.steps_per_epoch(len(idx), 32)
    network, trainer = fitting.compile_trainer(settings, size, 2, tf.distribute.get_strategy(), steps, start)
    x_tune, y_tune = ablate_chest.inputs(d["resized"][d["tune"]]), d["labels"][d["tune"]]
    snapshots: list = []
    started = time.monotonic()
    fitting.fit(
        trainer, settings, 2, (ablate_chest.inputs(d["resized"][idx]), d["labels"][idx]), (x_tune, y_tune),
        1, None, None, network, snapshots,
    )
    if snapshots:
        network.set_weights(snapshots[-1])
    return network, time.monotonic() - started


def linear_probe(weights: list | None, d: dict, idx: np.ndarray, size: int, seed: int) -> float:
    """Held-out AUC of a logistic regression on the frozen pooled features of films ``idx``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from core.imaging.tfsetup import keras

    keras.utils.set_random_seed(seed)
    network = network_mod.build_network(size, 2)
    if weights is not None:
        network.set_weights(weights)
    encoder = keras.Model(network.inputs, network.get_layer(network_mod.FEATURES_LAYER).output)

    def features(rows: np.ndarray) -> np.ndarray:
        return encoder.predict(ablate_chest.inputs(d["resized"][rows]), batch_size=128, verbose=0)

    scaler = StandardScaler().fit(features(idx))
    probe = LogisticRegression(C=0.1, max_iter=2000, class_weight="balanced")
    probe.fit(scaler.transform(features(idx)), d["labels"][idx])
    held = probe.predict_proba(scaler.transform(features(d["hold"])))[:, 1]
    return auc_score(d["labels"][d["hold"]] == 1, held)


def pretrained_weights(d: dict, args) -> tuple[list, dict]:
    """The contrastive trunk (cached in ``args.cache`` per size, epochs and seed) and its record."""
    cached = args.cache / f"simclr_{args.size}_{args.pretrain_epochs}_{args.seed}.npz"
    meta = cached.with_suffix(".json")
    if cached.is_file() and meta.is_file():
        stored = np.load(cached)
        return [stored[f"w{i}"] for i in range(len(stored.files))], json.loads(meta.read_text())
    x = ablate_chest.inputs(d["resized"][d["train"]])
    started = time.monotonic()

    def say(event: dict) -> None:
        if event["event"] == "pretrain_epoch":
            print(f"  pretraining epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.3f}, "
                  f"{event['images_per_second']:.0f} films/s", flush=True)

    weights, losses = pretraining.pretrain(
        x, 2, args.size, pretraining.PretrainSettings(args.pretrain_epochs, 64, 2e-3, args.seed), say
    )
    record = {"films": int(len(x)), "epochs": args.pretrain_epochs, "loss": losses,
              "seconds": round(time.monotonic() - started, 1)}
    np.savez(cached, **{f"w{i}": w for i, w in enumerate(weights)})
    meta.write_text(json.dumps(record))
    return weights, record


def own_pretraining(d: dict, idx: np.ndarray, args, seed: int) -> list:
    """A trunk pretrained by contrast on the labeled films ``idx`` alone (no larger pool of films)."""
    weights, _losses = pretraining.pretrain(
        ablate_chest.inputs(d["resized"][idx]), 2, args.size,
        pretraining.PretrainSettings(args.pretrain_epochs, 64, 2e-3, seed),
    )
    return weights


def write(results: dict, out: Path) -> None:
    out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float))
    s = results["setup"]
    lines = [
        f"Held-out patients: {s['hold']} films; tuning: {s['tune']}; training patients: {s['train']} films "
        f"(all of them pretrained the trunk, labels unused: {s['pretrain']['epochs']} epochs, "
        f"{s['pretrain']['seconds']:.0f} s, loss {s['pretrain']['loss'][0]:.2f} → {s['pretrain']['loss'][-1]:.2f}); "
        f"{s['size']} px, seed {s['seed']}.",
        "",
        "| labeled films | draw | recipe | start | linear probe AUC | AUC clean | AUC shifted | ΔAUC shifted vs random start "
        "[95% CI] | worst change (AUC) | centred rule: acc / sens / spec | training s |",
        "|" + "---|" * 11,
    ]
    for run in results["runs"]:
        delta = run.get("auc_shifted_vs_reference")
        c = run["centred-youden"]
        lines.append(
            f"| {run['labeled']} | {run['draw']} | {run['recipe']} | {run['start']} | {run['probe_auc']:.4f} | {run['auc_clean']:.4f} | "
            f"{run['auc_shifted']:.4f} | "
            + (f"{delta[0]:+.4f} [{delta[1]:+.4f}, {delta[2]:+.4f}]" if delta else "—")
            + f" | {run['worst_change']} ({run['auc_worst']:.4f}) | {c['accuracy']:.3f} / {c['sensitivity']:.3f} / "
            f"{c['specificity']:.3f} | {run['train_seconds']:.0f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--budgets", nargs="*", default=["100", "300", "1000", "all"])
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--repeats", type=int, default=2, help="draws of each labeled subset (the full split: one)")
    parser.add_argument("--full-repeats", type=int, default=1, help="draws of the full split (other seeds of the fit)")
    parser.add_argument("--first-draw", type=int, default=1, help="start at this draw (earlier ones already measured)")
    parser.add_argument("--starts", nargs="*", default=["random", "pretrained"],
                        help="random; pretrained (on every training patient's film); own (on the labeled films only)")
    parser.add_argument("--cache", type=Path, default=Path("var/cache"))
    parser.add_argument("--out", type=Path, default=Path("docs/pretraining_runs"))
    args = parser.parse_args()
    d = ablate_chest.load(args.data, args.size, args.cache, args.seed)
    print(f"{time.strftime('%H:%M:%S')} pretraining ...", flush=True)
    weights, record = pretrained_weights(d, args)
    results: dict = {"setup": {"size": args.size, "seed": args.seed, "pretrain": record,
                               **{k: int(len(d[k])) for k in ("train", "tune", "hold")}}, "runs": []}
    for budget in args.budgets:
        n = None if budget == "all" else int(budget)
        recipe = "chest" if n is None else "small"
        # A subset's result depends on which films were drawn and on the start: each repeat draws anew.
        for repeat in range(args.first_draw - 1, args.repeats if n is not None else args.full_repeats):
            seed = args.seed + repeat
            idx = labeled_subset(d, n, seed)
            reference = None
            for start_name in args.starts:
                start = {"random": None, "pretrained": weights}.get(start_name)
                if start_name == "own":  # what a researcher's own upload allows: only the labeled films
                    start = own_pretraining(d, idx, args, seed)
                print(f"{time.strftime('%H:%M:%S')} {len(idx)} labeled films (draw {repeat + 1}), {start_name} start ...",
                      flush=True)
                network, seconds = fine_tune(d, idx, RECIPES[recipe], args.size, seed, start)
                measured = ablate_chest.evaluate(network, d, False, reference)
                pooled = measured.pop("_pooled_scores")
                reference = pooled if reference is None else reference
                results["runs"].append({"labeled": int(len(idx)), "draw": repeat + 1, "recipe": recipe,
                                        "start": start_name, "probe_auc": linear_probe(start, d, idx, args.size, seed),
                                        "train_seconds": round(seconds, 1), **measured})
            write(results, args.out)
            print(f"{time.strftime('%H:%M:%S')}   AUC {measured['auc_clean']:.4f}, shifted {measured['auc_shifted']:.4f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
