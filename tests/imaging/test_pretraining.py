"""Self-supervised pretraining (``core.imaging.pretraining``, ``train --pretrain-epochs``) on real films.

The contrastive loss is SimCLR's (checked against a direct computation); the trunk learns from the
training patients' films only, never a tuning or held-out film; the supervised fit starts from
exactly the pretrained weights; the record, the recipe's reason and the job's progress say so; a
start from a registered model and pretraining at once, a negative count and too few films are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import InvalidOptionError, TrainingCancelledError
from core.imaging import datasets, fitting, pretraining, recipes, training
from core.imaging.tfsetup import tf
from core.imaging.training import TrainConfig, train_image_model
from core.jobs import runner as jobs
from core.models import registry
from core.models.recipe_text import explanation
from tests.cli.test_cli import run_cli
from tests.imaging.test_training import real_subset

SIZE = 32
CONFIG = TrainConfig(
    epochs=2, image_size=SIZE, batch_size=4, snapshots=0, augmentation="standard", seed=9, validation_fraction=0.5,
    pretrain_epochs=2,
)


def reference_nt_xent(z1: np.ndarray, z2: np.ndarray, temperature: float) -> float:
    """NT-Xent written out per view: -log(exp(sim(i, partner)) / sum over k != i of exp(sim(i, k)))."""
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n, losses = len(z1), []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        sims = np.array([z[i] @ z[k] / temperature for k in range(2 * n) if k != i])
        positive = z[i] @ z[partner] / temperature
        losses.append(-(positive - np.log(np.exp(sims).sum())))
    return float(np.mean(losses))


def test_the_contrastive_loss_is_simclrs_and_rewards_matching_views() -> None:
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=(6, 5)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    got = float(pretraining.nt_xent(tf.constant(z1), tf.constant(z2), 0.5))
    assert got == pytest.approx(reference_nt_xent(z1, z2, 0.5), rel=1e-5)
    near = z1 + 0.01 * z2  # each view's partner is nearly itself: the loss must fall far below chance
    assert float(pretraining.nt_xent(tf.constant(z1), tf.constant(near), 0.2)) < 0.5 * np.log(11)
    assert got > 0.5 * np.log(11)


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("pretraining") / "films", per_class=14, seed=6)


@pytest.fixture(scope="module")
def run(films: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny pretrained training; what pretraining saw and returned, and what the fit started from."""
    from core.imaging.classifier import load_classifier

    real_pretrain, real_compile = pretraining.pretrain, fitting.compile_trainer
    seen: dict = {"events": []}

    def recording_pretrain(x, *args, **kwargs):
        weights, losses = real_pretrain(x, *args, **kwargs)
        seen.update(pretrain_x=x.copy(), pretrained=weights, losses=losses)
        return weights, losses

    def recording_compile(*args, **kwargs):
        network, trainer = real_compile(*args, **kwargs)
        seen["fit_start"] = [w.copy() for w in network.get_weights()]
        return network, trainer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LUCIDDX_HOME", str(tmp_path_factory.mktemp("pretraining_home")))
        patch.setattr(pretraining, "pretrain", recording_pretrain)
        patch.setattr(fitting, "compile_trainer", recording_compile)
        result = train_image_model(films, "pretrained", CONFIG, progress=seen["events"].append)
        ref = load_classifier(result.model).ref
        seen.update(result=result, meta=ref.meta, card=json.loads((ref.path / "card.json").read_text()))
    return seen


def test_the_trunk_learns_from_the_training_patients_films_only(run, films: Path) -> None:
    dataset = datasets.scan_labeled_folder(films, None, CONFIG.seed)
    x, _, ok, _ = training.load_prepared(dataset.files, SIZE, training.RECIPE)
    assert ok.all()
    train_idx, val_idx = datasets.split_by_patient(dataset, CONFIG.validation_fraction, CONFIG.seed)
    seen = run["pretrain_x"]
    assert len(seen) == len(train_idx) == run["meta"]["training"]["train_images"]
    np.testing.assert_array_equal(seen, x[train_idx])  # the training patients' films, in the split's order
    validation = {x[i].tobytes() for i in val_idx}  # tuning and held-out patients: never shown to pretraining
    assert not validation & {film.tobytes() for film in seen}


def test_the_fit_starts_from_exactly_the_pretrained_weights(run) -> None:
    assert len(run["losses"]) == CONFIG.pretrain_epochs and all(np.isfinite(run["losses"]))
    for started, pretrained in zip(run["fit_start"], run["pretrained"], strict=True):
        np.testing.assert_array_equal(started, pretrained)
    # Pretraining really trained the trunk: batch normalisation's moving means left their zero start.
    from core.imaging import network as network_mod

    fresh = network_mod.build_network(SIZE, 2)
    moved = [
        not np.allclose(a, b) for a, b in zip(run["pretrained"], fresh.get_weights(), strict=True) if a.ndim == 1
    ]
    assert sum(moved) >= 10


def test_the_record_and_the_progress_say_pretraining_came_first(run) -> None:
    record = run["meta"]["training"]["pretraining"]
    assert record["images"] == run["meta"]["training"]["train_images"] and record["epochs"] == 2
    assert "SimCLR" in record["method"] and len(record["runs"]) == 1
    assert record["runs"][0]["loss"] == pytest.approx(run["losses"])
    kinds = [e["event"] for e in run["events"]]
    started = next(e for e in run["events"] if e["event"] == "started")
    assert started["pretrain_epochs"] == 2
    pretrain_epochs = [e for e in run["events"] if e["event"] == "pretrain_epoch"]
    assert [(e["epoch"], e["epochs"]) for e in pretrain_epochs] == [(1, 2), (2, 2)]
    assert pretrain_epochs[-1]["eta_seconds"] == 0
    assert kinds.index("started") < kinds.index("pretrain_epoch") < kinds.index("epoch")
    assert max(i for i, k in enumerate(kinds) if k == "pretrain_epoch") < kinds.index("epoch")


