"""What every command group shares: the parser class, output, exit codes, number formatting."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_BAD_INPUT, EXIT_MISUSE = 0, 1, 2


class Parser(argparse.ArgumentParser):
    """argparse with the contract's exit status 2 for misuse and a usage line on stderr."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        self.exit(EXIT_MISUSE, f"{self.prog}: error: {message}\n")


def emit(payload: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Exactly one JSON document (``--json``) or the human text on stdout."""
    sys.stdout.write((json.dumps(payload, default=float) if as_json else human(payload)) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def safe_text(text: object) -> str:
    """Text for a terminal: control characters (newlines, escape codes in a file name) shown as escapes."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii") for ch in str(text)
    )


def fmt(value: float | None) -> str:
    """A metric for people: 3 decimals, or 'n/a' where it cannot be computed (e.g. AUC of one class)."""
    return "n/a" if value is None else f"{value:.3f}"


def command_line() -> str:
    """The command as typed, recorded in a trained model's metadata so it can be reproduced."""
    return "python -m core " + " ".join(shlex.quote(a) for a in sys.argv[1:])
