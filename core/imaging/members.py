"""A deep ensemble's assembly: which weights each member leaves, one progress count over all members,
the registered network averaging them, and the words for what was kept.
"""

from __future__ import annotations

import functools
import time
from typing import Any, Protocol

import numpy as np

from core.imaging import network as network_mod
from core.imaging.fitting import ProgressFn
from core.models import calibration


class EnsembleConfig(Protocol):
    """What the assembly reads of a ``training.TrainConfig`` (named here so this module needs no import of
    training, which imports it)."""

    members: int
    epochs: int
    image_size: int
    ensemble: int
    snapshots: int
    temperature_scaling: bool


def weight_origins(member: int, taken: int, kept: int) -> list[tuple[int, int | None]]:
    """(member, snapshot) of each set of weights member ``member`` (0-based) leaves, both 1-based.

    ``taken``: the snapshots its cycles took (0 without cycles); the ``kept`` last ones are averaged, so the
    snapshot number is the cycle's own (the last 2 of 3 are snapshots 2 and 3), not the rank among those kept.
    A member that leaves one set of weights is named by its number alone.
    """
    if kept == 1:
        return [(member + 1, None)]
    return [(member + 1, taken - kept + k + 1) for k in range(kept)]


def member_progress(
    progress: ProgressFn | None, member: int, config: EnsembleConfig, epochs_before: int
) -> ProgressFn | None:
    """``progress`` with member ``member``'s epochs numbered within the whole run, so one curve and
    one ETA cover every member of a deep ensemble.

    ``epochs_before``: the epochs the earlier members ran (fewer than ``member * config.epochs`` when
    early stopping ended one sooner): member ``member``'s first epoch is the next one, with no gap, and
    ``epochs`` is the most the run can still reach, as for a single network.
    """
    if progress is None or config.members == 1:
        return progress
    started, total = time.monotonic(), epochs_before + (config.members - member) * config.epochs

    def forward(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            done = epochs_before + event["epoch"]
            per_epoch = (time.monotonic() - started) / max(event["epoch"], 1)
            event = event | {
                "epoch": done,
                "epochs": total,
                "member": member + 1,
                "eta_seconds": per_epoch * (total - done),
            }
        progress(event)

    return forward


def calibrated_model(
    members: list,
    config: EnsembleConfig,
    n_classes: int,
    x_tune: np.ndarray,
    y_tune: np.ndarray,
    widths: list[tuple[int, ...]] | None = None,
):
    """The registered network: ``members`` averaged, logits divided by a temperature fitted on the tuning films."""
    from core.imaging.tfsetup import keras

    keras.mixed_precision.set_global_policy("float32")  # the saved model scores on CPUs too
    build = functools.partial(
        network_mod.build_ensemble if len(members) > 1 else network_mod.build_single,
        config.image_size,
        n_classes,
        members,
        widths=widths or [network_mod.WIDTHS] * len(members),
    )
    model, temperature = build(1.0), 1.0
    if config.temperature_scaling:
        temperature = calibration.fit_temperature(model.predict(x_tune, batch_size=64, verbose=0), y_tune)
        model = build(temperature)
    model.temperature_ = temperature
    return model


def architecture(config: EnsembleConfig, parameters: int, kept: list[int] | None = None) -> str:
    """What the registered network is, from what training kept: ``kept`` is the sets of weights kept per
    member (fewer snapshots than ``--ensemble`` asked when the cycles were fewer; one without cycles)."""
    kept = kept or [min(config.ensemble, config.snapshots) if config.snapshots else 1] * config.members
    per_member = max(kept)
    if config.members > 1 and per_member > 1:
        return (
            f"deep ensemble of {config.members} independently trained separable-conv CNNs, the last "
            f"{per_member} snapshots of each averaged ({sum(kept)} networks), {parameters:,} parameters"
        )
    if config.members > 1:
        return f"deep ensemble of {config.members} independently trained separable-conv CNNs, {parameters:,} parameters"
    if per_member > 1:
        return f"ensemble of {per_member} separable-conv CNN snapshots, {parameters:,} parameters"
    return f"separable-conv CNN, {parameters:,} parameters"