def test_the_card_says_the_network_was_pretrained_and_on_how_many_films(run) -> None:
    from core.services import catalog

    text = catalog.card_markdown(run["card"])
    images = run["meta"]["training"]["train_images"]
    assert f"2 epochs of contrastive learning (SimCLR) on the {images} training films, labels unused" in text
    first, last = run["losses"][0], run["losses"][-1]
    assert f"(contrastive loss {first:.2f} → {last:.2f})" in text


def test_starting_from_a_model_and_pretraining_at_once_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="not both"):
        TrainConfig(pretrain_epochs=5, init_from="chest_xray")
    for bad in (-1, 2.5, True):
        with pytest.raises(InvalidOptionError, match="0 or more"):
            TrainConfig(pretrain_epochs=bad)


def test_too_few_films_for_a_contrastive_batch_and_a_cancel_are_clear() -> None:
    x = np.random.default_rng(0).random((5, SIZE, SIZE, 1), dtype=np.float32)
    with pytest.raises(InvalidOptionError, match="at least 8"):
        pretraining.pretrain(x, 2, SIZE, pretraining.PretrainSettings(1))
    x = np.random.default_rng(0).random((16, SIZE, SIZE, 1), dtype=np.float32)
    with pytest.raises(TrainingCancelledError):
        pretraining.pretrain(x, 2, SIZE, pretraining.PretrainSettings(1, batch_size=8), cancel=lambda: True)


def test_pretraining_under_a_gpus_mixed_precision_policy_runs_in_float32_and_restores_it() -> None:
    """On a GPU ``choose_device`` sets mixed_float16 before training; the contrastive loop has no loss
    scaling and its mask overflows float16, so it must run in float32 (checked here on the CPU)."""
    from core.imaging.tfsetup import keras

    x = np.random.default_rng(1).random((16, SIZE, SIZE, 1), dtype=np.float32)
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        weights, losses = pretraining.pretrain(x, 2, SIZE, pretraining.PretrainSettings(1, batch_size=8))
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"  # the fit's policy, back
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert all(w.dtype == np.float32 for w in weights) and np.isfinite(losses).all()


def chest_facts() -> recipes.DataFacts:
    return recipes.DataFacts({"NORMAL": 1341, "PNEUMONIA": 3875}, 1000, 0.0, {}, 0.97, 32)


def test_the_recipe_says_pretraining_is_the_start_instead_of_the_bundled_model() -> None:
    plain = recipes.choose(chest_facts())
    assert plain.config_fields()["init_from"] == recipes.TRANSFER_MODEL  # chest films: fine-tune, unless asked
    asked = recipes.choose(chest_facts(), {"pretrain_epochs": 20}).as_dict()
    assert asked["settings"]["init_from"] is None and asked["settings"]["pretrain_epochs"] == 20
    assert [r["code"] for r in asked["reasons"]][1:3] == ["size", "pretrain"]
    said = explanation(asked)
    assert "20 self-supervised epochs" in said and "20 epochs of self-supervised pretraining" in said
    assert "starts from its weights" not in said
    TrainConfig(**asked["settings"])  # a config the training accepts


def test_the_command_line_refuses_a_negative_count_before_reading_data(tmp_path: Path) -> None:
    out = run_cli("train", "--data", str(tmp_path / "nowhere"), "--name", "x", "--pretrain-epochs", "-3",
                  home=tmp_path)
    assert out.returncode == 2
    assert "0 or more" in out.stderr and "nowhere" not in out.stderr


def test_a_job_passes_pretraining_on_and_its_bar_counts_the_pretraining_epochs(films: Path) -> None:
    request = jobs.JobRequest(data=str(films), name="job_pretrained", epochs=2, image_size=SIZE, batch_size=4,
                              pretrain_epochs=2)
    assert request.argv(Path("/tmp/job"))[-2:] == ["--pretrain-epochs", "2"]
    job_id = jobs.start_job(request, started_by=("rita.r", "researcher"))
    final = jobs.wait(job_id, timeout=300)
    assert final["state"] == "succeeded", jobs.log_tail(job_id)
    progress = jobs.read_progress(job_id)
    assert progress.pretrain == (2, 2) and progress.fraction == 1.0
    assert progress.recipe is not None and progress.recipe["settings"]["pretrain_epochs"] == 2  # the job's own plan
    assert "self-supervised pretraining epoch 2/2" in jobs.log_tail(job_id)
    meta = json.loads((registry.resolve(final["model"]).path / "meta.json").read_text())
    assert meta["training"]["pretraining"]["epochs"] == 2
    assert meta["recipe"]["settings"]["pretrain_epochs"] == 2
    # Mid-run, the bar counts the pretraining epochs as part of the whole.
    events = jobs.read_events(job_id)
    cut = next(i for i, e in enumerate(events) if e["event"] == "pretrain_epoch") + 1
    mid = jobs.JobProgress(job_id, "running", {}, 0.0)
    jobs.follow_events(mid, events[:cut])
    assert mid.phase == "pretraining" and mid.pretrain == (1, 2)
    assert mid.fraction == pytest.approx(0.1 + 0.9 * 1 / 4)  # 1 of 2 pretraining + 2 training epochs
    done = max(i for i, e in enumerate(events) if e["event"] == "pretrain_epoch") + 1
    jobs.follow_events(mid, events[cut:done])
    assert mid.phase == "training" and mid.fraction == pytest.approx(0.1 + 0.9 * 2 / 4)
