"""The ``python -m core`` command line. A contract: see README ("Command line") and CLI.md.

``--json`` prints exactly one JSON document on stdout; progress and logs go to stderr.
Exit status: 0 all went well, 1 some input was bad (the rest was processed), 2 misuse.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Callable

from core.errors import LucidDxError, ModelNotFoundError, RegistryError

EXIT_OK, EXIT_BAD_INPUT, EXIT_MISUSE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own exit code for misuse is already 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_MISUSE, f"{self.prog}: error: {message}\n")


def _emit(payload: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload, default=float) + "\n")
    else:
        sys.stdout.write(human(payload) + "\n")
    sys.stdout.flush()


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image

    model = load_classifier(args.model)
    results: list[dict[str, Any]] = []
    for name in args.files:
        try:
            path = Path(name)
            if not path.is_file():
                raise LucidDxError(f"{name}: file not found.")
            image = load_image(path, frame=args.frame)
            prediction = model.predict(image).as_dict()
            results.append({"file": name, "ok": True, "error": None, **prediction})
        except LucidDxError as exc:
            results.append({"file": name, "ok": False, "error": str(exc)})

    def human(rows: list[dict[str, Any]]) -> str:
        lines = []
        for r in rows:
            if not r["ok"]:
                lines.append(f"{r['file']}: ERROR {r['error']}")
                continue
            probs = ", ".join(f"{c} {p:.3f}" for c, p in r["probabilities"].items())
            warn = "  [UNRELIABLE: unlike the training images]" if r["out_of_distribution"] else ""
            lines.append(f"{r['file']}: {r['label']} ({probs}; threshold {r['threshold']}){warn}")
        return "\n".join(lines)

    _emit(results, args.json, human)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_BAD_INPUT


def _fmt(value: float | None) -> str:
    """A metric for people: 3 decimals, or 'n/a' where it cannot be computed (e.g. AUC of one class)."""
    return "n/a" if value is None else f"{value:.3f}"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.imaging.evaluation import evaluate_folder

    result = evaluate_folder(Path(args.data), args.model)

    def human(r: dict[str, Any]) -> str:
        return (
            f"{r['model']} on {r['n']} images: AUC {_fmt(r['auc'])}, accuracy {r['accuracy']:.3f}, "
            f"sensitivity {r['sensitivity']:.3f}, specificity {r['specificity']:.3f} at threshold {r['threshold']}"
            + (f"; {len(r['skipped'])} file(s) skipped" if r["skipped"] else "")
        )

    _emit(result, args.json, human)
    return EXIT_BAD_INPUT if result["skipped"] else EXIT_OK


def _train_progress(event: dict[str, Any]) -> None:
    if event["event"] == "loading":
        _log(f"loading images {event['done']}/{event['total']}")
    elif event["event"] == "started":
        _log(f"training on {event['device']}: {event['train_images']} training, {event['validation_images']} validation images")
    elif event["event"] == "epoch":
        _log(
            f"epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f}, validation AUC "
            f"{event['val_auc']:.4f}, {event['images_per_second']:.0f} images/s, ETA {event['eta_seconds']:.0f} s"
        )


def cmd_train(args: argparse.Namespace) -> int:
    from core.imaging import intake
    from core.jobs.runner import JobChannel
    from core.imaging.training import TrainConfig, train_image_model

    config = TrainConfig(
        epochs=args.epochs,
        image_size=args.image_size,
        batch_size=args.batch_size,
        seed=args.seed,
        init_from=args.init_from,
        positive_class=args.positive_class,
        max_images_per_class=args.max_per_class,
    )
    command = "python -m core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    channel = JobChannel(args.progress_file, args.cancel_file)  # a background job's events and cancel file
    with channel.watch():
        with intake.open_dataset(Path(args.data)) as folder:
            result = train_image_model(folder, args.name, config, progress=channel.progress(_train_progress),
                                       cancel=channel.cancelled, command=command, activate=not args.no_activate)
        payload = result.as_dict()
        channel.finished(payload)

    def human(r: dict[str, Any]) -> str:
        v = r["validation"]
        return f"registered {r['model']} on {r['device']} in {r['seconds']:.0f} s: validation AUC {_fmt(v['auc'])}, accuracy {_fmt(v['accuracy'])}"

    _emit(payload, args.json, human)
    # Skipped files are bad input even though the rest trained: the contract's exit status 1.
    return EXIT_BAD_INPUT if payload["dataset"]["skipped"] else EXIT_OK


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

    _emit(rows, args.json, human)
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_BAD_INPUT


def cmd_train_risk(args: argparse.Namespace) -> int:
    from core.tabular import risk

    command = "python -m core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    payload = risk.train_risk_model(Path(args.csv), args.name, command=command, activate=not args.no_activate,
                                    progress=_log)

    def human(r: dict[str, Any]) -> str:
        v = r["validation"]
        return (f"registered {r['model']} ({r['family']}) in {r['seconds']:.0f} s: 10-fold CV AUC {v['auc']:.3f} "
                f"[95% CI {v['cv_auc_ci95'][0]:.3f}-{v['cv_auc_ci95'][1]:.3f}], Brier {v['brier']:.4f}, "
                f"threshold {v['threshold']}")

    _emit(payload, args.json, human)
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    from core.models import cards, registry

    ref = registry.resolve(args.model)
    card = cards.load_card(ref)
    if args.format == "md":
        sys.stdout.write(cards.render_markdown(card) + "\n")
    else:
        sys.stdout.write(json.dumps(card, default=float) + "\n")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from core.models import registry

    listing = []
    for name, versions in registry.list_models().items():
        active = registry.active_version(name).version
        for ref in versions:
            listing.append({"model": ref.spec, "kind": ref.kind, "bundled": ref.bundled, "active": ref.version == active,
                            "created": ref.meta.get("created")})

    def human(rows: list[dict[str, Any]]) -> str:
        return "\n".join(f"{'*' if r['active'] else ' '} {r['model']:<24} {r['kind']:<17} {'bundled' if r['bundled'] else 'trained'} {r['created']}" for r in rows)

    _emit(listing, args.json, human)
    return EXIT_OK


def cmd_activate(args: argparse.Namespace) -> int:
    from core.models import registry

    name, _, version = args.model.partition(":")
    if not version:
        raise ModelNotFoundError("Give NAME:VERSION to activate, e.g. chest_xray:2.")
    ref = registry.activate(name, version)
    _emit({"model": ref.spec, "active": True}, args.json, lambda r: f"{r['model']} is now active")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from core.models import registry

    name, _, version = args.model.partition(":")
    if not version:
        raise ModelNotFoundError("Give NAME:VERSION to delete, e.g. chest_xray:2.")
    registry.delete_version(name, version)
    _emit({"model": args.model, "deleted": True}, args.json, lambda r: f"{r['model']} deleted")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m core", description="LucidDx: explainable diagnostic models from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("predict", help="predict images (PNG, JPEG, BMP, TIFF, DICOM)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default=None, help="NAME or NAME:VERSION (default: chest_xray)")
    p.add_argument("--frame", type=int, default=None, help="frame of a multi-frame DICOM (default: the middle one)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("evaluate", help="evaluate an image model on a folder with one subfolder per class")
    p.add_argument("--data", required=True, metavar="DIR")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train", help="train and register a new image model version")
    p.add_argument("--data", required=True, metavar="DIR_OR_ZIP")
    p.add_argument("--name", required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--image-size", type=int, default=192)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--init-from", default=None, metavar="MODEL", help="start from this registered model's weights")
    p.add_argument("--positive-class", default=None, help="class treated as positive for a two-class model")
    p.add_argument("--max-per-class", type=int, default=None, help="use at most this many images per class")
    p.add_argument("--no-activate", action="store_true", help="register without making it the active version")
    p.add_argument("--progress-file", default=None, metavar="FILE", help="append JSON progress events to FILE (jobs)")
    p.add_argument("--cancel-file", default=None, metavar="FILE", help="stop without registering once FILE exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("risk", help="score patients in a CSV with the risk model, with SHAP explanations")
    p.add_argument("--csv", required=True, metavar="FILE")
    p.add_argument("--model", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_risk)

    p = sub.add_parser("train-risk", help="train and register a diabetes risk model version from a labelled CSV")
    p.add_argument("--csv", required=True, metavar="FILE", help="Pima-style CSV with an Outcome column (0/1)")
    p.add_argument("--name", default="diabetes_risk")
    p.add_argument("--no-activate", action="store_true", help="register without making it the active version")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train_risk)

    p = sub.add_parser("card", help="print a model card")
    p.add_argument("--model", required=True)
    p.add_argument("--format", choices=("json", "md"), default="json")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("models", help="list registered models and versions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    for verb, func, text in (("activate", cmd_activate, "make a version active (also rolls back)"),
                             ("delete", cmd_delete, "delete a user-trained version")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("model", metavar="NAME:VERSION")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelNotFoundError, RegistryError) as exc:
        _log(f"error: {exc}")
        return EXIT_MISUSE
    except LucidDxError as exc:
        _log(f"error: {exc}")
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        _log(f"error: {exc.filename}: not found.")
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug of ours: a one-line message, the traceback only on request
        if os.environ.get("LUCIDDX_DEBUG"):
            raise
        _log(f"error: LucidDx failed unexpectedly ({type(exc).__name__}: {exc}). Set LUCIDDX_DEBUG=1 for details.")
        return EXIT_BAD_INPUT
