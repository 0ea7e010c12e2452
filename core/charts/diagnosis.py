"""Plotly figures for an image diagnosis: the positive class's probability against the threshold in force.

Builders only draw what ``core.services.imaging.diagnose`` computed; they never predict. Every bar's
text carries the label too, so colour is never the only carrier of meaning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from core.charts.theme import styled
from core.i18n import _
from core.imaging.reading import reading

if TYPE_CHECKING:  # TensorFlow loads with the model, not with the page that draws this chart
    from core.imaging.classifier import Prediction

POSITIVE, NEGATIVE, NEUTRAL, OTHER = "#d62728", "#2f9e44", "#1f6feb", "#9aa5b1"


def _colour(prediction: Prediction, cls: str, called: str) -> str:
    if not prediction.assessable:
        return OTHER
    if prediction.positive_class is None:
        return NEUTRAL if cls == called else OTHER
    return (POSITIVE if prediction.label == prediction.positive_class else NEGATIVE) if cls == called else OTHER


def probability_figure(prediction: Prediction) -> go.Figure:
    """One bar: the positive class's probability, the threshold in force as a line, the label in the text.

    A multi-class model gets one bar per class, the top class's text naming the label.
    """
    said = reading(prediction)
    probability, threshold = said.rounded()
    finding = _(said.finding)
    if said.threshold is not None:
        classes, values = [said.score_class], [said.probability]
        texts = [_("{probability}: {finding}").format(probability=probability, finding=finding)]
    else:
        classes = list(prediction.probabilities)
        values = [prediction.probabilities[c] for c in classes]
        texts = [f"{v:.2f}" + (f": {finding}" if c == said.score_class else "") for c, v in zip(classes, values)]
    figure = go.Figure(
        go.Bar(
            x=values,
            y=classes,
            orientation="h",
            text=texts,
            textposition="auto",
            marker_color=[_colour(prediction, c, said.score_class) for c in classes],
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    if said.threshold is not None:
        figure.add_vline(
            x=said.threshold,
            line_dash="dash",
            line_color="black",
            annotation_text=_("threshold {threshold}").format(threshold=threshold),
            annotation_position="top",
        )
    figure.update_layout(
        xaxis={"range": [0, 1], "title": _("probability")},
        height=110 + 40 * len(classes),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        showlegend=False,
    )
    return styled(figure)
