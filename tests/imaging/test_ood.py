"""Out-of-distribution flags: measured on real images, equal to the card, and visible in the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from pydicom.data import get_testdata_file

from core.models import cards
from core import cli
from core.imaging import ood
from core.imaging.ood import measure
from core.models import registry
from core.imaging.classifier import load_classifier


@pytest.fixture(scope="module")
def model():
    return load_classifier("chest_xray")


@pytest.fixture(scope="module")
def validation_files(model) -> list[Path]:
    files = measure.validation_image_files(model.ref.meta)
    assert files, "the chest X-ray training data must be available (see tests/conftest.py)"
    return files


def test_rates_meet_the_targets_and_equal_the_card(model, validation_files) -> None:
    measured = measure.measure_rates(model, validation_files)
    assert measured["validation_n"] == len(validation_files) == model.ref.meta["training"]["validation_images"]
    assert measured["non_chest_n"] >= 50  # pydicom CT/MR/US/... files and scikit-image samples
    assert measured["validation_flag_rate"] <= 0.05
    assert measured["non_chest_flag_rate"] >= 0.90
    assert measured["detector_ms_per_image"] < 5.0

    stated = cards.load_card(model.ref)["quantitative_analyses"]["out_of_distribution"]
    for key in ("validation_flag_rate", "validation_n", "non_chest_flag_rate", "non_chest_n", "threshold"):
        assert stated[key] == pytest.approx(measured[key], abs=1e-12), key
    assert stated["non_chest_missed"] == measured["non_chest_missed"]


def test_reference_set_holds_ct_mr_and_photographs() -> None:
    names = [name for name, _ in measure.non_chest_reference_images()]
    assert any("CT_small" in n for n in names) and any("MR_small" in n for n in names)
    assert "skimage:camera.png" in names and "skimage:astronaut.png" in names
    assert not any("chest" in n.lower() for n in names)


def test_cli_marks_non_chest_inputs_and_passes_chest_films(model, validation_files, capsys) -> None:
    others = [get_testdata_file("CT_small.dcm"), get_testdata_file("MR_small.dcm"),
              str(Path(skimage.data.__file__).parent / "astronaut.png")]
    films = [str(p) for p in validation_files[:8]]
    code = cli.main(["predict", *others, *films, "--model", model.spec, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0, rows
    assert [r["out_of_distribution"] for r in rows[: len(others)]] == [True] * len(others)
    assert sum(r["out_of_distribution"] for r in rows[len(others):]) <= 1


def test_threshold_from_out_of_fold_distances_holds_on_new_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scale = np.linspace(0.2, 3.0, 48)
    train = rng.normal(size=(400, 48)) * scale
    detector = ood.OodDetector.fit(train)
    held_out = rng.normal(size=(2000, 48)) * scale
    shifted = rng.normal(size=(500, 48)) * scale[::-1]  # the same features, a different covariance
    assert np.mean(detector.score(held_out) > detector.threshold_) <= 0.05
    assert np.mean(detector.score(shifted) > detector.threshold_) >= 0.95
    # in-sample distances would set the threshold too low (the reason for out-of-fold)
    assert np.quantile(detector.score(train), 0.99) < detector.threshold_

    detector.save(tmp_path)
    loaded = ood.OodDetector.load(tmp_path)
    assert loaded.threshold_ == detector.threshold_
    assert np.allclose(loaded.score(held_out[:5]), detector.score(held_out[:5]))
    assert loaded.is_out(detector.threshold_ + 1) and not loaded.is_out(detector.threshold_ - 1) and not loaded.is_out(None)
    assert ood.OodDetector.load(tmp_path / "nowhere") is None


def test_bundled_meta_records_the_detector_it_ships(model) -> None:
    meta_ood = registry.resolve(model.spec).meta["ood"]
    assert meta_ood["threshold"] == pytest.approx(model.ood_detector.threshold_)
    assert meta_ood["validation_flag_rate"] <= 0.05


def test_refit_updates_the_detector_meta_and_makes_the_card_recompute(isolated_home: Path) -> None:
    import shutil

    from core import config

    target = config.home_models_dir() / "chest_xray" / "9"  # a version number no bundled version uses
    shutil.copytree(config.BUNDLED_MODELS_DIR / "chest_xray" / "1", target)
    meta = json.loads((target / "meta.json").read_text())
    meta["training"]["config"]["max_images_per_class"] = 40  # a small training record keeps this test fast
    (target / "meta.json").write_text(json.dumps(meta))
    before = np.load(target / ood.OOD_FILE)["threshold"].item()

    stated = measure.refit(target)

    after = ood.OodDetector.load(target)
    assert after.threshold_ == pytest.approx(stated["threshold"]) and after.threshold_ != pytest.approx(before)
    assert json.loads((target / "meta.json").read_text())["ood"] == stated
    assert 0.0 <= stated["validation_flag_rate"] <= 1.0
    card = cards.load_card(registry.resolve("chest_xray:9"))
    assert card["quantitative_analyses"]["out_of_distribution"]["threshold"] == pytest.approx(after.threshold_)


def test_measuring_a_model_without_a_detector_is_our_error(tmp_path: Path) -> None:
    import shutil

    from core.errors import InvalidModelError
    from core.imaging.classifier import ImageClassifier

    bundled = registry.resolve("chest_xray")
    folder = tmp_path / "no_detector"
    shutil.copytree(bundled.path, folder)
    (folder / ood.OOD_FILE).unlink()
    model = ImageClassifier(registry.ModelRef("no_detector", "1", folder, False, bundled.meta))
    with pytest.raises(InvalidModelError, match="no_detector:1.*ood.npz"):
        measure.measure_rates(model, None)


def test_the_measure_command_refuses_misuse_and_the_detector_module_needs_no_classifier() -> None:
    import ast

    from core.imaging.ood.__main__ import main

    assert main(["measure"]) == 2 and main(["weigh", "chest_xray"]) == 2
    detector_source = (Path(ood.__file__)).read_text()
    imported = {n.module for n in ast.walk(ast.parse(detector_source)) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.startswith("core.imaging.classifier") for m in imported)
