"""Until the lead merges ``locale/pending/api.zh_CN.json`` into the catalog, every string of the REST API
and the PDF report must have its Chinese there (or already in the catalog), with the same placeholders."""

from __future__ import annotations

import json
import re

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from tests.api.conftest import ROOT

PLACEHOLDER = re.compile(r"\{[^{}]*\}")
MODULES = [*sorted((ROOT / "core" / "api").glob("*.py")), *sorted((ROOT / "core" / "reports").glob("*.py")),
           ROOT / "core" / "services" / "reports.py"]


def test_every_new_string_has_a_chinese_translation() -> None:
    pending = {}  # every engineer's pending file counts: the lead merges them all into the catalog
    for path in sorted((ROOT / "locale" / "pending").glob("*.zh_CN.json")):
        pending.update(json.loads(path.read_text(encoding="utf-8")))
    with open(ROOT / "locale" / "zh_CN" / "LC_MESSAGES" / "luciddx.po", "rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    missing = []
    for path in MODULES:
        for _line, message, _comments, _context in extract_from_file("python", str(path), keywords={"_": None}):
            known = catalog.get(message)
            if not (known and known.string) and not pending.get(message):
                missing.append(message)
    assert not missing, missing
    for msgid, msgstr in pending.items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid
