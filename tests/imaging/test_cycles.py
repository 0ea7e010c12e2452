"""Cosine cycles (``train --snapshots N``) last the epochs asked for and end in exactly N snapshots.

Before, a cycle lasted ``epochs // N`` epochs, so ``--snapshots 3 --epochs 8`` ran four cycles of two
while the recipe said three. Now the N cycles share the epochs as evenly as whole epochs allow.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.imaging import datasets, fitting, training
from core.imaging.tfsetup import keras, tf
from tests.imaging.test_training import real_subset

SIZE = 32


def settings(epochs: int, snapshots: int) -> fitting.FitSettings:
    return fitting.FitSettings(epochs=epochs, batch_size=4, learning_rate=2e-3, patience=4, seed=3, snapshots=snapshots)


@pytest.mark.parametrize(
    ("epochs", "snapshots", "ends"),
    [(8, 3, [3, 5, 8]), (12, 3, [4, 8, 12]), (8, 2, [4, 8]), (9, 3, [3, 6, 9]), (2, 5, [1, 2]), (5, 1, [5])],
)
def test_n_cycles_share_the_epochs_and_the_last_ends_with_the_run(epochs: int, snapshots: int, ends: list[int]) -> None:
    assert fitting.cycle_ends(settings(epochs, snapshots)) == ends


def test_equal_cycles_keep_keras_cosine_restarts_so_earlier_recipes_train_as_before() -> None:
    ours = fitting.cosine_cycles(2e-3, [10, 20, 30])
    keras_schedule = keras.optimizers.schedules.CosineDecayRestarts(2e-3, 10, t_mul=1.0, m_mul=1.0, alpha=0.01)
    for step in range(30):
        assert float(ours(step)) == pytest.approx(float(keras_schedule(step)), rel=1e-5)


def test_uneven_cycles_restart_at_each_end_and_reach_their_floor_just_before() -> None:
    rate = fitting.cosine_cycles(1.0, [30, 50, 80])
    for start, end in ((0, 30), (30, 50), (50, 80)):
        assert float(rate(start)) == pytest.approx(1.0)
        assert float(rate(end - 1)) < 0.02  # the floor is alpha = 0.01
        values = [float(rate(s)) for s in range(start, end)]
        assert values == sorted(values, reverse=True)  # falls all through the cycle


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory):
    folder = real_subset(tmp_path_factory.mktemp("cycles") / "films", per_class=8, seed=11)
    dataset = datasets.scan_labeled_folder(folder, None, 0)
    x, _, ok, _ = training.load_prepared(dataset.files, SIZE, training.RECIPE)
    return x[ok], dataset.labels[ok]


def test_three_cycles_over_eight_epochs_keep_three_snapshots_the_last_the_final_network(films) -> None:
    x, y = films
    keras.utils.set_random_seed(3)
    fit = settings(8, 3)
    network, trainer = fitting.compile_trainer(fit, SIZE, 2, tf.distribute.get_strategy(), fitting.steps_per_epoch(len(x), 4))
    kept: list = []
    history = fitting.fit(trainer, fit, 2, (x, y), (x, y), 1, None, None, network, kept)
    assert len(history["loss"]) == 8
    assert len(kept) == 3  # four, before
    for stored, final in zip(kept[-1], network.get_weights(), strict=True):
        np.testing.assert_array_equal(stored, final)
    assert any(not np.allclose(a, b) for a, b in zip(kept[0], kept[1], strict=True))
