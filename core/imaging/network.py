"""The CNN LucidDx trains, its augmentation, the device it trains on, and warm starts.

Layer names are a contract with the rest of ``core.imaging``: the pooled vector is ``features``
(the OOD detector reads it) and the last convolution block ends in ``last_conv`` (Grad-CAM reads it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.models import kinds, registry

FEATURES_LAYER = "features"
LAST_CONV_LAYER = "last_conv"
WIDTHS = (32, 64, 128, 192, 256)
# A deep ensemble's members differ in architecture as well as seed: diversity in what each network
# can represent is what keeps an ensemble's ranking under shift (Ovadia et al. 2019; Fort et al. 2019).
WIDE_WIDTHS = (48, 96, 160, 256, 320)
AUGMENTATIONS = ("standard", "strong")


def choose_device() -> tuple[str, Any]:
    """The strategy to train under: all GPUs mirrored, one GPU, or the CPU; plus its label."""
    from core.imaging.tfsetup import keras, tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        keras.mixed_precision.set_global_policy("float32")
        return "CPU", tf.distribute.get_strategy()
    # float16 compute with float32 master weights: ~2x throughput on tensor-core GPUs.
    keras.mixed_precision.set_global_policy("mixed_float16")
    if len(gpus) > 1:
        return f"GPU:0-{len(gpus) - 1}", tf.distribute.MirroredStrategy()
    return "GPU:0", tf.distribute.OneDeviceStrategy("/gpu:0")


def _trunk(x, widths: tuple[int, ...], last_name: str | None):
    """Separable-conv blocks, each halving resolution but the last: -> (S/32, S/32, widths[-1]) maps."""
    from core.imaging.tfsetup import keras

    layers = keras.layers
    for i, width in enumerate(widths):
        last = i == len(widths) - 1
        if i == 0:
            x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(x)
        else:
            x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU(name=last_name if last else None)(x)
        if not last:
            x = layers.MaxPooling2D()(x)
    return x


def build_network(size: int, n_classes: int, widths: tuple[int, ...] = WIDTHS, member: int | None = None):
    """A compact separable-conv CNN: (S, S, 1) in [0, 1] -> (K,) softmax probabilities.

    Logits and softmax are separate layers so explainers can take the softmax off a copy.
    """
    from core.imaging.tfsetup import keras

    layers = keras.layers
    # An ensemble's members get their own names: explainers look layers up by name, nested ones too.
    prefix = f"member_{member}_" if member else ""
    inputs = keras.Input((size, size, 1), name=f"{prefix}image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
    x = _trunk(x, widths, f"{prefix}{LAST_CONV_LAYER}")
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.4)(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="luciddx_cnn")


def build_ensemble(
    size: int,
    n_classes: int,
    members: list[list[np.ndarray]],
    temperature: float = 1.0,
    widths: tuple[int, ...] | list[tuple[int, ...]] = WIDTHS,
):
    """One Keras model equal to averaging the logits of ``members`` (each ``build_network`` weights), / T.

    ``widths``: every member's, or one per member (independently trained members may differ).

    The members' last convolution maps are concatenated into ``last_conv`` and their pooled vectors
    into ``features``; the head stacks each member's dense layer divided by M*T. So the output is
    softmax(mean_i(logits_i) / T) exactly, and Grad-CAM, Score-CAM and the OOD detector read the
    ensemble through the same two layer names as a single network, from its own gradients.
    """
    from core.imaging.tfsetup import keras

    layers = keras.layers
    inputs = keras.Input((size, size, 1), name="image")
    maps, kernels, biases = [], [], []
    per_member = widths if isinstance(widths, list) else [widths] * len(members)
    for m, weights in enumerate(members):
        donor = build_network(size, n_classes, tuple(per_member[m]), member=m + 1)
        donor.set_weights(weights)
        trunk = keras.Model(
            donor.inputs, donor.get_layer(f"member_{m + 1}_{LAST_CONV_LAYER}").output, name=f"member_{m + 1}"
        )
        maps.append(trunk(inputs))
        kernel, bias = donor.get_layer("logits").get_weights()
        kernels.append(kernel)
        biases.append(bias)
    x = (
        layers.Concatenate(name=LAST_CONV_LAYER)(maps)
        if len(maps) > 1
        else layers.Identity(name=LAST_CONV_LAYER)(maps[0])
    )
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name="luciddx_ensemble")
    scale = len(members) * float(temperature)
    model.get_layer("logits").set_weights([np.concatenate(kernels, 0) / scale, np.sum(biases, 0) / scale])
    return model


def build_single(
    size: int,
    n_classes: int,
    members: list[list[np.ndarray]],
    temperature: float = 1.0,
    widths: tuple[int, ...] | list[tuple[int, ...]] = WIDTHS,
):
    """``build_network`` holding the one member's weights, logits divided by ``temperature``.

    A plain network rather than a one-member ensemble, so warm starts (``transfer_weights``) and every
    older reader of the layout keep working.
    """
    (weights,) = members
    model = build_network(size, n_classes, tuple(widths[0] if isinstance(widths, list) else widths))
    model.set_weights(weights)
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel / temperature, bias / temperature])
    return model


def build_augmentation(seed: int, strength: str = "standard"):
    """Geometric and acquisition jitter of the kind that differs between radiology departments.

    "strong" widens every range and adds sharpening-like contrast and heavier noise: departments
    differ in collimation, positioning and post-processing far more than the standard ranges allow.
    """
    from core.imaging.tfsetup import keras

    layers = keras.layers
    strong = strength == "strong"
    return keras.Sequential(
        [
            layers.RandomRotation(0.05 if strong else 0.03, fill_mode="constant", seed=seed),
            layers.RandomTranslation(
                0.1 if strong else 0.06, 0.1 if strong else 0.06, fill_mode="constant", seed=seed + 1
            ),
            layers.RandomZoom((-0.2, 0.2) if strong else (-0.12, 0.12), fill_mode="constant", seed=seed + 2),
            layers.RandomContrast(0.4 if strong else 0.25, value_range=(0, 1), seed=seed + 3),
            layers.RandomBrightness(0.15 if strong else 0.1, value_range=(0, 1), seed=seed + 4),
            layers.RandomGaussianBlur(
                factor=0.5,
                kernel_size=5 if strong else 3,
                sigma=(0.1, 2.0 if strong else 1.2),
                value_range=(0, 1),
                seed=seed + 5,
            ),
            layers.GaussianNoise(0.04 if strong else 0.02, seed=seed + 6),
        ],
        name="augmentation",
    )


def _is_ensemble(model) -> bool:
    return any(layer.name == "member_1" for layer in model.layers)


def transfer_weights(network, spec: str) -> None:
    """Start from a registered model's weights where layer shapes match (the head is re-learned)."""
    from core.imaging.tfsetup import keras

    source_ref = registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER)
    source = keras.models.load_model(source_ref.path / source_ref.meta.get("model_file", "model.keras"), compile=False)
    # Layer names differ between Keras sessions; both networks come from build_network, so order matches.
    # A deep ensemble (build_ensemble) gives its first member's trunk, built by build_network at the
    # standard widths; its averaged head fits no single network, so the head is learned afresh.
    donors = source.get_layer("member_1").layers if _is_ensemble(source) else source.layers
    for layer, donor in zip(network.layers, donors):
        donor_weights = donor.get_weights()
        if [w.shape for w in donor_weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(donor_weights)
