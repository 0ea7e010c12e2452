"""Saliency maps come from the model: they follow its weights and the class asked for, and never touch it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidExplanationError
from core.imaging import outputs, saliency
from core.imaging.classifier import ImageClassifier, load_classifier
from core.imaging.door import load_image
from core.imaging.tfsetup import keras
from core.models import registry
from tests.conftest import CHEST_XRAY_TRAIN

METHODS = list(saliency.METHODS)


@pytest.fixture(scope="module")
def classifier() -> ImageClassifier:
    return load_classifier()


@pytest.fixture(scope="module")
def xray_path() -> Path:
    return sorted((CHEST_XRAY_TRAIN / "PNEUMONIA").iterdir())[0]


@pytest.fixture(scope="module")
def prepared(classifier: ImageClassifier, xray_path: Path) -> np.ndarray:
    return classifier.prepare(load_image(xray_path).pixels)


def heatmap(classifier: ImageClassifier, x: np.ndarray, method: str, target: str | int | None = None) -> np.ndarray:
    np.random.seed(0)  # SmoothGrad draws its noise from numpy's global generator
    return saliency.explain(classifier, x, method, target).heatmap


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_a_model_sized_map_in_unit_range(classifier, prepared, method) -> None:
    explained = saliency.explain(classifier, prepared, method)
    size = classifier.input_size
    assert explained.heatmap.shape == (size, size)
    assert explained.heatmap.dtype == np.float32
    assert np.isfinite(explained.heatmap).all()
    assert explained.heatmap.min() >= 0.0 and explained.heatmap.max() <= 1.0
    assert explained.heatmap.max() > 0.99  # normalised and not flat for a real X-ray
    assert explained.class_name == classifier.predict_prepared(prepared[np.newaxis])[0].label


@pytest.mark.parametrize("method", METHODS)
def test_maps_follow_the_model_weights(classifier, prepared, method) -> None:
    """Swap the two logits of a fresh copy: its map for class 1 must be the original's for class 0."""
    swapped = ImageClassifier(registry.resolve(None, kind="image-classifier"))
    logits = swapped.model.get_layer("logits")
    kernel, bias = logits.get_weights()
    logits.set_weights([kernel[:, ::-1], bias[::-1]])
    original_0 = heatmap(classifier, prepared, method, 0)
    original_1 = heatmap(classifier, prepared, method, 1)
    assert not np.allclose(original_0, original_1, atol=1e-3), "the map must depend on the class explained"
    np.testing.assert_allclose(heatmap(swapped, prepared, method, 1), original_0, atol=2e-3)
    np.testing.assert_allclose(heatmap(swapped, prepared, method, 0), original_1, atol=2e-3)


@pytest.mark.parametrize("method", METHODS)
def test_an_all_zero_input_gives_a_finite_map(classifier, method) -> None:
    size = classifier.input_size
    for target in classifier.classes:
        explained = saliency.explain(classifier, np.zeros((size, size, 1), np.float32), method, target)
        assert np.isfinite(explained.heatmap).all()
        assert 0.0 <= explained.heatmap.min() <= explained.heatmap.max() <= 1.0


def test_fast_gradcam_equals_tf_keras_vis_gradcam(classifier, prepared) -> None:
    explainer = saliency.get_explainer(classifier)
    for index in range(len(classifier.classes)):
        with saliency._quiet():
            reference = explainer.gradcam(
                saliency.CategoricalScore(index),
                prepared[np.newaxis],
                penultimate_layer=saliency.PENULTIMATE_LAYER,
                seek_penultimate_conv_layer=False,
            )
        reference = saliency.normalise(np.asarray(reference)[0])
        # float32 sums in a traced graph and in eager mode differ in order: ~2e-5 on a [0, 1] map.
        np.testing.assert_allclose(saliency.explain(classifier, prepared, "gradcam", index).heatmap, reference, atol=1e-4)


def test_fused_prediction_equals_the_classifiers_own(classifier, xray_path, prepared) -> None:
    fused, explained = saliency.predict_and_explain(classifier, prepared)
    plain = classifier.predict(load_image(xray_path))
    assert fused.label == plain.label == explained.class_name
    assert fused.out_of_distribution == plain.out_of_distribution
    for name in classifier.classes:
        assert fused.probabilities[name] == pytest.approx(plain.probabilities[name], abs=1e-5)
    assert fused.ood_score == pytest.approx(plain.ood_score, rel=1e-4)


