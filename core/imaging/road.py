"""ROAD: remove and debias (Rong, Leemann et al. 2022, "A Consistent and Efficient Evaluation Strategy for
Attribution Methods"), on one (S, S, 1) film.

Deletion with blur (``core.imaging.faithfulness``) leaves a trace: the *shape* of the removed region can
tell the model which pixels mattered, so a map can look faithful through the mask alone (class
information leaks). ROAD removes pixels by **noisy linear imputation** instead: each removed pixel becomes
the weighted mean of its 8 neighbours (1/6 for the 4 direct ones, 1/12 for the diagonals), solved jointly
for all removed pixels as one sparse linear system, plus Gaussian noise (sigma ``NOISE``), so the removed
region carries no shape the model can read.

* **MoRF**: the most relevant pixels first (as deletion): the probability of the model's decision should
  fall fast, a LOW area is faithful.
* **LeRF**: the least relevant first: the probability should stay, a HIGH area is faithful.
* **Random**: a random pixel order (MoRF and LeRF of a random order are the same thing): the baseline.

Each curve is sampled at ``PERCENTAGES`` of the pixels removed (a few, to stay cheap: one sparse solve
each); its area is the trapezoid mean over that range, in [0, 1]. The imputation is quantus' own
``noisy_linear_imputation`` (quantus 0.6.0, pinned; it follows the paper's code, tleemann/road_evaluation),
with the noise drawn from our seeded generator rather than numpy's global one; tests check the MoRF
curve against ``quantus.ROAD`` on the bundled model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from core.errors import InvalidOptionError
from core.i18n import _

PERCENTAGES: tuple[int, ...] = (10, 30, 50, 70, 90)
NOISE = 0.01  # quantus' default and the paper's: small next to the [0, 1] range of a film

Predict = Callable[[np.ndarray], np.ndarray]


def impute(image: np.ndarray, removed: np.ndarray, rng: np.random.Generator, noise: float = NOISE) -> np.ndarray:
    """(S, S, 1) film with the flat pixel indices ``removed`` replaced by noisy linear imputation (float32)."""
    from quantus.functions.perturb_func import noisy_linear_imputation  # scipy sparse solve, no TensorFlow

    if removed.size == 0:
        return np.asarray(image, dtype=np.float32).copy()
    channel_first = np.asarray(image, dtype=np.float64)[..., 0][np.newaxis]  # quantus reads (C, H, W)
    imputed: Any = noisy_linear_imputation(channel_first, removed, noise=0.0)  # type: ignore[arg-type]
    filled = np.asarray(imputed, dtype=np.float64).reshape(-1)
    filled[removed] += noise * rng.standard_normal(removed.size)
    return filled.reshape(image.shape).astype(np.float32)


def removal_counts(n_pixels: int, percentages: tuple[int, ...] = PERCENTAGES) -> list[int]:
    """How many pixels each percentage removes (quantus' rounding: int(n * p / 100))."""
    return [int(n_pixels * p / 100) for p in percentages]


def road_inputs(
    image: np.ndarray,
    order: np.ndarray,
    rng: np.random.Generator,
    percentages: tuple[int, ...] = PERCENTAGES,
    noise: float = NOISE,
) -> np.ndarray:
    """(len(percentages), S, S, 1): the film with the first p% of ``order`` (flat indices) imputed."""
    return np.stack([impute(image, order[:count], rng, noise) for count in removal_counts(order.size, percentages)])


def curve_area(scores: np.ndarray, percentages: tuple[int, ...] = PERCENTAGES) -> float:
    """Trapezoid mean of a curve sampled at ``percentages`` (the area over their range, divided by it);
    with one percentage, the one value."""
    values = np.asarray(scores, dtype=np.float64)
    x = np.asarray(percentages, dtype=np.float64) / 100
    if values.size == 1:
        return float(values[0])
    return float(np.trapezoid(values, x) / (x[-1] - x[0]))


def check_percentages(percentages: Sequence[int]) -> tuple[int, ...]:
    """The removal percentages asked for, sorted; each a whole number from 1 to 99.

    Raises:
        InvalidOptionError: naming the values that are not.
    """
    bad = [p for p in percentages if not (isinstance(p, int) and 1 <= p <= 99)]
    if bad or not percentages:
        raise InvalidOptionError(
            _("ROAD's removal percentages must be whole numbers from 1 to 99; got {values}.").format(
                values=", ".join(str(p) for p in percentages) or _("none")
            )
        )
    return tuple(sorted(set(percentages)))


def road_curves(
    predict: Predict,
    image: np.ndarray,
    order: np.ndarray,
    class_index: int,
    rng: np.random.Generator,
    percentages: tuple[int, ...] = PERCENTAGES,
) -> dict[str, Any]:
    """MoRF and LeRF areas of one pixel ``order`` (most relevant first) on one film.

    ``predict``: (N, S, S, 1) -> class probabilities (N, K); one batch of 2 * len(percentages) inputs.
    Returns ``{"morf_auc", "lerf_auc", "curves": (2, len(percentages)) probabilities of ``class_index``}``.
    """
    batch = np.concatenate(
        [road_inputs(image, order, rng, percentages), road_inputs(image, order[::-1], rng, percentages)]
    )
    probs = np.asarray(predict(batch))[:, class_index].reshape(2, len(percentages))
    return {
        "morf_auc": curve_area(probs[0], percentages),
        "lerf_auc": curve_area(probs[1], percentages),
        "curves": probs,
    }


def random_curve(
    predict: Predict,
    image: np.ndarray,
    class_index: int,
    rng: np.random.Generator,
    percentages: tuple[int, ...] = PERCENTAGES,
) -> dict[str, Any]:
    """The baseline: the ROAD curve of a random pixel order (one curve: its MoRF and LeRF are alike)."""
    order = rng.permutation(image.shape[0] * image.shape[1])
    probs = np.asarray(predict(road_inputs(image, order, rng, percentages)))[:, class_index]
    return {"random_auc": curve_area(probs, percentages), "curve": probs}
