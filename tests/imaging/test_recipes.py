"""The training recipe chosen from the data: rules on real file lists, and one tiny real training that records it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.imaging import recipes
from core.models import registry
from core.models.recipe_text import explanation
from tests.imaging.test_training import real_subset


def digits_folder(root: Path, size: int = 64) -> Path:
    """Digits 3 and 8 from scikit-learn's bundled set, upscaled to greyscale PNGs (a non-chest set)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for k in (3, 8):
        (root / f"digit_{k}").mkdir(parents=True)
        for i, img in enumerate(digits.images[digits.target == k][:40]):
            Image.fromarray((img / 16 * 255).astype(np.uint8)).resize((size, size)).save(root / f"digit_{k}" / f"d{k}_{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def chest_facts(tmp_path_factory: pytest.TempPathFactory) -> recipes.DataFacts:
    return recipes.describe(real_subset(tmp_path_factory.mktemp("chest") / "films", per_class=50, seed=5), check_chest=False)


@pytest.fixture(scope="module")
def digit_facts(tmp_path_factory: pytest.TempPathFactory) -> recipes.DataFacts:
    return recipes.describe(digits_folder(tmp_path_factory.mktemp("digits") / "digits"), check_chest=False)


def test_headers_give_counts_sizes_and_colour_without_decoding(chest_facts, digit_facts):
    assert chest_facts.class_counts == {"NORMAL": 50, "PNEUMONIA": 50}
    assert chest_facts.colour_fraction == 0.0  # greyscale films, even those stored as RGB JPEGs
    assert chest_facts.median_short_side >= 192 and chest_facts.modalities == {}
    assert digit_facts.class_counts == {"digit_3": 40, "digit_8": 40} and digit_facts.median_short_side == 64


def test_a_small_chest_subset_trains_on_a_plateau_and_fine_tunes_the_chest_model(chest_facts):
    recipe = recipes.choose(dataclasses.replace(chest_facts, chest_like=1.0, chest_sample=32))
    fields = recipe.config_fields()
    assert recipe.schedule == "plateau"
    assert (fields["augmentation"], fields["snapshots"], fields["epochs"]) == ("standard", 0, 30)
    assert fields["image_size"] == 192 and fields["init_from"] == "chest_xray"
    assert [r.code for r in recipe.reasons] == ["small", "size", "fine-tune"]


def test_many_chest_films_get_the_chest_tuned_recipe(chest_facts):
    large = dataclasses.replace(chest_facts, class_counts={"NORMAL": 1341, "PNEUMONIA": 3875}, chest_like=0.97)
    fields = recipes.choose(large).config_fields()
    assert (fields["augmentation"], fields["snapshots"], fields["epochs"]) == ("strong", 3, 12)
    # as many films of something else keep standard augmentation: the strong one simulates film acquisition
    other = dataclasses.replace(large, chest_like=0.1)
    assert recipes.choose(other).config_fields()["augmentation"] == "standard"


def test_imbalance_counts_the_smallest_class_not_the_total(chest_facts):
    skewed = dataclasses.replace(chest_facts, class_counts={"NORMAL": 120, "PNEUMONIA": 4880}, chest_like=1.0)
    assert recipes.choose(skewed).schedule == "plateau"
    large = dataclasses.replace(skewed, class_counts={"NORMAL": 1341, "PNEUMONIA": 3875})
    assert recipes.choose(large).schedule == "snapshots"
    assert recipes.choose(large, {"max_images_per_class": 200}).schedule == "plateau"  # what will train, not the folder


def test_digits_train_small_from_scratch_at_their_own_size(digit_facts):
    recipe = recipes.choose(dataclasses.replace(digit_facts, chest_like=0.1, chest_sample=32))
    fields = recipe.config_fields()
    assert fields["image_size"] == 64 and fields["init_from"] is None and fields["snapshots"] == 0
    assert recipe.reasons[-1].code == "scratch-not-chest"
    assert "10% of 32 sampled images" in explanation(recipe.as_dict())


def test_a_non_chest_dicom_modality_never_fine_tunes_from_the_chest_model(tmp_path):
    from pydicom.data import get_testdata_file

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            shutil.copy(get_testdata_file("MR_small.dcm"), tmp_path / label / f"mr_{i}.dcm")
    facts = recipes.describe(tmp_path, check_chest=False)
    assert facts.modalities == {"MR": 10} and facts.median_short_side == 64
    recipe = recipes.choose(dataclasses.replace(facts, chest_like=1.0))
    assert recipe.config_fields()["init_from"] is None and recipe.reasons[-1].code == "scratch-modality"


def test_colour_images_are_told_apart_from_greyscale_stored_as_rgb(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(tmp_path / "colour.png")
    grey = (rng.random((64, 64)) * 255).astype(np.uint8)
    Image.fromarray(np.stack([grey] * 3, axis=2)).save(tmp_path / "grey_rgb.jpg", quality=80)
    with Image.open(tmp_path / "colour.png") as colour, Image.open(tmp_path / "grey_rgb.jpg") as rgb_grey:
        assert recipes._is_colour(colour) and not recipes._is_colour(rgb_grey)


def test_the_researchers_fields_always_win(chest_facts):
    recipe = recipes.choose(dataclasses.replace(chest_facts, chest_like=1.0),
                            {"augmentation": "strong", "epochs": 3, "init_from": "", "batch_size": 8})
    fields = recipe.config_fields()
    assert (fields["augmentation"], fields["epochs"], fields["init_from"], fields["batch_size"]) == ("strong", 3, None, 8)
    assert fields["snapshots"] == 0  # what they left open is still chosen
    assert recipe.reasons[-1].values == {"fields": "augmentation, epochs, init_from"}
    assert recipes.choose(chest_facts, schedule="snapshots").config_fields()["snapshots"] == 3


def test_the_start_reason_follows_the_researchers_choice_of_starting_weights(chest_facts, digit_facts):
    """--init-from none on chest films must not read "training starts from its weights (chest_xray)"."""
    chest = dataclasses.replace(chest_facts, chest_like=1.0, chest_sample=32)
    scratch = recipes.choose(chest, {"init_from": ""})
    assert scratch.config_fields()["init_from"] is None
    assert [r.code for r in scratch.reasons] == ["small", "size", "scratch-picked", "explicit"]
    text = explanation(scratch.as_dict())
    assert "from scratch, because" in text and "the researcher chose to train from scratch" in text
    assert "starts from its weights" not in text and "chest_xray" not in text

    transfer = recipes.choose(dataclasses.replace(digit_facts, chest_like=0.1, chest_sample=32), {"init_from": "chest_xray"})
    assert transfer.reasons[2] == recipes.Reason("start-picked", {"model": "chest_xray"})
    text = explanation(transfer.as_dict())
    assert "starting from chest_xray" in text and "the researcher chose to start from the weights of chest_xray" in text
    assert "starts from scratch" not in text

    agreeing = recipes.choose(chest, {"init_from": "chest_xray"})  # the data's reason still holds: kept
    assert [r.code for r in agreeing.reasons] == ["small", "size", "fine-tune", "explicit"]


def test_the_wider_network_starts_from_scratch_on_chest_films_and_says_why(chest_facts):
    """No bundled model has the wide layout: on films that would fine-tune, --wide trains from scratch."""
    from core.imaging.training import TrainConfig

    chest = dataclasses.replace(chest_facts, chest_like=1.0, chest_sample=32)
    wide = recipes.choose(chest, {"wide": True})
    assert wide.config_fields()["init_from"] is None
    assert [r.code for r in wide.reasons] == ["small", "size", "wide"]
    text = explanation(wide.as_dict())
    assert "from scratch, because" in text and "wider network" in text and "starts from its weights" not in text
    TrainConfig(**wide.config_fields())  # accepted as it stands
    told = recipes.choose(chest, {"wide": True, "init_from": ""})  # said twice: the researcher's choice is named
    assert [r.code for r in told.reasons] == ["small", "size", "scratch-picked", "explicit"]


def test_train_records_the_recipe_and_why_and_an_explicit_flag_overrides(tmp_path, capsys):
    """One tiny real run through the CLI: chest-likeness from the bundled model, the choice in meta.json and the card."""
    from core.cli import main

    data = real_subset(tmp_path / "films", per_class=8, seed=11)
    status = main(["train", "--data", str(data), "--name", "recipe_check", "--epochs", "1", "--image-size", "32",
                   "--augmentation", "strong", "--batch-size", "8", "--json"])
    assert status == 0
    payload = json.loads(capsys.readouterr().out)
    meta = registry.resolve(payload["model"]).meta
    recipe = meta["recipe"]
    assert payload["recipe"] == recipe
    assert recipe["facts"]["chest_like"] >= 0.8 and recipe["facts"]["chest_sample"] == 16  # the chest model knows them
    assert recipe["schedule"] == "plateau" and recipe["settings"]["snapshots"] == 0  # chosen: 8 films per class
    assert recipe["settings"]["init_from"] == "chest_xray" and meta["training"]["config"]["init_from"] == "chest_xray"
    assert recipe["settings"]["augmentation"] == "strong" and meta["training"]["config"]["augmentation"] == "strong"
    assert recipe["explicit"] == ["augmentation", "batch_size", "epochs", "image_size"]
    # --augmentation strong on 8 films per class: the plateau reason ("standard augmentation ... beat") is not why
    assert [r["code"] for r in recipe["reasons"]] == ["schedule-set", "size-picked", "fine-tune", "explicit"]
    from core.services import catalog

    markdown = catalog.card_markdown(catalog.model_card(payload["model"]))
    assert "**Recipe**" in markdown and "sampled images as chest films" in markdown
    assert "because the researcher chose strong augmentation instead of the plateau schedule" in markdown
    assert "the researcher chose 32 px" in markdown and "needs no upscaling" not in markdown


def test_the_retrain_page_says_what_it_will_train_with_and_why_before_training(tmp_path_factory, monkeypatch):
    from tests.pages.test_page_retrain import check_server_folder, open_page, texts

    films = real_subset(tmp_path_factory.mktemp("plan") / "plan_films", per_class=6, seed=8)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))
    at = check_server_folder(open_page(), films)
    plan = [i.value for i in at.info if "LucidDx will train with" in i.value]
    assert plan and "because the smallest class has 6 images" in plan[0] and "chest_xray" in plan[0]
    assert at.number_input(key="train_epochs").value == 30 and at.radio(key="train_start").value == "transfer"
    at.radio(key="train_schedule").set_value("snapshots").run()  # the override redraws the plan and the form
    assert "the researcher picked the snapshots schedule" in texts(at)
    assert at.number_input(key="train_epochs").value == 12
    assert "With your changes" not in texts(at)  # the form is the plan: nothing to say twice
    at.selectbox(key="train_size").set_value(64).run()  # a 64 px job read "192 px needs no upscaling"
    changed = [c.value for c in at.caption if c.value.startswith("With your changes")]
    assert changed and "up to 12 epochs at 64 px" in changed[0] and "the researcher chose 64 px" in changed[0]
    assert "needs no upscaling" not in changed[0]


