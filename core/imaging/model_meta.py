"""What a registered image model's ``meta.json`` says, checked without loading its network.

:class:`ServedClassifier` is the version as a process that does not run the network sees it (its films are
scored by a Ray Serve replica, ``core.engine.serving``): classes, input, operating point and the film
preparation, which is numpy and Pillow only, so that process never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidModelError
from core.imaging import preprocessing
from core.models import registry


def invalid_model(spec: str, problem: str) -> InvalidModelError:
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
        raise invalid_model(
            spec, f'its meta.json must list at least two distinct class names under "classes" (found {classes!r})'
        )
    positive = meta.get("positive_class")
    if positive is not None and positive not in classes:
        raise invalid_model(spec, f"its positive class '{positive}' is not one of its classes {classes}")
    threshold = meta.get("threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0.0 <= threshold <= 1.0):
        raise invalid_model(spec, f"its threshold {threshold!r} is not a probability between 0 and 1")
    model_input = meta.get("input")
    size = model_input.get("size") if isinstance(model_input, dict) else None
    if not isinstance(model_input, dict) or not isinstance(size, int) or size < 8:
        raise invalid_model(spec, f'its meta.json gives no usable input size under "input" (found {model_input!r})')
    preprocessing.check_recipe(str(model_input.get("preprocessing")), spec)
    weights = Path(model_dir) / meta.get("model_file", "model.keras")
    if not weights.is_file():
        raise invalid_model(spec, f"its weights file {weights.name} is missing from {Path(model_dir)}")
    return meta


class ModelView:
    """What a registered image model version says of itself, from its validated meta.json: classes, operating
    point, input and the film preparation (numpy and Pillow only). ``ImageClassifier`` adds the network."""

    def __init__(self, ref: registry.ModelRef) -> None:
        """Raises InvalidModelError for a malformed meta.json or missing weights (the message names the model)."""
        self.ref = ref
        meta = validate_meta(ref.spec, ref.meta, ref.path)
        self.classes: list[str] = list(meta["classes"])
        self.positive_class: str | None = meta.get("positive_class")
        self.threshold: float | None = meta.get("threshold")
        self.input_size: int = int(meta["input"]["size"])
        self.preprocessing: str = meta["input"]["preprocessing"]
        self.weights_file = ref.path / meta.get("model_file", "model.keras")

    @property
    def spec(self) -> str:
        return self.ref.spec

    def prepare(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W) greyscale in [0, 1] -> (S, S, 1) model input."""
        return preprocessing.prepare(pixels, self.input_size, self.preprocessing)


class ServedClassifier(ModelView):
    """An image model version whose network runs elsewhere (a Ray Serve replica): what the caller needs to
    prepare its films and read the answers, without TensorFlow."""
