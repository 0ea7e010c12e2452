"""``explain-eval``: how faithful each explanation method is, measured on labelled films (CLI.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, emit, fmt, log


def _with_interval(summary: dict[str, Any], key: str) -> str:
    low, high = summary["intervals"].get(key) or [None, None]
    return f"{fmt(summary[key])} ({fmt(low)}-{fmt(high)})"


def human(r: dict[str, Any]) -> str:
    lines = [
        f"{r['model']} on {r['n']} films {r['classes']}; removal = {r['removal']}, {r['steps']} steps; "
        "95% bootstrap intervals over films",
        f"{'method':<12}{'deletion (random)':>26}{'insertion (random)':>26}{'randomised r':>22}{'stability r':>22}{'s/film':>8}",
    ]
    for method, s in r["methods"].items():
        lines.append(
            f"{method:<12}{_with_interval(s, 'deletion_auc'):>19} ({fmt(s['random_deletion_auc'])})"
            f" {_with_interval(s, 'insertion_auc'):>19} ({fmt(s['random_insertion_auc'])})"
            f"{_with_interval(s, 'randomization_rank_corr'):>22}{_with_interval(s, 'stability_rank_corr'):>22}"
            f"{s['seconds_per_film']:>8.2f}"
        )
    lines.append(
        "deletion: lower is more faithful; insertion: higher; randomised r: rank correlation with the map "
        f"of the model with its top layers re-initialised ({r['headline_stage']}), lower is better"
    )
    if r["skipped"]:
        lines.append(f"{len(r['skipped'])} file(s) skipped")
    return "\n".join(lines)


def cmd_explain_eval(args: argparse.Namespace) -> int:
    from core.services.explanations import evaluate_explanations

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    result = evaluate_explanations(
        Path(args.data),
        args.model,
        methods,
        args.limit,
        progress=lambda done, total: log(f"explain-eval: {done}/{total} films"),
        seed=args.seed,
    )
    if not args.per_film:
        for summary in result["methods"].values():
            summary.pop("per_film", None)
    emit(result, args.json, human)
    return EXIT_BAD_INPUT if result["skipped"] else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain-eval", help="how faithful each explanation method is, on labelled films")
    p.add_argument(
        "--data", required=True, metavar="DIR_OR_ZIP", help="one subfolder per class, named like the model's"
    )
    p.add_argument("--model", default=None)
    p.add_argument("--methods", default=None, metavar="M1,M2", help="comma-separated (default: every method)")
    p.add_argument(
        "--limit", type=int, default=40, metavar="N", help="at most N films, an equal share per class (default 40)"
    )
    p.add_argument("--seed", type=int, default=0, help="which films, the random orders and noise (default 0)")
    p.add_argument("--per-film", action="store_true", help="also each film's values in the JSON")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_eval)
