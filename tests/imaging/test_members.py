"""Deep ensembles (``TrainConfig.members``, ``train --members M``) on real films.

One tiny real two-member training: the registered model is exactly the average of the two networks
that were trained, the second from another seed and wider, each measured alone on the held-out films
beside the ensemble, with epochs numbered over the whole run. Through the command line the flag
trains and records two members, and a member count below 1 is refused before any data is read.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidOptionError
from core.imaging import datasets, fitting, training
from core.imaging import holdout as holdout_mod
from core.imaging import members as members_mod
from core.imaging import network as network_mod
from core.imaging.perturbations import PERTURBATIONS
from core.imaging.tfsetup import keras, tf
from core.imaging.training import TrainConfig, train_image_model
from core.models import registry
from core.models.metrics import auc_score
from tests.cli.test_cli import run_cli
from tests.imaging.test_training import real_subset

SIZE = 32
# One cosine cycle runs every epoch and keeps the last weights: ~40 steps a member, enough for BatchNorm's
# moving statistics to let the films' differences through (a few steps give one output for every film).
CONFIG = TrainConfig(
    epochs=5, image_size=SIZE, batch_size=2, snapshots=1, ensemble=1, augmentation="standard", seed=5,
    validation_fraction=0.5, temperature_scaling=True, members=2,
)


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("members") / "films", per_class=16, seed=4)


@pytest.fixture(scope="module")
def run(films: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The two-member training, in its own LUCIDDX_HOME; every fit's settings and trained weights kept.

    The first member is cut to four epochs, as early stopping may end one sooner, so the numbering of the
    second member's epochs is checked against the epochs the first one really ran.
    """
    from core.imaging.classifier import load_classifier

    real_fit, fits, events = fitting.fit, [], []

    def recording_fit(trainer, settings, *args, **kwargs):
        if not fits:
            settings = dataclasses.replace(settings, epochs=CONFIG.epochs - 1)
        history = real_fit(trainer, settings, *args, **kwargs)
        network = args[6] if len(args) > 6 else kwargs["network"]
        fits.append({"settings": settings, "weights": [w.copy() for w in network.get_weights()]})
        return history

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUCIDDX_HOME", str(tmp_path_factory.mktemp("members_home")))
        patch.setattr(fitting, "fit", recording_fit)
        result = train_image_model(films, "deep_ensemble", CONFIG, progress=events.append)
        classifier = load_classifier(result.model)
        predictions = np.load(classifier.ref.path / "validation_predictions.npz")
        return {"result": result, "meta": classifier.ref.meta, "model": classifier.model, "fits": fits,
                "events": events, "labels": predictions["labels"], "probabilities": predictions["probabilities"]}


@pytest.fixture(scope="module")
def holdout(films: Path) -> tuple[np.ndarray, np.ndarray]:
    """The held-out films (model inputs, labels), split again the way training splits them."""
    dataset = datasets.scan_labeled_folder(films, None, CONFIG.seed)
    x, _, ok, _ = training.load_prepared(dataset.files, SIZE, training.RECIPE)
    assert ok.all()
    _, val_idx = datasets.split_by_patient(dataset, CONFIG.validation_fraction, CONFIG.seed)
    _, hold_idx = holdout_mod.split_validation(dataset, val_idx, CONFIG.seed)
    return x[hold_idx], dataset.labels[hold_idx]


def logits(model, x: np.ndarray) -> np.ndarray:
    return keras.Model(model.inputs, model.get_layer("logits").output).predict(x, verbose=0)


def member(fit: dict):
    network = network_mod.build_network(SIZE, 2, fit["settings"].widths)
    network.set_weights(fit["weights"])
    return network


def test_each_member_trains_from_its_own_seed_and_every_second_one_is_wider(run) -> None:
    first, second = run["fits"]
    assert [f["settings"].seed for f in run["fits"]] == [CONFIG.seed, CONFIG.seed + 1000]
    assert (first["settings"].widths, second["settings"].widths) == (network_mod.WIDTHS, network_mod.WIDE_WIDTHS)
    stem_1, stem_2 = first["weights"][0], second["weights"][0]  # the first convolution's kernels
    assert stem_1.shape[-1] == 32 and stem_2.shape[-1] == 48
    assert not np.allclose(stem_1, stem_2[..., :32], atol=1e-3)  # not one network padded with more filters
    model = run["model"]
    assert model.get_layer("member_1").output.shape[-1] == network_mod.WIDTHS[-1]
    assert model.get_layer("member_2").output.shape[-1] == network_mod.WIDE_WIDTHS[-1]
    for m, fit in enumerate(run["fits"], start=1):  # the registered trunks hold exactly what was trained
        for stored, trained in zip(model.get_layer(f"member_{m}").get_weights(), fit["weights"][:-2], strict=True):
            np.testing.assert_array_equal(stored, trained)


