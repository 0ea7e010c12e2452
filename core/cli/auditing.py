"""Every command a person runs is one record per input in the audit log, as the operating-system user.

The commands of ``cli/access.py``, ``activate``, ``delete``, ``threshold`` and ``eval-set`` record themselves (through core.services); the others are recorded here after they ran, with
the model version they used and the SHA-256 of each input file (never its name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core import config
from core.cli.common import log, safe_text
from core.errors import LucidDxError
from core.i18n import _
from core.services import audit, catalog

# command -> (audit action, kind of its default model or None)
AUDITED = {
    "predict": ("predict", catalog.IMAGE_CLASSIFIER),
    "evaluate": ("evaluate", catalog.IMAGE_CLASSIFIER),
    "validate": ("validate", catalog.IMAGE_CLASSIFIER),
    "train": ("train", None),
    "risk": ("risk", catalog.TABULAR_RISK),
    "train-risk": ("train-risk", None),
    "report": ("report", catalog.IMAGE_CLASSIFIER),
    "explain-eval": ("evaluate", catalog.IMAGE_CLASSIFIER),
}


def _model(args: argparse.Namespace, kind: str | None) -> str | None:
    spec = getattr(args, "model", None) or (config.default_model(kind) if kind else None)
    if not spec:
        return None
    try:
        return catalog.resolve(spec).spec
    except LucidDxError:
        return spec if ":" in spec or spec.isidentifier() else None


def _inputs(args: argparse.Namespace) -> list[bytes | None]:
    paths = list(getattr(args, "files", None) or []) or ([args.csv] if getattr(args, "csv", None) else [])
    if getattr(args, "file", None):
        paths.append(args.file)
    contents: list[bytes | None] = []
    for path in paths:
        try:
            contents.append(Path(path).read_bytes())
        except OSError:
            contents.append(None)  # unreadable: recorded without a digest; the command said why
    return contents or [None]


def record_command(args: argparse.Namespace, status: int) -> None:
    """One audit record per input of a finished command; a failure to record is said on stderr."""
    action, kind = AUDITED.get(args.command, (None, None))
    if action is None:
        return
    outcome = "ok" if status == 0 else "failed"
    actor = audit.command_actor()  # a dashboard job's command is recorded as the person who started it
    try:
        model = _model(args, kind)
        for data in _inputs(args):
            audit.command_finished(actor, action, model, data, outcome)
    except (LucidDxError, ValueError) as exc:
        log(
            _("warning: this command could not be recorded in the audit log ({reason})").format(
                reason=safe_text(str(exc))
            )
        )
