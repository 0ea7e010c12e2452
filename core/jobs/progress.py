"""A job as a viewer sees it (``JobProgress``), moved through the events its training process writes.

Pure: no files are read here (``core.jobs.runner.read_progress`` reads them), so a page, a test or a
notebook can replay any list of events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACTIVE_STATES = ("queued", "running")


@dataclass
class JobProgress:
    """A job as a viewer sees it, rebuilt from its files on every read."""

    job_id: str
    state: str
    request: dict[str, Any]
    created: float
    device: str | None = None
    phase: str = "waiting"
    loading: tuple[int, int] | None = None
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    pretrain: tuple[int, int] = (0, 0)
    """Self-supervised pretraining's (epochs done, epochs in all); (0, 0) without pretraining."""
    eta_seconds: float | None = None
    images_per_second: float | None = None
    epoch_events: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    recipe: dict[str, Any] | None = None
    """The training recipe the job chose from its data (its first event), for fields the request left open."""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def fraction(self) -> float:
        """Overall progress in [0, 1]: loading counts as the first 10 %."""
        if self.state == "succeeded":
            return 1.0
        if self.epochs and self.steps:
            done = (
                (len(self.epoch_events) + min(self.step, self.steps) / self.steps)
                if self.phase == "training"
                else len(self.epoch_events)
            )
            # Pretraining's epochs come first and count like the fit's (each one about as long).
            return min(0.1 + 0.9 * (self.pretrain[0] + done) / (self.pretrain[1] + self.epochs), 1.0)
        if self.loading and self.loading[1]:
            return 0.1 * self.loading[0] / self.loading[1]
        return 0.0


def follow_events(progress: JobProgress, events: list[dict[str, Any]]) -> None:
    """Moves ``progress`` through a job's ``events`` (in order): phase, epochs, steps, ETA, result."""
    for event in events:
        kind = event.get("event")
        if kind == "recipe":
            progress.recipe = event.get("recipe")
        elif kind == "loading":
            progress.phase, progress.loading = "loading", (event["done"], event["total"])
        elif kind == "started":
            progress.phase, progress.device = "training", event.get("device")
            progress.steps, progress.epochs = event.get("steps", 0), event.get("epochs", progress.epochs)
            if event.get("pretrain_epochs"):
                progress.phase, progress.pretrain = "pretraining", (0, int(event["pretrain_epochs"]))
        elif kind == "pretrain_epoch":
            progress.pretrain = (int(event["epoch"]), int(event["epochs"]))
            progress.eta_seconds = event.get("eta_seconds")
            if progress.pretrain[0] >= progress.pretrain[1]:
                progress.phase = "training"
        elif kind == "step":
            progress.step, progress.steps = event["step"], event.get("steps", progress.steps)
            progress.epoch = len(progress.epoch_events) + 1
            # A job without epochs (measuring explanations) estimates its remaining time per step.
            progress.eta_seconds = event.get("eta_seconds", progress.eta_seconds)
        elif kind == "epoch":
            progress.epoch_events.append(event)
            progress.epoch, progress.step = event["epoch"], progress.steps
            progress.eta_seconds, progress.images_per_second = event.get("eta_seconds"), event.get("images_per_second")
        elif kind == "evaluating":
            progress.phase, progress.eta_seconds = "evaluating", None
        elif kind == "finished":
            progress.result = {k: v for k, v in event.items() if k != "event"}
            progress.device = event.get("device", progress.device)
