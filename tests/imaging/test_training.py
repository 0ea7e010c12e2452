"""A real short training run on real chest films; cancelled and crashing runs register nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import config
from core.models import registry
from core.imaging import network as network_mod, training
from core.errors import RegistryError, TrainingCancelledError
from core.imaging.training import TrainConfig, train_image_model
from tests.conftest import CHEST_XRAY_TRAIN


def real_subset(root: Path, per_class: int, seed: int = 0) -> Path:
    """``per_class`` random real films per class (NORMAL, PNEUMONIA), copied under ``root``."""
    rng = np.random.default_rng(seed)
    for label in ("NORMAL", "PNEUMONIA"):
        files = sorted((CHEST_XRAY_TRAIN / label).glob("*.jpeg"))
        (root / label).mkdir(parents=True)
        for i in rng.choice(len(files), per_class, replace=False):
            shutil.copy(files[i], root / label / files[i].name)
    return root


def staged_builds() -> list[Path]:
    staging = config.home_models_dir() / ".staging"
    return list(staging.iterdir()) if staging.exists() else []


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("films") / "films", per_class=40)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return real_subset(tmp_path_factory.mktemp("tiny") / "tiny", per_class=10, seed=1)


def test_short_real_run_beats_chance_and_registers_exactly_one_version(small_set: Path) -> None:
    events: list[dict] = []
    (small_set / "NORMAL" / "DOE_JOHN_1234.png").write_bytes(b"not a film")  # a name that names a patient
    result = train_image_model(small_set, "knee_test", TrainConfig(epochs=6, image_size=64, batch_size=8, patience=4),
                               progress=events.append)

    assert result.validation["auc"] > 0.7, result.validation
    assert result.device == "CPU"
    versions = registry.list_versions("knee_test")
    assert [v.spec for v in versions] == [result.model] == ["knee_test:1"]
    ref = versions[0]
    assert not ref.bundled and ref.path.is_relative_to(config.luciddx_home())
    assert ref.meta["classes"] == ["NORMAL", "PNEUMONIA"] and ref.meta["input"]["size"] == 64
    assert 0.0 <= ref.meta["threshold"] <= 1.0
    assert json.loads((ref.path / registry.CARD_FILE).read_text())
    assert (ref.path / "validation_predictions.npz").exists() and (ref.path / "model.keras").exists()
    assert [s["file"] for s in result.dataset["skipped"]] == ["DOE_JOHN_1234.png"]  # the caller is told which
    stored = "".join(p.read_text(errors="ignore") for p in ref.path.glob("*.json"))
    assert "DOE_JOHN" not in stored and ref.meta["training"]["skipped"][0]["file"].startswith("file-")
    assert registry.resolve("knee_test:1") == ref and registry.approved_version("knee_test") is None  # waits for an admin
    assert staged_builds() == []
    kinds = [e["event"] for e in events]
    assert kinds.index("loading") < kinds.index("started") < kinds.index("epoch") < kinds.index("evaluating")
    epochs = [e for e in events if e["event"] == "epoch"]
    assert len(epochs) == result.epochs and all(e["images_per_second"] > 0 and 0 <= e["val_auc"] <= 1 for e in epochs)
    assert next(e for e in events if e["event"] == "started")["device"] == "CPU"


def test_a_cancelled_run_leaves_registry_and_staging_unchanged(tiny_set: Path) -> None:
    calls = {"n": 0}

    def cancel_after_three_batches() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(TrainingCancelledError, match="nothing was registered"):
        train_image_model(tiny_set, "cancelled_model", TrainConfig(epochs=3, image_size=32, batch_size=4),
                          cancel=cancel_after_three_batches)
    assert calls["n"] == 4
    assert registry.list_versions("cancelled_model") == []
    assert staged_builds() == []


def test_a_run_that_crashes_while_registering_leaves_nothing_behind(tiny_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_card_writer(model_dir: Path) -> None:
        assert (model_dir / registry.META_FILE).exists()  # crash with the build folder half-written
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "write_card", broken_card_writer)
    with pytest.raises(RuntimeError, match="disk full"):
        train_image_model(tiny_set, "crashed_model", TrainConfig(epochs=1, image_size=32, batch_size=4))
    assert registry.list_versions("crashed_model") == []
    assert staged_builds() == []
    assert not (config.home_models_dir() / "crashed_model" / "1").exists()


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 65])
def test_model_names_that_could_escape_the_registry_are_refused(tiny_set: Path, name: str) -> None:
    with pytest.raises(RegistryError, match="not allowed"):
        train_image_model(tiny_set, name, TrainConfig(epochs=1, image_size=32))


def test_transfer_starts_from_the_bundled_models_weights() -> None:
    from core.imaging.tfsetup import keras

    bundled = registry.resolve("chest_xray:2", kind="image-classifier")  # one network
    donor = keras.models.load_model(bundled.path / bundled.meta["model_file"], compile=False)
    network = network_mod.build_network(48, 2)  # another input size: convolution weights still fit
    network_mod.transfer_weights(network, "chest_xray:2")
    donor_conv = next(layer for layer in donor.layers if isinstance(layer, keras.layers.Conv2D))
    conv = next(layer for layer in network.layers if isinstance(layer, keras.layers.Conv2D))
    np.testing.assert_array_equal(conv.get_weights()[0], donor_conv.get_weights()[0])
    np.testing.assert_array_equal(network.get_layer("logits").get_weights()[0], donor.get_layer("logits").get_weights()[0])


def test_transfer_from_a_deep_ensemble_takes_its_first_members_trunk() -> None:
    """The active chest model is an ensemble: a warm start gets every trunk layer of its first member."""
    from core.imaging.tfsetup import keras

    bundled = registry.resolve("chest_xray:3", kind="image-classifier")
    trunk = keras.models.load_model(bundled.path / bundled.meta["model_file"], compile=False).get_layer("member_1")
    network = network_mod.build_network(48, 2)
    fresh = [w.copy() for w in network.get_weights()]
    network_mod.transfer_weights(network, "chest_xray:3")
    donor_kernels = [layer.get_weights() for layer in trunk.layers if layer.get_weights()]
    kernels = [layer.get_weights() for layer in network.layers if layer.get_weights()][: len(donor_kernels)]
    assert len(donor_kernels) > 10
    for got, want in zip(kernels, donor_kernels, strict=True):
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)
    # The averaged head fits no single network: it stays as built, to be learned.
    np.testing.assert_array_equal(network.get_layer("logits").get_weights()[0], fresh[-2])


def test_choose_device_falls_back_to_cpu_in_float32() -> None:
    from core.imaging.tfsetup import keras

    device, strategy = network_mod.choose_device()
    assert device == "CPU"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert strategy.num_replicas_in_sync == 1


@pytest.mark.parametrize("n_gpus, label, strategy_name", [(1, "GPU:0", "OneDeviceStrategy"), (2, "GPU:0-1", "MirroredStrategy")])
def test_choose_device_uses_mixed_precision_and_every_gpu_when_tensorflow_sees_them(
    monkeypatch: pytest.MonkeyPatch, n_gpus: int, label: str, strategy_name: str
) -> None:
    # No GPU here: this checks the branch (policy, label, strategy class), not CUDA itself.
    from core.imaging.tfsetup import keras, tf

    fake = [tf.config.PhysicalDevice(name=f"/physical_device:GPU:{i}", device_type="GPU") for i in range(n_gpus)]
    real_list = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: fake if kind == "GPU" else real_list(kind))
    try:
        device, strategy = network_mod.choose_device()
        assert device == label
        assert type(strategy).__name__ == strategy_name
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_gpu_requirements_pin_the_same_versions_as_the_cpu_ones() -> None:
    root = Path(__file__).resolve().parents[2]

    def pins(name: str) -> set[str]:
        lines = (root / name).read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))}

    cpu, gpu = pins("requirements.txt"), pins("requirements-gpu.txt")
    assert any(pin.startswith("tensorflow[and-cuda]==") for pin in gpu)
    assert {pin.replace("tensorflow-cpu==", "tensorflow[and-cuda]==") for pin in cpu} == gpu


def test_threshold_separates_tightly_clustered_scores():
    """Few BatchNorm updates can squeeze all probabilities into 1e-4; the cut must still separate them."""
    from core.models.thresholds import youden_threshold

    rng = np.random.default_rng(0)
    is_positive = rng.random(400) < 0.4
    scores = 0.4859 + 1e-5 * (is_positive + 0.5 * rng.random(400))
    threshold = youden_threshold(is_positive, scores)
    assert ((scores >= threshold) == is_positive).all()


def test_robust_threshold_sits_mid_gap_and_serves_every_condition():
    from core.models.thresholds import robust_youden_threshold

    is_positive = np.array([True] * 50 + [False] * 50)
    clean = np.where(is_positive, 0.9, 0.1)
    shifted = np.where(is_positive, 0.7, 0.45)  # a perturbed condition squeezes the gap upwards
    threshold = robust_youden_threshold(np.stack([is_positive, is_positive]), np.stack([clean, shifted]))
    assert 0.45 < threshold < 0.7
    assert ((shifted >= threshold) == is_positive).all() and ((clean >= threshold) == is_positive).all()


def test_names_without_patients_fall_back_to_a_split_by_file(tmp_path):
    """scan_001 ... scan_012 all read as one 'patient'; the split must still work, by file."""
    from core.imaging.datasets import LabeledDataset, split_by_patient, split_groups

    files = [tmp_path / c / f"scan_{i:03d}.png" for c in ("no", "yes") for i in range(12)]
    dataset = LabeledDataset(tmp_path, ["no", "yes"], files, np.repeat([0, 1], 12))
    _, by_patient = split_groups(dataset, 0.2)
    train_idx, val_idx = split_by_patient(dataset, 0.2, seed=0)
    assert not by_patient
    assert set(train_idx).isdisjoint(val_idx) and len(train_idx) + len(val_idx) == 24
    assert set(dataset.labels[val_idx]) == {0, 1}


def test_kermany_names_split_by_patient():
    from core.imaging.datasets import scan_labeled_folder, split_groups

    dataset = scan_labeled_folder(CHEST_XRAY_TRAIN, max_per_class=60, seed=0)
    assert split_groups(dataset, 0.2)[1]


def test_the_retrain_pages_job_defaults_are_the_training_recipes():
    from core.jobs.runner import JobRequest

    request, recipe = JobRequest(data="x", name="y"), TrainConfig()
    assert (request.batch_size, request.seed) == (recipe.batch_size, recipe.seed)
    # epochs, size and starting weights are left to the recipe chosen from the data
    argv = request.argv(Path("job"))
    assert request.epochs is None and "--epochs" not in argv and "--image-size" not in argv and "--init-from" not in argv
