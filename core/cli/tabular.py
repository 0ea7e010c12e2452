"""Tabular risk commands: ``risk``, ``train-risk``. They only translate arguments into ``core.services.tabular``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, command_line, emit, log
from core.cli.imaging import activation_outcome


def cmd_risk(args: argparse.Namespace) -> int:
    from core.services import audit, tabular

    spec, approved = tabular.usable_model(audit.os_actor(), args.model)  # the server's operator: any version, marked
    rows = [row | ({"approved": approved} if row["ok"] else {}) for row in tabular.score_csv(Path(args.csv), spec)]

    def human(results: list[dict[str, Any]]) -> str:
        lines = []
        for r in results:
            if not r["ok"]:
                lines.append(f"row {r['row']}: ERROR {r['error']}")
            else:
                top = tabular.top_contributions(r["explanation"]["contributions"])
                lines.append(
                    f"row {r['row']}: risk {r['risk']:.3f} (top: " + ", ".join(f"{k} {v:+.2f}" for k, v in top) + ")"
                )
        return "\n".join(lines)

    emit(rows, args.json, human)
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_BAD_INPUT


def cmd_train_risk(args: argparse.Namespace) -> int:
    from core.services import tabular
    from core.services.jobs import JobChannel

    options = {"folds": args.folds, "negative": args.negative} | (
        {"families": args.families.split(",")} if args.families else {}
    )
    channel = JobChannel(args.progress_file, args.cancel_file)  # a background job's events and cancel file
    with channel.watch():
        payload = tabular.train(
            Path(args.csv),
            args.name,
            target=args.target,
            positive=args.positive,
            command=command_line(),
            activate=False,
            progress=log,
            run=tabular.run_options(args.overrides, args.data_label, channel),
            **options,
        )
        payload.update(activation_outcome(args.activate, payload["model"]))
        channel.finished(payload)

    def human(r: dict[str, Any]) -> str:
        v = r["validation"]
        state = "active" if r["active"] else f"not active: python -m core activate {r['model']}"
        if r.get("activation") and not r["activation"]["activated"]:
            state += f"; {r['activation']['reason']}"
        return (
            f"registered {r['model']} ({r['family']}, {state}) in {r['seconds']:.0f} s: {r['cv']['folds']}-fold CV "
            f"AUC {v['auc']:.3f} [95% CI {v['cv_auc_ci95'][0]:.3f}-{v['cv_auc_ci95'][1]:.3f}], Brier {v['brier']:.4f}, "
            f"threshold {v['threshold']}; dropped: " + (", ".join(d["column"] for d in r["dropped"]) or "none")
        )

    emit(payload, args.json, human)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("risk", help="score patients in a CSV with a risk model, with exact SHAP explanations")
    p.add_argument("--csv", required=True, metavar="FILE")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_risk)

    p = sub.add_parser("train-risk", help="train and register a risk model version from any labelled CSV")
    p.add_argument("--csv", required=True, metavar="FILE", help="one patient per row, with an outcome column")
    p.add_argument(
        "--target",
        default=None,
        metavar="COLUMN",
        help="the outcome column (may be omitted for a documented dataset whose description names it)",
    )
    p.add_argument(
        "--positive",
        default=None,
        metavar="VALUE",
        help="the outcome value to predict (required when the outcome has more than two values); "
        "several values comma-separated: any of them counts",
    )
    p.add_argument(
        "--negative",
        default=None,
        metavar="VALUES",
        help="the outcome value(s) that count as negative; rows with any other value are left out "
        "(default: every value not positive is negative)",
    )
    p.add_argument("--name", required=True)
    p.add_argument(
        "--activate",
        action="store_true",
        help="make the new version the active one if it passes the quality gate (default: the active "
        "version stays as it is; "
        "the first version of a new name is active because it is the only one)",
    )
    p.add_argument("--no-activate", action="store_false", dest="activate", help=argparse.SUPPRESS)
    p.add_argument("--folds", type=int, default=10, help="cross-validation folds (default 10)")
    p.add_argument(
        "--families",
        default=None,
        metavar="LIST",
        help="model families to compare, comma-separated (default: logistic,spline_logistic,gradient_boosting)",
    )
    p.add_argument(
        "--overrides",
        default=None,
        metavar="FILE",
        help="JSON of confirmed choices per column: use, unit, plausible_range [low, high], missing_codes",
    )
    p.add_argument(
        "--data-label", default=None, help="how the data is named in the model's metadata (default: its path)"
    )
    p.add_argument("--progress-file", default=None, metavar="FILE", help="append JSON progress events to FILE (jobs)")
    p.add_argument("--cancel-file", default=None, metavar="FILE", help="stop without registering once FILE exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_risk)
