"""How far to trust a saliency map: faithfulness and sanity checks, measured per method on labelled films.

For every film and method (the maps come from the one ``saliency.Explainer``, never a second copy):

* **Deletion and insertion AUC** (Petsiuk et al. 2018, RISE): the film's pixels are ordered by the
  map, most salient first, and in ``STEPS`` equal steps removed (deletion) or revealed (insertion).
  The curve is the model's probability of the class the map explains (the model's decision at its
  stored threshold) after each step; the AUC is its trapezoid mean over the fraction changed, in
  [0, 1]. *Removal = blur*: a removed pixel takes its value in the film blurred with a Gaussian of
  sigma ``S / BLUR_DIVISOR`` (Petsiuk's insertion start, used for deletion too so both curves share one
  baseline and no out-of-range black square is introduced). A faithful map has a LOW deletion AUC
  and a HIGH insertion AUC.
* **The same two curves for a random pixel order** (seeded per film): the baseline a map must beat;
  a metric that a random map also passes measures nothing.
* **Model-parameter randomisation** (Adebayo et al. 2018, cascading): the network's weighted layers
  are re-initialised from the top (the logits first) down, in cumulative stages (``CASCADE``); at each
  stage the map of the same film and class is recomputed and compared with the trained model's map by
  Spearman rank correlation over pixels. LOW means the map depends on what the model learned; a map
  that stays the same on a random network is an edge detector, not an explanation. A constant map
  (no ranking at all, e.g. Grad-CAM's ReLU of a random network) counts as correlation 0. In an ensemble
  (members side by side under one head) "the top k layers" are the head and each member's top k - 1:
  depth counts along every path from the output, never a whole member at once.
* **Stability**: Spearman rank correlation between the map of the film and of the film plus Gaussian
  noise of sigma ``NOISE_SIGMA`` (of the [0, 1] range); HIGH is stable.
* **Seconds per film** for the map alone (wall clock, this machine).
* **ROAD** (Rong et al. 2022, ``core.imaging.road``): MoRF and LeRF curves with noisy linear imputation
  instead of blur (no mask shape left for the model to read), one random order per film as the baseline,
  and the gap LeRF - MoRF (the paper's comparison: large is faithful); ``road_seconds_per_film`` is the
  imputation and prediction time of a method's two curves.

Means over films carry 95% percentile bootstrap intervals (``N_BOOTSTRAP`` resamples of the films, the
same resamples for every method and metric, so differences are paired).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from core.imaging import road, saliency
from core.imaging.classifier import ImageClassifier
from core.imaging.tfsetup import keras
from core.models.metrics import bootstrap_means, rank_corr

STEPS = 20
BLUR_DIVISOR = 16  # blur sigma = input size / 16 (12 px at 192 px)
NOISE_SIGMA = 0.02
N_BOOTSTRAP = 1000
# Cumulative re-initialisation stages, top first: (name, how many weighted layers from the top; None = all).
CASCADE: tuple[tuple[str, int | None], ...] = (("logits", 1), ("top3", 3), ("all", None))
HEADLINE_STAGE = "top3"  # the "model with its top layers re-initialised" of the CLI contract
REMOVAL = "blur"
METRICS = (
    "deletion_auc",
    "insertion_auc",
    "random_deletion_auc",
    "random_insertion_auc",
    "randomization_rank_corr",
    "stability_rank_corr",
    "seconds_per_film",
)
ROAD_METRICS = (
    "road_morf_auc",
    "road_lerf_auc",
    "road_random_auc",
    "road_gap",
    "road_seconds_per_film",
)

Predict = Callable[[np.ndarray], np.ndarray]


def blurred(image: np.ndarray) -> np.ndarray:
    """(S, S, 1) film -> the same film Gaussian-blurred (what a removed pixel becomes)."""
    size = image.shape[0]
    return gaussian_filter(image[..., 0], sigma=size / BLUR_DIVISOR)[..., np.newaxis].astype(np.float32)


def salient_order(heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat pixel indices, most salient first; ties (flat maps) broken at random, never by position."""
    values = np.asarray(heatmap, dtype=np.float64).ravel()
    return np.lexsort((rng.random(values.size), -values))


def curve_inputs(image: np.ndarray, baseline: np.ndarray, order: np.ndarray, steps: int, insertion: bool) -> np.ndarray:
    """(steps + 1, S, S, 1): the film as the first k/steps of ``order`` are removed (or revealed)."""
    start, target = (baseline, image) if insertion else (image, baseline)
    flat_start, flat_target = start.ravel(), target.ravel()
    counts = np.round(np.linspace(0, order.size, steps + 1)).astype(int)
    out = np.repeat(flat_start[np.newaxis], steps + 1, axis=0).astype(np.float32)
    for row, count in enumerate(counts):
        chosen = order[:count]
        out[row, chosen] = flat_target[chosen]
    return out.reshape((steps + 1, *image.shape))


def curve_auc(scores: np.ndarray) -> float:
    """Trapezoid mean of a curve sampled at equal steps of the fraction changed (0 .. 1)."""
    scores = np.asarray(scores, dtype=np.float64)
    return float(np.trapezoid(scores, dx=1.0 / (scores.size - 1)))


