"""Faithfulness metrics can fail: a map that shows what a model uses beats a random order, a random map does not.

The metrics are checked on a toy model whose true explanation is known (it reads one quadrant only),
against the paper's definition (Petsiuk et al. 2018) and quantus's Spearman correlation; then once on
the bundled chest model through ``python -m core explain-eval`` (tests/test_cli.py style).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.imaging import faithfulness
from tests.conftest import CHEST_XRAY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
S = 32
PATTERN = np.where((np.add.outer(np.arange(S), np.arange(S)) % 2) == 0, 1.0, -1.0)
QUADRANT = np.zeros((S, S), dtype=bool)
QUADRANT[: S // 2, : S // 2] = True


def toy_predict(batch: np.ndarray) -> np.ndarray:
    """P(class 1) rises with the checkerboard's strength in the top-left quadrant; nothing else counts."""
    x = batch[..., 0] - 0.5
    evidence = (x * PATTERN * QUADRANT).sum(axis=(1, 2)) / QUADRANT.sum()
    p = 1.0 / (1.0 + np.exp(-(evidence - 0.15) * 30.0))
    return np.stack([1.0 - p, p], axis=1)


def toy_film(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    film = 0.5 + rng.normal(0, 0.1, (S, S))  # texture everywhere
    film[QUADRANT] = 0.5 + 0.4 * PATTERN[QUADRANT]  # the evidence, in the quadrant only
    return np.clip(film, 0, 1)[..., np.newaxis].astype(np.float32)


def test_the_true_map_beats_a_random_order_and_a_random_map_does_not() -> None:
    films = [toy_film(seed) for seed in range(6)]
    assert all(toy_predict(f[np.newaxis])[0, 1] > 0.9 for f in films)
    true_map = QUADRANT.astype(np.float32)
    true_rows, random_rows = [], []
    for k, film in enumerate(films):
        true_rows.append(faithfulness.deletion_insertion(toy_predict, film, true_map, 1, np.random.default_rng(k)))
        noise_map = np.random.default_rng(100 + k).random((S, S))
        random_rows.append(faithfulness.deletion_insertion(toy_predict, film, noise_map, 1, np.random.default_rng(k)))
    mean = lambda rows, key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    # The quadrant is a quarter of the pixels: removed first, the score collapses within the first quarter.
    assert mean(true_rows, "deletion_auc") < mean(true_rows, "random_deletion_auc") - 0.3
    assert mean(true_rows, "insertion_auc") > mean(true_rows, "random_insertion_auc") + 0.2
    # A random map is a random order: it must not beat the baseline by any margin.
    assert abs(mean(random_rows, "deletion_auc") - mean(random_rows, "random_deletion_auc")) < 0.1
    assert abs(mean(random_rows, "insertion_auc") - mean(random_rows, "random_insertion_auc")) < 0.1


def test_curves_follow_the_papers_definition() -> None:
    film = toy_film(0)
    heatmap = np.random.default_rng(1).random((S, S))
    out = faithfulness.deletion_insertion(toy_predict, film, heatmap, 1, np.random.default_rng(2), steps=4)
    order = np.argsort(-heatmap.ravel(), kind="stable")  # no ties in a random map
    baseline = faithfulness.blurred(film).ravel()
    expected = []
    for fraction in np.linspace(0, 1, 5):
        x = film.ravel().copy()
        chosen = order[: int(round(fraction * S * S))]
        x[chosen] = baseline[chosen]
        expected.append(toy_predict(x.reshape(1, S, S, 1))[0, 1])
    assert out["curves"][0] == pytest.approx(expected, abs=1e-6)
    assert out["deletion_auc"] == pytest.approx(np.trapezoid(expected, dx=0.25), abs=1e-6)
    # Insertion starts from the blurred film and ends at the film itself.
    assert out["curves"][1][0] == pytest.approx(toy_predict(baseline.reshape(1, S, S, 1))[0, 1], abs=1e-6)
    assert out["curves"][1][-1] == pytest.approx(toy_predict(film[np.newaxis])[0, 1], abs=1e-6)


def test_rank_correlation_equals_quantus_spearman_and_a_flat_map_counts_as_zero() -> None:
    from quantus.functions.similarity_func import correlation_spearman

    rng = np.random.default_rng(0)
    a = rng.random((S, S))
    b = a + rng.normal(0, 0.3, (S, S))
    assert faithfulness.rank_corr(a, b) == pytest.approx(correlation_spearman(a.ravel(), b.ravel()), abs=1e-9)
    assert faithfulness.rank_corr(a, np.zeros((S, S))) == 0.0


def test_randomised_network_changes_the_top_layers_only_and_leaves_the_trained_one_alone() -> None:
    from core.imaging.tfsetup import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, name="low")(inputs)
    x = keras.layers.Conv2D(4, 3, name="high")(x)
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    before = [w.copy() for w in model.get_weights()]
    twin = faithfulness.randomized_network(model, 2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert np.array_equal(twin.get_layer("low").get_weights()[0], model.get_layer("low").get_weights()[0])
    assert not np.allclose(twin.get_layer("high").get_weights()[0], model.get_layer("high").get_weights()[0])
    assert not np.allclose(twin.get_layer("logits").get_weights()[0], model.get_layer("logits").get_weights()[0])


def test_randomising_an_ensemble_reaches_into_every_member_instead_of_silencing_whole_members() -> None:
    from core.imaging import network as network_mod
    from core.imaging.tfsetup import keras

    size, widths = 32, (4, 8, 8, 8, 8)
    members = [network_mod.build_network(size, 2, widths, member=m + 1).get_weights() for m in range(2)]
    model = network_mod.build_ensemble(size, 2, members, widths=widths)
    before = [w.copy() for w in model.get_weights()]
    twin = faithfulness.randomized_network(model, 3, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # the trained model is untouched

    def changed(layer_twin, layer_model) -> bool:
        return any(not np.allclose(a, b) for a, b in zip(layer_twin.get_weights(), layer_model.get_weights()))

    assert changed(twin.get_layer("logits"), model.get_layer("logits"))
    for m in (1, 2):
        ours, theirs = twin.get_layer(f"member_{m}"), model.get_layer(f"member_{m}")
        convs = [i for i, layer in enumerate(theirs.layers) if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))]
        assert [changed(ours.layers[i], theirs.layers[i]) for i in convs] == [False] * (len(convs) - 2) + [True, True]
        for i, layer in enumerate(theirs.layers):
            if isinstance(layer, keras.layers.BatchNormalization):  # statistics and scale kept: the member still speaks
                assert not changed(ours.layers[i], layer)
        film = np.random.default_rng(m).random((1, size, size, 1)).astype(np.float32)
        assert np.abs(np.asarray(ours(film))).max() > 0
    everything = faithfulness.randomized_network(model, None, seed=0)
    for m in (1, 2):
        ours, theirs = everything.get_layer(f"member_{m}"), model.get_layer(f"member_{m}")
        assert all(changed(a, b) for a, b in zip(ours.layers, theirs.layers) if isinstance(b, keras.layers.SeparableConv2D))


