"""A Babel extractor for the prose bundled models store about themselves (``babel.cfg``).

Cards and forms pass a model's stored text through gettext when they show it (``core.i18n.translated``,
``core.models.cards.localize``), whole string by whole string. So the catalog needs exactly those
strings: this extractor reads the JSON a bundled model ships (``models/*/*/meta.json``, ``card.json``)
and the dataset descriptions training copies from (``assets/datasets/*.json``), and yields the prose
fields only. Names, numbers, codes, class labels, commands and formal references (a paper, a source
with a DOI) are not prose and stay as written; a card's computed sentences (decision, uncertainty,
evaluation data, caveats from the figures) are generated in the reader's language and are skipped.

pybabel calls it as ``core.i18n_extract:extract_stored_prose`` (``scripts/i18n.sh`` puts the
repository on ``PYTHONPATH``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

# Dotted paths to prose, "[]" for every item of a list and "*" for every value of a mapping. One list
# serves the three file shapes: a path a file lacks (or whose value has another type) yields nothing.
PROSE_PATHS = (
    # meta.json and dataset descriptions: what training carries into a version (core.models.provenance)
    "card_text.primary_uses[]",
    "card_text.primary_users[]",
    "card_text.out_of_scope[]",
    "card_text.factors[]",
    "card_text.ethical[]",
    "card_text.caveats[]",
    "dataset.source",
    "dataset.license",
    "dataset.population",
    "subgroup_labels.*",
    "architecture",
    "threshold_rule",
    "training.split",
    "intended_use",
    "tabular.intended_use",
    "validation.selection_rule",
    "ood.method",
    "ood.validation_source",
    "ood.non_chest_sources",
    "ood.note",
    # card.json: what the card builder wrote from code (caveats come from card_text above: the card's
    # own list mixes in computed ones, which are rendered afresh)
    "model_details.architecture",
    "model_details.threshold_rule",
    "intended_use.primary_uses[]",
    "intended_use.primary_users[]",
    "intended_use.out_of_scope[]",
    "factors.relevant[]",
    "factors.evaluated[].label",
    "metrics.reported[].label",
    "metrics.reported[].meaning",
    "training_data.source",
    "training_data.license",
    "training_data.population",
    "training_data.split",
    "ethical_considerations[]",
    "quantitative_analyses.threshold_table[].note",
    "quantitative_analyses.subgroups[].label",
    "quantitative_analyses.calibration.of",
    "quantitative_analyses.robustness_auc.computed_by",
    "quantitative_analyses.out_of_distribution.note",
    "quantitative_analyses.out_of_distribution.method",
    "quantitative_analyses.out_of_distribution.validation_source",
    "quantitative_analyses.out_of_distribution.non_chest_sources",
)
# Two lower-case words in a row: prose, unlike "21-29", "CC BY 4.0" or "Pima Indians Diabetes Database".
_PROSE = re.compile(r"\b[a-z]{2,}[ ,;:]+[a-z]+\b")
# A formal reference (a citation with a DOI or an address) stays in its original language.
_REFERENCE = re.compile(r"\bdoi:|doi\.org|https?://", re.IGNORECASE)

Message = tuple[int, str | None, str, list[str]]


def values_at(document: Any, path: str, strings_only: bool = True) -> Iterator[Any]:
    """Every string (or, with ``strings_only=False``, any value) at the dotted ``path`` of ``document``
    (``[]`` walks a list, ``*`` a mapping's values)."""
    nodes = [document]
    for step in path.split("."):
        key, many = (step[:-2], "list") if step.endswith("[]") else (step, None)
        found = []
        for node in nodes:
            if key == "*":
                found += list(node.values()) if isinstance(node, dict) else []
                continue
            value = node.get(key) if isinstance(node, dict) else None
            if many:
                found += value if isinstance(value, list) else []
            elif value is not None:
                found.append(value)
        nodes = found
    return (node for node in nodes if isinstance(node, str) or not strings_only)


def is_prose(text: str) -> bool:
    """Human sentences or phrases worth translating; not codes, names, numbers or references."""
    return bool(_PROSE.search(text)) and not _REFERENCE.search(text)


def curated_fields(document: Any) -> Iterator[str]:
    """Label and help of every form field of a schema a person described (some label differs from its
    column name); a schema described from its columns alone ("TSH", "Seen in training: ...") is data."""
    for path in ("features[]", "tabular.features[]"):
        fields = [f for f in values_at(document, path, strings_only=False) if isinstance(f, dict)]
        if any(f.get("label") and f["label"] != f.get("name") for f in fields):
            yield from (f[key] for f in fields for key in ("label", "help") if isinstance(f.get(key), str) and f[key])


def stored_prose(document: Any) -> list[str]:
    """The prose strings of one stored JSON document, in path order, each once."""
    seen: dict[str, None] = {}
    for path in PROSE_PATHS:
        for text in values_at(document, path):
            if is_prose(text):
                seen.setdefault(text, None)
    for text in curated_fields(document):
        seen.setdefault(text, None)
    return list(seen)


def _line_of(raw: str, text: str) -> int:
    """1-based line where ``text`` is written in the JSON source (1 when it cannot be found)."""
    at = raw.find(json.dumps(text)[1:-1])
    return raw.count("\n", 0, at) + 1 if at >= 0 else 1


def extract_stored_prose(
    fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[Message]:
    """Babel extraction method: ``(lineno, funcname, message, comments)`` for each prose string of a JSON file."""
    raw = fileobj.read().decode(options.get("encoding", "utf-8"))
    for text in stored_prose(json.loads(raw)):
        yield _line_of(raw, text), None, text, ["Stored with a bundled model or dataset description"]