def test_registered_model_is_softmax_of_the_mean_member_logits_over_its_temperature(run, holdout) -> None:
    meta, x, model = run["meta"], holdout[0], run["model"]
    temperature = meta["temperature"]
    assert temperature > 0 and temperature != 1.0  # fitted on the tuning films: the division is exercised
    each = [logits(member(fit), x) for fit in run["fits"]]
    expected = np.mean(each, axis=0) / temperature
    got = logits(model, x)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(model.predict(x, verbose=0), tf.nn.softmax(expected).numpy(), atol=1e-6)
    np.testing.assert_allclose(run["probabilities"], model.predict(x, verbose=0), atol=1e-6)  # what the card read
    # Real, distinct members: the films get different logits, and neither member alone is the ensemble.
    assert np.ptp(got[:, 1] - got[:, 0]) > 1e-6
    for one in each:
        assert np.abs(one / temperature - got).max() > 100 * np.abs(got - expected).max() + 1e-6
    assert meta["architecture"].startswith("deep ensemble of 2 independently trained")
    assert meta["training"]["config"]["members"] == 2 and meta["training"]["snapshots_kept"] == 2


def test_each_member_is_measured_alone_on_the_held_out_films_beside_the_ensemble(run, holdout) -> None:
    meta, (x, y) = run["meta"], holdout
    np.testing.assert_array_equal(run["labels"], y)  # the same held-out films the training measured on
    assert set(y) == {0, 1}
    members = meta["training"]["members"]
    assert len(members) == 2
    assert [m["member"] for m in members] == [1, 2] and not any("snapshot" in m for m in members)
    assert [m["widths"] for m in members] == [list(network_mod.WIDTHS), list(network_mod.WIDE_WIDTHS)]
    assert members[1]["parameters"] > members[0]["parameters"]
    for figures, fit in zip(members, run["fits"], strict=True):
        alone = member(fit).predict(x, verbose=0)
        assert figures["auc"] == pytest.approx(auc_score(y == 1, alone[:, 1]), abs=1e-9)  # the member, not the ensemble
        assert set(figures["robustness_auc"]) == set(PERTURBATIONS)
        assert all(0.0 <= v <= 1.0 for v in figures["robustness_auc"].values())
        assert figures["worst_auc"] == min(figures["robustness_auc"].values())
    ensemble = meta["validation"]
    assert ensemble["auc"] == pytest.approx(auc_score(y == 1, run["model"].predict(x, verbose=0)[:, 1]), abs=1e-9)
    assert set(ensemble["robustness_auc"]) == set(PERTURBATIONS)


def test_epochs_are_numbered_over_the_whole_run(run) -> None:
    events, result = run["events"], run["result"]
    started = next(e for e in events if e["event"] == "started")
    assert (started["members"], started["epochs"]) == (2, 10)
    epochs = [(e["epoch"], e["epochs"], e["member"]) for e in events if e["event"] == "epoch"]
    # Member 1 ran four epochs: member 2's first epoch is the run's fifth, and the run can reach 9 at most.
    assert epochs == [(n, 10, 1) for n in range(1, 5)] + [(n, 9, 2) for n in range(5, 10)]
    assert result.epochs == run["meta"]["training"]["epochs_run"] == 9
    assert len(run["meta"]["training"]["history"]["val_auc"]) == 9
    last = [e for e in events if e["event"] == "epoch"][-1]
    assert last["eta_seconds"] == 0
    assert events[-1]["event"] == "evaluating"


def test_member_progress_follows_the_epochs_the_earlier_members_ran() -> None:
    config = TrainConfig(epochs=5, members=3)
    seen: list[dict] = []
    members_mod.member_progress(seen.append, 2, config, epochs_before=7)({"event": "epoch", "epoch": 1, "epochs": 5})
    members_mod.member_progress(seen.append, 1, config, epochs_before=5)({"event": "step", "step": 3})
    assert (seen[0]["epoch"], seen[0]["epochs"], seen[0]["member"]) == (8, 12, 3)
    assert seen[1] == {"event": "step", "step": 3}  # only epochs are renumbered
    single = seen.append
    assert members_mod.member_progress(single, 0, TrainConfig(members=1), 0) is single  # one network: as it was


