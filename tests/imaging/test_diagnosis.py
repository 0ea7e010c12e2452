"""The probability chart beside each prediction: colours by finding, threshold drawn where stored."""

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


@pytest.mark.parametrize(
    "label, p, positive, expected",
    [("PNEUMONIA", 0.9, "PNEUMONIA", "#d62728"), ("NORMAL", 0.1, "PNEUMONIA", "#2f9e44"), ("NORMAL", 0.1, None, "#1f6feb")],
)
def test_only_a_positive_finding_is_drawn_in_red(label, p, positive, expected):
    bar = probability_figure(_prediction(label, p, positive)).data[0]
    colours = dict(zip(bar.y, bar.marker.color))
    assert colours[label] == expected
    assert colours["PNEUMONIA" if label == "NORMAL" else "NORMAL"] == "#9aa5b1"


def test_threshold_line_sits_at_the_stored_threshold():
    figure = probability_figure(_prediction("PNEUMONIA", 0.9, threshold=0.155))
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == pytest.approx(0.155)
    assert not probability_figure(_prediction("NORMAL", 0.1, positive=None, threshold=None)).layout.shapes
