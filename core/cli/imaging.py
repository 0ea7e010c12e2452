"""Image commands: ``predict``, ``evaluate``, ``train``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from core.cli.common import EXIT_BAD_INPUT, EXIT_OK, command_line, emit, fmt, log


def cmd_predict(args: argparse.Namespace) -> int:
    from core.services import audit, catalog
    from core.services import imaging as diagnosis
    from core.services.results import prediction_json

    model = diagnosis.load_model(args.model, audit.os_actor())  # the server's operator: any version, marked
    approved = catalog.is_approved(model.ref)
    results: list[dict[str, Any]] = []
    readings: dict[str, str] = {}
    for name in args.files:
        # The service's one pass per file, decided at the threshold in force; the CLI asks for no heatmap.
        result = diagnosis.diagnose(Path(name), name, model, frame=args.frame, explain=False)
        results.append(prediction_json(name, result) | ({"approved": approved} if result.ok else {}))
        if result.ok and result.prediction is not None:
            readings[name] = diagnosis.reading_text(diagnosis.reading(result.prediction))

    def human(rows: list[dict[str, Any]]) -> str:
        lines = []
        for r in rows:
            if not r["ok"]:
                lines.append(f"{r['file']}: ERROR {r['error']}")
                continue
            # One meaning per number: the positive (or top) class's probability beside the threshold in force.
            source = "" if r["threshold_source"] == "stored" else f" ({r['threshold_source']})"
            warn = "" if r["assessable"] else "  [no label: unreliable, the image is unlike the training images]"
            unapproved = "" if r["approved"] else f"  [{r['model']} is not approved for clinical use]"
            lines.append(f"{r['file']}: {readings[r['file']]}{source}{warn}{unapproved}")
        return "\n".join(lines)

    emit(results, args.json, human)
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_BAD_INPUT


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core.services.validation import evaluate_image_model

    result = evaluate_image_model(Path(args.data), args.model)

    def human(r: dict[str, Any]) -> str:
        return (
            f"{r['model']} on {r['n']} images: AUC {fmt(r['auc'])}, accuracy {r['accuracy']:.3f}, "
            f"sensitivity {r['sensitivity']:.3f}, specificity {r['specificity']:.3f} at threshold {r['threshold']}"
            + (f"; {len(r['skipped'])} file(s) skipped" if r["skipped"] else "")
        )

    emit(result, args.json, human)
    return EXIT_BAD_INPUT if result["skipped"] else EXIT_OK


def _train_progress(event: dict[str, Any]) -> None:
    from core.services import training

    if event["event"] == "recipe":
        log(f"recipe: {training.recipe_explanation(event['recipe'])}")
    elif event["event"] == "loading":
        log(f"loading images {event['done']}/{event['total']}")
    elif event["event"] == "started":
        log(
            f"training on {event['device']}: {event['train_images']} training, {event['validation_images']} validation images"
        )
    elif event["event"] == "pretrain_epoch":
        log(
            f"self-supervised pretraining epoch {event['epoch']}/{event['epochs']}: contrastive loss "
            f"{event['loss']:.4f}, {event['images_per_second']:.0f} images/s, ETA {event['eta_seconds']:.0f} s"
        )
    elif event["event"] == "epoch":
        log(
            f"epoch {event['epoch']}/{event['epochs']}: loss {event['loss']:.4f}, validation AUC "
            f"{event['val_auc']:.4f}, {event['images_per_second']:.0f} images/s, ETA {event['eta_seconds']:.0f} s"
        )


def cmd_train(args: argparse.Namespace) -> int:
    from core.services import training
    from core.services.jobs import JobChannel

    # Only what the researcher typed is fixed; the rest is chosen from the data (core.imaging.recipes).
    explicit = {
        key: value
        for key, value in dict(
            epochs=args.epochs,
            image_size=args.image_size,
            batch_size=args.batch_size,
            seed=args.seed,
            init_from="" if (args.init_from or "").lower() in ("none", "scratch") else args.init_from,
            positive_class=args.positive_class,
            max_images_per_class=args.max_per_class,
            patience=args.patience,
            augmentation=args.augmentation,
            mixup=args.mixup,
            snapshots=args.snapshots,
            ensemble=args.ensemble,
            members=args.members,
            threshold_rule=args.threshold_rule,
            pretrain_epochs=args.pretrain_epochs,
            wide_members=False if args.one_width else None,
            wide=True if args.wide else None,
        ).items()
        if value is not None
    }
    channel = JobChannel(args.progress_file, args.cancel_file)  # a background job's events and cancel file
    with channel.watch():
        payload = training.train_image(
            Path(args.data),
            args.name,
            explicit,
            progress=channel.progress(_train_progress),
            cancel=channel.cancelled,
            command=command_line(),
            redact_files=bool(args.progress_file),
            schedule=args.recipe,
        )  # a job's output stays on disk
        payload.update(activation_outcome(args.activate, payload["model"]))
        channel.finished(payload)

    def human(r: dict[str, Any]) -> str:
        v = r["validation"]
        state = "active" if r["active"] else f"not active: review its card, then python -m core activate {r['model']}"
        if r.get("activation") and not r["activation"]["activated"]:
            state += f"; {r['activation']['reason']}"
        why = f"\nrecipe: {training.recipe_explanation(r['recipe'])}" if r.get("recipe") else ""
        return (
            f"registered {r['model']} on {r['device']} in {r['seconds']:.0f} s: validation AUC {fmt(v['auc'])}, "
            f"accuracy {fmt(v['accuracy'])} ({state}){why}"
        )

    emit(payload, args.json, human)
    # Skipped files are bad input even though the rest trained: the contract's exit status 1.
    return EXIT_BAD_INPUT if payload["dataset"]["skipped"] else EXIT_OK


def activation_outcome(requested: bool, spec: str) -> dict[str, Any]:
    """``--activate`` goes through the quality gate like every activation; a refusal leaves the version
    registered but not active and says why in ``activation`` (exit 0: the training itself succeeded)."""
    from core.services import activation, audit, catalog

    outcome: dict[str, Any] = {}
    if requested:
        outcome["activation"] = activation.activate_after_training(audit.os_actor(), spec)
    return outcome | {"active": catalog.is_approved(catalog.resolve(spec))}


def _whole_number(check_name: str):
    """An argparse type for a whole-number option that ``core.services.training.<check_name>`` checks: anything
    it refuses is misuse (exit 2) before any data is read, said with the service's own message."""

    def parse(text: str) -> int:
        from core.errors import InvalidOptionError
        from core.services import training

        value: object = text
        try:
            value = int(text)
        except ValueError:
            pass  # refused by the check, with the same message as an out-of-range number
        try:
            return getattr(training, check_name)(value)
        except InvalidOptionError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    parse.__name__ = check_name  # argparse names the option's type in its own errors
    return parse


