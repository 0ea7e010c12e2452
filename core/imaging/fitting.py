"""Fit a network on prepared arrays: augmentation, class weights, validation AUC, early stopping.

Inputs are (N, S, S, 1) float32 in [0, 1] from ``core.imaging.preprocessing``; labels (N,) int.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from core.i18n import _
from core.errors import TrainingCancelledError
from core.imaging import network as network_mod
from core.models.metrics import multiclass_auc

ProgressFn = Callable[[dict[str, Any]], None]
CancelFn = Callable[[], bool]


@dataclass
class FitSettings:
    """What ``fit`` needs of the training configuration."""

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    seed: int
    init_from: str | None = None


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Inverse-frequency weights so each class pulls equally on the loss (e.g. 1:2.9 imbalance)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return {i: float(len(labels) / (n_classes * max(c, 1))) for i, c in enumerate(counts)}


def validation_callback(
    x_val, y_val, positive, progress: ProgressFn | None, cancel: CancelFn | None, epochs: int, steps: int, n_train: int
):
    """A Keras callback: validation AUC each epoch (for early stopping), progress events, cancellation."""
    from core.imaging.tfsetup import keras

    class ValidationAuc(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if cancel is not None and cancel():
                self.model.stop_training = True
                raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))
            if progress and batch % 10 == 0:
                progress({"event": "step", "step": batch + 1, "steps": steps, "loss": float((logs or {}).get("loss", np.nan))})

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            probs = self.model.predict(x_val, batch_size=64, verbose=0)
            logs["val_auc"] = multiclass_auc(y_val, np.asarray(probs, dtype=np.float64), positive)
            if progress:
                elapsed = time.monotonic() - self.started
                progress({
                    "event": "epoch", "epoch": epoch + 1, "epochs": epochs,
                    "loss": float(logs.get("loss", np.nan)),
                    "val_loss": float(logs.get("val_loss", np.nan)) if "val_loss" in logs else None,
                    "val_auc": logs["val_auc"], "seconds": elapsed,
                    "eta_seconds": elapsed / (epoch + 1) * (epochs - epoch - 1),
                    "images_per_second": n_train * (epoch + 1) / max(elapsed, 1e-9),
                })

    return ValidationAuc()


def compile_trainer(settings: FitSettings, size: int, n_classes: int, strategy: Any):
    """(network, trainer): the network, and it behind the augmentation, compiled under ``strategy``."""
    from core.imaging.tfsetup import keras

    with strategy.scope():
        network = network_mod.build_network(size, n_classes)
        if settings.init_from:
            network_mod.transfer_weights(network, settings.init_from)
        trainer = keras.Sequential([keras.Input((size, size, 1)), network_mod.build_augmentation(settings.seed), network])
        trainer.compile(optimizer=keras.optimizers.Adam(settings.learning_rate),
                        loss=keras.losses.SparseCategoricalCrossentropy())
    return network, trainer


def fit(trainer, settings: FitSettings, n_classes: int, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
        positive: int | None, progress: ProgressFn | None, cancel: CancelFn | None) -> dict[str, list[float]]:
    """Fit ``trainer`` on ``train`` with early stopping on ``val`` AUC; returns the Keras history.

    Raises:
        TrainingCancelledError: ``cancel()`` returned True.
    """
    from core.imaging.tfsetup import keras, tf

    (x_train, y_train), (x_val, y_val) = train, val
    batches = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=settings.seed, reshuffle_each_iteration=True)
        .batch(settings.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps = int(np.ceil(len(x_train) / settings.batch_size))
    callbacks = [
        validation_callback(x_val, y_val, positive, progress, cancel, settings.epochs, steps, len(x_train)),
        keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=3, min_lr=1e-5),
        keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=settings.patience, restore_best_weights=True),
    ]
    history = trainer.fit(
        batches, epochs=settings.epochs, class_weight=class_weights(y_train, n_classes),
        callbacks=callbacks, shuffle=False, verbose=0,  # the tf.data pipeline already reshuffles every epoch
    )
    if cancel is not None and cancel():
        raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
