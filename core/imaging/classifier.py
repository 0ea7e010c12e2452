"""Load a registered image model and predict with it.

A classifier is built from its ``meta.json`` alone: classes, positive class, operating threshold,
input size and preprocessing all come from there, never from constants in code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidModelError
from core.imaging import ood, preprocessing
from core.imaging.door import LoadedImage
from core.imaging.network import FEATURES_LAYER, LAST_CONV_LAYER
from core.imaging.tfsetup import keras, tf
from core.models import kinds, registry

__all__ = ["FEATURES_LAYER", "LAST_CONV_LAYER", "ImageClassifier", "Prediction", "load_classifier", "validate_meta"]


@dataclass(frozen=True)
class Prediction:
    """What the model says about one image."""

    model: str
    label: str | None
    """The class a reader may read, at the threshold in force; None when the film is not assessable."""
    probabilities: dict[str, float]
    threshold: float | None
    positive_class: str | None
    out_of_distribution: bool
    ood_score: float | None
    threshold_source: str = "stored"
    """Where ``threshold`` comes from: "stored" (the version's own) or "site:<validation id>" (adopted)."""
    decision: str | None = None
    """The class the probabilities point to at the threshold, assessable or not: what an explanation
    explains unless told otherwise. Never a finding: it is not in ``as_dict`` and no table shows it."""

    def __post_init__(self) -> None:
        # The one place every prediction passes (built, or re-decided at a site threshold by
        # dataclasses.replace): a film that is not assessable carries no label, whoever reads it.
        if self.label is not None:
            object.__setattr__(self, "decision", self.label)
        elif self.decision is None and self.probabilities:
            object.__setattr__(self, "decision", max(self.probabilities, key=self.probabilities.__getitem__))
        if self.out_of_distribution:
            object.__setattr__(self, "label", None)

    @property
    def assessable(self) -> bool:
        """False when the image is unlike the training films: no diagnosis should be read from it."""
        return not self.out_of_distribution

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "label": self.label,
            "probabilities": self.probabilities,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "positive_class": self.positive_class,
            "out_of_distribution": self.out_of_distribution,
            "ood_score": self.ood_score,
            "assessable": self.assessable,
        }


class ImageClassifier:
    """A registered CNN with its operating point. ``predict_*`` never mutate the model."""

    def __init__(self, ref: registry.ModelRef) -> None:
        """Validate ``ref``'s meta.json, then load its weights and OOD detector.

        Raises:
            InvalidModelError: malformed metadata (classes, input, recipe), missing or unloadable
                weights, or a network without the layers LucidDx reads. The message names the model.
        """
        self.ref = ref
        meta = validate_meta(ref.spec, ref.meta, ref.path)
        self.classes: list[str] = list(meta["classes"])
        self.positive_class: str | None = meta.get("positive_class")
        self.threshold: float | None = meta.get("threshold")
        self.input_size: int = int(meta["input"]["size"])
        self.preprocessing: str = meta["input"]["preprocessing"]
        self.model = _load_network(ref.spec, ref.path / meta.get("model_file", "model.keras"), len(self.classes))
        self._with_features = keras.Model(
            self.model.inputs, [self.model.outputs[0], self.model.get_layer(FEATURES_LAYER).output]
        )
        signature = [tf.TensorSpec([None, self.input_size, self.input_size, 1], tf.float32)]
        self._infer = tf.function(lambda x: self._with_features(x, training=False), input_signature=signature)
        self.ood_detector = ood.OodDetector.load(ref.path)

    @property
    def spec(self) -> str:
        return self.ref.spec

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

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W) greyscale in [0, 1] -> (S, S, 1) model input."""
        return preprocessing.prepare(pixels, self.input_size, self.preprocessing)

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


def _invalid(spec: str, problem: str) -> InvalidModelError:
    return InvalidModelError(f"Model '{spec}': {problem}. Pick another version, or retrain or delete this one.")


def validate_meta(spec: str, meta: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """Check what prediction needs of a meta.json, once, at load time; returns ``meta``.

    Raises:
        InvalidModelError: classes missing or malformed, positive class or input size malformed,
            unknown preprocessing recipe, or the weights file missing.
    """
    classes = meta.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) and c for c in classes)
        or len(set(classes)) != len(classes)
    ):
        raise _invalid(
            spec, f'its meta.json must list at least two distinct class names under "classes" (found {classes!r})'
        )
    positive = meta.get("positive_class")
    if positive is not None and positive not in classes:
        raise _invalid(spec, f"its positive class '{positive}' is not one of its classes {classes}")
    threshold = meta.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise _invalid(spec, f"its threshold {threshold!r} is not a probability between 0 and 1")
    model_input = meta.get("input")
    size = model_input.get("size") if isinstance(model_input, dict) else None
    if not isinstance(size, int) or size < 8:
        raise _invalid(spec, f'its meta.json gives no usable input size under "input" (found {model_input!r})')
    preprocessing.check_recipe(str(model_input.get("preprocessing")), spec)
    weights = Path(model_dir) / meta.get("model_file", "model.keras")
    if not weights.is_file():
        raise _invalid(spec, f"its weights file {weights.name} is missing from {Path(model_dir)}")
    return meta


def _load_network(spec: str, weights: Path, n_classes: int):
    """The Keras network in ``weights``, checked against what LucidDx reads of it."""
    try:
        model = keras.models.load_model(weights, compile=False)
    except Exception as exc:  # truncated or incompatible weights: Keras raises many types
        raise _invalid(spec, f"its weights could not be loaded ({type(exc).__name__})") from exc
    names = {layer.name for layer in model.layers}
    missing = [name for name in (FEATURES_LAYER, LAST_CONV_LAYER) if name not in names]
    if missing:
        raise _invalid(spec, f"its network lacks the layer(s) {missing} that predictions and explanations read")
    if int(model.outputs[0].shape[-1]) != n_classes:
        raise _invalid(spec, f"its network gives {int(model.outputs[0].shape[-1])} outputs for {n_classes} classes")
    return model


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, spec: str) -> ImageClassifier:
    return ImageClassifier(registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER))


def load_classifier(spec: str | None = None) -> ImageClassifier:
    """Load (once per process) the image model ``NAME`` / ``NAME:VERSION``; None = default model."""
    ref = registry.resolve(spec, kind=kinds.IMAGE_CLASSIFIER)
    return _load_cached(str(ref.path), ref.spec)
