"""Plotly figures for the Retrain page: dataset make-up and live training curves (pages only draw them)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.theme import styled
from core.i18n import _, ngettext

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320, template="plotly_white")


def training_curves(epoch_events: list[dict[str, Any]]) -> go.Figure:
    """Training loss and validation AUC per epoch, from a job's ``epoch`` events; best AUC marked."""
    epochs = [e["epoch"] for e in epoch_events]
    figure = make_subplots(rows=1, cols=2, subplot_titles=(_("Loss"), _("Validation AUC")))
    figure.add_trace(
        go.Scatter(x=epochs, y=[e.get("loss") for e in epoch_events], mode="lines+markers", name=_("training loss")),
        row=1,
        col=1,
    )
    val_loss = [e.get("val_loss") for e in epoch_events]
    if any(v is not None for v in val_loss):
        figure.add_trace(
            go.Scatter(x=epochs, y=val_loss, mode="lines+markers", name=_("validation loss")), row=1, col=1
        )
    aucs = [e.get("val_auc") for e in epoch_events]
    figure.add_trace(go.Scatter(x=epochs, y=aucs, mode="lines+markers", name=_("validation AUC")), row=1, col=2)
    if aucs:
        best = max(range(len(aucs)), key=lambda i: aucs[i] if aucs[i] is not None else -1.0)
        figure.add_trace(
            go.Scatter(
                x=[epochs[best]],
                y=[aucs[best]],
                mode="markers",
                name=_("best (kept)"),
                marker=dict(size=13, symbol="star"),
            ),
            row=1,
            col=2,
        )
    figure.add_hline(y=0.5, line_dash="dot", annotation_text=_("chance"), row=1, col=2)
    figure.update_xaxes(title_text=_("epoch"), dtick=1 if len(epochs) <= 20 else None)
    figure.update_yaxes(range=[0.0, 1.02], row=1, col=2)
    figure.update_layout(**_LAYOUT, legend=dict(orientation="h", y=-0.25))
    return styled(figure)


def class_counts_bar(counts: dict[str, int]) -> go.Figure:
    """Readable images per class."""
    figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), text=list(counts.values()), textposition="auto"))
    figure.update_layout(**_LAYOUT, title=_("Readable images per class"), yaxis_title=_("images"))
    return styled(figure)


def image_size_scatter(sizes: list[tuple[int, int]]) -> go.Figure:
    """Image sizes (width x height in pixels); marker area grows with how many images share a size."""
    counts = Counter(sizes)
    heights, widths = [h for h, _w in counts], [w for _h, w in counts]
    n = list(counts.values())
    biggest = max(n, default=1)
    figure = go.Figure(
        go.Scatter(
            x=widths,
            y=heights,
            mode="markers",
            text=[ngettext("{n} image", "{n} images", c).format(n=c) for c in n],
            marker=dict(size=[8 + 30 * (c / biggest) ** 0.5 for c in n], opacity=0.7),
            hovertemplate=_("{width} x {height} px: {count}").format(width="%{x}", height="%{y}", count="%{text}")
            + "<extra></extra>",
        )
    )
    figure.update_layout(**_LAYOUT, title=_("Image sizes"), xaxis_title=_("width (px)"), yaxis_title=_("height (px)"))
    return styled(figure)


def class_balance_bar(counts: dict[str, int]) -> go.Figure:
    """Rows per outcome value of a table (negative, positive, left out, blank)."""
    figure = go.Figure(go.Bar(x=list(counts), y=list(counts.values()), text=list(counts.values()), textposition="auto"))
    figure.update_layout(**_LAYOUT, title=_("Class balance"), yaxis_title=_("rows"))
    return styled(figure)


def missingness_bar(fractions: dict[str, float]) -> go.Figure:
    """Share of blank cells per column, most missing first (columns with none are left out)."""
    shown = sorted(((k, v) for k, v in fractions.items() if v > 0), key=lambda kv: -kv[1])
    # A trailing separator in a CSV header makes a column with no name: it still needs a label on the axis.
    figure = go.Figure(
        go.Bar(
            x=[k.strip() or _("(unnamed column)") for k, _v in shown],
            y=[100 * v for _k, v in shown],
            text=[f"{100 * v:.0f}%" for _k, v in shown],
            textposition="auto",
        )
    )
    figure.update_layout(
        **_LAYOUT, title=_("Missing values per column"), yaxis_title=_("blank rows (%)"), yaxis_range=[0, 100]
    )
    return styled(figure)