def register(sub: argparse._SubParsersAction) -> None:
    from core.services.training import recipe_choices

    choices = recipe_choices()

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
    defaults = choices["defaults"]
    auto = "default: chosen from the data (see --recipe)"
    # Defaults are None so the recipe knows which fields the researcher set: those always win.
    p.add_argument(
        "--recipe",
        choices=choices["schedules"],
        default="auto",
        help="auto: choose augmentation, schedule, epochs, image size and starting weights from the "
        "data and record why; plateau / snapshots: that schedule, the rest still chosen",
    )
    p.add_argument("--epochs", type=int, default=None, help=auto)
    p.add_argument("--image-size", type=int, default=None, help=auto)
    p.add_argument("--batch-size", type=int, default=None, help=f"default {defaults.batch_size}")
    p.add_argument("--seed", type=int, default=None, help=f"default {defaults.seed}")
    p.add_argument("--augmentation", choices=choices["augmentations"], default=None, help=auto)
    p.add_argument("--mixup", type=float, default=None, metavar="ALPHA", help="mixup Beta(a, a); 0 = off (default)")
    p.add_argument(
        "--snapshots",
        type=int,
        default=None,
        metavar="N",
        help="cosine learning-rate cycles, one snapshot each; 0 = plateau decay with early stopping; " + auto,
    )
    p.add_argument("--patience", type=int, default=None, metavar="EPOCHS", help="early-stopping patience; " + auto)
    p.add_argument(
        "--ensemble",
        type=int,
        default=None,
        metavar="K",
        help="average the last K snapshots into the registered model; " + auto,
    )
    p.add_argument(
        "--members",
        type=_whole_number("check_members"),
        default=None,
        metavar="M",
        help="train M networks independently (own seeds, alternate widths) and register their average "
        "(a deep ensemble: M times the training time); default 1",
    )
    widths = p.add_mutually_exclusive_group()
    widths.add_argument(
        "--one-width",
        action="store_true",
        help="every member uses the standard width (by default every second one is wider): one trunk "
        "to pretrain instead of two",
    )
    widths.add_argument(
        "--wide",
        action="store_true",
        help="every member uses the wider network (with --members 1, a single wide network); trained "
        "from scratch or from --pretrain-epochs",
    )
    p.add_argument(
        "--threshold-rule", choices=choices["threshold_rules"], default=None, help=f"default {defaults.threshold_rule}"
    )
    p.add_argument(
        "--pretrain-epochs",
        type=_whole_number("check_pretrain_epochs"),
        default=None,
        metavar="N",
        help="first learn the network's start from the training films themselves, labels unused, for N "
        "epochs (self-supervised, SimCLR); instead of --init-from; default 0 (none)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="MODEL",
        help="start from this registered model's weights; 'none' = from scratch; " + auto,
    )
    p.add_argument("--positive-class", default=None, help="class treated as positive for a two-class model")
    p.add_argument("--max-per-class", type=int, default=None, help="use at most this many images per class")
    p.add_argument(
        "--activate",
        action="store_true",
        help="also make it the active version if it passes the quality gate (otherwise an administrator "
        "activates it after review)",
    )
    p.add_argument("--no-activate", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for scripts
    p.add_argument("--progress-file", default=None, metavar="FILE", help="append JSON progress events to FILE (jobs)")
    p.add_argument("--cancel-file", default=None, metavar="FILE", help="stop without registering once FILE exists")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_train)
