"""Translation catalogs: every user-facing string has a checked Chinese entry with the same placeholders."""

from __future__ import annotations

import io
import re
import threading
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from core import i18n

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"\{[^{}]*\}|%\(?[a-z_]*\)?[sdfr]")
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE]


def source_messages() -> dict[str, tuple[str, ...]]:
    """msgid -> plural forms, for every _()/ngettext() string in the code (as `scripts/i18n.sh` extracts)."""
    with open(ROOT / "babel.cfg") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = {}
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "ngettext": (1, 2)}
    ):
        forms = message if isinstance(message, tuple) else (message,)
        found[forms[0]] = forms
    return found


def catalog(lang: str):
    with open(ROOT / "locale" / lang / "LC_MESSAGES" / "luciddx.po", "rb") as handle:
        return read_po(handle, locale=lang)


def test_the_code_has_translatable_strings() -> None:
    messages = source_messages()
    assert "Image diagnosis" in messages and len(messages) >= 5


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_source_string_has_a_translation(lang: str) -> None:
    po = catalog(lang)
    missing = [msgid for msgid in source_messages() if not (po.get(msgid) and all(_strings(po.get(msgid))))]
    assert not missing, f"{len(missing)} string(s) lack a {lang} translation (run scripts/i18n.sh, then translate): {missing[:5]}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_placeholders_are_the_same_in_every_language(lang: str) -> None:
    for message in catalog(lang):
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        for text in _strings(message):
            assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(source)), (source, text)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(lang: str) -> None:
    """A .po edited without `scripts/i18n.sh` (pybabel compile) would ship stale translations."""
    folder = ROOT / "locale" / lang / "LC_MESSAGES"
    buffer = io.BytesIO()
    write_mo(buffer, catalog(lang))
    buffer.seek(0)
    expected = {_key(m.id): _strings(m) for m in read_mo(buffer) if m.id}
    with open(folder / "luciddx.mo", "rb") as handle:
        compiled = {_key(m.id): _strings(m) for m in read_mo(handle) if m.id}
    assert compiled == expected


def _key(message_id) -> str | tuple[str, ...]:
    return tuple(message_id) if isinstance(message_id, (list, tuple)) else message_id


def _strings(message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, (list, tuple)) else (message.string,)


def test_the_language_follows_the_context_and_never_leaks_between_threads() -> None:
    seen: dict[str, str] = {}

    def session(name: str, lang: str) -> None:
        i18n.set_language(lang)
        seen[name] = i18n._("Model cards")

    threads = [threading.Thread(target=session, args=("a", "zh_CN")), threading.Thread(target=session, args=("b", "en"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"a": "模型卡", "b": "Model cards"}
    with i18n.using("zh-CN"):
        assert i18n._("Patient risk") == "患者风险"
    assert i18n._("Patient risk") == "Patient risk"


def test_browser_language_and_number_formats() -> None:
    assert i18n.negotiate("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert i18n.negotiate("zh-TW") == "zh_CN" and i18n.negotiate("fr-FR,fr") == "en" and i18n.negotiate(None) == "en"
    with i18n.using("zh_CN"):
        assert i18n.format_percent(0.3812) == "38.1%" and i18n.format_decimal(1234.5, 1) == "1,234.5"


def test_no_module_that_translates_rebinds_the_underscore() -> None:
    """`name, _, version = spec.partition(":")` silently replaces gettext for the rest of the function."""
    import ast

    offenders = []
    for path in [ROOT / "app.py", *(ROOT / "pages").rglob("*.py"), *(ROOT / "ui").rglob("*.py"), *(ROOT / "core").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        imports_underscore = any(isinstance(n, ast.ImportFrom) and n.module == "core.i18n" and
                                 any(a.name == "_" for a in n.names) for n in ast.walk(tree))
        if imports_underscore and any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)
                                      for n in ast.walk(tree)):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"these modules assign to _ although they translate with it: {offenders}"


def test_the_json_extractor_takes_stored_prose_and_leaves_names_codes_and_references() -> None:
    from core.i18n_extract import stored_prose

    document = {
        "dataset": {"name": "Pima Indians Diabetes Database", "paper": "Smith et al. A paper. 1988.",
                    "source": "Kermany D. Labeled images. doi:10.17632/x.2", "license": "CC BY 4.0",
                    "population": "Women of Pima heritage aged 21 and over."},
        "card_text": {"caveats": ["Recalibrate before use in a population with a different diabetes prevalence."]},
        "subgroup_labels": {"young": "21-29", "viral": "viral pneumonia"},
        "training_command": "python -m core train-risk --csv data.csv --name model",
        "features": [{"name": "BMI", "label": "Body-mass index", "help": "Weight in kg divided by height in m squared."},
                     {"name": "Age", "label": "Age", "help": "Age in years."}],
    }
    assert stored_prose(document) == [
        "Recalibrate before use in a population with a different diabetes prevalence.",
        "Women of Pima heritage aged 21 and over.", "viral pneumonia", "Body-mass index",
        "Weight in kg divided by height in m squared.", "Age", "Age in years."]
    columns_only = {"features": [{"name": "TSH", "label": "TSH", "help": "Seen in training: 0.005 to 530."}]}
    assert stored_prose(columns_only) == []


def test_every_stored_prose_string_of_a_bundled_model_is_translated() -> None:
    """What the cards pass to gettext from a bundled model's files reaches the catalog through babel.cfg."""
    import json

    from core.i18n_extract import stored_prose

    texts = {text for path in [*(ROOT / "models").glob("*/*/*.json"), *(ROOT / "assets" / "datasets").glob("*.json")]
             for text in stored_prose(json.loads(path.read_text()))}
    assert len(texts) > 100
    with i18n.using("zh_CN"):
        untranslated = sorted(t for t in texts if i18n._(t) == t)
    assert not untranslated, untranslated[:5]
