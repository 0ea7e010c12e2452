"""Measure how faithful each explanation of a bundled image model is, on films it did NOT train on.

    nice -n 10 .venv/bin/python scripts/explain_card.py --model chest_xray:2 [--films 60] [--data DIR]

The films are the version's own held-out patients: its training folder (meta ``training.data``) split
exactly as training split it (``datasets.split_by_patient`` at the stored validation fraction and seed,
then ``holdout.split_validation``: the half of the validation patients that chose neither the epoch,
the temperature nor the threshold). ``--films`` of them (an equal share per class, seeded) go through
``core.services.explanations.evaluate_films`` (the verb behind ``python -m core explain-eval``) and the
result is written to the model folder as ``explanations.json`` (no file names), which the card's
"Explanations" section reads. Refuses a version whose meta does not say it kept held-out films apart.

A risk model (``--model diabetes_risk:1``; ``--bundled-risk`` = the three bundled ones) goes through
``core.services.explanations.evaluate_risk_explanations``: its training table (meta ``training.data``)
is read again and checked against meta.json, each of ``--patients`` patients is explained by the model of
the version's own cross-validation fold that held it out (exact SHAP vs KernelSHAP vs LIME vs a shuffled
baseline), and ``--refits`` bootstrap refits measure how stable the global importance is::

    nice -n 10 .venv/bin/python scripts/explain_card.py --bundled-risk [--patients 60] [--refits 30]
    .venv/bin/python -m core.models.cards rebuild diabetes_risk:1 thyroid_risk:1 hypertension_risk:1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out_films(ref, data: Path) -> list[tuple[Path, int]]:
    from core.errors import InvalidDatasetError
    from core.imaging import holdout

    try:
        dataset, _tune, hold_idx = holdout.recorded_split(ref.meta, data)
    except InvalidDatasetError as error:
        sys.exit(f"{error}; refusing")
    return [(dataset.files[i], int(dataset.labels[i])) for i in hold_idx]


BUNDLED_RISK = ("diabetes_risk:1", "thyroid_risk:1", "hypertension_risk:1")


def explain_risk(ref, args: argparse.Namespace) -> None:
    """Measure a risk model's explanations on its held-out patients and write its explanations.json."""
    from core.services.explanations import evaluate_risk_explanations

    data = Path(args.data) if args.data else None
    result = evaluate_risk_explanations(
        ref.spec, args.patients, args.refits, data, args.seed,
        progress=lambda d, n: print(f"{ref.spec}: {d}/{n} patients", file=sys.stderr, flush=True),
    )
    result.update(
        command=f"python scripts/explain_card.py --model {ref.spec} --patients {args.patients} "
                f"--refits {args.refits} --seed {args.seed}",
        measured=time.strftime("%Y-%m-%d"),
    )
    out = ref.path / "explanations.json"
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out} ({result['n']} patients, {args.refits} refits, {result['seconds']} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="chest_xray:2")
    parser.add_argument("--films", type=int, default=60)
    parser.add_argument("--data", default=None, help="the training folder (default: the meta's, from the repo root)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every method)")
    parser.add_argument("--merge", action="store_true",
                        help="add these methods to the stored explanations.json (each method keeps its own n)")
    parser.add_argument("--bundled-risk", action="store_true", help="measure the three bundled risk models")
    parser.add_argument("--patients", type=int, default=60, help="risk models: held-out patients to explain")
    parser.add_argument("--refits", type=int, default=30, help="risk models: bootstrap refits for stability")
    args = parser.parse_args()

    import numpy as np

    from core.models import kinds, registry
    from core.services.explanations import evaluate_films

    if args.bundled_risk:
        for spec in BUNDLED_RISK:
            explain_risk(registry.resolve(spec), args)
        return
    ref = registry.resolve(args.model)
    if kinds.normalise(ref.kind) == kinds.TABULAR_RISK:
        explain_risk(ref, args)
        return
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