def deletion_insertion(
    predict: Predict,
    image: np.ndarray,
    heatmap: np.ndarray,
    class_index: int,
    rng: np.random.Generator,
    steps: int = STEPS,
) -> dict[str, Any]:
    """Deletion and insertion AUC of ``heatmap`` and of a random order, on one (S, S, 1) film.

    ``predict``: (N, S, S, 1) -> class probabilities (N, K). One batch of 4 * (steps + 1) inputs.
    """
    baseline = blurred(image)
    orders = (salient_order(heatmap, rng), rng.permutation(heatmap.size))
    batches = [
        curve_inputs(image, baseline, order, steps, insertion) for order in orders for insertion in (False, True)
    ]
    probs = np.asarray(predict(np.concatenate(batches)))[:, class_index].reshape(4, steps + 1)
    return {
        "deletion_auc": curve_auc(probs[0]),
        "insertion_auc": curve_auc(probs[1]),
        "random_deletion_auc": curve_auc(probs[2]),
        "random_insertion_auc": curve_auc(probs[3]),
        "curves": probs,
    }


def _learnable(model: Any) -> list[Any]:
    """``model``'s own layers with learnable filters (convolution, dense, nested models), in order; batch
    normalisation is left out (Adebayo et al. keep its statistics)."""
    return [layer for layer in model.layers if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)]


def reinitialised_layers(model: Any, top_layers: int | None) -> list[Any]:
    """The layers ``randomized_network`` re-initialises: the ``top_layers`` top ones (None = all), counted
    from the output along every path.

    A nested model (an ensemble's member) is never one layer: the layers after the members are the top,
    and each member gives its own top ``top_layers - len(head)``. Re-initialising a member whole would zero
    its batch normalisation and silence it, so the ensemble's map would be the other members' instead.
    """
    own = _learnable(model)
    if top_layers is None:
        return [
            leaf
            for layer in own
            for leaf in (reinitialised_layers(layer, None) if isinstance(layer, keras.Model) else [layer])
        ]
    last_member = max((i for i, layer in enumerate(own) if isinstance(layer, keras.Model)), default=-1)
    head = own[last_member + 1 :]
    chosen = head[len(head) - min(top_layers, len(head)) :]
    if top_layers > len(head):
        members = [layer for layer in own[: last_member + 1] if isinstance(layer, keras.Model)]
        chosen += [leaf for member in members for leaf in reinitialised_layers(member, top_layers - len(head))]
    return chosen


def randomized_network(model: Any, top_layers: int | None, seed: int) -> Any:
    """A copy of ``model`` with its ``top_layers`` top convolution/dense layers (None = all) re-initialised.

    Kernels are drawn He-normal (std sqrt(2 / fan-in)), biases zero; batch-normalisation statistics
    are kept (Adebayo et al. re-initialise the learnable filters). The trained ``model`` is untouched.
    """
    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    for layer in reinitialised_layers(twin, top_layers):
        for variable in layer.weights:
            shape = tuple(variable.shape)
            if "bias" in variable.path or len(shape) == 1:
                variable.assign(np.zeros(shape, dtype=np.float32))
            else:
                fan_in = int(np.prod(shape[:-1])) or 1
                variable.assign(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32))
    return twin


def _map(explainer: saliency.Explainer, film: np.ndarray, method: str, class_index: int, seed: int) -> np.ndarray:
    np.random.seed(seed)  # SmoothGrad draws its noise from numpy's global generator
    return explainer.explain(film, method, class_index).heatmap


