"""The clinician's language: gettext catalogs managed with Babel, numbers formatted by Babel.

Every string a person reads is written in English inside ``_()`` (or ``ngettext`` for plurals) with
named placeholders, and translated at the moment it is shown, in the language of whoever is asking:
a Streamlit session sets it for its own script run, the CLI from ``--lang`` / ``LUCIDDX_LANG``.
The language lives in a context variable, so two sessions served by two threads never mix.

Catalogs: ``locale/<lang>/LC_MESSAGES/luciddx.po`` (edited by people), compiled to ``.mo`` with
``bash scripts/i18n.sh`` (pybabel extract -> update -> compile). Medical terms follow
``docs/glossary.md``.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path

from babel import Locale, numbers
from babel.core import negotiate_locale
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "luciddx"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}
DEFAULT_LANGUAGE = "en"

_current: ContextVar[str | None] = ContextVar("luciddx_language", default=None)


def normalise(code: str | None) -> str:
    """'zh', 'zh-CN', 'zh_Hans_CN' -> 'zh_CN'; anything unknown -> the default language."""
    if not code:
        return DEFAULT_LANGUAGE
    wanted = code.replace("-", "_")
    if wanted in LANGUAGES:
        return wanted
    base = wanted.split("_")[0].lower()
    return next((lang for lang in LANGUAGES if lang.split("_")[0] == base), DEFAULT_LANGUAGE)


def language() -> str:
    """The language in force here: this context's choice, else ``LUCIDDX_LANG``, else English."""
    return _current.get() or normalise(os.environ.get("LUCIDDX_LANG"))


def set_language(code: str | None) -> str:
    """Use ``code`` for the rest of this context (one Streamlit script run, one CLI call); returns it."""
    chosen = normalise(code)
    _current.set(chosen)
    return chosen


@contextlib.contextmanager
def using(code: str | None) -> Iterator[str]:
    """Within the block, speak ``code`` (e.g. to render a report in the patient's clinician's language)."""
    token = _current.set(normalise(code))
    try:
        yield _current.get() or DEFAULT_LANGUAGE
    finally:
        _current.reset(token)


@functools.cache
def _translations(code: str) -> NullTranslations:
    if code == DEFAULT_LANGUAGE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [code], domain=DOMAIN)


def gettext(message: str) -> str:
    """``message`` (English, the msgid) in the current language."""
    return _translations(language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of a counted message for ``n`` in the current language (Chinese has one form)."""
    return _translations(language()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for the catalog where it is defined (a table of labels); translate it with ``_`` when shown."""
    return message


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for a browser's ``Accept-Language`` header ('zh-CN,zh;q=0.9,en;q=0.8')."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    preferred = [part.split(";")[0].strip().replace("-", "_") for part in accept_language.split(",") if part.strip()]
    available = list(LANGUAGES) + [lang.split("_")[0] for lang in LANGUAGES]
    return normalise(negotiate_locale(preferred, available, sep="_") or DEFAULT_LANGUAGE)


def _locale() -> Locale:
    return Locale.parse(language())


def format_decimal(value: float, digits: int = 2) -> str:
    """0.3812 -> '0.38' with the current locale's separators (Babel)."""
    return numbers.format_decimal(value, format="#,##0." + "0" * digits if digits else "#,##0", locale=_locale())


def format_percent(value: float, digits: int = 1) -> str:
    """0.3812 -> '38.1%' in the current locale (Babel)."""
    return numbers.format_percent(value, format="#,##0." + "0" * digits + "%" if digits else "#,##0%", locale=_locale())


THRESHOLD_DIGITS = 2  # as every reading shows its probability and threshold (core.imaging.reading)


def format_threshold(value: float) -> str:
    """A decision threshold as clinicians read it everywhere (0.1546 -> '0.15'), in the current locale."""
    return format_decimal(value, THRESHOLD_DIGITS)


def translated(text: str | None) -> str | None:
    """Text stored as data (a bundled model's own words) in the current language; unknown text as written."""
    return gettext(text) if text else text
