"""The ``python -m core`` command line: a contract (README "Command line", ../shared/CLI.md).

One small module per command group; each registers its subcommands here. ``--json`` prints exactly
one JSON document on stdout; progress and logs go to stderr. Exit status: 0 all went well, 1 some
input was bad (the rest was processed), 2 misuse.
"""

from __future__ import annotations

import argparse
import os

from core.cli import imaging, models, tabular, validation
from core.cli.common import EXIT_BAD_INPUT, EXIT_MISUSE, Parser, log
from core.errors import LucidDxError, ModelNotFoundError, RegistryError

GROUPS = (imaging, tabular, models, validation)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m core", description="LucidDx: explainable diagnostic models from the command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ModelNotFoundError, RegistryError) as exc:
        log(f"error: {exc}")
        return EXIT_MISUSE
    except LucidDxError as exc:
        log(f"error: {exc}")
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:
        log(f"error: {exc.filename}: not found.")
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug of ours: a one-line message, the traceback only on request
        if os.environ.get("LUCIDDX_DEBUG"):
            raise
        log(f"error: LucidDx failed unexpectedly ({type(exc).__name__}: {exc}). Set LUCIDDX_DEBUG=1 for details.")
        return EXIT_BAD_INPUT