def evaluate(
    classifier: ImageClassifier,
    films: Sequence[np.ndarray],
    methods: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    steps: int = STEPS,
    seed: int = 0,
    cascade: Sequence[tuple[str, int | None]] = CASCADE,
    road_percentages: tuple[int, ...] | None = road.PERCENTAGES,
) -> dict[str, Any]:
    """Every metric of the module docstring for ``methods`` on ``films`` ((S, S, 1) prepared inputs).

    ``road_percentages``: where ROAD's curves are sampled; None leaves ROAD out (its keys absent).

    Returns ``{"n", "removal", "steps", "methods": {method: {metric: mean, "intervals": {...},
    "randomization_cascade": {stage: mean}, "deletion_gain", "insertion_gain"}}, "films": [per-film rows]}``.
    ``progress(done, total)`` is called after each film.
    """
    explainer = saliency.get_explainer(classifier)
    twins = [
        classifier.with_network(randomized_network(classifier.model, top, seed + i))
        for i, (_n, top) in enumerate(cascade)
    ]
    twin_explainers = [saliency.get_explainer(twin) for twin in twins]
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    film_rows: list[dict[str, Any]] = []
    random_road_seconds: list[float] = []
    for i, film in enumerate(films):
        film = np.asarray(film, dtype=np.float32).reshape(classifier.input_size, classifier.input_size, 1)
        decision = classifier.predict_prepared(film[np.newaxis])[0].decision
        class_index = classifier.classes.index(decision)
        noisy = np.clip(film + np.random.default_rng(seed + 7919 * i).normal(0, NOISE_SIGMA, film.shape), 0, 1).astype(
            np.float32
        )
        film_row: dict[str, Any] = {"film": i, "class": decision, "maps": {}}
        random_auc = float("nan")
        if road_percentages:  # one random order per film, shared by every method (it does not depend on a map)
            started = time.perf_counter()
            random_auc = road.random_curve(
                _probabilities(classifier),
                film,
                class_index,
                np.random.default_rng(seed + 15485863 * i),
                road_percentages,
            )["random_auc"]
            random_road_seconds.append(time.perf_counter() - started)
        for method in methods:
            started = time.perf_counter()
            heatmap = _map(explainer, film, method, class_index, seed + i)
            seconds = time.perf_counter() - started
            rng = np.random.default_rng(seed + 104729 * i)
            curves = deletion_insertion(
                lambda x: classifier.predict_inputs(x)[0], film, heatmap, class_index, rng, steps
            )
            row = {k: curves[k] for k in METRICS[:4]}
            for (stage, _top), twin_explainer in zip(cascade, twin_explainers):
                row[f"randomization:{stage}"] = rank_corr(
                    heatmap, _map(twin_explainer, film, method, class_index, seed + i)
                )
            row["randomization_rank_corr"] = row.get(
                f"randomization:{HEADLINE_STAGE}", row[f"randomization:{cascade[0][0]}"]
            )
            row["stability_rank_corr"] = rank_corr(heatmap, _map(explainer, noisy, method, class_index, seed + i))
            row["seconds_per_film"] = seconds
            if road_percentages:
                row.update(_road_row(classifier, film, heatmap, class_index, random_auc, rng, road_percentages))
            rows[method].append(row)
            film_row["maps"][method] = heatmap
        film_rows.append(film_row)
        if progress:
            progress(i + 1, len(films))
    n = len(film_rows)
    out: dict[str, Any] = {}
    for method, per_film in rows.items():
        values = {key: np.asarray([r[key] for r in per_film]) for key in per_film[0]} if per_film else {}
        values["deletion_gain"] = values["random_deletion_auc"] - values["deletion_auc"]
        values["insertion_gain"] = values["insertion_auc"] - values["random_insertion_auc"]
        intervals = bootstrap_means(values, n, seed, N_BOOTSTRAP)
        keys = (*METRICS, "deletion_gain", "insertion_gain", *(ROAD_METRICS if road_percentages else ()))
        summary: dict[str, Any] = {key: float(np.mean(values[key])) for key in keys}
        summary["randomization_cascade"] = {
            stage: float(np.mean(values[f"randomization:{stage}"])) for stage, _t in cascade
        }
        summary["intervals"] = {key: intervals[key] for key in keys}
        summary["intervals"]["randomization_cascade"] = {
            stage: intervals[f"randomization:{stage}"] for stage, _t in cascade
        }
        summary["per_film"] = {key: [float(v) for v in values[key]] for key in keys}
        out[method] = summary
    return {
        "n": n,
        "removal": REMOVAL,
        "steps": steps,
        "blur_sigma": classifier.input_size / BLUR_DIVISOR,
        "noise_sigma": NOISE_SIGMA,
        "cascade": [stage for stage, _t in cascade],
        "headline_stage": HEADLINE_STAGE,
        "methods": out,
        "disagreement": disagreement(film_rows, list(methods)),
        **(
            {
                "road": {
                    "percentages": list(road_percentages),
                    "noise": road.NOISE,
                    "random_seconds_per_film": float(np.mean(random_road_seconds)) if random_road_seconds else None,
                }
            }
            if road_percentages
            else {}
        ),
    }


def _probabilities(classifier: ImageClassifier) -> Predict:
    return lambda x: classifier.predict_inputs(x)[0]


def _road_row(
    classifier: ImageClassifier,
    film: np.ndarray,
    heatmap: np.ndarray,
    class_index: int,
    random_auc: float,
    rng: np.random.Generator,
    percentages: tuple[int, ...],
) -> dict[str, float]:
    """One method's ROAD figures on one film, against the film's shared random-order curve."""
    started = time.perf_counter()
    curves = road.road_curves(
        _probabilities(classifier), film, salient_order(heatmap, rng), class_index, rng, percentages
    )
    return {
        "road_morf_auc": curves["morf_auc"],
        "road_lerf_auc": curves["lerf_auc"],
        "road_random_auc": random_auc,
        "road_gap": curves["lerf_auc"] - curves["morf_auc"],
        "road_seconds_per_film": time.perf_counter() - started,
    }


def disagreement(film_rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    """Per film, the mean pairwise rank correlation between methods' maps (low = they disagree), lowest first."""
    if len(methods) < 2:
        return []
    out = []
    for row in film_rows:
        maps = row["maps"]
        pairs = [rank_corr(maps[a], maps[b]) for k, a in enumerate(methods) for b in methods[k + 1 :]]
        out.append({"film": row["film"], "class": row["class"], "mean_pairwise_rank_corr": float(np.mean(pairs))})
    return sorted(out, key=lambda r: r["mean_pairwise_rank_corr"])
