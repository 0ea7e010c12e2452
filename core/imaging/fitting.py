"""Fit a network on prepared arrays: augmentation, class weights, validation AUC, early stopping.

Inputs are (N, S, S, 1) float32 in [0, 1] from ``core.imaging.preprocessing``; labels (N,) int.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import TrainingCancelledError
from core.i18n import _
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
    augmentation: str = "standard"
    mixup: float = 0.0
    """Beta(a, a) mixing of image pairs and their labels (Zhang et al. 2018); 0 = off."""
    snapshots: int = 0
    """Cosine learning-rate cycles, each ending in a kept snapshot (Huang et al. 2017); 0 = one
    run with plateau decay and early stopping instead."""
    widths: tuple[int, ...] = network_mod.WIDTHS


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
                progress(
                    {
                        "event": "step",
                        "step": batch + 1,
                        "steps": steps,
                        "loss": float((logs or {}).get("loss", np.nan)),
                    }
                )

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            probs = self.model.predict(x_val, batch_size=64, verbose=0)
            logs["val_auc"] = multiclass_auc(y_val, np.asarray(probs, dtype=np.float64), positive)
            if progress:
                elapsed = time.monotonic() - self.started
                progress(
                    {
                        "event": "epoch",
                        "epoch": epoch + 1,
                        "epochs": epochs,
                        "loss": float(logs.get("loss", np.nan)),
                        "val_loss": float(logs.get("val_loss", np.nan)) if "val_loss" in logs else None,
                        "val_auc": logs["val_auc"],
                        "seconds": elapsed,
                        "eta_seconds": elapsed / (epoch + 1) * (epochs - epoch - 1),
                        "images_per_second": n_train * (epoch + 1) / max(elapsed, 1e-9),
                    }
                )

    return ValidationAuc()


def compile_trainer(
    settings: FitSettings, size: int, n_classes: int, strategy: Any, steps: int, start_weights: list | None = None
):
    """(network, trainer): the network, and it behind the augmentation, compiled under ``strategy``.

    ``start_weights``: the network's weights to start from (``pretraining.pretrain``'s); otherwise
    ``settings.init_from``'s where given, else a random start.
    """
    from core.imaging.tfsetup import keras

    with strategy.scope():
        network = network_mod.build_network(size, n_classes, settings.widths)
        if start_weights is not None:
            network.set_weights(start_weights)
        elif settings.init_from:
            network_mod.transfer_weights(network, settings.init_from)
        trainer = keras.Sequential(
            [
                keras.Input((size, size, 1)),
                network_mod.build_augmentation(settings.seed, settings.augmentation),
                network,
            ]
        )
        trainer.compile(
            optimizer=keras.optimizers.Adam(_learning_rate(settings, steps)),
            loss=keras.losses.CategoricalCrossentropy(),
        )
    return network, trainer


def _learning_rate(settings: FitSettings, steps: int):
    """A constant rate (decayed on plateau by a callback), or cosine cycles restarting every cycle."""
    if not settings.snapshots:
        return settings.learning_rate
    return cosine_cycles(settings.learning_rate, [steps * end for end in cycle_ends(settings)])


def cycle_ends(settings: FitSettings) -> list[int]:
    """The epochs (1-based) at which each cosine cycle ends, one snapshot each: ``snapshots`` cycles spread
    over ``epochs`` as evenly as whole epochs allow, the last at the final epoch (8 epochs, 3 cycles: 3, 5, 8;
    12 epochs, 3 cycles: 4, 8, 12). At most one cycle per epoch."""
    cycles = max(1, min(settings.snapshots, settings.epochs))
    return [round(settings.epochs * (k + 1) / cycles) for k in range(cycles)]


def cosine_cycles(rate: float, ends: list[int], alpha: float = 0.01):
    """A learning rate falling from ``rate`` to ``alpha * rate`` along a half cosine in every cycle, each cycle
    ending at the step in ``ends`` (Loshchilov & Hutter 2017's restarts, with cycles of whole epochs that may
    differ by one). With equal cycles it is Keras' ``CosineDecayRestarts(rate, ends[0], 1, 1, alpha)``."""
    from core.imaging.tfsetup import keras, tf

    starts = [0, *ends[:-1]]

    class CosineCycles(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            cycle = tf.minimum(tf.searchsorted(tf.constant(ends, tf.float32), [step], side="right")[0], len(ends) - 1)
            start, end = (
                tf.gather(tf.constant(starts, tf.float32), cycle),
                tf.gather(tf.constant(ends, tf.float32), cycle),
            )
            done = tf.clip_by_value((step - start) / tf.maximum(end - start, 1.0), 0.0, 1.0)
            return rate * (alpha + (1 - alpha) * 0.5 * (1 + tf.cos(np.pi * done)))

        def get_config(self):
            return {"rate": rate, "ends": ends, "alpha": alpha}

    return CosineCycles()


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return int(np.ceil(n_train / batch_size))


def batches(x: np.ndarray, y: np.ndarray, n_classes: int, settings: FitSettings):
    """Shuffled one-hot batches weighted so each class pulls equally; mixed pairwise when mixup is on."""
    from core.imaging.tfsetup import tf

    weights = class_weights(y, n_classes)
    sample_weight = np.asarray([weights[int(k)] for k in y], dtype=np.float32)
    one_hot = np.eye(n_classes, dtype=np.float32)[y]
    data = (
        tf.data.Dataset.from_tensor_slices((x, one_hot, sample_weight))
        .shuffle(len(x), seed=settings.seed, reshuffle_each_iteration=True)
        .batch(settings.batch_size)
    )
    if settings.mixup > 0:
        alpha = float(settings.mixup)

        def mix(images, labels, w):
            n = tf.shape(images)[0]
            a = tf.random.gamma([n], alpha, seed=settings.seed)
            b = tf.random.gamma([n], alpha, seed=settings.seed + 1)
            lam = a / (a + b)
            order = tf.random.shuffle(tf.range(n), seed=settings.seed + 2)
            lam_image = tf.reshape(lam, [-1, 1, 1, 1])
            images = lam_image * images + (1 - lam_image) * tf.gather(images, order)
            labels = lam[:, None] * labels + (1 - lam[:, None]) * tf.gather(labels, order)
            return images, labels, lam * w + (1 - lam) * tf.gather(w, order)

        data = data.map(mix, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def snapshot_callback(network, settings: FitSettings, kept: list):
    """Keeps ``network``'s weights at the end of every cosine cycle (the learning rate's minimum)."""
    from core.imaging.tfsetup import keras

    ends = set(cycle_ends(settings))

    class Snapshots(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in ends:
                kept.append([w.copy() for w in network.get_weights()])

    return Snapshots()


def fit(
    trainer,
    settings: FitSettings,
    n_classes: int,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    positive: int | None,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
    network=None,
    snapshots: list | None = None,
) -> dict[str, list[float]]:
    """Fit ``trainer`` on ``train``; returns the Keras history.

    With ``settings.snapshots`` the run lasts all epochs and appends each cycle's ``network`` weights
    to ``snapshots``; otherwise it stops early on ``val`` AUC and restores the best epoch.

    Raises:
        TrainingCancelledError: ``cancel()`` returned True.
    """
    from core.imaging.tfsetup import keras

    (x_train, y_train), (x_val, y_val) = train, val
    steps = steps_per_epoch(len(x_train), settings.batch_size)
    callbacks = [validation_callback(x_val, y_val, positive, progress, cancel, settings.epochs, steps, len(x_train))]
    if settings.snapshots:
        callbacks.append(snapshot_callback(network, settings, snapshots if snapshots is not None else []))
    else:
        callbacks += [
            keras.callbacks.ReduceLROnPlateau(monitor="val_auc", mode="max", factor=0.3, patience=3, min_lr=1e-5),
            keras.callbacks.EarlyStopping(
                monitor="val_auc", mode="max", patience=settings.patience, restore_best_weights=True
            ),
        ]
    history = trainer.fit(
        batches(x_train, y_train, n_classes, settings),
        epochs=settings.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,  # the tf.data pipeline already reshuffles every epoch
    )
    if cancel is not None and cancel():
        raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}
