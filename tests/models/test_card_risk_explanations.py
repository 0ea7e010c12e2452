"""A risk card's Explanations section: agreement with exact SHAP and stability, read from explanations.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import i18n
from core.models import cards

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_RISK = ("diabetes_risk", "thyroid_risk", "hypertension_risk")


@pytest.fixture
def diabetes_dir(tmp_path: Path) -> Path:
    target = tmp_path / "diabetes_risk" / "1"
    shutil.copytree(ROOT / "models" / "diabetes_risk" / "1", target)
    return target


@pytest.mark.parametrize("name", BUNDLED_RISK)
def test_bundled_risk_models_measured_their_explanations_on_held_out_patients(name: str) -> None:
    stored = json.loads((ROOT / "models" / name / "1" / "explanations.json").read_text())
    assert stored["kind"] == "tabular-risk" and stored["n"] >= 50 and stored["patients_from"].startswith("out-of-fold")
    assert stored["stability"]["refits"] >= 20
    methods = stored["methods"]
    # KernelSHAP must clearly beat the shuffled baseline, whose rank correlation is about 0.
    assert methods["kernel_shap"]["rank_corr"]["median_ci95"][0] > methods["random"]["rank_corr"]["median_ci95"][1]
    assert abs(methods["random"]["rank_corr"]["mean"]) < 0.2
    card = json.loads((ROOT / "models" / name / "1" / "card.json").read_text())
    assert cards.is_current(card, ROOT / "models" / name / "1")  # the stored card was rebuilt after measuring
    assert card["explanations"]["advice"].startswith("The contributions shown for each patient are exact SHAP")


def test_the_section_appears_in_english_and_chinese_and_follows_the_figures(diabetes_dir: Path) -> None:
    card = cards.build_card(diabetes_dir)
    section = card["explanations"]
    assert section["verdicts"]["kernel_shap"] == {"beats_random": True, "agrees": True}
    assert "KernelSHAP ranked the features like the exact values" in section["advice"]
    text = cards.render_markdown(card)
    assert "## Explanations" in text and "### Stability of global importance" in text
    assert "| KernelSHAP |" in text and "| Glucose |" in text and "explain_card.py" in text
    card["explanations"]["advice"] = "stale"
    with i18n.using("zh_CN"):
        chinese = cards.render_markdown(card)
    assert "## 解释" in chinese and "stale" not in chinese and "| Glucose |" in chinese


def test_an_explainer_no_better_than_shuffled_values_is_called_so(diabetes_dir: Path) -> None:
    stored = json.loads((diabetes_dir / "explanations.json").read_text())
    stored["methods"]["kernel_shap"] = json.loads(json.dumps(stored["methods"]["random"]))  # negative control
    stored["stability"]["top_unchanged"] = 0.4
    (diabetes_dir / "explanations.json").write_text(json.dumps(stored))
    section = cards.build_card(diabetes_dir)["explanations"]
    assert section["verdicts"]["kernel_shap"] == {"beats_random": False, "agrees": False}
    assert "KernelSHAP ranked the features no better than shuffled values" in section["advice"]
    assert "read the order of importance as approximate" in section["advice"]
