"""Why did the model say that? Grad-CAM, Grad-CAM++, Faster Score-CAM and SmoothGrad via tf-keras-vis; LIME, SHAP.

Every map here is computed from the loaded model's own gradients or activations. The visualizers
are built once per loaded classifier (``get_explainer``) around one *clone* of its network whose
softmax is replaced by a linear output (``ReplaceToLinear``): gradients of a softmax saturate, and
the shared model that every browser session predicts with is never touched.

Grad-CAM is computed here with ``tf.GradientTape`` (Selvaraju et al. 2017: channel weights = the
spatial mean of d logit / d last-conv maps, CAM = ReLU of the weighted sum of the maps), traced once
into a ``tf.function`` that also returns the class probabilities and pooled features, so one forward
pass gives both the prediction and its heatmap. Only tf-keras-vis's public classes are used (the
other methods, and the linear-output clone); a test checks our Grad-CAM equals its ``Gradcam``.

Heatmaps are (S, S) float32 in [0, 1] at the model's input size S, min-max normalised with an
epsilon so a flat map is all zeros, never NaN.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from scipy.ndimage import zoom

from core.errors import InvalidExplanationError, InvalidModelError
from core.i18n import _
from core.imaging.classifier import FEATURES_LAYER, LAST_CONV_LAYER, ImageClassifier, Prediction
from core.imaging.methods import METHODS
from core.imaging.outputs import Explanation
from core.imaging.tfsetup import keras, tf

PENULTIMATE_LAYER = LAST_CONV_LAYER
SCORECAM_MAX_N = 10  # Faster Score-CAM: mask with the 10 highest-variance channels only
SMOOTHGRAD_SAMPLES = 20
SMOOTHGRAD_NOISE = 0.20  # noise sigma as a fraction of the input's range
LIME_SEGMENTS = 50  # SLIC superpixels per film
LIME_SAMPLES = 300  # perturbed copies LIME fits its local linear model on
SHAP_EVALS = 300  # model calls of SHAP's Partition explainer (a hierarchy of image halves)
SHAP_BLUR = 16  # the masker's blur kernel: a hidden region is seen blurred, as in the deletion metric
_EPSILON = 1e-7


@contextmanager
def _quiet() -> Iterator[None]:
    """tf-keras-vis 0.8.7 on Keras 3 warns about deprecated scipy/keras names: noise for users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


with _quiet():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.saliency import Saliency
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore


def normalise(heatmap: np.ndarray) -> np.ndarray:
    """Any real array -> float32 in [0, 1] (min-max with an epsilon; NaN/inf become 0)."""
    heatmap = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if heatmap.size == 0:
        return heatmap
    low, high = float(heatmap.min()), float(heatmap.max())
    return np.clip((heatmap - low) / (high - low + _EPSILON), 0.0, 1.0).astype(np.float32)


def _resize_map(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) -> ``shape``, with tf-keras-vis's own CAM expansion (scipy zoom, bilinear)."""
    if heatmap.shape == tuple(shape):
        return heatmap
    factors = (shape[0] / heatmap.shape[0], shape[1] / heatmap.shape[1])
    return zoom(heatmap, factors, order=1)


_SHAP_MASKERS: dict[int, object] = {}
_SHAP_MASKERS_LOCK = threading.Lock()


def _no_progress(items: object, *_args: object, **_kwargs: object) -> object:
    return items


def _unit_scale(heat: np.ndarray) -> np.ndarray:
    """Divide by the maximum: SHAP and LIME weights are tiny (a probability shared among pixels), below
    ``normalise``'s epsilon; a map of zeros stays zeros."""
    top = float(np.max(heat)) if heat.size else 0.0
    return (heat / top).astype(np.float32) if top > 0 else np.zeros_like(heat, dtype=np.float32)


