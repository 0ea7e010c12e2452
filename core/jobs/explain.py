"""An explanation-lab job: ``python -m core explain-eval`` on labelled films, followed through the job folder.

The films are a server folder or .zip (already checked against the data roots by the service that starts
the job) or an uploaded zip, written into the job folder as ``films.zip`` and deleted by the runner once
the job ends, whatever the outcome. The job registers nothing: its outcome is ``result.json``, the
command's ``--json`` document.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidDatasetError, InvalidOptionError
from core.i18n import _
from core.jobs.runner import channel_args

UPLOAD_FILE = "films.zip"
KIND = "explain"
MAX_FILMS = 500


@dataclass
class ExplainJobRequest:
    """What to measure: a model version, the methods, how many films, and where the films are.

    ``data``: the server folder or .zip (resolved, inside a data root), or None when the films travel as
    the job's uploaded ``films.zip`` (``upload_name`` keeps the upload's own name for the job list).
    """

    model: str
    methods: list[str] = field(default_factory=list)
    limit: int = 20
    data: str | None = None
    upload_name: str | None = None
    seed: int = 0
    road: list[int] = field(default_factory=lambda: [10, 30, 50, 70, 90])
    """ROAD's removal percentages; empty: no ROAD (core.jobs may not import core.imaging: the service passes them)."""
    kind: str = KIND  # tells the pages' job lists apart from training jobs

    def validate(self) -> None:
        if not self.methods:
            raise InvalidOptionError(_("Choose at least one explanation method to measure."))
        if not 2 <= self.limit <= MAX_FILMS:
            raise InvalidOptionError(
                _("The number of films must be between 2 and {high}; got {value}.").format(
                    high=MAX_FILMS, value=self.limit
                )
            )
        if self.data is None and not self.upload_name:
            raise InvalidDatasetError(_("Give a folder on the server or upload a zip of the labeled films."))
        if self.data is not None and not Path(self.data).exists():
            raise InvalidDatasetError(_("{data}: not found on the server.").format(data=self.data))

    def argv(self, job_dir: Path) -> list[str]:
        data = job_dir / UPLOAD_FILE if self.data is None else Path(self.data)
        args = [
            sys.executable,
            "-m",
            "core",
            "explain-eval",
            "--data",
            str(data),
            "--model",
            self.model,
            "--methods",
            ",".join(self.methods),
            "--limit",
            str(self.limit),
            "--seed",
            str(self.seed),
            *channel_args(job_dir),
        ]
        args += ["--road-percentages", ",".join(str(p) for p in self.road)] if self.road else ["--no-road"]
        return args