def test_a_size_the_researcher_set_is_said_as_theirs_not_as_the_datas(chest_facts) -> None:
    """A 64 px job said "192 px needs no upscaling" on the Retrain page: the reason must follow the override."""
    from core.models.recipe_text import explanation

    big = dataclasses.replace(chest_facts, median_short_side=900)
    data_chosen = recipes.choose(big)
    assert data_chosen.reasons[1].code == "size" and data_chosen.config_fields()["image_size"] == 192
    asked = recipes.choose(big, {"image_size": 64})
    assert asked.config_fields()["image_size"] == 64
    assert asked.reasons[1].code == "size-picked" and asked.reasons[1].values["size"] == 64
    text = explanation(asked.as_dict())
    assert "64 px" in text and "needs no upscaling" not in text
    assert recipes.choose(big, {"image_size": 192}).reasons[1].code == "size"  # the same size: the data's reason


def test_a_schedule_the_researcher_changed_is_said_as_theirs_not_as_the_datas(chest_facts) -> None:
    """Strong augmentation or cosine cycles set by hand must not be explained by "standard augmentation with early
    stopping beat the chest-tuned recipe" (nor plateau decay by "the data the cosine-cycle recipe was tuned on")."""
    small = dataclasses.replace(chest_facts, chest_like=1.0, chest_sample=32)
    cycles = recipes.choose(small, {"snapshots": 3, "augmentation": "strong"})
    assert cycles.config_fields()["snapshots"] == 3
    why = cycles.reasons[0]
    assert why.code == "schedule-set" and why.values["settings"] == {"augmentation": "strong", "snapshots": 3}
    assert why.values["instead_of"]["code"] == "small"  # what the data said, kept for the record
    text = explanation(cycles.as_dict())
    assert "because the researcher chose strong augmentation and 3 cosine cycles instead of the plateau schedule" in text

    large = dataclasses.replace(small, class_counts={"NORMAL": 1341, "PNEUMONIA": 3875})
    plateau = recipes.choose(large, {"snapshots": 0})
    assert [r.code for r in plateau.reasons][:1] == ["schedule-set"]
    assert "chose plateau decay with early stopping instead of the snapshots schedule" in explanation(plateau.as_dict())

    picked = recipes.choose(small, {"augmentation": "standard"}, schedule="snapshots")
    assert "the researcher picked the snapshots schedule, with standard augmentation" in explanation(picked.as_dict())

    # What keeps the kind the reason argues for (epochs, a cycle count, the same augmentation) keeps the reason.
    assert recipes.choose(small, {"epochs": 1, "augmentation": "standard"}).reasons[0].code == "small"
    assert recipes.choose(large, {"snapshots": 5, "epochs": 20}).reasons[0].code == "large-chest"
    assert recipes.choose(small, schedule="snapshots").reasons[0].code == "schedule-picked"

