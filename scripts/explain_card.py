"""Measure how faithful each explanation of a bundled image model is, on films it did NOT train on.

    nice -n 10 .venv/bin/python scripts/explain_card.py --model chest_xray:2 [--films 60] [--data DIR]

The films are the version's own held-out patients: its training folder (meta ``training.data``) split
exactly as training split it (``datasets.split_by_patient`` at the stored validation fraction and seed,
then ``training.split_validation``: the half of the validation patients that chose neither the epoch,
the temperature nor the threshold). ``--films`` of them (an equal share per class, seeded) go through
``core.services.explanations.evaluate_films`` (the verb behind ``python -m core explain-eval``) and the
result is written to the model folder as ``explanations.json`` (no file names), which the card's
"Explanations" section reads. Refuses a version whose meta does not say it kept held-out films apart.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out_films(ref, data: Path) -> list[tuple[Path, int]]:
    from core.imaging import datasets, training

    config = ref.meta["training"]["config"]
    dataset = datasets.scan_labeled_folder(data, config.get("max_images_per_class"), config["seed"])
    _train, val_idx = datasets.split_by_patient(dataset, config["validation_fraction"], config["seed"])
    _tune, hold_idx = training.split_validation(dataset, val_idx, config["seed"])
    expected = ref.meta["training"].get("holdout_images")
    if not expected or expected != len(hold_idx) or len(hold_idx) == len(val_idx):
        sys.exit(f"{ref.spec}: its held-out films cannot be rebuilt here ({len(hold_idx)} vs meta {expected}); refusing")
    return [(dataset.files[i], int(dataset.labels[i])) for i in hold_idx]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chest_xray:2")
    parser.add_argument("--films", type=int, default=60)
    parser.add_argument("--data", default=None, help="the training folder (default: the meta's, from the repo root)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every method)")
    parser.add_argument("--merge", action="store_true",
                        help="add these methods to the stored explanations.json (each method keeps its own n)")
    args = parser.parse_args()

    import numpy as np

    from core.models import registry
    from core.services.explanations import evaluate_films

    ref = registry.resolve(args.model)
    data = Path(args.data or ref.meta["training"]["data"])
    films = held_out_films(ref, data)
    rng = np.random.default_rng(args.seed)
    labels = np.asarray([label for _p, label in films])
    chosen: list[int] = []
    for k, label in enumerate(np.unique(labels)):
        members = np.flatnonzero(labels == label)
        share = (args.films - len(chosen)) // (len(np.unique(labels)) - k)
        chosen.extend(sorted(rng.choice(members, size=min(share, len(members)), replace=False).tolist()))
    started = time.monotonic()
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    result = evaluate_films([films[i] for i in chosen], ref.spec, methods,
                            progress=lambda d, n: print(f"{d}/{n} films", file=sys.stderr, flush=True), seed=args.seed)
    for summary in result["methods"].values():
        summary.pop("per_film", None)
        summary["n"] = result["n"]
    result.pop("disagreement", None)  # per-film rows name films; the card needs the summaries only
    result.pop("skipped", None)
    from core.imaging.methods import METHODS

    result.update(
        labels={m: METHODS[m] for m in result["methods"]},
        command=f"python scripts/explain_card.py --model {ref.spec} --films {args.films} --seed {args.seed}"
                + (f" --methods {args.methods}" if args.methods else ""),
        films_from="held-out patients of the version's own training split (chose neither epoch, temperature nor threshold)",
        held_out_total=len(films), seconds=round(time.monotonic() - started, 1), measured=time.strftime("%Y-%m-%d"),
    )
    out = ref.path / "explanations.json"
    if args.merge and out.is_file():
        stored = json.loads(out.read_text())
        for method, summary in result["methods"].items():
            stored["methods"][method] = {**summary, "command": result["command"]}
            stored["labels"][method] = result["labels"][method]
        stored["seconds"] = round(stored.get("seconds", 0) + result["seconds"], 1)
        result = stored
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({result['n']} films, {result['seconds']} s)")


if __name__ == "__main__":
    main()
