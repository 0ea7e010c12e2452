"""Two or more registered image versions on the same held-out patients: which ranks better, clean and shifted.

The versions must share their training folder's patient-wise split (same seed and validation fraction),
so their held-out films are the same films; the script rebuilds that split the way training did
(``holdout.split_validation``) and refuses when a version's recorded held-out count differs. Each
version is then measured with ``scripts/ablate_chest.py``'s measures: clean AUC, AUC pooled over the
simulated acquisition changes, the worst change, and, against the first version named, the paired
bootstrap difference of the pooled AUC (films x changes resampled together); plus accuracy, sensitivity
and specificity at each version's own stored threshold on the clean held-out films.

    python scripts/compare_versions.py --data ../shared/data/chest_xray/train \\
        --models chest_xray:3 chest_xray:4 --out docs/chest_v4_vs_v3

Writes OUT.json and OUT.md.
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

from core.errors import InvalidDatasetError  # noqa: E402
from core.imaging import datasets, holdout  # noqa: E402
from core.imaging.training import load_prepared  # noqa: E402
from core.models import registry  # noqa: E402
from core.models.metrics import binary_metrics  # noqa: E402


def split_of(ref: registry.ModelRef, data: Path) -> tuple[datasets.LabeledDataset, np.ndarray, np.ndarray]:
    """(dataset, tuning indices, held-out indices) exactly as ``ref``'s training drew them."""
    try:
        return holdout.recorded_split(ref.meta, data)
    except InvalidDatasetError as error:
        sys.exit(f"{error}; refusing")


def films(dataset: datasets.LabeledDataset, tune: np.ndarray, hold: np.ndarray, size: int) -> dict:
    """The tuning and held-out films decoded at ``size``, in ``ablate_chest.evaluate``'s layout."""
    order = np.concatenate([tune, hold])
    _, resized, ok, skipped = load_prepared([dataset.files[i] for i in order], size, holdout.RECIPE)
    if not ok.all():
        sys.exit(f"{len(skipped)} held-out or tuning films no longer decode; refusing")
    return {
        "resized": resized,
        "labels": dataset.labels[order],
        "tune": np.arange(len(tune)),
        "hold": np.arange(len(tune), len(order)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="the versions' training folder")
    parser.add_argument("--models", required=True, nargs="+", help="NAME:VERSION ...; the first is the reference")
    parser.add_argument("--out", required=True, type=Path, help="OUT.json and OUT.md are written")
    args = parser.parse_args()
    from core.imaging.classifier import load_classifier

    refs = [registry.resolve(spec) for spec in args.models]
    splits = [split_of(ref, args.data) for ref in refs]
    if any(not np.array_equal(s[2], splits[0][2]) for s in splits):
        sys.exit("the versions were trained on different patient-wise splits; their held-out films differ")
    dataset, tune, hold = splits[0]
    results, reference, by_size = {}, None, {}
    for ref in refs:
        size = int(ref.meta["input"]["size"])
        d = by_size.setdefault(size, films(dataset, tune, hold, size))
        started = time.monotonic()
        classifier = load_classifier(ref.spec)
        measured = ablate_chest.evaluate(classifier.model, d, False, reference)
        pooled, clean = measured.pop("_pooled_scores"), measured.pop("_clean_scores")
        reference = pooled if reference is None else reference
        y_hold = d["labels"][d["hold"]] == 1
        at = binary_metrics(y_hold, clean, float(ref.meta["threshold"]))
        measured["stored_threshold"] = {"threshold": ref.meta["threshold"]} | {
            k: at[k] for k in ("accuracy", "sensitivity", "specificity")
        }
        measured["seconds"] = round(time.monotonic() - started, 1)
        results[ref.spec] = measured
        print(f"{ref.spec}: AUC {measured['auc_clean']:.4f}, shifted {measured['auc_shifted']:.4f}, "
              f"worst {measured['worst_change']} {measured['auc_worst']:.4f}", file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": " ".join(["python", *sys.argv]), "held_out_films": int(len(hold)),
               "tuning_films": int(len(tune)), "results": results}
    args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=float))
    args.out.with_suffix(".md").write_text(table(payload))
    print(table(payload))
    return 0


def table(payload: dict) -> str:
    lines = [
        f"`{payload['command']}`: {payload['held_out_films']} held-out films (patients that chose nothing); "
        "ΔAUC shifted is against the first version, paired bootstrap over films x changes (500 resamples).",
        "",
        "| version | AUC clean | AUC shifted | ΔAUC shifted [95% CI] | worst change (AUC) | threshold | "
        "accuracy | sensitivity | specificity |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec, m in payload["results"].items():
        delta = m.get("auc_shifted_vs_reference")
        delta_text = f"{delta[0]:+.4f} [{delta[1]:+.4f}, {delta[2]:+.4f}]" if delta else "reference"
        s = m["stored_threshold"]
        lines.append(
            f"| {spec} | {m['auc_clean']:.4f} | {m['auc_shifted']:.4f} | {delta_text} | "
            f"{m['worst_change']} ({m['auc_worst']:.4f}) | {s['threshold']:.3f} | {s['accuracy']:.3f} | "
            f"{s['sensitivity']:.3f} | {s['specificity']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
