"""The probability chart beside each prediction: the positive class against the threshold in force, the label in words."""

from __future__ import annotations

import pytest

from core.imaging.classifier import Prediction
from core.charts.diagnosis import probability_figure


def _prediction(label: str, p_pneumonia: float, positive: str | None = "PNEUMONIA", threshold: float | None = 0.3) -> Prediction:
    return Prediction(
        model="chest_xray:1",
        label=label,
        probabilities={"NORMAL": 1 - p_pneumonia, "PNEUMONIA": p_pneumonia},
        threshold=threshold,
        positive_class=positive,
        out_of_distribution=False,
        ood_score=1.0,
    )


@pytest.mark.parametrize("label, p, colour", [("PNEUMONIA", 0.9, "#d62728"), ("NORMAL", 0.1, "#2f9e44")])
def test_one_bar_the_positive_class_red_only_for_a_positive_finding_and_its_text_names_the_label(label, p, colour):
    bar = probability_figure(_prediction(label, p)).data[0]
    assert list(bar.y) == ["PNEUMONIA"] and list(bar.x) == [pytest.approx(p)]  # PNEUMONIA's probability, always
    assert list(bar.marker.color) == [colour]
    assert list(bar.text) == [f"{p:.2f}: {label}"]  # colour is never the only carrier of meaning


def test_without_a_positive_class_every_class_is_drawn_and_the_top_one_named():
    bar = probability_figure(_prediction("NORMAL", 0.1, positive=None, threshold=None)).data[0]
    assert dict(zip(bar.y, bar.marker.color)) == {"NORMAL": "#1f6feb", "PNEUMONIA": "#9aa5b1"}
    assert list(bar.text) == ["0.90: NORMAL", "0.10"]


def test_an_unlike_image_is_grey_and_says_not_assessable():
    unlike = Prediction(model="chest_xray:1", label="PNEUMONIA", probabilities={"NORMAL": 0.67, "PNEUMONIA": 0.33},
                        threshold=0.15, positive_class="PNEUMONIA", out_of_distribution=True, ood_score=99.0)
    bar = probability_figure(unlike).data[0]
    assert list(bar.marker.color) == ["#9aa5b1"] and list(bar.text) == ["0.33: Not assessable"]


def test_threshold_line_sits_at_the_stored_threshold():
    figure = probability_figure(_prediction("PNEUMONIA", 0.9, threshold=0.155))
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == pytest.approx(0.155)
    assert not probability_figure(_prediction("NORMAL", 0.1, positive=None, threshold=None)).layout.shapes
