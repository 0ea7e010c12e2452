"""Plotly figure of a site validation: the ROC curve on the site's films with each candidate threshold marked."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from core.charts.theme import styled
from core.i18n import _

MARKERS = {"stored": "x", "target-sensitivity": "diamond", "youden": "circle"}


def rule_name(rule: str) -> str:
    """A threshold rule in the reader's language."""
    names = {"stored": _("stored"), "target-sensitivity": _("target sensitivity"), "youden": _("Youden")}
    return names.get(rule, rule)


def site_roc_figure(result: dict[str, Any]) -> go.Figure:
    """ROC on the site's films, the chance diagonal, and every candidate threshold as a labelled point."""
    curve = result["roc_curve"]
    hover = _("FPR {fpr}<br>TPR {tpr}<br>threshold {threshold}").format(
        fpr="%{x:.3f}", tpr="%{y:.3f}", threshold="%{customdata:.4g}"
    )
    figure = go.Figure(
        go.Scatter(
            x=curve["fpr"],
            y=curve["tpr"],
            customdata=curve["threshold"],
            mode="lines",
            name=_("this site's films"),
            hovertemplate=hover,
        )
    )
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("chance"), line={"dash": "dot", "color": "grey"})
    )
    for row in result["thresholds"]:
        label = f"{rule_name(row['rule'])} {row['threshold']:.2f}"
        figure.add_trace(
            go.Scatter(
                x=[1 - row["specificity"]],
                y=[row["sensitivity"]],
                mode="markers+text",
                marker={"size": 11, "symbol": MARKERS.get(row["rule"], "circle")},
                name=label,
                text=[label],
                textposition="bottom right",
            )
        )
    low, high = result["intervals"]["auc"]
    title = _("ROC on {n} films · AUC {auc:.3f}").format(n=result["n"], auc=result["auc"])
    if low is not None:
        title += " " + _("(95% CI {low:.3f}-{high:.3f})").format(low=low, high=high)
    figure.update_layout(
        title=title,
        xaxis_title=_("1 - specificity (false positive rate)"),
        yaxis_title=_("Sensitivity (true positive rate)"),
        height=460,
    )
    figure.update_xaxes(range=[0, 1])
    figure.update_yaxes(range=[0, 1.02])
    return styled(figure)
