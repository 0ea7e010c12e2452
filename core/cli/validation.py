"""Site validation commands: ``validate`` (measure a model on your own labeled cases) and ``threshold``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_MISUSE, EXIT_OK, emit, fmt, log


def _interval(r: dict[str, Any], key: str) -> str:
    low, high = r["intervals"].get(key) or [None, None]
    return f"{fmt(r[key])} ({fmt(low)}-{fmt(high)})"


def cmd_validate(args: argparse.Namespace) -> int:
    from core.services.audit import command_actor
    from core.services.jobs import JobChannel
    from core.services.validation import validate_image_model

    channel = JobChannel(args.progress_file, args.cancel_file)  # a background job's events and cancel file
    with channel.watch():
        result = validate_image_model(
            Path(args.data),
            args.model,
            args.target_sensitivity,
            args.record,
            actor=command_actor(),
            with_scores=args.with_scores,
        )
        _emit_validation(result, args.json)  # result.json is complete before a viewer learns the job finished
        channel.finished({"model": result["model"], "n": result["n"]})
    return EXIT_BAD_INPUT if result["skipped"] else EXIT_OK


def _emit_validation(result: dict[str, Any], as_json: bool) -> None:
    def human(r: dict[str, Any]) -> str:
        lines = [
            f"{r['model']} on {r['n']} cases (prevalence {r['prevalence']:.1%}): AUC {_interval(r, 'auc')}, "
            f"sensitivity {_interval(r, 'sensitivity')}, specificity {_interval(r, 'specificity')} "
            f"at the stored threshold {r['threshold']:.3g}"
        ]
        for row in r["thresholds"]:
            honest = row.get("cross_fitted")
            note = (
                (
                    f"; chosen on these cases, cross-fitted sensitivity {fmt(honest['sensitivity'])}, "
                    f"specificity {fmt(honest['specificity'])}"
                )
                if honest
                else ""
            )
            lines.append(
                f"  {row['rule']:<19} threshold {row['threshold']:.3g}: sensitivity {fmt(row['sensitivity'])}, "
                f"specificity {fmt(row['specificity'])}, PPV {fmt(row['ppv'])}, NPV {fmt(row['npv'])}{note}"
            )
        if r["recorded"]:
            lines.append(f"recorded as external validation {r['recorded']}")
        if r["skipped"]:
            lines.append(f"{len(r['skipped'])} file(s) skipped")
        return "\n".join(lines)

    emit(result, as_json, human)


def cmd_threshold(args: argparse.Namespace) -> int:
    from core.services import audit, validation

    if ":" not in args.model:
        validation.threshold_in_force(args.model)  # an unknown model is said first, as before
        log("error: name the version the threshold belongs to: --model NAME:VERSION.")
        return EXIT_MISUSE
    if args.reset:
        state = validation.reset_threshold(audit.os_actor(), args.model)
    elif args.adopt and args.rule:
        state = validation.adopt_threshold(audit.os_actor(), args.model, args.adopt, args.rule)
    elif args.adopt or args.rule:
        log("error: --adopt VALIDATION_ID and --rule RULE go together.")
        return EXIT_MISUSE
    else:
        state = validation.threshold_in_force(args.model)
    emit(state, args.json, lambda r: f"{r['model']}: threshold {r['threshold']:.3g} ({r['threshold_source']})")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="measure an image model on your own labeled films; propose thresholds")
    p.add_argument(
        "--data", required=True, metavar="DIR_OR_ZIP", help="one subfolder per class, named like the model's"
    )
    p.add_argument("--model", default=None)
    p.add_argument("--target-sensitivity", type=float, default=0.95, metavar="S")
    p.add_argument("--record", action="store_true", help="store it as an external validation of that version")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--with-scores", action="store_true", help="add each case's label and probabilities (to record it later)"
    )
    p.add_argument("--progress-file", default=None, help=argparse.SUPPRESS)  # a background job's events
    p.add_argument("--cancel-file", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("threshold", help="show, adopt (from a recorded validation) or reset a version's threshold")
    p.add_argument("--model", required=True, metavar="NAME:VERSION")
    p.add_argument("--adopt", default=None, metavar="VALIDATION_ID")
    p.add_argument("--rule", default=None, choices=("stored", "target-sensitivity", "youden"))
    p.add_argument("--reset", action="store_true", help="go back to the threshold stored with the version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_threshold)
