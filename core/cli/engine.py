"""Commands for more than one machine: ``engine status`` and ``score-folder`` (../shared/CLI.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, emit, log


def cmd_engine(args: argparse.Namespace) -> int:
    from core.services import archive

    def human(r: dict[str, Any]) -> str:
        where = "embedded on this machine" if r["embedded"] else f"cluster at {r['address']}"
        lines = [f"Ray engine, {where}: {sum(n['alive'] for n in r['nodes'])} node(s) alive"]
        lines += [
            f"  {n['node_id'][:12]}  {'alive' if n['alive'] else 'DEAD '}  {n['cpus']:g} CPU  {n['gpus']:g} GPU"
            for n in r["nodes"]
        ]
        return "\n".join(lines)

    if args.verb == "stop":
        stopped = archive.stop_engine()
        emit(
            {"stopped": stopped},
            args.json,
            lambda r: "This machine's Ray head was stopped."
            if r["stopped"]
            else "No Ray head of this machine was running.",
        )
        return EXIT_OK
    emit(archive.engine_status(), args.json, human)
    return EXIT_OK


def cmd_score_folder(args: argparse.Namespace) -> int:
    from core.services import archive, audit

    def progress(done: int, total: int) -> None:
        log(f"scored {done}/{total} films")

    summary = archive.score_folder(audit.os_actor(), Path(args.data), Path(args.out), args.model, progress)
    for row in summary.pop("rows"):
        if not row["ok"]:
            log(row["error"])
    emit(
        summary,
        args.json,
        lambda r: (
            f"{r['model']}: {r['ok']} of {r['n']} films scored ({r['failed']} failed) in "
            f"{r['seconds']:.1f} s, {r['films_per_s']} films/s on {r['nodes_used']} "
            f"node(s) -> {r['out']}"
        ),
    )
    return EXIT_BAD_INPUT if summary["failed"] else EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="where work runs: the embedded Ray or the cluster LUCIDDX_RAY_ADDRESS names")
    p.add_argument("verb", choices=("status", "stop"), help="stop: stop this machine's own Ray head (and its jobs)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_engine)

    p = sub.add_parser("score-folder", help="score every film under a folder or zip on the engine's workers -> CSV")
    p.add_argument("--data", required=True, metavar="DIR_OR_ZIP")
    p.add_argument("--out", required=True, metavar="CSV")
    p.add_argument("--model", default=None, help="NAME or NAME:VERSION (default: chest_xray)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_score_folder)