class _TracedModel:
    """What tf-keras-vis's Saliency needs of a model (inputs, outputs, a call), with a traced call.

    SmoothGrad runs 20 noisy forward+backward passes; traced, each costs milliseconds, not 100 ms.
    Gradients flow through the traced function, so the map is still d score / d input of the model.
    """

    def __init__(self, model: keras.Model, traced_call: object) -> None:
        self.inputs, self.outputs, self.layers = model.inputs, model.outputs, model.layers
        self._call = traced_call

    def __call__(self, inputs: object, training: bool = False) -> tf.Tensor:
        batch = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        return self._call(tf.cast(batch, tf.float32))


class Explainer:
    """The tf-keras-vis visualizers for one loaded classifier, built once and reused for every call.

    Thread-safe: Streamlit serves sessions from threads, and the visualizers share one clone.
    """

    def __init__(self, classifier: ImageClassifier) -> None:
        self.classes = list(classifier.classes)
        self.input_size = classifier.input_size
        self._classifier = weakref.ref(classifier)
        self._lock = threading.Lock()
        self._shap_explainer: object | None = None
        size = self.input_size
        with _quiet():
            # clone=True: ReplaceToLinear works on a copy; the shared model keeps its softmax.
            self.gradcam = Gradcam(classifier.model, model_modifier=ReplaceToLinear(), clone=True)
            linear = self.gradcam.model
            self.linear_model = linear
            # An eager Keras call of this network costs tens of ms; a traced call of the clone, a few.
            self._logits = tf.function(
                lambda x: linear(x, training=False), input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)]
            )
            # Score-CAM ranks masked copies with ``model.predict``: route it to the traced call,
            # which also keeps Keras's progress bar out of the server log. The clone is private.
            linear.predict = self._predict_logits
            # No modifier -> no further clones: the others reuse the one linear copy read-only.
            # Score-CAM applies softmax to the outputs itself, so it wants the linear copy too.
            self.gradcam_pp = GradcamPlusPlus(linear)
            self.scorecam = Scorecam(linear)
            self.saliency = Saliency(_TracedModel(linear, self._logits))
        self._cam_model = keras.Model(
            linear.inputs,
            [linear.outputs[0], linear.get_layer(PENULTIMATE_LAYER).output, linear.get_layer(FEATURES_LAYER).output],
        )
        self._forward_and_gradients = tf.function(
            self._cam_pass, input_signature=[tf.TensorSpec([None, size, size, 1], tf.float32)]
        )

    def _cam_pass(self, batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One forward pass, then Grad-CAM for every class k (cheap: the gradients stop at the conv maps).

        Returns logits (N, K), CAMs (K, N, h, w) >= 0 at the conv maps' resolution, features (N, F).
        """
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
            tape.watch(batch)
            logits, conv_maps, features = self._cam_model(batch, training=False)
            scores = [logits[:, k] for k in range(len(self.classes))]  # CategoricalScore(k) on logits
        grads = tf.stack([tape.gradient(score, conv_maps) for score in scores])  # (K, N, h, w, C)
        weights = tf.reduce_mean(grads, axis=(2, 3))  # (K, N, C): how much each channel moves the logit
        cams = tf.nn.relu(tf.einsum("nhwc,knc->knhw", conv_maps, weights))
        return logits, cams, features

    def _predict_logits(self, inputs: object, batch_size: int | None = None, **_ignored: object) -> np.ndarray:
        """``model.predict`` stand-in for Score-CAM: (N, S, S, 1) -> logits (N, K), no progress bar."""
        batch = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        return self._logits(tf.convert_to_tensor(batch, tf.float32)).numpy()

    def class_index(self, target: str | int | None, predicted: str) -> int:
        """A class name or index (None = the predicted class) -> its index, validated."""
        if target is None:
            target = predicted
        if isinstance(target, str):
            if target not in self.classes:
                raise InvalidExplanationError(
                    _("Unknown class '{target}'; this model knows {items}.").format(
                        target=target, items=", ".join(self.classes)
                    )
                )
            return self.classes.index(target)
        if not 0 <= int(target) < len(self.classes):
            raise InvalidExplanationError(
                _("Class index {target} is out of range: this model has {count} classes (0 to {last}).").format(
                    target=target, count=len(self.classes), last=len(self.classes) - 1
                )
            )
        return int(target)

    def gradcam_with_prediction(
        self,
        batch: np.ndarray,
        target: str | int | None = None,
        threshold: float | None = None,
        threshold_source: str = "stored",
    ) -> tuple[Prediction, Explanation]:
        """Grad-CAM and the prediction from one pass. ``batch``: (1, S, S, 1) prepared input.

        The label is decided at ``threshold`` (None = the stored one) and, without a ``target``, the map
        explains that label: the caller reads the threshold in force once and hands it here.
        """
        classifier = self._require_classifier()
        logits, cams, features = self._forward_and_gradients(tf.convert_to_tensor(batch, tf.float32))
        probs = tf.nn.softmax(logits).numpy().astype(np.float64)
        prediction = classifier.predictions_from_outputs(probs, features.numpy(), threshold, threshold_source)[0]
        index = self.class_index(target, prediction.decision)
        heatmap = normalise(_resize_map(cams[index, 0].numpy(), (self.input_size, self.input_size)))
        return prediction, Explanation("gradcam", self.classes[index], heatmap)

    def explain(self, prepared: np.ndarray, method: str = "gradcam", target: str | int | None = None) -> Explanation:
        """Heatmap for one prepared image. ``prepared``: (S, S, 1) or (1, S, S, 1) float32 in [0, 1].

        Raises:
            InvalidExplanationError: unknown method or class.
        """
        if method not in METHODS:
            raise InvalidExplanationError(
                _("Unknown explanation method '{method}'; choose one of {items}.").format(
                    method=method, items=", ".join(METHODS)
                )
            )
        batch = np.asarray(prepared, dtype=np.float32).reshape(1, self.input_size, self.input_size, 1)
        if method == "gradcam":
            return self.gradcam_with_prediction(batch, target)[1]
        predicted = self._require_classifier().predict_prepared(batch)[0].decision if target is None else ""
        index = self.class_index(target, predicted)
        score = CategoricalScore(index)
        common = {"penultimate_layer": PENULTIMATE_LAYER, "seek_penultimate_conv_layer": False}
        with self._lock, _quiet():
            if method == "gradcam++":
                raw = self.gradcam_pp(score, batch, **common)
            elif method == "scorecam":
                max_n = min(SCORECAM_MAX_N, int(self.linear_model.get_layer(PENULTIMATE_LAYER).output.shape[-1]))
                raw = self.scorecam(score, batch, max_N=max_n, batch_size=max_n, **common)
            elif method == "lime":
                raw = self._lime(batch, index)
            elif method == "shap":
                raw = self._shap(batch, index)
            else:
                raw = self.saliency(score, batch, smooth_samples=SMOOTHGRAD_SAMPLES, smooth_noise=SMOOTHGRAD_NOISE)
        heatmap = normalise(_resize_map(np.asarray(raw, dtype=np.float32)[0], (self.input_size, self.input_size)))
        return Explanation(method, self.classes[index], heatmap)

    def _probabilities(self, batch: np.ndarray) -> np.ndarray:
        """(N, S, S, 1) -> class probabilities (N, K) through the traced linear copy."""
        logits = self._logits(tf.convert_to_tensor(np.asarray(batch, dtype=np.float32)))
        return tf.nn.softmax(logits).numpy().astype(np.float64)

    def _lime(self, batch: np.ndarray, index: int) -> np.ndarray:
        """LIME (Ribeiro et al. 2016) on SLIC superpixels: each superpixel's weight for class ``index``.

        Hidden superpixels take their own mean (LIME's default); negative weights (evidence against the
        class) are clipped to 0, as Grad-CAM's ReLU does. Seeded: the same film gives the same map.
        """
        from lime import lime_image
        from skimage.segmentation import slic

        lime_image.tqdm = _no_progress  # lime 0.2.0.1 draws a progress bar on stderr for every film

        grey = batch[0, ..., 0].astype(np.float64)
        rgb = np.repeat(grey[..., np.newaxis], 3, axis=-1)

        def segment(image: np.ndarray) -> np.ndarray:
            return slic(image, n_segments=LIME_SEGMENTS, compactness=10, start_label=0, channel_axis=-1)

        explainer = lime_image.LimeImageExplainer(random_state=0)
        found = explainer.explain_instance(
            rgb,
            lambda images: self._probabilities(images[..., :1]),
            labels=(index,),
            top_labels=None,
            num_samples=LIME_SAMPLES,
            batch_size=50,
            segmentation_fn=segment,
            random_seed=0,
        )
        heat = np.zeros(grey.shape, dtype=np.float32)
        for segment_id, weight in found.local_exp[index]:
            heat[found.segments == segment_id] = max(float(weight), 0.0)
        return _unit_scale(heat)[np.newaxis]

    def _shap(self, batch: np.ndarray, index: int) -> np.ndarray:
        """SHAP's Partition explainer (Owen values over a hierarchy of image halves) with a blur masker."""
        import shap

        size = self.input_size
        if self._shap_explainer is None:
            with _SHAP_MASKERS_LOCK:  # the masker's partition tree takes seconds to build: once per input size
                masker = _SHAP_MASKERS.get(size)
                if masker is None:
                    masker = _SHAP_MASKERS[size] = shap.maskers.Image(f"blur({SHAP_BLUR},{SHAP_BLUR})", (size, size, 1))
            self._shap_explainer = shap.Explainer(
                self._probabilities, masker, output_names=self.classes, algorithm="partition"
            )
        values = self._shap_explainer(
            np.asarray(batch, dtype=np.float32), max_evals=SHAP_EVALS, batch_size=50, outputs=[index], silent=True
        ).values
        return _unit_scale(np.maximum(np.asarray(values, dtype=np.float64).reshape(size, size), 0.0))[np.newaxis]

    def _require_classifier(self) -> ImageClassifier:
        classifier = self._classifier()
        if classifier is None:
            raise InvalidModelError(
                _("The model this explanation was asked of has been unloaded; reload the page and try again.")
            )
        return classifier


_EXPLAINERS: weakref.WeakKeyDictionary[ImageClassifier, Explainer] = weakref.WeakKeyDictionary()
_EXPLAINERS_LOCK = threading.Lock()


def get_explainer(classifier: ImageClassifier) -> Explainer:
    """The Explainer for ``classifier``, built on first use and reused while the classifier lives."""
    with _EXPLAINERS_LOCK:
        explainer = _EXPLAINERS.get(classifier)
        if explainer is None:
            explainer = _EXPLAINERS[classifier] = Explainer(classifier)
        return explainer


def explain(
    classifier: ImageClassifier, prepared: np.ndarray, method: str = "gradcam", target: str | int | None = None
) -> Explanation:
    """Heatmap of ``method`` for class ``target`` (name, index, or None = predicted) on one prepared image."""
    return get_explainer(classifier).explain(prepared, method, target)


def predict_and_explain(
    classifier: ImageClassifier,
    prepared: np.ndarray,
    target: str | int | None = None,
    threshold: float | None = None,
    threshold_source: str = "stored",
) -> tuple[Prediction, Explanation]:
    """The prediction (decided at ``threshold``, None = stored) and its Grad-CAM from one forward+gradient
    pass. ``prepared``: (S, S, 1)."""
    batch = np.asarray(prepared, dtype=np.float32).reshape(1, classifier.input_size, classifier.input_size, 1)
    return get_explainer(classifier).gradcam_with_prediction(batch, target, threshold, threshold_source)
