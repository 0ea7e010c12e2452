"""Self-supervised pretraining of the CNN's trunk on the training films themselves, labels unused.

No downloaded weights exist here, so a network starts from random kernels. Contrastive learning gives
it a start learned from the films alone (SimCLR: Chen et al. 2020; on chest radiographs, MoCo-CXR:
Sowrirajan et al. 2021, and Azizi et al. 2021): two random views of each film (crop, rotation, shift,
contrast, blur, noise) are pulled together in a projection space and pushed away from every other
film's views in the batch (the NT-Xent loss). The projection head is thrown away; the trunk's
weights start the supervised fit (``fitting.compile_trainer``'s ``start_weights``).

Only the films of training patients may be given: the tuning and held-out patients stay unseen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from core.errors import InvalidOptionError, TrainingCancelledError
from core.i18n import _
from core.imaging import network as network_mod
from core.imaging.fitting import CancelFn, ProgressFn

METHOD = "SimCLR (NT-Xent) on the training patients' films, labels unused"
PROJECTION_DIM = 64
TEMPERATURE = 0.2
"""NT-Xent's softmax temperature: SimCLR's range for small batches (0.1-0.5)."""
CROP = (-0.35, 0.0)
"""Extra zoom-in (a random crop of up to 35%) on top of the strong augmentation: SimCLR found cropping
the view change that matters most; X-ray work keeps it milder than natural images' 8% crops."""
MIN_BATCH = 8


@dataclass(frozen=True)
class PretrainSettings:
    epochs: int
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 1234
    widths: tuple[int, ...] = network_mod.WIDTHS


