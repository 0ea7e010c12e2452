"""Plotly figure of the explanation lab: each method's deletion and insertion AUC, with intervals, against random."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.theme import styled
from core.i18n import _


def _errors(summary: dict[str, Any], key: str) -> tuple[float, float]:
    low, high = (summary.get("intervals") or {}).get(key) or [None, None]
    value = summary[key]
    return (value - low if low is not None else 0.0), (high - value if high is not None else 0.0)


def comparison_figure(result: dict[str, Any], labels: dict[str, str]) -> go.Figure:
    """Two panels (deletion: lower is better; insertion: higher is better): each method's mean AUC with its
    95% interval, and the same curve for a random pixel order beside it."""
    methods = list(result["methods"])
    names = [labels.get(m, m) for m in methods]
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(_("Deletion AUC (lower is more faithful)"), _("Insertion AUC (higher is more faithful)")),
    )
    for col, (key, random_key) in enumerate(
        (("deletion_auc", "random_deletion_auc"), ("insertion_auc", "random_insertion_auc")), 1
    ):
        errors = [_errors(result["methods"][m], key) for m in methods]
        figure.add_trace(
            go.Bar(
                x=names,
                y=[result["methods"][m][key] for m in methods],
                name=_("map order"),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [e[1] for e in errors],
                    "arrayminus": [e[0] for e in errors],
                },
                marker_color="#1f77b4",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
        random_errors = [_errors(result["methods"][m], random_key) for m in methods]
        figure.add_trace(
            go.Bar(
                x=names,
                y=[result["methods"][m][random_key] for m in methods],
                name=_("random order"),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [e[1] for e in random_errors],
                    "arrayminus": [e[0] for e in random_errors],
                },
                marker_color="#bbbbbb",
                showlegend=col == 1,
            ),
            row=1,
            col=col,
        )
    figure.update_layout(
        barmode="group", height=420, title=_("{n} films, 95% bootstrap intervals").format(n=result["n"])
    )
    figure.update_yaxes(range=[0, 1])
    return styled(figure)


def road_figure(result: dict[str, Any], labels: dict[str, str]) -> go.Figure:
    """ROAD (Rong et al. 2022): each method's MoRF (lower is more faithful) and LeRF (higher) area with its
    95% interval, and the random-order area as a dashed line (one random order per film, shared by methods)."""
    methods = list(result["methods"])
    names = [labels.get(m, m) for m in methods]
    figure = go.Figure()
    for key, name, colour in (("road_morf_auc", _("MoRF"), "#d62728"), ("road_lerf_auc", _("LeRF"), "#2ca02c")):
        errors = [_errors(result["methods"][m], key) for m in methods]
        figure.add_trace(
            go.Bar(
                x=names,
                y=[result["methods"][m][key] for m in methods],
                name=name,
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [e[1] for e in errors],
                    "arrayminus": [e[0] for e in errors],
                },
                marker_color=colour,
            )
        )
    random_auc = result["methods"][methods[0]]["road_random_auc"] if methods else None
    if random_auc is not None:
        figure.add_hline(
            y=random_auc,
            line_dash="dash",
            line_color="#888888",
            annotation_text=_("random order {value:.2f}").format(value=random_auc),
        )
    percentages = ", ".join(f"{p}%" for p in (result.get("road") or {}).get("percentages", []))
    figure.update_layout(
        barmode="group",
        height=380,
        title=_("ROAD: area of the probability curve, pixels imputed at {percentages}").format(percentages=percentages),
    )
    figure.update_yaxes(range=[0, 1])
    return styled(figure)
