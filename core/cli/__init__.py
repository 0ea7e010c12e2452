"""The ``python -m core`` command line: a contract (README "Command line", ../shared/CLI.md).

One small module per command group; each registers its subcommands here. ``--json`` prints exactly
one JSON document on stdout; progress and logs go to stderr. Exit status: 0 all went well, 1 some
input was bad (the rest was processed), 2 misuse.
"""

from __future__ import annotations

import argparse
import os
import sys

from core import i18n
from core.cli import access, auditing, engine, explain, imaging, models, node, service, tabular, validation
from core.cli.common import EXIT_BAD_INPUT, EXIT_MISUSE, Parser, emit, log, safe_text
from core.errors import LucidDxError, ModelNotFoundError, RegistryError

GROUPS = (imaging, tabular, models, validation, explain, access, node, service, engine)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="LucidDx: explainable diagnostic models from the command line.")
    parser.add_argument(
        "--lang",
        choices=list(i18n.LANGUAGES),
        default=None,
        help="language of the human-readable output (default: $LUCIDDX_LANG, else en); JSON keys stay English",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The language first: an option refused while parsing (``--members 0``) is said in it too.
    i18n.set_language(_asked_language(argv) or os.environ.get("LUCIDDX_LANG"))
    args = build_parser().parse_args(argv)
    i18n.set_language(args.lang or os.environ.get("LUCIDDX_LANG"))
    status = _run(args)
    auditing.record_command(args, status)
    return status


def _asked_language(argv: list[str]) -> str | None:
    """``--lang X`` / ``--lang=X`` as given, if X is a language LucidDx speaks (the parser checks the rest)."""
    for i, word in enumerate(argv):
        value = argv[i + 1] if word == "--lang" and i + 1 < len(argv) else word.partition("=")[2]
        if (word == "--lang" or word.startswith("--lang=")) and value in i18n.LANGUAGES:
            return value
    return None


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except (ModelNotFoundError, RegistryError) as exc:
        return _fail(args, str(exc), EXIT_MISUSE)
    except LucidDxError as exc:
        return _fail(args, str(exc), EXIT_BAD_INPUT)
    except FileNotFoundError as exc:
        return _fail(args, f"{exc.filename}: not found.", EXIT_BAD_INPUT)
    except Exception as exc:  # a bug of ours: a one-line message, the traceback only on request
        if os.environ.get("LUCIDDX_DEBUG"):
            raise
        message = f"LucidDx failed unexpectedly ({type(exc).__name__}: {exc}). Set LUCIDDX_DEBUG=1 for details."
        return _fail(args, message, EXIT_BAD_INPUT)


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    """The error on stderr, and with ``--json`` also as the one JSON document the contract promises."""
    log(f"error: {safe_text(message)}")
    if getattr(args, "json", False):
        emit({"ok": False, "error": message}, True, str)
    return status
