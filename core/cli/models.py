"""Registry commands: ``card``, ``models``, ``activate``, ``delete``. They work for every kind of model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.i18n import _
from core.cli.common import EXIT_OK, emit
from core.errors import ModelNotFoundError


def cmd_card(args: argparse.Namespace) -> int:
    from core.services import catalog

    sys.stdout.write(catalog.card_text(catalog.model_card(args.model), args.format) + "\n")
    return EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from core.services import catalog

    listing = catalog.model_listing()

    def human(rows: list[dict[str, Any]]) -> str:
        return "\n".join(f"{'*' if r['active'] else ' '} {r['model']:<24} {r['kind']:<17} "
                         f"{'bundled' if r['bundled'] else 'trained'} {r['created']}" for r in rows)

    emit(listing, args.json, human)
    return EXIT_OK


def _name_and_version(spec: str, verb: str) -> tuple[str, str]:
    name, _sep, version = spec.partition(":")
    if not version:
        raise ModelNotFoundError(_("Give NAME:VERSION to {verb}, e.g. chest_xray:2.").format(verb=verb))
    return name, version


def cmd_activate(args: argparse.Namespace) -> int:
    from core.models import registry

    ref = registry.activate(*_name_and_version(args.model, "activate"))
    emit({"model": ref.spec, "active": True}, args.json, lambda r: f"{r['model']} is now active")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    from core.models import registry

    registry.delete_version(*_name_and_version(args.model, "delete"))
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

    for verb, func, text in (("activate", cmd_activate, "make a version active (also rolls back)"),
                             ("delete", cmd_delete, "delete a user-trained version")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("model", metavar="NAME:VERSION")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=func)
