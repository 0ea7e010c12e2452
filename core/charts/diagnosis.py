"""Plotly figures for an image diagnosis: the class probabilities against the operating threshold.

Builders only draw what ``core.services.imaging.diagnose`` computed; they never predict.
"""

from __future__ import annotations

import plotly.graph_objects as go

from core.imaging.classifier import Prediction

POSITIVE, NEGATIVE, NEUTRAL, OTHER = "#d62728", "#2f9e44", "#1f6feb", "#9aa5b1"


def probability_figure(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the class probabilities, with the operating threshold drawn as a line."""
    classes = list(prediction.probabilities)
    values = [prediction.probabilities[c] for c in classes]
    # Red only for a positive finding: a confident NORMAL drawn in alarm red misleads at a glance.
    if prediction.positive_class is None:
        called = NEUTRAL
    else:
        called = POSITIVE if prediction.label == prediction.positive_class else NEGATIVE
    colours = [called if c == prediction.label else OTHER for c in classes]
    figure = go.Figure(
        go.Bar(
            x=values, y=classes, orientation="h", marker_color=colours,
            text=[f"{v:.1%}" for v in values], textposition="auto",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    if prediction.threshold is not None and prediction.positive_class in classes:
        figure.add_vline(
            x=prediction.threshold, line_dash="dash", line_color="black",
            annotation_text=f"threshold {prediction.threshold:g} for {prediction.positive_class}",
            annotation_position="top",
        )
    figure.update_layout(
        xaxis={"range": [0, 1], "title": "probability", "tickformat": ".0%"},
        height=110 + 40 * len(classes),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        showlegend=False,
    )
    return figure