def test_bootstrap_interval_brackets_the_mean() -> None:
    values = {"a": np.random.default_rng(0).normal(0.5, 0.1, 40)}
    low, high = faithfulness.bootstrap_means(values, 40, seed=0)["a"]
    assert low < values["a"].mean() < high and high - low < 0.1


def test_explain_eval_on_real_films_gradcam_beats_random_and_a_random_network_does_not_agree(tmp_path, isolated_home) -> None:
    data = tmp_path / "films"
    for name in ("NORMAL", "PNEUMONIA"):
        (data / name).mkdir(parents=True)
        for path in sorted((CHEST_XRAY_TRAIN / name).glob("*.jpeg"))[:3]:
            shutil.copy(path, data / name / path.name)
    env = {**os.environ, "LUCIDDX_HOME": str(isolated_home)}
    run = subprocess.run([sys.executable, "-m", "core", "explain-eval", "--data", str(data), "--methods", "gradcam",
                          "--limit", "6", "--no-road", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "6/6 films" in run.stderr  # progress goes to stderr, stdout is the one JSON document
    result = json.loads(run.stdout)
    assert result["model"].startswith("chest_xray:") and result["n"] == 6
    assert result["classes"] == {"NORMAL": 3, "PNEUMONIA": 3}
    assert "road" not in result and "road_morf_auc" not in result["methods"]["gradcam"]  # --no-road: ROAD is left out
    gradcam = result["methods"]["gradcam"]
    for key in ("deletion_auc", "insertion_auc", "random_deletion_auc", "random_insertion_auc",
                "randomization_rank_corr", "seconds_per_film", "intervals"):
        assert key in gradcam
    low, high = gradcam["intervals"]["deletion_auc"]
    assert low <= gradcam["deletion_auc"] <= high
    # Measured on these six films: Grad-CAM's deletion curve falls faster than a random order's.
    # If a retrained model ever loses this, the failure message says so with the numbers.
    assert gradcam["deletion_auc"] < gradcam["random_deletion_auc"], (
        f"Grad-CAM is no more faithful than a random order here: deletion {gradcam['deletion_auc']:.3f} "
        f"vs random {gradcam['random_deletion_auc']:.3f}")
    # A fully re-initialised network gives maps unrelated to the trained one's.
    assert abs(gradcam["randomization_cascade"]["all"]) < 0.5
    assert gradcam["randomization_rank_corr"] < 0.5


def test_an_unknown_method_and_a_one_class_folder_are_refused_with_our_errors(tmp_path) -> None:
    from core.errors import InvalidDatasetError, InvalidExplanationError
    from core.services import explanations

    with pytest.raises(InvalidExplanationError, match="Unknown explanation method 'occlusion'"):
        explanations.check_methods(["gradcam", "occlusion"])
    assert explanations.check_methods(None)[:2] == ["gradcam", "gradcam++"]
    (tmp_path / "NORMAL").mkdir()
    shutil.copy(sorted((CHEST_XRAY_TRAIN / "NORMAL").glob("*.jpeg"))[0], tmp_path / "NORMAL")
    with pytest.raises(InvalidDatasetError, match="needs a subfolder per class"):
        explanations.labelled_films(tmp_path, ["NORMAL", "PNEUMONIA"], 4)


def test_a_limit_takes_an_equal_share_per_class_and_the_same_films_again() -> None:
    from core.services import explanations

    first = explanations.labelled_films(CHEST_XRAY_TRAIN, ["NORMAL", "PNEUMONIA"], 7, seed=3)
    assert [label for _p, label in first].count(0) == 3 and len(first) == 7
    assert first == explanations.labelled_films(CHEST_XRAY_TRAIN, ["NORMAL", "PNEUMONIA"], 7, seed=3)
