"""``explain-eval``: how faithful each explanation method is, measured on labelled films (CLI.md).

``--progress-file`` / ``--cancel-file`` make it a background job of the explanation lab
(``core.jobs.explain``): progress events per film, and a cancel honoured between films.
"""

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
    if r.get("road"):
        road = r["road"]
        lines.append(
            f"ROAD (noisy linear imputation at {', '.join(f'{p}%' for p in road['percentages'])} removed; "
            f"random order {road['random_seconds_per_film']:.2f} s/film)"
        )
        lines.append(f"{'method':<12}{'MoRF (random)':>26}{'LeRF (random)':>26}{'LeRF - MoRF':>22}{'s/film':>8}")
        for method, s in r["methods"].items():
            lines.append(
                f"{method:<12}{_with_interval(s, 'road_morf_auc'):>19} ({fmt(s['road_random_auc'])})"
                f" {_with_interval(s, 'road_lerf_auc'):>19} ({fmt(s['road_random_auc'])})"
                f"{_with_interval(s, 'road_gap'):>22}{s['road_seconds_per_film']:>8.2f}"
            )
        lines.append(
            "MoRF: most relevant pixels imputed first, lower is more faithful; LeRF: least relevant first, higher. "
            "A random order imputes scattered pixels, which the imputation restores well: compare MoRF with LeRF"
        )
    if r["skipped"]:
        lines.append(f"{len(r['skipped'])} file(s) skipped")
    return "\n".join(lines)


def cmd_explain_eval(args: argparse.Namespace) -> int:
    from core.errors import JobCancelledError
    from core.i18n import _
    from core.services.explanations import evaluate_explanations
    from core.services.jobs import JobChannel

    cancelled = _("Measuring was cancelled; no result was kept.")
    channel = JobChannel(args.progress_file, args.cancel_file, cancelled_text=cancelled)

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] == "step":
            log(f"explain-eval: {event['step']}/{event['steps']} films")
        channel.write(event)
        if channel.cancelled():  # read between films (and while reading them), never inside one
            raise JobCancelledError(cancelled)

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    road = None if args.no_road else _percentages(args.road_percentages)
    with channel.watch():
        result = evaluate_explanations(
            Path(args.data), args.model, methods, args.limit, seed=args.seed, events=on_event, road=road
        )
        if not args.per_film:
            for summary in result["methods"].values():
                summary.pop("per_film", None)
        emit(result, args.json, human)  # result.json is complete before a viewer learns the job finished
        channel.finished({"model": result["model"], "n": result["n"], "methods": list(result["methods"])})
    return EXIT_BAD_INPUT if result["skipped"] else EXIT_OK


def _percentages(text: str) -> list[int]:
    from core.errors import InvalidOptionError
    from core.i18n import _

    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise InvalidOptionError(
            _("--road-percentages takes whole numbers separated by commas, such as 10,30,50; got '{text}'.").format(
                text=text
            )
        ) from exc


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
    p.add_argument(
        "--road-percentages",
        default="10,30,50,70,90",
        metavar="P1,P2",
        help="where ROAD's curves are sampled: %% of pixels imputed (default 10,30,50,70,90; one sparse solve each)",
    )
    p.add_argument("--no-road", action="store_true", help="leave out ROAD (Rong et al. 2022)")
    p.add_argument("--progress-file", default=None, metavar="FILE", help="append JSON progress events to FILE (jobs)")
    p.add_argument("--cancel-file", default=None, metavar="FILE", help="stop between films once FILE exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain_eval)