def check_epochs(epochs: object) -> int:
    """``epochs`` if it is a usable number of pretraining epochs (a whole number, 0 = none).

    Raises:
        InvalidOptionError: anything else.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise InvalidOptionError(
            _("Self-supervised pretraining epochs must be a whole number, 0 or more (0 = none); got {epochs}.").format(
                epochs=epochs
            )
        )
    return int(epochs)


def nt_xent(z1, z2, temperature: float = TEMPERATURE):
    """SimCLR's loss for a batch of view pairs (z1[i], z2[i]): cross-entropy of finding each view's
    partner among the other 2N-1 views by cosine similarity / ``temperature``."""
    from core.imaging.tfsetup import tf

    # float32 whatever the layers computed in: the -1e9 mask below overflows float16.
    z = tf.math.l2_normalize(tf.cast(tf.concat([z1, z2], 0), tf.float32), axis=1)
    n = tf.shape(z1)[0]
    similarity = tf.matmul(z, z, transpose_b=True) / temperature
    similarity -= 1e9 * tf.eye(2 * n)  # a view is never its own partner
    partner = tf.concat([tf.range(n, 2 * n), tf.range(0, n)], 0)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(partner, similarity))


def _views(seed: int):
    from core.imaging.tfsetup import keras

    return keras.Sequential(
        [
            network_mod.build_augmentation(seed, "strong"),
            keras.layers.RandomZoom(CROP, fill_mode="constant", seed=seed + 7),
        ],
        name="views",
    )


def pretrain(
    x: np.ndarray,
    n_classes: int,
    size: int,
    settings: PretrainSettings,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """(weights of a ``build_network`` whose trunk learned from ``x`` by contrast, loss per epoch).

    ``x``: (N, S, S, 1) model inputs of training patients only. The head (``logits``) keeps its
    random start: the supervised fit learns it.

    Raises:
        InvalidOptionError: fewer films than one contrastive batch needs.
        TrainingCancelledError: ``cancel()`` returned True.
    """
    from core.imaging.tfsetup import keras

    batch = min(settings.batch_size, len(x))
    if batch < MIN_BATCH:
        raise InvalidOptionError(
            _("Self-supervised pretraining needs at least {n} training images; this folder has {have}.").format(
                n=MIN_BATCH, have=len(x)
            )
        )
    # Under a GPU's mixed_float16 policy (``network.choose_device``) this loop would need loss scaling of its
    # own; pretraining runs in float32 and the supervised fit, compiled by Keras, keeps mixed precision.
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        return _pretrain(x, n_classes, size, settings, batch, progress, cancel)
    finally:
        keras.mixed_precision.set_dtype_policy(policy)


def _pretrain(
    x: np.ndarray,
    n_classes: int,
    size: int,
    settings: PretrainSettings,
    batch: int,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
) -> tuple[list[np.ndarray], list[float]]:
    from core.imaging.tfsetup import keras, tf

    network = network_mod.build_network(size, n_classes, settings.widths)
    encoder = keras.Model(network.inputs, network.get_layer(network_mod.FEATURES_LAYER).output)
    projector = keras.Sequential(
        [
            keras.layers.Dense(settings.widths[-1], activation="relu"),
            keras.layers.Dense(PROJECTION_DIM),
        ],
        name="projection",
    )
    views = [_views(settings.seed + 100), _views(settings.seed + 200)]
    steps = len(x) // batch
    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, max(1, steps * settings.epochs), alpha=0.05
    )
    optimizer = keras.optimizers.Adam(schedule)
    projector.build((None, settings.widths[-1]))
    variables = encoder.trainable_variables + projector.trainable_variables

    @tf.function
    def step(images):
        with tf.GradientTape() as tape:
            z1 = projector(encoder(views[0](images, training=True), training=True), training=True)
            z2 = projector(encoder(views[1](images, training=True), training=True), training=True)
            loss = nt_xent(z1, z2)
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    data = (
        tf.data.Dataset.from_tensor_slices(x)
        .shuffle(len(x), seed=settings.seed, reshuffle_each_iteration=True)
        .batch(batch, drop_remainder=True)  # NT-Xent's negatives: every batch the same size
        .prefetch(tf.data.AUTOTUNE)
    )
    losses: list[float] = []
    started = time.monotonic()
    for epoch in range(settings.epochs):
        total = 0.0
        for i, images in enumerate(data):
            if cancel is not None and cancel():
                raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))
            total += float(step(images))
            if progress and i % 10 == 0:
                progress({"event": "pretrain_step", "step": i + 1, "steps": steps, "epoch": epoch + 1})
        losses.append(total / max(steps, 1))
        if progress:
            elapsed = time.monotonic() - started
            progress(
                {
                    "event": "pretrain_epoch",
                    "epoch": epoch + 1,
                    "epochs": settings.epochs,
                    "loss": losses[-1],
                    "seconds": elapsed,
                    "eta_seconds": elapsed / (epoch + 1) * (settings.epochs - epoch - 1),
                    "images_per_second": steps * batch * (epoch + 1) / max(elapsed, 1e-9),
                }
            )
    return [w.copy() for w in network.get_weights()], losses


def pretrain_trunks(
    x: np.ndarray,
    n_classes: int,
    size: int,
    trunks: list[tuple[int, ...]],
    settings: PretrainSettings,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> tuple[dict[tuple[int, ...], list[np.ndarray]], dict[str, Any]]:
    """({widths: pretrained weights} for each trunk in ``trunks``, the record meta.json keeps), one after another.

    Progress counts the epochs of every trunk as one run (epoch k of len(trunks) * epochs, one ETA).
    ``x``: training patients' films only. No trunks: nothing is done ({}, {}).
    """
    weights: dict[tuple[int, ...], list[np.ndarray]] = {}
    record: dict[str, Any] = {}
    total = settings.epochs * len(trunks)
    for i, widths in enumerate(trunks):
        started, before = time.monotonic(), i * settings.epochs

        def forward(event: dict[str, Any], before: int = before) -> None:
            done = before + event["epoch"]
            if "seconds" in event:
                event = event | {"eta_seconds": event["seconds"] / event["epoch"] * (total - done)}
            if progress is not None:
                progress(event | {"epoch": done, "epochs": total})

        weights[widths], losses = pretrain(x, n_classes, size, replace(settings, widths=widths), forward, cancel)
        record.setdefault("runs", []).append(
            {"widths": list(widths), "loss": losses, "seconds": round(time.monotonic() - started, 1)}
        )
    if trunks:
        record = {"method": METHOD, "images": int(len(x)), "epochs": settings.epochs} | record
    return weights, record
