"""ROAD (Rong et al. 2022) can fail: the true map opens a wide LeRF - MoRF gap, a random map none; and our
MoRF curve is quantus' ROAD on the bundled model, where Grad-CAM beats a random map."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InvalidOptionError
from core.imaging import faithfulness, road
from tests.conftest import CHEST_XRAY_TRAIN
from tests.imaging.test_faithfulness import QUADRANT, S, toy_film, toy_predict


def test_the_true_map_opens_a_gap_and_a_random_map_does_not() -> None:
    true_map = QUADRANT.astype(np.float32)
    gaps_true, gaps_random, morf_true, randoms = [], [], [], []
    for k in range(4):
        film = toy_film(k)
        rng = np.random.default_rng(k)
        curves = road.road_curves(toy_predict, film, faithfulness.salient_order(true_map, rng), 1, rng)
        noise_map = np.random.default_rng(100 + k).random((S, S))
        control = road.road_curves(toy_predict, film, faithfulness.salient_order(noise_map, rng), 1, rng)
        gaps_true.append(curves["lerf_auc"] - curves["morf_auc"])
        gaps_random.append(control["lerf_auc"] - control["morf_auc"])
        morf_true.append(curves["morf_auc"])
        randoms.append(road.random_curve(toy_predict, film, 1, rng)["random_auc"])
    # Imputed first, the quadrant's checkerboard is smoothed away: the evidence is gone from 30% on.
    assert np.mean(gaps_true) > 0.5 and np.mean(morf_true) < np.mean(randoms) - 0.3
    assert abs(np.mean(gaps_random)) < 0.15  # a random map orders nothing: MoRF and LeRF alike


def test_imputation_fills_from_the_neighbours_and_leaves_the_rest_alone() -> None:
    film = np.tile(np.linspace(0, 1, S, dtype=np.float32), (S, 1))[..., np.newaxis]  # a ramp: linear, so exact
    removed = np.arange(S * S).reshape(S, S)[10:20, 10:20].ravel()
    out = road.impute(film, removed, np.random.default_rng(0), noise=0.0)
    assert np.allclose(out, film, atol=1e-5)  # the harmonic fill of a linear ramp is the ramp
    noisy = road.impute(film, removed, np.random.default_rng(0))
    kept = np.setdiff1d(np.arange(S * S), removed)
    assert np.array_equal(noisy.ravel()[kept], film.ravel()[kept])
    assert 0.005 < np.std(noisy.ravel()[removed] - film.ravel()[removed]) < 0.02  # the paper's noise, sigma 0.01
    with pytest.raises(InvalidOptionError, match="whole numbers from 1 to 99"):
        road.check_percentages([10, 100])


def test_our_morf_curve_is_quantus_road_and_grad_cam_beats_a_random_map_on_the_bundled_model() -> None:
    import quantus

    from core.imaging import saliency
    from core.imaging.classifier import load_classifier
    from core.imaging.door import load_image

    model = load_classifier("chest_xray")
    paths = [sorted((CHEST_XRAY_TRAIN / c).glob("*.jpeg"))[k] for c in ("NORMAL", "PNEUMONIA") for k in (0, 1)]
    films = np.stack([model.prepare(load_image(p).pixels) for p in paths])
    y = model.predict_inputs(films)[0].argmax(axis=1)
    explainer = saliency.get_explainer(model)
    jitter = np.random.default_rng(0).random((len(films), *films.shape[1:3])) * 1e-6  # no ties: one order for both
    maps = np.stack([explainer.explain(f, "gradcam", int(c)).heatmap for f, c in zip(films, y)]) + jitter

    percentages = (10, 30, 50)  # the cheaper solves: equality does not need the 90% one
    expected = quantus.ROAD(percentages=list(percentages), noise=0.0, disable_warnings=True)(
        model=model.model, x_batch=films, y_batch=y, a_batch=maps[:, np.newaxis], channel_first=False, softmax=True
    )
    ours = []
    for film, heatmap, c in zip(films, maps, y):
        order = faithfulness.salient_order(heatmap, np.random.default_rng(0))
        inputs = road.road_inputs(film, order, np.random.default_rng(0), percentages, noise=0.0)
        ours.append(model.predict_inputs(inputs)[0].argmax(axis=1) == c)
    assert np.mean(ours, axis=0) == pytest.approx([expected[p] for p in percentages])

    # The negative control, with the paper's noise: a random map is a worse explanation than Grad-CAM.
    predict = lambda x: model.predict_inputs(x)[0]  # noqa: E731
    gradcam, random_map = [], []
    for k, (film, heatmap, c) in enumerate(zip(films, maps, y)):
        rng = np.random.default_rng(k)
        gradcam.append(road.road_curves(predict, film, faithfulness.salient_order(heatmap, rng), int(c), rng, (30, 50)))
        noise = np.random.default_rng(50 + k).random(heatmap.shape)
        random_map.append(
            road.road_curves(predict, film, faithfulness.salient_order(noise, rng), int(c), rng, (30, 50))
        )
    assert np.mean([g["morf_auc"] for g in gradcam]) < np.mean([r["morf_auc"] for r in random_map]) - 0.1
    assert np.mean([g["lerf_auc"] - g["morf_auc"] for g in gradcam]) > np.mean(
        [r["lerf_auc"] - r["morf_auc"] for r in random_map]
    )
