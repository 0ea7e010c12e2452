"""Snapshot ensembles, temperature and the held-out validation split, on real films.

The ensemble is one Keras model; these tests check it is exactly the average of its members, that
its saliency still comes from gradients (its own, through each member), and that a registered
ensemble predicts and explains like any other version.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.imaging import datasets, fitting, holdout, network as network_mod, preprocessing, saliency, training
from core.imaging.classifier import load_classifier
from core.imaging.door import load_image
from core.imaging.tfsetup import keras, tf
from core.imaging.training import TrainConfig, train_image_model
from tests.imaging.test_training import real_subset

SIZE = 96  # last conv maps 3x3: a CAM with some extent

with saliency._quiet():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory):
    return real_subset(tmp_path_factory.mktemp("ens") / "films", per_class=16, seed=3)


@pytest.fixture(scope="module")
def prepared(films):
    dataset = datasets.scan_labeled_folder(films, None, 0)
    x, _, ok, _ = training.load_prepared(dataset.files, SIZE, training.RECIPE)
    return x[ok], dataset.labels[ok]


@pytest.fixture(scope="module")
def snapshots(prepared) -> list:
    """Two cosine-cycle snapshots of a network trained on real films (enough steps for BatchNorm statistics)."""
    x, y = prepared
    keras.utils.set_random_seed(7)
    settings = fitting.FitSettings(epochs=6, batch_size=4, learning_rate=2e-3, patience=4, seed=7, snapshots=2, mixup=0.2)
    network, trainer = fitting.compile_trainer(settings, SIZE, 2, tf.distribute.get_strategy(), fitting.steps_per_epoch(len(x), 4))
    kept: list = []
    fitting.fit(trainer, settings, 2, (x, y), (x, y), 1, None, None, network, kept)
    return kept


def member_logits(weights, x: np.ndarray) -> np.ndarray:
    single = network_mod.build_network(SIZE, 2)
    single.set_weights(weights)
    return keras.Model(single.inputs, single.get_layer("logits").output).predict(x, verbose=0)


def test_snapshot_training_keeps_one_snapshot_per_cycle_and_they_differ(snapshots) -> None:
    assert len(snapshots) == 2
    assert any(not np.allclose(a, b) for a, b in zip(*snapshots))


def test_ensemble_output_is_softmax_of_mean_member_logits_over_temperature(snapshots, prepared) -> None:
    x = prepared[0][:12]
    expected = tf.nn.softmax(np.mean([member_logits(w, x) for w in snapshots], axis=0) / 1.7).numpy()
    ensemble = network_mod.build_ensemble(SIZE, 2, snapshots, temperature=1.7)
    got = ensemble.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.ptp(got[:, 1]) > 1e-3  # real, varied outputs: not a degenerate 0.5 everywhere


def gradcam(model, x: np.ndarray, cls: int) -> np.ndarray:
    with saliency._quiet():
        return Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
            CategoricalScore([cls]), x, penultimate_layer=network_mod.LAST_CONV_LAYER, seek_penultimate_conv_layer=False,
            expand_cam=False, normalize_cam=False)[0].numpy()


def test_ensemble_gradcam_is_computed_through_each_members_gradients(snapshots, prepared) -> None:
    silent = [w.copy() for w in snapshots[1]]
    silent[-2][:] = 0.0  # member 2's head: its logits no longer reach the output
    silent[-1][:] = 0.0
    alone = network_mod.build_network(SIZE, 2)
    alone.set_weights(snapshots[0])
    mixed = network_mod.build_ensemble(SIZE, 2, [snapshots[0], silent], temperature=1.3)
    full = network_mod.build_ensemble(SIZE, 2, snapshots, temperature=1.3)
    # A film and class whose member-1 CAM is not all zero (ReLU clears maps that only lower the score).
    x, cls, cam_alone = next((prepared[0][i:i + 1], c, cam) for i in range(len(prepared[0])) for c in (1, 0)
                             if (cam := gradcam(alone, prepared[0][i:i + 1], c)).max() > 0)
    cam_mixed = gradcam(mixed, x, cls)
    # Member 2's half of the concatenated maps gets zero gradient; member 1's half gives member 1's own
    # CAM, scaled by the ensemble's 1 / (M * T) on member 1's logit.
    assert cam_alone.shape == (3, 3)
    np.testing.assert_allclose(cam_mixed * 2 * 1.3, cam_alone, rtol=1e-3, atol=1e-6)
    assert not np.allclose(saliency.normalise(gradcam(full, x, cls)), saliency.normalise(cam_alone), atol=1e-2)


def test_registered_snapshot_ensemble_is_calibrated_held_out_and_explained_from_gradients(films) -> None:
    config = TrainConfig(epochs=6, image_size=SIZE, batch_size=4, snapshots=2, ensemble=2, mixup=0.2, augmentation="strong")
    result = train_image_model(films, "ensemble_test", config)
    classifier = load_classifier(result.model)
    meta = classifier.ref.meta
    assert "ensemble of 2" in meta["architecture"]
    assert meta["temperature"] > 0 and meta["training"]["snapshots_kept"] == 2
    assert {layer.name for layer in classifier.model.layers} >= {"member_1", "member_2"}
    assert meta["training"]["tuning_images"] + meta["training"]["holdout_images"] == meta["training"]["validation_images"]

    image = load_image(next((films / "PNEUMONIA").iterdir()))
    prepared_film = preprocessing.prepare(image.pixels, SIZE, classifier.preprocessing)
    prediction, explanation = saliency.get_explainer(classifier).gradcam_with_prediction(prepared_film[None], "PNEUMONIA")
    raw = gradcam(classifier.model, prepared_film[None], 1)  # tf-keras-vis's own Grad-CAM of the ensemble
    expected = saliency.normalise(saliency._resize_map(raw, explanation.heatmap.shape))
    np.testing.assert_allclose(explanation.heatmap, expected, atol=2e-3)
    assert prediction.probabilities["PNEUMONIA"] == pytest.approx(classifier.predict(image).probabilities["PNEUMONIA"], abs=1e-5)


def test_a_versions_held_out_films_are_rebuilt_from_its_meta_and_a_changed_folder_is_refused(films) -> None:
    from core.errors import InvalidDatasetError

    dataset = datasets.scan_labeled_folder(films, None, 0)
    _, val_idx = datasets.split_by_patient(dataset, 0.5, 0)
    tune, hold = holdout.split_validation(dataset, val_idx, 0)
    config = {"seed": 0, "validation_fraction": 0.5, "max_images_per_class": None}
    meta = {"name": "chest_xray", "version": 9, "training": {"config": config, "holdout_images": len(hold)}}
    rebuilt, rebuilt_tune, rebuilt_hold = holdout.recorded_split(meta, films)
    assert rebuilt.files == dataset.files
    assert np.array_equal(rebuilt_tune, tune) and np.array_equal(rebuilt_hold, hold)
    for recorded in (len(hold) + 1, None):  # another folder; a version that kept nothing apart
        meta["training"]["holdout_images"] = recorded
        with pytest.raises(InvalidDatasetError, match="chest_xray:9's held-out films cannot be rebuilt"):
            holdout.recorded_split(meta, films)


def test_validation_is_halved_by_patient_into_tuning_and_held_out(films) -> None:
    dataset = datasets.scan_labeled_folder(films, None, 0)
    _, val_idx = datasets.split_by_patient(dataset, 0.5, 0)
    tune, hold = holdout.split_validation(dataset, val_idx, 0)
    patients = lambda idx: {datasets.patient_group(dataset.files[i]) for i in idx}  # noqa: E731
    assert sorted(np.concatenate([tune, hold]).tolist()) == sorted(val_idx.tolist())
    assert patients(tune).isdisjoint(patients(hold))
