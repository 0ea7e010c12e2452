"""Every translated page drawn in Chinese leaves no English sentence behind (model and unit names excepted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import i18n
from core.models import cards, registry

ROOT = Path(__file__).resolve().parents[2]
# Three English words in a row is a sentence fragment a Chinese reader should not meet.
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,]+[A-Za-z][a-z]+){2,}\b")
CODE_SPAN = re.compile(r"`[^`]*`")
# Titles of cited publications stay in their original language.
CITATIONS = ("Model Cards for Model Reporting",)
# Proper names quoted inside a bundled dataset's translated provenance (institutions, databases, authors).
PROPER_NAMES = ("Pima Indians Diabetes Database", "Smith et al.", "Thyroid Disease data", "Garavan Institute, Sydney",
                "UCI Machine Learning Repository", "Wisconsin Diagnostic Breast Cancer")
BUNDLED_MODELS = ("chest_xray", "diabetes_risk", "thyroid_risk", "hypertension_risk")
TRANSLATED_PAGES = {"pages/model_cards.py": "模型卡", "pages/retrain.py": "重新训练", "pages/risk_training.py": "基于数据表的风险模型",
                    "pages/image_diagnosis.py": "影像诊断",
                    "pages/patient_risk.py": "患者风险", "pages/admin.py": "系统管理", "pages/worklist.py": "DICOM 工作列表"}


def kept_as_written() -> set[str]:
    """What a Chinese page may show in English: a bundled model's class labels, its dataset's name and its
    formal references (a paper, a source with a DOI), and the proper names quoted inside translated text."""
    kept = set(CITATIONS) | set(PROPER_NAMES)
    for refs in registry.list_models().values():
        for ref in refs:
            card = cards.load_card(ref)
            data = card["training_data"]
            kept.update(str(c) for c in card["model_details"]["classes"])
            kept.update(data[key] for key in ("dataset", "paper") if data.get(key))
            if data.get("source") and "doi:" in data["source"].lower():
                kept.add(data["source"])
    return kept


def english_left(texts: list[str]) -> list[str]:
    """Runs of English words left in ``texts`` once code spans, names and citations are taken out."""
    kept = sorted(kept_as_written(), key=len, reverse=True)  # a long name before the shorter one inside it
    found = []
    for text in texts:
        text = CODE_SPAN.sub("", text)
        for name in kept:
            text = text.replace(name, "")
        found += [m.group(0) for m in ENGLISH_RUN.finditer(text)]
    return found


def shown_text(at: AppTest) -> list[str]:
    """Every string the page shows as prose: titles, headers, captions, markdown, alerts, widget labels."""
    texts = [e.value for kind in ("title", "header", "subheader", "caption", "info", "warning", "error", "success")
             for e in at.get(kind)]
    texts += [m.value for m in at.markdown]
    texts += [w.label for kind in ("button", "selectbox", "radio", "text_input", "number_input", "checkbox")
              for w in at.get(kind)]
    cleaned = [CODE_SPAN.sub("", t) for t in texts if isinstance(t, str)]
    for title in CITATIONS:
        cleaned = [t.replace(title, "") for t in cleaned]
    return cleaned


def open_in_chinese(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["language"] = "zh_CN"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", sorted(TRANSLATED_PAGES))
def test_page_in_chinese_has_no_english_sentence(page: str, isolated_home: Path) -> None:
    at = open_in_chinese(page)
    assert at.title[0].value == TRANSLATED_PAGES[page]
    leftovers = english_left(shown_text(at))
    assert not leftovers, f"{page} shows English in Chinese: {leftovers[:8]}"


@pytest.mark.parametrize("model", BUNDLED_MODELS)
def test_every_bundled_models_card_page_in_chinese_has_no_english_sentence(model: str, isolated_home: Path) -> None:
    """The card's own stored text (intended use, limits, provenance, caveats) is in the catalog too."""
    at = open_in_chinese("pages/model_cards.py")
    with i18n.using("zh_CN"):  # AppTest formats the version picker's labels in this thread
        at.selectbox(key="card_model").set_value(model).run()
    assert not at.exception, at.exception
    assert any(model in text for text in shown_text(at))
    leftovers = english_left(shown_text(at))
    assert not leftovers, f"the {model} card shows English in Chinese: {leftovers[:8]}"


@pytest.mark.parametrize("model", BUNDLED_MODELS)
def test_card_markdown_from_the_command_line_in_chinese_has_no_english_sentence(model: str, isolated_home: Path) -> None:
    env = {**os.environ, "LUCIDDX_LANG": "zh_CN"}
    done = subprocess.run([sys.executable, "-m", "core", "card", "--model", model, "--format", "md"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    assert "## " in done.stdout and "预期用途" in done.stdout
    leftovers = english_left(done.stdout.splitlines())
    assert not leftovers, f"`card --model {model} --format md` in Chinese says: {leftovers[:8]}"


def test_the_detector_catches_an_english_sentence() -> None:
    """Negative control: the rule that passes the pages does flag an untranslated sentence."""
    assert ENGLISH_RUN.search("模型卡 Train a new version of an image model")
    assert not ENGLISH_RUN.search("受试者工作特征曲线下面积（AUC）chest_xray:1")
    assert english_left(["适用人群：Adults trained only on children"]) and not english_left(["见 `python -m core card`"])


def test_single_english_words_the_walkthrough_found_are_translated(isolated_home: Path) -> None:
    """Issue 21.11: words too short for the sentence detector ("(years)", "image-classifier", "diabetes 风险",
    the acquisition changes' names) are in the reader's language too."""
    risk = open_in_chinese("pages/patient_risk.py")
    shown = " ".join(shown_text(risk) + [str(m.label) for m in risk.metric])
    assert "(years)" not in shown and "diabetes 风险" not in shown
    cards_page = open_in_chinese("pages/model_cards.py")
    assert "image-classifier" not in " ".join(shown_text(cards_page))
    i18n.set_language("zh_CN")
    try:
        text = cards.render_markdown(cards.localized(cards.load_card(registry.resolve("chest_xray"))))
    finally:
        i18n.set_language("en")
    robustness = next(line for line in text.splitlines() if "AUC" in line and "模糊" in line)
    assert "blur" not in robustness and "tight_field" not in robustness
