"""Plotly figure of an archive run: how many films got each finding, how many were not assessable or failed."""

from __future__ import annotations

from collections import Counter
from typing import Any

import plotly.graph_objects as go

from core.charts.theme import styled
from core.i18n import _

FAILED, UNASSESSABLE = "#9aa5b1", "#f59f00"


def outcome_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Films per finding; films without a class are counted apart (not assessable, failed), never as a class."""
    counts: Counter[str] = Counter()
    for row in rows:
        if not row.get("ok"):
            counts[_("Failed")] += 1
        elif row.get("assessable") is False or row.get("label") is None:
            counts[_("Not assessable")] += 1
        else:
            counts[str(row["label"])] += 1
    return dict(counts)


def outcome_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """One horizontal bar per outcome, its count written on it (colour is never the only carrier)."""
    counts = outcome_counts(rows)
    names = list(counts)
    colours = [FAILED if n == _("Failed") else UNASSESSABLE if n == _("Not assessable") else "#1f6feb" for n in names]
    figure = go.Figure(
        go.Bar(
            x=[counts[n] for n in names],
            y=names,
            orientation="h",
            marker_color=colours,
            text=[str(counts[n]) for n in names],
            textposition="auto",
        )
    )
    figure.update_layout(
        height=80 + 40 * len(names),
        xaxis_title=_("films"),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title=_("Outcome per film"),
    )
    return styled(figure)
