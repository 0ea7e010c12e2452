"""Errors a clinician meets come in their language: real failures raised under Chinese and under English.

And a source check: no `raise ...Error(...)` in core/ passes English text that bypasses the catalog.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path
from typing import Callable

import pytest
from PIL import Image

from core import i18n
from core.errors import LucidDxError
from core.imaging import intake
from core.imaging.door import load_image
from core.models import registry, site_validation
from core.tabular import batch
from core.tabular.predictor import load_risk_model

ROOT = Path(__file__).resolve().parents[1]
CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ ,]+[A-Za-z][a-z]+){2,}\b")  # as tests/pages/test_page_languages.py
ENGLISH_WORDS = re.compile(r"\b[a-z]{2,} [a-z]{2,}\b")
CODE_SPAN = re.compile(r"`[^`]*`")
SAMPLE = ROOT / "assets" / "samples" / "normal_1.jpeg"


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.open(SAMPLE).convert("L").save(buffer, format="PNG")
    return buffer.getvalue()


def _raised(action: Callable[[], object]) -> str:
    with pytest.raises(LucidDxError) as caught:
        action()
    return str(caught.value)


def _csv_row_error() -> str:
    predictor = load_risk_model("diabetes_risk:1")
    names = predictor.schema.names
    values = {**{n: str(v) for n, v in predictor.schema.example.items()}, "Glucose": "abc"}
    data = (",".join(names) + "\n" + ",".join(values.get(n, "") for n in names) + "\n").encode()
    _header, rows = batch.read_patient_csv(data, predictor.schema, name="patients.csv")
    (result,) = batch.score_rows(rows, predictor)
    assert result["ok"] is False
    return result["error"]


def _schema_refusal() -> str:
    schema = load_risk_model("diabetes_risk:1").schema
    return _raised(lambda: schema.validate_patient({**schema.example, "Glucose": 5000}))


def _adopt_unknown_validation() -> str:
    ref = registry.resolve("chest_xray:1")
    return _raised(lambda: site_validation.adopt_threshold(ref, "20261125-043000-1a2b3c", site_validation.RULES[0], by="test"))


ERRORS: dict[str, Callable[[], str]] = {
    "truncated PNG": lambda: _raised(lambda: load_image(_png()[:400], name="film.png")),
    "not an image": lambda: _raised(lambda: load_image(b"Patient notes, not a film.\n" * 20, name="notes.txt")),
    "bad DICOM": lambda: _raised(lambda: load_image(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI" + b"\xff" * 40, name="study.dcm")),
    "bad CSV row": _csv_row_error,
    "CSV without the model's columns": lambda: _raised(lambda: batch.read_patient_csv(
        b"a,b\n1,2\n", load_risk_model("diabetes_risk:1").schema, name="patients.csv")),
    "unknown model": lambda: _raised(lambda: registry.resolve("no_such_model")),
    "unknown version": lambda: _raised(lambda: registry.resolve("chest_xray:99")),
    "impossible patient value": _schema_refusal,
    "adopt an unknown validation": _adopt_unknown_validation,
    "not a zip archive": lambda: _raised(lambda: intake.import_upload(b"plain text, not an archive", "films.zip")),
}


def _prose(message: str) -> str:
    return CODE_SPAN.sub("", message)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_the_error_is_in_chinese_with_no_english_sentence(case: str, isolated_home: Path) -> None:
    with i18n.using("zh_CN"):
        message = ERRORS[case]()
    assert CJK.search(message), (case, message)
    assert not ENGLISH_RUN.search(_prose(message)), (case, message)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_the_same_error_is_english_by_default(case: str, isolated_home: Path) -> None:
    message = ERRORS[case]()
    assert not CJK.search(message) and ENGLISH_WORDS.search(message), (case, message)


# Programmer errors: raised only when code calls a function wrongly, never by anything a user types,
# uploads or picks (the values come from constants in the code); their readers are developers.
PROGRAMMER_ERRORS = {
    ("core/access/audit.py", "_check"): "audit fields are fixed names chosen by the calling code",
    ("core/access/audit.py", "record"): "the digest and outcome come from the calling code, not a user",
    ("core/access/roles.py", "allowed"): "an action missing from PERMISSIONS is a bug in the caller",
    ("core/imaging/dicom_index.py", "incoming_path"): "UIDs are checked by the node before a path is asked for",
    ("core/imaging/dicom_index.py", "results_dir"): "as incoming_path",
    ("core/imaging/dicom_index.py", "update"): "field names are the calling code's keyword arguments",
    ("core/imaging/perturbations.py", "perturb"): "perturbation kinds come from the PERTURBATIONS constant",
    ("core/imaging/reading.py", "filter_rows"): "filter choices are the page's fixed options",
    ("core/tabular/model.py", "build_estimator"): "families are checked (InvalidOptionError, translated) before",
}


def _is_translated(node: ast.expr) -> bool:
    """`_(...)`, `ngettext(...)`, or `.format(...)` on one of them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _is_translated(node.func.value)
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "ngettext")


def _is_english_text(node: ast.expr) -> bool:
    if isinstance(node, ast.BinOp):
        return _is_english_text(node.left) or _is_english_text(node.right)
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or isinstance(node, ast.JoinedStr)


def untranslated_raises() -> list[tuple[str, str, int]]:
    """(path, enclosing function, line) of every `raise XError(<literal or f-string>)` in core/."""
    found = []
    for path in sorted((ROOT / "core").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for node in ast.walk(function):
                if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                    continue
                name = ast.unparse(node.exc.func).rsplit(".", 1)[-1]
                if name.endswith("Error") and any(_is_english_text(a) and not _is_translated(a) for a in node.exc.args):
                    found.append((path.relative_to(ROOT).as_posix(), function.name, node.lineno))
    return found


def test_every_raised_message_goes_through_the_catalog() -> None:
    offenders = [f"{p}:{line} ({fn})" for p, fn, line in untranslated_raises() if (p, fn) not in PROGRAMMER_ERRORS]
    assert not offenders, "wrap these messages in _() with named placeholders: " + ", ".join(offenders)


def test_the_allow_list_is_short_and_still_needed() -> None:
    """An entry whose raise was removed or translated must leave the list, so it cannot grow stale."""
    still = {(p, fn) for p, fn, _line in untranslated_raises()}
    assert len(PROGRAMMER_ERRORS) <= 10 and set(PROGRAMMER_ERRORS) <= still, set(PROGRAMMER_ERRORS) - still


def test_the_source_check_flags_an_english_raise(tmp_path: Path) -> None:
    """Negative control: the detector recognises the patterns it must refuse, and accepts translated ones."""
    bad = ast.parse('raise InvalidDatasetError(f"{x}: not a folder.")').body[0].exc.args[0]
    glued = ast.parse('raise LucidDxError("rows: " + ", ".join(r))').body[0].exc.args[0]
    good = ast.parse('raise LucidDxError(_("{x}: not a folder.").format(x=x))').body[0].exc.args[0]
    assert _is_english_text(bad) and _is_english_text(glued) and not _is_english_text(good) and _is_translated(good)