@pytest.mark.parametrize("members", [0, -1, 1.5, True])
def test_a_member_count_below_one_or_not_whole_is_refused(members) -> None:
    with pytest.raises(InvalidOptionError, match=r"must be a whole number, 1 or more .*got"):
        TrainConfig(members=members)


def test_cli_trains_and_records_two_members(tmp_path: Path, isolated_home: Path) -> None:
    data = real_subset(tmp_path / "films", per_class=8, seed=11)
    done = run_cli("train", "--data", str(data), "--name", "deep_cli", "--epochs", "1", "--image-size", "32",
                   "--batch-size", "8", "--members", "2", "--init-from", "none", "--json", home=isolated_home)
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["epochs"] == 2  # one epoch each
    meta = registry.resolve(payload["model"]).meta
    assert meta["training"]["config"]["members"] == 2 and meta["architecture"].startswith("deep ensemble of 2")
    assert [m["widths"] for m in meta["training"]["members"]] == [list(network_mod.WIDTHS), list(network_mod.WIDE_WIDTHS)]
    assert all(set(m["robustness_auc"]) == set(PERTURBATIONS) for m in meta["training"]["members"])
    assert "epoch 2/2" in done.stderr  # the log counts epochs over both members
    # --init-from none on films the chest model recognises: the recipe says so, not "starts from its weights".
    assert meta["recipe"]["facts"]["chest_like"] >= 0.8 and meta["training"]["config"]["init_from"] is None
    assert [r["code"] for r in meta["recipe"]["reasons"]] == ["small", "size-picked", "scratch-picked", "explicit"]
    from core.services.training import recipe_explanation

    assert "starts from its weights" not in recipe_explanation(meta["recipe"])


def test_one_width_keeps_every_member_standard_so_pretraining_learns_one_trunk(
    tmp_path: Path, isolated_home: Path
) -> None:
    assert TrainConfig(members=3, wide_members=False).trunks() == [network_mod.WIDTHS]
    assert TrainConfig(members=3).trunks() == [network_mod.WIDTHS, network_mod.WIDE_WIDTHS]
    data = real_subset(tmp_path / "films", per_class=8, seed=12)
    done = run_cli("train", "--data", str(data), "--name", "one_width", "--epochs", "1", "--image-size", "32",
                   "--batch-size", "8", "--members", "2", "--one-width", "--pretrain-epochs", "1", "--json",
                   home=isolated_home)
    assert done.returncode == 0, done.stderr
    training_record = registry.resolve(json.loads(done.stdout)["model"]).meta["training"]
    assert training_record["config"]["wide_members"] is False
    assert [m["widths"] for m in training_record["members"]] == [list(network_mod.WIDTHS)] * 2
    assert [r["widths"] for r in training_record["pretraining"]["runs"]] == [list(network_mod.WIDTHS)]


def test_wide_trains_every_member_with_the_wider_network(tmp_path: Path, isolated_home: Path) -> None:
    assert TrainConfig(wide=True).trunks() == [network_mod.WIDE_WIDTHS]
    assert TrainConfig(members=3, wide=True).trunks() == [network_mod.WIDE_WIDTHS]
    with pytest.raises(InvalidOptionError, match="cannot start from chest_xray"):
        TrainConfig(wide=True, init_from="chest_xray")
    data = real_subset(tmp_path / "films", per_class=8, seed=13)
    done = run_cli("train", "--data", str(data), "--name", "wide", "--epochs", "1", "--image-size", "32",
                   "--batch-size", "8", "--wide", "--json", home=isolated_home)
    assert done.returncode == 0, done.stderr
    meta = registry.resolve(json.loads(done.stdout)["model"]).meta
    assert meta["training"]["config"]["wide"] is True and meta["recipe"]["settings"]["init_from"] is None
    wide_single = network_mod.build_network(32, 2, network_mod.WIDE_WIDTHS).count_params()
    assert meta["architecture"] == f"separable-conv CNN, {wide_single:,} parameters"
    both = run_cli("train", "--data", str(data), "--name", "refused", "--wide", "--one-width", home=isolated_home)
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


