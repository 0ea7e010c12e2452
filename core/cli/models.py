"""Registry commands: ``card``, ``models``, ``activate``, ``delete``. They work for every kind of model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_MISUSE, EXIT_OK, emit, log
from core.errors import GateFailedError, ModelNotFoundError
from core.i18n import _


def cmd_card(args: argparse.Namespace) -> int:
    from core.services import catalog

    sys.stdout.write(catalog.card_text(catalog.card_document(args.model), args.format) + "\n")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from core.services import catalog

    listing = catalog.model_listing()

    def human(rows: list[dict[str, Any]]) -> str:
        return "\n".join(
            f"{'*' if r['active'] else ' '} {r['model']:<24} {r['kind']:<17} "
            f"{'bundled' if r['bundled'] else 'trained'} {r['created']}"
            f"{'' if r['approved'] else '  (not approved)'}"
            for r in rows
        )

    emit(listing, args.json, human)
    return EXIT_OK


def _name_and_version(spec: str, verb: str) -> tuple[str, str]:
    name, _sep, version = spec.partition(":")
    if not version:
        raise ModelNotFoundError(_("Give NAME:VERSION to {verb}, e.g. chest_xray:2.").format(verb=verb))
    return name, version


def _interval(entry: dict[str, Any] | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    low, high = entry["ci95"]
    return (
        f"{entry['value']:.3f} [{'n/a' if low is None else f'{low:.3f}'}, {'n/a' if high is None else f'{high:.3f}'}]"
    )


def gate_text(gate: dict[str, Any]) -> str:
    """The gate as a small table for a terminal: each version's AUC, sensitivity, specificity with 95% CIs."""
    from core.services.activation import gate_explanation as explain

    lines = [_("quality gate: {status}").format(status=gate["status"])]
    for side in (gate.get("candidate"), gate.get("active")):
        if side and "auc" in side:
            lines.append(
                f"  {side['model']:<20} AUC {_interval(side['auc'])}  sensitivity {_interval(side['sensitivity'])}"
                f"  specificity {_interval(side['specificity'])}  threshold {side['threshold']:.3f} "
                f"({side['threshold_source']})"
            )
    if gate.get("auc_difference"):
        lines.append(
            "  "
            + _("AUC difference (candidate - active): {value}; margin -{margin}").format(
                value=_interval(gate["auc_difference"]), margin=gate["margin"]
            )
        )
    lines.append("  " + explain(gate))
    return "\n".join(lines)


def cmd_activate(args: argparse.Namespace) -> int:
    """Activate (or roll back to) NAME:VERSION through the quality gate; exit 1 when the gate refuses."""
    from core.services import activation, audit

    name, version = _name_and_version(args.model, "activate")
    if args.override and not (args.reason or "").strip():
        log(_("error: --override needs --reason TEXT saying why the gate is overridden (no patient details)."))
        return EXIT_MISUSE
    try:
        done = activation.activate(audit.os_actor(), name, version, args.reason if args.override else None)
    except GateFailedError as exc:
        payload = {"ok": False, "model": f"{name}:{version}", "active": False, "gate": exc.gate, "error": str(exc)}
        emit(
            payload, args.json, lambda r: gate_text(r["gate"]) + "\n" + _("error: {message}").format(message=r["error"])
        )
        return EXIT_BAD_INPUT

    def human(r: dict[str, Any]) -> str:
        state = (
            _("{model} is now active (override: {reason})").format(model=r["model"], reason=r["override_reason"])
            if r["override"]
            else _("{model} is now active").format(model=r["model"])
        )
        if r["override"]:
            state += "\n" + _("Overridden evidence: {evidence}").format(
                evidence=activation.evidence_text(r["gate"]["evidence"])
            )
        return gate_text(r["gate"]) + "\n" + state

    emit(done, args.json, human)
    return EXIT_OK


def cmd_eval_set(args: argparse.Namespace) -> int:
    """``eval-set lock`` (admin: audited) and ``eval-set show`` of a model name's locked evaluation set."""
    from core.services import audit, eval_sets

    if args.verb == "lock":
        if not args.data:
            log(_("error: eval-set lock needs --data DIR_OR_ZIP_OR_CSV."))
            return EXIT_MISUSE
        from core.services.jobs import JobChannel

        channel = JobChannel(args.progress_file, args.cancel_file)  # a background job's events and cancel file
        with channel.watch():
            # The person who asked from the dashboard (a lock job says so), else the operating-system user.
            record = eval_sets.lock(audit.command_actor(), args.model, args.data)
            emit(record, args.json, _locked_text)  # result.json is complete before the job is said finished
            channel.finished({"model": record["model"], "n": record["n"]})
        return EXIT_OK
    record = eval_sets.show(args.model)
    if record is None:
        emit(
            {
                "ok": False,
                "model": args.model,
                "error": _("No evaluation set is locked for {name}.").format(name=args.model),
            },
            args.json,
            lambda r: r["error"],
        )
        return EXIT_BAD_INPUT
    emit(record, args.json, _locked_text)
    return EXIT_OK


def _locked_text(r: dict[str, Any]) -> str:
    return _(
        "{model}: {n} cases ({labels}), prevalence {prevalence:.3f}, locked by {who} at {when}; "
        "fingerprint {fingerprint}"
    ).format(
        model=r["model"],
        n=r["n"],
        prevalence=r["prevalence"],
        labels=", ".join(f"{k} {v}" for k, v in r["labels"].items()),
        who=r["locked_by"],
        when=r["locked_at"],
        fingerprint=r["fingerprint"],
    )


def cmd_delete(args: argparse.Namespace) -> int:
    from core.services import audit, catalog

    catalog.delete_version(audit.os_actor(), *_name_and_version(args.model, "delete"))
    emit({"model": args.model, "deleted": True}, args.json, lambda r: f"{r['model']} deleted")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("card", help="print a model card")
    p.add_argument("--model", required=True)
    p.add_argument("--format", choices=("json", "md"), default="json")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("models", help="list registered models and versions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("activate", help="make a version active (also rolls back) once it passes the quality gate")
    p.add_argument("model", metavar="NAME:VERSION")
    p.add_argument(
        "--override", action="store_true", help="activate even though the gate did not pass (needs --reason)"
    )
    p.add_argument(
        "--reason",
        default=None,
        metavar="TEXT",
        help="why the gate is overridden (kept in the activation record; no patient details)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_activate)

    p = sub.add_parser("delete", help="delete a user-trained version")
    p.add_argument("model", metavar="NAME:VERSION")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("eval-set", help="lock or show a model's evaluation set (the quality gate's cases)")
    p.add_argument("verb", choices=("lock", "show"))
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--data", default=None, metavar="DIR_OR_ZIP_OR_CSV", help="inside LUCIDDX_DATA_ROOTS (lock)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--progress-file", default=None, help=argparse.SUPPRESS)  # a background job's events
    p.add_argument("--cancel-file", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_eval_set)
