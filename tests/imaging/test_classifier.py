"""The classifier validates its meta.json when it loads: a broken model says what is wrong, by name."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from core.errors import InvalidModelError, LucidDxError
from core.imaging.classifier import ImageClassifier
from core.models import registry


@pytest.fixture()
def bundled() -> registry.ModelRef:
    return registry.resolve("chest_xray", kind="image-classifier")


def _ref_with(bundled: registry.ModelRef, tmp_path: Path, change) -> registry.ModelRef:
    folder = tmp_path / "broken"
    shutil.copytree(bundled.path, folder)
    meta = copy.deepcopy(bundled.meta)
    change(meta, folder)
    return registry.ModelRef("broken", "7", folder, False, meta)


BREAKAGES = {
    "unknown recipe": (lambda m, f: m["input"].__setitem__("preprocessing", "clahe-v9"), "preprocessing recipe 'clahe-v9'"),
    "missing weights": (lambda m, f: (f / "model.keras").unlink(), "weights file model.keras is missing"),
    "missing classes": (lambda m, f: m.pop("classes"), "at least two distinct class names"),
    "malformed classes": (lambda m, f: m.__setitem__("classes", "NORMAL,PNEUMONIA"), "at least two distinct class names"),
    "duplicate classes": (lambda m, f: m.__setitem__("classes", ["A", "A"]), "at least two distinct class names"),
    "foreign positive class": (lambda m, f: m.__setitem__("positive_class", "FRACTURE"), "positive class 'FRACTURE'"),
    "no input size": (lambda m, f: m.__setitem__("input", {"preprocessing": "histeq-v1"}), "input size"),
    "damaged weights": (lambda m, f: (f / "model.keras").write_bytes(b"not a keras file"), "could not be loaded"),
    "wrong class count": (lambda m, f: m.update(classes=["A", "B", "C"], positive_class=None), "3 classes"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_meta_is_refused_at_load_naming_model_and_problem(bundled, tmp_path, breakage) -> None:
    change, problem = BREAKAGES[breakage]
    ref = _ref_with(bundled, tmp_path, change)
    with pytest.raises(InvalidModelError) as info:
        ImageClassifier(ref)
    message = str(info.value)
    assert "broken:7" in message and problem in message
    assert isinstance(info.value, LucidDxError)


def test_an_unknown_recipe_never_reaches_prediction_as_a_bare_value_error() -> None:
    from core.imaging import preprocessing
    import numpy as np

    with pytest.raises(InvalidModelError, match="histeq-v1"):
        preprocessing.prepare(np.zeros((16, 16), np.float32), 8, "mystery")


def test_the_bundled_model_passes_its_own_validation(bundled) -> None:
    from core.imaging.classifier import validate_meta

    assert validate_meta(bundled.spec, bundled.meta, bundled.path) is bundled.meta
