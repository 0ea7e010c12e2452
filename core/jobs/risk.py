"""A risk-model training job: ``python -m core train-risk`` on a table the job folder holds only while it runs.

The table is written into the job folder as ``table.csv`` (identifier, date and free-text columns already
removed, never under the upload's own name) with the researcher's ``overrides.json``; the runner deletes
both once the job ends, whatever the outcome.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidOptionError
from core.i18n import _
from core.jobs.runner import channel_args

TABLE_FILE, OVERRIDES_FILE = "table.csv", "overrides.json"
DATA_LABEL = "a table uploaded on the risk model training page (not kept)"


@dataclass
class RiskJobRequest:
    """What to train: the outcome, the model name, the folds; the table and overrides travel as job inputs."""

    name: str
    target: str
    positive: str
    negative: str | None = None
    folds: int = 10
    kind: str = "risk"  # tells the pages' job lists apart from image jobs

    def validate(self) -> None:
        from core.models.registry import check_model_name

        check_model_name(self.name)
        if not 2 <= self.folds <= 20:
            raise InvalidOptionError(
                _("The number of folds must be between 2 and 20; got {folds}.").format(folds=self.folds)
            )

    def argv(self, job_dir: Path) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "core",
            "train-risk",
            "--csv",
            str(job_dir / TABLE_FILE),
            "--target",
            self.target,
            "--positive",
            self.positive,
            "--name",
            self.name,
            "--folds",
            str(self.folds),
            "--no-activate",
            "--overrides",
            str(job_dir / OVERRIDES_FILE),
            "--data-label",
            DATA_LABEL,
            *channel_args(job_dir),
        ]
        if self.negative:
            args += ["--negative", self.negative]
        return args