@pytest.mark.parametrize("members", ["0", "-1", "two"])
def test_cli_refuses_a_member_count_below_one_before_reading_any_data(
    members: str, tmp_path: Path, isolated_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.cli import main

    missing = tmp_path / "never_read"  # a refusal after reading would say the folder is missing instead
    args = ["train", "--data", str(missing), "--name", "refused", "--members", members, "--json"]
    if members == "0":
        done = run_cli(*args, home=isolated_home)
        status, out, err = done.returncode, done.stdout, done.stderr
    else:
        with pytest.raises(SystemExit) as exited:
            main(args)
        status, (out, err) = exited.value.code, capsys.readouterr()
    assert status == 2
    assert "argument --members" in err and "must be a whole number, 1 or more" in err and f"got {members}" in err
    assert "Traceback" not in err and out == ""
    assert registry.list_versions("refused") == []


def test_members_with_snapshot_ensembles_are_described_as_such() -> None:
    """``--members 2 --ensemble 2`` keeps two snapshots of each member: the architecture says so."""
    from core.imaging.members import architecture
    from core.imaging.training import TrainConfig

    text = architecture(TrainConfig(members=2, snapshots=3, ensemble=2), 1234)
    assert text.startswith("deep ensemble of 2 independently trained") and "last 2 snapshots of each" in text
    assert architecture(TrainConfig(members=2, snapshots=0, ensemble=1), 1234).endswith("CNNs, 1,234 parameters")


def test_each_kept_snapshot_is_named_by_its_own_cycle() -> None:
    """The last 2 of 3 snapshots are snapshots 2 and 3, not 1 and 2; a member that leaves one network has no snapshot."""
    assert members_mod.weight_origins(0, 3, 2) == [(1, 2), (1, 3)]
    assert members_mod.weight_origins(1, 2, 2) == [(2, 1), (2, 2)]
    assert members_mod.weight_origins(1, 3, 1) == [(2, None)]
    assert members_mod.weight_origins(0, 0, 1) == [(1, None)]


def test_the_architecture_says_what_training_kept_not_what_was_asked() -> None:
    """``--ensemble 3`` without cycles keeps one network, and ``--ensemble 5`` of 2 cycles keeps 2 per member."""
    from core.imaging.members import architecture

    assert architecture(TrainConfig(snapshots=0, ensemble=3), 1234) == "separable-conv CNN, 1,234 parameters"
    asked_five = TrainConfig(members=2, snapshots=2, ensemble=5)
    text = architecture(asked_five, 1234, [2, 2])
    assert "the last 2 snapshots of each averaged (4 networks)" in text and "5" not in text.split(",")[1]
    assert architecture(TrainConfig(members=2, snapshots=3, ensemble=2), 1234, [1, 1]).endswith("CNNs, 1,234 parameters")


def test_cli_members_with_snapshot_ensembles_record_which_member_and_snapshot_each_entry_is(
    tmp_path: Path, isolated_home: Path
) -> None:
    """``--members 2 --snapshots 3 --ensemble 2``: four networks averaged, each entry named (member, cycle)."""
    data = real_subset(tmp_path / "films", per_class=8, seed=11)
    done = run_cli("train", "--data", str(data), "--name", "deep_snapshots", "--epochs", "3", "--image-size", "32",
                   "--batch-size", "8", "--members", "2", "--snapshots", "3", "--ensemble", "2", "--init-from", "none",
                   "--json", home=isolated_home)
    assert done.returncode == 0, done.stderr
    meta = registry.resolve(json.loads(done.stdout)["model"]).meta
    entries = meta["training"]["members"]
    assert [(m["member"], m.get("snapshot")) for m in entries] == [(1, 2), (1, 3), (2, 2), (2, 3)]
    assert meta["training"]["snapshots_kept"] == 4 and meta["training"]["snapshots_per_member"] == [2, 2]
    assert [m["widths"] for m in entries] == [list(network_mod.WIDTHS)] * 2 + [list(network_mod.WIDE_WIDTHS)] * 2
    assert meta["architecture"].startswith("deep ensemble of 2 independently trained")
    assert "the last 2 snapshots of each averaged (4 networks)" in meta["architecture"]
    # Cycles asked on 8 films per class: the plateau reason ("standard augmentation with early stopping beat
    # the chest-tuned recipe") no longer explains the run; the researcher's cycles do.
    assert meta["recipe"]["reasons"][0]["code"] == "schedule-set"
    from core.services.training import recipe_explanation

    assert "because the researcher chose 3 cosine cycles instead of the plateau schedule" in recipe_explanation(
        meta["recipe"]
    )
