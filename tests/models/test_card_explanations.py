"""The card's Explanations section: read from the version's explanations.json, it says which method to trust and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import i18n
from core.models import cards
from core.models.cards import sections
from core.services import explanations

ROOT = Path(__file__).resolve().parents[2]
CHEST = ROOT / "models" / "chest_xray" / "2"


def summary(deletion: float, random_deletion: float, insertion: float, random_insertion: float, corr: float,
            corr_high: float, gain_low: float) -> dict:
    return {"deletion_auc": deletion, "random_deletion_auc": random_deletion, "insertion_auc": insertion,
            "random_insertion_auc": random_insertion, "deletion_gain": random_deletion - deletion,
            "insertion_gain": insertion - random_insertion, "randomization_rank_corr": corr, "stability_rank_corr": 0.9,
            "seconds_per_film": 0.2, "randomization_cascade": {"logits": corr, "top3": corr, "all": corr},
            "intervals": {"deletion_auc": [deletion - 0.05, deletion + 0.05], "deletion_gain": [gain_low, 0.4],
                          "insertion_gain": [gain_low, 0.4], "randomization_rank_corr": [corr - 0.1, corr_high]}}


STORED = {"n": 60, "classes": {"NORMAL": 30, "PNEUMONIA": 30}, "removal": "blur", "steps": 20, "held_out_total": 522,
          "headline_stage": "top3", "command": "python scripts/explain_card.py --model chest_xray:2 --films 60 --seed 0",
          "labels": {"gradcam": "Grad-CAM", "smoothgrad": "SmoothGrad", "scorecam": "Faster Score-CAM"},
          "methods": {"gradcam": summary(0.45, 0.70, 0.85, 0.70, 0.10, 0.20, 0.05),
                      "smoothgrad": summary(0.35, 0.70, 0.90, 0.70, 0.85, 0.90, 0.10),  # more faithful, fails the sanity check
                      "scorecam": summary(0.69, 0.70, 0.71, 0.70, 0.10, 0.20, -0.05)}}  # no better than random


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    target = tmp_path / "chest_xray" / "2"
    shutil.copytree(CHEST, target)
    (target / "explanations.json").unlink(missing_ok=True)
    return target


def test_advice_trusts_the_method_that_beats_random_and_passes_the_sanity_check(model_dir: Path) -> None:
    before = cards.build_card(model_dir)
    assert "explanations" not in before
    (model_dir / "explanations.json").write_text(json.dumps(STORED))
    assert not cards.is_current(before, model_dir)  # the measured file is part of what the card is built from
    card = cards.build_card(model_dir)
    section = card["explanations"]
    assert section["n"] == 60 and section["held_out_total"] == 522
    assert section["verdicts"]["gradcam"] == {"beats_random_deletion": True, "beats_random_insertion": True,
                                              "passes_randomization": True, "stable": True}
    assert section["verdicts"]["smoothgrad"]["passes_randomization"] is False
    assert section["verdicts"]["scorecam"]["beats_random_deletion"] is False
    # SmoothGrad has the better deletion AUC, but its map survives randomising the model: Grad-CAM is trusted.
    assert section["advice"].startswith("Trust Grad-CAM first") and "SmoothGrad:" in section["advice"]
    assert "insertion curve is not clearly above random" not in section["advice"]
    text = cards.render_markdown(card)
    assert "## Explanations" in text and "0.450 (0.400-0.500) (0.700)" in text and "explain_card.py" in text


def test_a_map_that_changes_under_invisible_noise_is_not_trusted(model_dir: Path) -> None:
    stored = json.loads(json.dumps(STORED))
    lime = summary(0.30, 0.70, 0.95, 0.70, 0.0, 0.1, 0.2)  # the most faithful, passes randomisation...
    lime["intervals"]["stability_rank_corr"] = [0.41, 0.53]  # ...but unstable
    stored["methods"]["lime"], stored["labels"]["lime"] = lime, "LIME"
    (model_dir / "explanations.json").write_text(json.dumps(stored))
    advice = cards.build_card(model_dir)["explanations"]["advice"]
    assert advice.startswith("Trust Grad-CAM first") and "LIME: the map changes under noise" in advice


def test_no_trusted_method_is_said_plainly_and_the_advice_is_localized(model_dir: Path) -> None:
    stored = json.loads(json.dumps(STORED))
    stored["methods"] = {"smoothgrad": STORED["methods"]["smoothgrad"]}
    (model_dir / "explanations.json").write_text(json.dumps(stored))
    card = cards.build_card(model_dir)
    assert card["explanations"]["advice"].startswith("No method both beat a random pixel order")
    card["explanations"]["advice"] = "stale"
    with i18n.using("zh_CN"):  # recomputed from the figures in the reader's language, never the stored English
        assert cards.localized(card)["explanations"]["advice"] != "stale"


def test_bundled_chest_model_has_measured_explanations_on_held_out_films() -> None:
    stored = json.loads((CHEST / "explanations.json").read_text())
    assert stored["n"] >= 40 and stored["films_from"].startswith("held-out patients")
    assert set(stored["methods"]) >= {"gradcam", "gradcam++", "scorecam", "smoothgrad"}
    assert "files" not in json.dumps(stored) and "person" not in json.dumps(stored)  # no film names stored
    measured = explanations.measured_faithfulness("chest_xray:2")
    label = explanations.method_label("gradcam", measured)
    assert label.startswith("Grad-CAM (deletion AUC ") and "vs random" in label
    assert explanations.method_label("gradcam", {}) == "Grad-CAM"
