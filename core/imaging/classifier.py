"""Load a registered image model and predict with it.

A classifier is built from its ``meta.json`` alone: classes, positive class, operating threshold,
input size and preprocessing all come from there, never from constants in code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core.imaging import ood
from core.imaging.door import LoadedImage
from core.imaging.model_meta import ModelView, invalid_model, validate_meta
from core.imaging.network import FEATURES_LAYER, LAST_CONV_LAYER
from core.imaging.outputs import Prediction
from core.imaging.tfsetup import keras, tf
from core.models import kinds, registry

__all__ = ["FEATURES_LAYER", "LAST_CONV_LAYER", "ImageClassifier", "Prediction", "load_classifier", "validate_meta"]


class ImageClassifier(ModelView):
    """A registered CNN with its operating point. ``predict_*`` never mutate the model."""

    def __init__(self, ref: registry.ModelRef) -> None:
        """Validate ``ref``'s meta.json, then load its weights and OOD detector.

        Raises:
            InvalidModelError: malformed metadata (classes, input, recipe), missing or unloadable
                weights, or a network without the layers LucidDx reads. The message names the model.
        """
        super().__init__(ref)
        self.model = _load_network(ref.spec, self.weights_file, len(self.classes))
        self._with_features = keras.Model(
            self.model.inputs, [self.model.outputs[0], self.model.get_layer(FEATURES_LAYER).output]
        )
        signature = [tf.TensorSpec([None, self.input_size, self.input_size, 1], tf.float32)]
        self._infer = tf.function(lambda x: self._with_features(x, training=False), input_signature=signature)
        self.ood_detector = ood.OodDetector.load(ref.path)

    def with_network(self, network: Any) -> ImageClassifier:
        """A copy that predicts with ``network`` (same classes, input, threshold, OOD detector).

        For the sanity checks of explanations (``core.imaging.faithfulness``): the same classifier with
        its top layers re-initialised. ``network`` must have this one's layer names and outputs.
        """
        import copy

        twin = copy.copy(self)
        twin.model = network
        twin._with_features = keras.Model(
            network.inputs, [network.outputs[0], network.get_layer(FEATURES_LAYER).output]
        )
        signature = [tf.TensorSpec([None, self.input_size, self.input_size, 1], tf.float32)]
        twin._infer = tf.function(lambda x: twin._with_features(x, training=False), input_signature=signature)
        return twin

    def predict_inputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, 1) prepared inputs -> (probabilities (N, K), features (N, F))."""
        probs, feats = self._infer(tf.convert_to_tensor(batch, tf.float32))
        return probs.numpy().astype(np.float64), feats.numpy()

    def predict_pixels(
        self, images: Iterable[np.ndarray], batch_size: int = 64
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Prepare greyscale images ((H, W) in [0, 1]) and run them in batches.

        Yields (probabilities (B, K), pooled features (B, F)) per batch, in input order, holding only
        one batch of prepared inputs at a time (folders of thousands of films fit in memory).
        """
        batch: list[np.ndarray] = []
        for pixels in images:
            batch.append(self.prepare(pixels))
            if len(batch) == batch_size:
                yield self.predict_inputs(np.stack(batch))
                batch = []
        if batch:
            yield self.predict_inputs(np.stack(batch))

    def decide(self, probabilities: np.ndarray, threshold: float | None = None) -> str:
        """Apply the operating point (``threshold``, default the stored one) to one row of class probabilities."""
        threshold = self.threshold if threshold is None else threshold
        if self.positive_class is not None and threshold is not None and len(self.classes) == 2:
            positive = self.classes.index(self.positive_class)
            negative = 1 - positive
            return self.classes[positive] if probabilities[positive] >= threshold else self.classes[negative]
        return self.classes[int(np.argmax(probabilities))]

    def predict_prepared(
        self, batch: np.ndarray, threshold: float | None = None, threshold_source: str = "stored"
    ) -> list[Prediction]:
        """(N, S, S, 1) prepared inputs -> one Prediction per row, decided at ``threshold`` (None = stored)."""
        return self.predictions_from_outputs(*self.predict_inputs(batch), threshold, threshold_source)

    def predictions_from_outputs(
        self, probs: np.ndarray, feats: np.ndarray, threshold: float | None = None, threshold_source: str = "stored"
    ) -> list[Prediction]:
        """Probabilities (N, K) and pooled features (N, F) from any forward pass -> Predictions.

        Lets an explainer that already ran the network (one forward+gradient pass) reuse it. ``threshold``
        (None = the stored one) is the one decision of each row: its label, and the class a map explains.
        """
        if threshold is None:
            threshold, threshold_source = self.threshold, "stored"
        scores = self.ood_detector.score(feats) if self.ood_detector else None
        results = []
        for i, row in enumerate(probs):
            ood_score = float(scores[i]) if scores is not None else None
            results.append(
                Prediction(
                    model=self.spec,
                    label=self.decide(row, threshold),
                    probabilities={c: round(float(p), 6) for c, p in zip(self.classes, row)},
                    threshold=threshold,
                    threshold_source=threshold_source,
                    positive_class=self.positive_class,
                    out_of_distribution=bool(self.ood_detector.is_out(ood_score)) if self.ood_detector else False,
                    ood_score=ood_score,
                )
            )
        return results

    def predict(self, image: LoadedImage) -> Prediction:
        return self.predict_prepared(self.prepare(image.pixels)[np.newaxis])[0]


def _load_network(spec: str, weights: Path, n_classes: int):
    """The Keras network in ``weights``, checked against what LucidDx reads of it."""
    try:
        model = keras.models.load_model(weights, compile=False)
    except Exception as exc:  # truncated or incompatible weights: Keras raises many types
        raise invalid_model(spec, f"its weights could not be loaded ({type(exc).__name__})") from exc
    names = {layer.name for layer in model.layers}
    missing = [name for name in (FEATURES_LAYER, LAST_CONV_LAYER) if name not in names]
    if missing:
        raise invalid_model(spec, f"its network lacks the layer(s) {missing} that predictions and explanations read")
    if int(model.outputs[0].shape[-1]) != n_classes:
        raise invalid_model(
            spec, f"its network gives {int(model.outputs[0].shape[-1])} outputs for {n_classes} classes"
        )
    return model


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, spec: str) -> ImageClassifier:
    return ImageClassifier(registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER))


def load_classifier(spec: str | None = None) -> ImageClassifier:
    """Load (once per process) the image model ``NAME`` / ``NAME:VERSION``; None = default model."""
    ref = registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER)
    return _load_cached(str(ref.path), ref.spec)
