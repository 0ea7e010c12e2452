"""The CNN LucidDx trains, its augmentation, the device it trains on, and warm starts.

Layer names are a contract with the rest of ``core.imaging``: the pooled vector is ``features``
(the OOD detector reads it) and the last convolution block ends in ``last_conv`` (Grad-CAM reads it).
"""

from __future__ import annotations

from typing import Any

from core.models import kinds, registry

FEATURES_LAYER = "features"
LAST_CONV_LAYER = "last_conv"


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


def build_network(size: int, n_classes: int, widths: tuple[int, ...] = (32, 64, 128, 192, 256)):
    """A compact separable-conv CNN: (S, S, 1) in [0, 1] -> (K,) softmax probabilities.

    Logits and softmax are separate layers so explainers can take the softmax off a copy.
    """
    from core.imaging.tfsetup import keras

    layers = keras.layers
    inputs = keras.Input((size, size, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0)(inputs)
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
        x = layers.ReLU(name=LAST_CONV_LAYER if last else None)(x)
        if not last:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D(name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.4)(x)
    logits = layers.Dense(n_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(logits)
    return keras.Model(inputs, outputs, name="luciddx_cnn")


def build_augmentation(seed: int):
    """Geometric and acquisition jitter of the kind that differs between radiology departments."""
    from core.imaging.tfsetup import keras

    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
            layers.RandomZoom((-0.12, 0.12), fill_mode="constant", seed=seed + 2),
            layers.RandomContrast(0.25, value_range=(0, 1), seed=seed + 3),
            layers.RandomBrightness(0.1, value_range=(0, 1), seed=seed + 4),
            layers.RandomGaussianBlur(factor=0.5, kernel_size=3, sigma=(0.1, 1.2), value_range=(0, 1), seed=seed + 5),
            layers.GaussianNoise(0.02, seed=seed + 6),
        ],
        name="augmentation",
    )


def transfer_weights(network, spec: str) -> None:
    """Start from a registered model's weights where layer shapes match (the head is re-learned)."""
    from core.imaging.tfsetup import keras

    source_ref = registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER)
    source = keras.models.load_model(source_ref.path / source_ref.meta.get("model_file", "model.keras"), compile=False)
    # Layer names differ between Keras sessions; both networks come from build_network, so order matches.
    for layer, donor in zip(network.layers, source.layers):
        donor_weights = donor.get_weights()
        if [w.shape for w in donor_weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(donor_weights)


def inference_copy(network, size: int, n_classes: int):
    """A float32 copy of a trained ``network`` (mixed precision off) for saving and scoring."""
    from core.imaging.tfsetup import keras

    keras.mixed_precision.set_global_policy("float32")
    inference = build_network(size, n_classes)
    inference.set_weights(network.get_weights())
    return inference
