"""One decision per film (issue 26): an adopted site threshold that flips a film's call flips its label,
the class its Grad-CAM explains, the batch row, the PDF, the Secondary Capture's burned-in map and the SR
together. Before the fix the node burned the map of the stored threshold's class beside the site's label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.dicomnode import results
from core.dicomnode.worker import OVERLAY_OPACITY, classifier
from core.imaging import saliency
from core.imaging.reading import results_table
from core.models import registry, site_validation
from core.services import imaging as diagnosis
from core.services import reports
from tests.api.test_report_pdf import pdf_text
from tests.dicomnode.conftest import chest_dx, read, storescu, wait_for

PNEUMONIA_SAMPLES = ("pneumonia_bacteria_1.jpeg", "pneumonia_bacteria_3.jpeg", "pneumonia_virus_1.jpeg",
                     "pneumonia_virus_3.jpeg")


def _film_with_room(model, folder: Path) -> str:
    """The bundled pneumonia sample the default model calls positive least surely: a stricter site threshold can
    flip it whichever version is bundled (a very sure call, p > 0.999, leaves no room between p and 1)."""
    room = {}
    for name in PNEUMONIA_SAMPLES:
        chest_dx(folder / name, sample=name)
        call = diagnosis.diagnose(folder / name, name, model).prediction
        if call.label == model.positive_class and call.probabilities[model.positive_class] < 0.999:
            room[name] = call.probabilities[model.positive_class]
    assert room, f"{model.spec} calls none of the pneumonia samples positive with p < 0.999"
    return min(room, key=room.__getitem__)


def _adopt_threshold_above(ref: registry.ModelRef, cut: float) -> str:
    """Record a site validation whose 100%-sensitivity threshold is ``cut`` and adopt it; returns its source."""
    labels = np.array([1] * 10 + [0] * 10)
    scores = np.array([cut] * 10 + [cut / 2] * 10)
    positive = ref.meta["classes"].index(ref.meta["positive_class"])
    probabilities = np.zeros((20, 2))
    probabilities[:, positive], probabilities[:, 1 - positive] = scores, 1 - scores
    labels = np.where(labels == 1, positive, 1 - positive)
    result = site_validation.evaluate_site(labels, probabilities, ref.meta, target_sensitivity=1.0)
    validation_id = site_validation.record(ref, result, labels, probabilities, source="test site")
    adopted = site_validation.adopt_threshold(ref, validation_id, "target-sensitivity", by="admin")
    assert adopted["threshold"] == pytest.approx(cut)
    return f"site:{validation_id}"


def test_a_site_threshold_that_flips_a_film_flips_every_view_of_it(node, isolated_home: Path, tmp_path: Path) -> None:
    model = classifier(None)
    film = _film_with_room(model, tmp_path)
    chest_dx(tmp_path / "film.dcm", sample=film)
    before = diagnosis.diagnose(tmp_path / "film.dcm", "film", model)
    assert before.ok and before.prediction.threshold_source == "stored"
    positive = model.positive_class
    p = before.prediction.probabilities[positive]
    assert before.prediction.label == positive and p < 0.999  # room above it for a stricter site threshold
    source = _adopt_threshold_above(model.ref, (p + 1) / 2)

    # The services: the label and the class its map explains are one decision, at the site's threshold.
    after = diagnosis.diagnose(tmp_path / "film.dcm", "film", model)
    flipped = after.prediction.label
    assert flipped != positive and after.prediction.threshold_source == source
    assert after.explanation.class_name == flipped
    row = results_table([after], model.spec, diagnosis.threshold_in_force(model.spec))[0]
    assert row["threshold source"] == source and row["threshold"] == pytest.approx((p + 1) / 2, abs=0.01)
    page = reports.film_page(after, model, "gradcam")
    assert page.target == flipped and page.prediction["label"] == flipped
    text = pdf_text(_write(tmp_path / "case.pdf", reports.case_report([(tmp_path / "film.dcm", "film")]).pdf))
    assert f"Label: {flipped}" in text and f"Result: {flipped}" in text

    # The node: the SR's finding and threshold, and the map burned into the SC, are the site's call.
    sent = chest_dx(tmp_path / "sent.dcm", sample=film)
    assert storescu(node.port, tmp_path / "sent.dcm").returncode == 0
    entry = wait_for(isolated_home, sent.SOPInstanceUID)
    assert entry.status == "done" and entry.label == flipped, entry.reason
    sr = read(next(p for p in entry.results if p.endswith("report_sr.dcm")))
    items = {item.ConceptNameCodeSequence[0].CodeValue: item for item in sr.ContentSequence}
    assert items[results.PNEUMONIA.value].ConceptCodeSequence[0].CodeValue == results.ABSENT.value
    assert float(items["threshold"].MeasuredValueSequence[0].NumericValue) == pytest.approx((p + 1) / 2)
    sc = read(next(p for p in entry.results if p.endswith("secondary_capture.dcm"))).pixel_array.astype(float)
    band = sc.shape[0] // 6  # below the burned-in warning
    distance = {}
    for name in model.classes:
        heatmap = saliency.explain(model, after.prepared, "gradcam", name)
        expected = results.burn_in(diagnosis.overlay(after.image.pixels, heatmap, OVERLAY_OPACITY)).astype(float)
        distance[name] = float(np.abs(sc[band:] - expected[band:]).mean())
    assert distance[flipped] < 1.0 < distance[positive], distance


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