def test_visualizers_are_built_once_and_the_shared_model_keeps_its_softmax(classifier, prepared) -> None:
    explainer = saliency.get_explainer(classifier)
    visualizers = (explainer.gradcam, explainer.gradcam_pp, explainer.scorecam, explainer.saliency)
    before = classifier.predict_prepared(prepared[np.newaxis])[0].probabilities
    for method in METHODS:
        saliency.explain(classifier, prepared, method)
    assert saliency.get_explainer(classifier) is explainer
    assert (explainer.gradcam, explainer.gradcam_pp, explainer.scorecam, explainer.saliency) == visualizers
    assert explainer.linear_model is not classifier.model
    assert classifier.model.get_layer("probabilities").activation is keras.activations.softmax
    assert explainer.linear_model.get_layer("probabilities").activation is keras.activations.linear
    after = classifier.predict_prepared(prepared[np.newaxis])[0].probabilities
    assert after == before and sum(after.values()) == pytest.approx(1.0, abs=1e-5)


def test_unknown_method_or_class_is_refused_with_our_error(classifier, prepared) -> None:
    with pytest.raises(InvalidExplanationError, match="method 'occlusion'.*gradcam"):  # lime is a method now
        saliency.explain(classifier, prepared, "occlusion")
    with pytest.raises(InvalidExplanationError, match="class 'FRACTURE'.*NORMAL"):
        saliency.explain(classifier, prepared, "gradcam", "FRACTURE")
    with pytest.raises(InvalidExplanationError, match="out of range"):
        saliency.explain(classifier, prepared, "gradcam", 7)


def test_core_uses_no_private_tf_keras_vis_attribute() -> None:
    """Only tf-keras-vis's public API: no ``visualizer._something`` call anywhere in core/."""
    import re

    root = Path(__file__).resolve().parents[2] / "core"
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text()
        if "_calculate_cam" in text or re.search(r"\b(gradcam|gradcam_pp|scorecam|saliency)\._[a-z]", text):
            offenders.append(str(path.relative_to(root.parent)))
    assert offenders == []


def test_one_forward_pass_gives_the_prediction_and_its_gradcam(monkeypatch) -> None:
    """The Grad-CAM path calls the network once per image, and never the bare predict."""
    fresh = ImageClassifier(registry.resolve(None, kind="image-classifier"))
    explainer = saliency.get_explainer(fresh)
    calls = {"cam": 0, "predict": 0}
    cam_model = explainer._cam_model
    original_call = type(cam_model).__call__

    def counting_call(self, *args, **kwargs):
        if self is cam_model:
            calls["cam"] += 1
        return original_call(self, *args, **kwargs)

    monkeypatch.setattr(type(cam_model), "__call__", counting_call)
    monkeypatch.setattr(fresh, "predict_inputs", lambda *a, **k: calls.__setitem__("predict", calls["predict"] + 1))
    explainer._forward_and_gradients = saliency.tf.function(explainer._cam_pass)  # retrace so the count is seen
    image = np.random.default_rng(0).random((fresh.input_size, fresh.input_size, 1), dtype=np.float32)
    saliency.predict_and_explain(fresh, image)
    assert calls == {"cam": 1, "predict": 0}


def test_overlay_blends_image_and_heatmap_at_the_image_size() -> None:
    pixels = np.tile(np.linspace(0.0, 1.0, 40, dtype=np.float32), (30, 1))  # (30, 40)
    heat = np.zeros((8, 8), np.float32)
    heat[:, 4:] = 1.0
    assert outputs.overlay(pixels, heat, 0.0).shape == (30, 40, 3)
    np.testing.assert_array_equal(outputs.overlay(pixels, heat, 0.0)[..., 0], np.round(pixels * 255).astype(np.uint8))
    full = outputs.overlay(pixels, heat, 1.0)
    assert full.dtype == np.uint8
    assert full[0, 0, 2] > 100 and full[0, 0, 0] == 0  # cold = blue on the left
    assert full[0, -1, 0] > 100 and full[0, -1, 2] == 0  # hot = red on the right


def test_heatmap_png_is_a_colour_png_of_the_requested_size() -> None:
    heat = saliency.normalise(np.random.default_rng(0).random((12, 12)))
    with Image.open(io.BytesIO(outputs.heatmap_png(heat, (50, 70)))) as png:
        assert (png.format, png.mode, png.size) == ("PNG", "RGB", (70, 50))
    assert np.isfinite(saliency.normalise(np.zeros((4, 4)))).all()
    assert saliency.normalise(np.full((4, 4), np.nan)).max() == 0.0
