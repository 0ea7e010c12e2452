"""Site validation and locking an evaluation set as engine jobs: ``python -m core validate`` and
``python -m core eval-set lock`` run on the engine (a page no longer scores a whole folder of films in its own
process), followed through the job folder like trainings.

The films or table are already on the server: a folder or file inside the data roots (checked by the service
that starts the job), or an upload the service stored first (training uploads under ``$LUCIDDX_HOME/uploads``,
evaluation-set uploads under ``$LUCIDDX_HOME/eval_sets/uploads``, which the gate reads again at every
activation). The job registers nothing: its outcome is ``result.json``, the command's ``--json`` document.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidDatasetError, InvalidOptionError
from core.i18n import _
from core.jobs.runner import channel_args

VALIDATE, EVAL_SET = "validate", "eval-set"


def _check_data(data: str) -> None:
    if not Path(data).exists():
        raise InvalidDatasetError(_("{data}: not found on the server.").format(data=data))


@dataclass
class ValidationJobRequest:
    """Measure ``model`` (NAME:VERSION, pinned) on a site's labeled films at ``data``."""

    model: str
    data: str
    target_sensitivity: float = 0.95
    kind: str = VALIDATE  # tells the pages' job lists apart from trainings

    def validate(self) -> None:
        if not 0.5 <= self.target_sensitivity <= 0.99:
            raise InvalidOptionError(
                _("The target sensitivity must be between 0.50 and 0.99; got {value}.").format(
                    value=self.target_sensitivity
                )
            )
        _check_data(self.data)

    def argv(self, job_dir: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "core",
            "validate",
            "--data",
            self.data,
            "--model",
            self.model,
            "--target-sensitivity",
            str(self.target_sensitivity),
            "--with-scores",  # the page records the validation later from the job's labels and probabilities
            *channel_args(job_dir),
        ]


@dataclass
class EvalSetJobRequest:
    """Lock the evaluation set of model ``name`` from ``data`` (every case's digest and label)."""

    name: str
    data: str
    kind: str = EVAL_SET

    def validate(self) -> None:
        from core.models.registry import check_model_name

        check_model_name(self.name)
        _check_data(self.data)

    def argv(self, job_dir: Path) -> list[str]:
        return [sys.executable, "-m", "core", "eval-set", "lock", "--model", self.name, "--data", self.data] + (
            channel_args(job_dir)
        )
