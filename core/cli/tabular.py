"""Tabular risk commands: ``risk``, ``train-risk``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, command_line, emit, log


def cmd_risk(args: argparse.Namespace) -> int:
    from core.tabular import risk

    rows = risk.score_csv(Path(args.csv), args.model)

    def human(results: list[dict[str, Any]]) -> str:
        lines = []
        for r in results:
            if not r["ok"]:
                lines.append(f"row {r['row']}: ERROR {r['error']}")
            else:
                top = sorted(r["explanation"]["contributions"].items(), key=lambda kv: -abs(kv[1]))[:3]
                lines.append(f"row {r['row']}: risk {r['risk']:.3f} (top: " + ", ".join(f"{k} {v:+.2f}" for k, v in top) + ")")
        return "\n".join(lines)

    emit(rows, args.json, human)
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_BAD_INPUT


def cmd_train_risk(args: argparse.Namespace) -> int:
    from core.tabular import risk

    payload = risk.train_risk_model(Path(args.csv), args.name, command=command_line(), activate=not args.no_activate,
                                    progress=log)

    def human(r: dict[str, Any]) -> str:
        v = r["validation"]
        return (f"registered {r['model']} ({r['family']}) in {r['seconds']:.0f} s: 10-fold CV AUC {v['auc']:.3f} "
                f"[95% CI {v['cv_auc_ci95'][0]:.3f}-{v['cv_auc_ci95'][1]:.3f}], Brier {v['brier']:.4f}, "
                f"threshold {v['threshold']}")

    emit(payload, args.json, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("risk", help="score patients in a CSV with a risk model, with exact SHAP explanations")
    p.add_argument("--csv", required=True, metavar="FILE")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_risk)

    p = sub.add_parser("train-risk", help="train and register a risk model version from a labelled CSV")
    p.add_argument("--csv", required=True, metavar="FILE", help="one patient per row, with an outcome column")
    p.add_argument("--name", default="diabetes_risk")
    p.add_argument("--no-activate", action="store_true", help="register without making it the active version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_risk)
