"""Every translated page drawn in Chinese leaves no English sentence behind (model and unit names excepted)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.models import cards, registry

ROOT = Path(__file__).resolve().parents[1]
# Three English words in a row is a sentence fragment a Chinese reader should not meet.
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,]+[A-Za-z][a-z]+){2,}\b")
CODE_SPAN = re.compile(r"`[^`]*`")
# Titles of cited publications stay in their original language.
CITATIONS = ("Model Cards for Model Reporting",)
TRANSLATED_PAGES = {"pages/model_cards.py": "模型卡", "pages/retrain.py": "重新训练", "pages/risk_training.py": "基于数据表的风险模型",
                    "pages/image_diagnosis.py": "影像诊断",
                    "pages/patient_risk.py": "患者风险", "pages/admin.py": "系统管理", "pages/worklist.py": "DICOM 工作列表"}


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


def card_strings() -> set[str]:
    """English runs inside the stored model cards' and model metadata's own prose (written with each model; not yet translated)."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            found.update(m.group(0) for m in ENGLISH_RUN.finditer(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for refs in registry.list_models().values():
        for ref in refs:
            walk(cards.load_card(ref))
            # The model's own stored text (meta.json: intended use, schema labels and help, the selection rule)
            # is model-authored data, shown as written, like the card's prose.
            walk(ref.meta)
    return found


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
    from_cards = card_strings()
    leftovers = [m.group(0) for text in shown_text(at) for m in ENGLISH_RUN.finditer(text)
                 if not any(m.group(0) in said for said in from_cards)]
    assert not leftovers, f"{page} shows English in Chinese: {leftovers[:8]}"


def test_the_detector_catches_an_english_sentence() -> None:
    """Negative control: the rule that passes the pages does flag an untranslated sentence."""
    assert ENGLISH_RUN.search("模型卡 Train a new version of an image model")
    assert not ENGLISH_RUN.search("受试者工作特征曲线下面积（AUC）chest_xray:1")
