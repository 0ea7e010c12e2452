"""Plotly figures for any tabular risk model: risk vs threshold, waterfall, global SHAP views.

Builders only draw what ``core.tabular.predictor`` computed; they never fit or explain anything themselves,
and they know no dataset: names, units and the outcome's name come from the model's stored schema.
All SHAP values are in log-odds (the model's output space), so bars add up exactly; the waterfall says so on
every bar and reads its axis as the risk the log-odds stand for, and names fields by their labels and units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from core.charts.theme import styled
from core.i18n import _, format_percent, ngettext, translated
from core.tabular.predictor import RiskResult
from core.tabular.schema import FeatureSpec

UP, DOWN, NEUTRAL = "#c0392b", "#2471a3", "#7f8c8d"


def shown_value(spec: FeatureSpec, value) -> str:
    """``148 mg/dL`` / ``M`` as the schema formats it; a blank value says 'not measured' in the reader's language."""
    return _("not measured") if value is None else spec.format_value(value)


def _imputed_value(result: RiskResult, name: str) -> str | None:
    spec = result.specs.get(name) or FeatureSpec(name, name)
    imputed = result.imputed.get(name)
    if result.values.get(name) is not None or imputed is None:
        return None
    return spec.format_value(spec.levels[int(imputed)] if spec.categorical else round(imputed, 3))


def field_label(result: RiskResult, name: str) -> str:
    """The field's label as its schema names it (``Plasma glucose, 2-h OGTT``), in the reader's language; the column name without one."""
    spec = result.specs.get(name)
    return (translated(spec.label) or spec.label) if spec is not None and spec.label else name


def value_label(result: RiskResult, name: str) -> str:
    """``Plasma glucose, 2-h OGTT = 148 mg/dL`` / ``Serum insulin, 2-h = not measured (imputed 125 µU/mL)``.

    Labels, units and categories are the model's (its stored schema); only the words around them are translated.
    """
    spec = result.specs.get(name) or FeatureSpec(name, name)
    label = field_label(result, name)
    imputed = _imputed_value(result, name)
    if imputed is not None:
        return _("{name} = not measured (imputed {value})").format(name=label, value=imputed)
    return _("{name} = {value}").format(name=label, value=shown_value(spec, result.values.get(name)))


@dataclass(frozen=True)
class RiskChange:
    """How a what-if moved the risk: ``text`` in percentage points, ``moved`` False when it rounds to no change."""

    text: str
    moved: bool


def risk_change(before: float, after: float) -> RiskChange:
    """The change from ``before`` to ``after`` (probabilities) as a reader reads it: "+2.3 percentage points";
    a change that rounds to 0.0 is "no change", with no sign (and so no arrow, no colour)."""
    points = round((after - before) * 100, 1)
    if points == 0:
        return RiskChange(_("no change"), False)
    return RiskChange(_("{change} percentage points").format(change=f"{points:+.1f}"), True)


def imputed_note(result: RiskResult, name: str) -> str:
    """``Insulin (imputed 125 µU/mL)`` for a field left blank."""
    return _("{name} (imputed {value})").format(name=field_label(result, name), value=_imputed_value(result, name))


def risk_gauge(
    risk: float, threshold: float, interval: tuple[float, float] | None = None, title: str | None = None
) -> go.Figure:
    """A 0-100 % gauge of the risk with the decision threshold marked (and the 95% interval, if given)."""
    steps = [{"range": [0, threshold * 100], "color": "#eaf2f8"}, {"range": [threshold * 100, 100], "color": "#fdedec"}]
    if interval is not None:
        steps.append({"range": [interval[0] * 100, interval[1] * 100], "color": "#d5d8dc"})
    fig = go.Figure(
        go.Indicator(
            mode="gauge+number",
            value=risk * 100,
            number={"suffix": " %", "valueformat": ".1f"},
            title={"text": title if title is not None else _("Risk")},
            gauge={
                "axis": {"range": [0, 100], "ticksuffix": "%"},
                "bar": {"color": UP if risk >= threshold else DOWN},
                "steps": steps,
                "threshold": {"line": {"color": "black", "width": 4}, "thickness": 0.9, "value": threshold * 100},
            },
        )
    )
    fig.update_layout(height=260, margin={"l": 30, "r": 30, "t": 60, "b": 10})
    return styled(fig)


def waterfall(result: RiskResult, max_features: int | None = None, outcome: str | None = None) -> go.Figure:
    """Base value -> one bar per feature (labelled with the value as entered) -> this patient's log-odds.

    The last bar equals ``result.output`` exactly: base value + sum of contributions.
    """
    labels = {name: value_label(result, name) for name in result.values}
    ranked = sorted(result.contributions.items(), key=lambda kv: abs(kv[1]))  # smallest at the top
    if max_features is not None and len(ranked) > max_features:
        rest = ranked[: len(ranked) - max_features]
        others = ngettext("{n} other feature", "{n} other features", len(rest)).format(n=len(rest))
        ranked = [(others, sum(v for _name, v in rest))] + ranked[len(ranked) - max_features :]
        labels = {**labels, ranked[0][0]: ranked[0][0]}
    names = [labels[name] for name, _v in ranked]
    values = [v for _name, v in ranked]
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            measure=["absolute", *["relative"] * len(values), "total"],
            y=[
                _("Average patient (base value)"),
                *names,
                _("This patient: risk {risk}").format(risk=format_percent(result.risk, 1)),
            ],
            x=[result.base_value, *values, result.output],
            base=0,
            text=[f"{result.base_value:+.2f}", *[f"{v:+.2f}" for v in values], f"{result.output:+.2f}"],
            textposition="outside",
            hovertext=[
                _("{value} log-odds").format(value=f"{v:+.3f}") for v in (result.base_value, *values, result.output)
            ],
            hoverinfo="y+text",
            increasing={"marker": {"color": UP}},
            decreasing={"marker": {"color": DOWN}},
            totals={"marker": {"color": NEUTRAL}},
            connector={"line": {"color": "#bbbbbb"}},
        )
    )
    running = np.cumsum([result.base_value, *values])
    lo, hi = min(0.0, running.min(), result.output), max(0.0, running.max(), result.output)
    pad = 0.18 * (hi - lo or 1.0)  # room for the "+0.84" labels outside the bars
    fig.update_traces(cliponaxis=False)
    ticks = [t for t in RISK_TICKS if lo - pad <= _logit(t) <= hi + pad]
    fig.update_layout(
        title=_("Why this risk: each field's SHAP contribution, in log-odds (red raises the risk, blue lowers it)"),
        xaxis={
            "title": (
                _("Risk of {outcome}: the axis is in log-odds, labelled with the risk each point stands for").format(
                    outcome=outcome
                )
                if outcome
                else _("Risk of the outcome: the axis is in log-odds, labelled with the risk each point stands for")
            ),
            "range": [lo - pad, hi + pad],
            "tickvals": [_logit(t) for t in ticks],
            "ticktext": [format_percent(t, 0 if t >= 0.01 else 1) for t in ticks],
        },
        yaxis={"autorange": "reversed"},
        height=120 + 38 * (len(values) + 2),
        margin={"l": 10, "r": 40, "t": 50, "b": 40},
        showlegend=False,
    )
    return styled(fig)


RISK_TICKS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
"""Risks whose log-odds label the waterfall's axis: the reader reads a position as a risk."""


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def importance_bar(shap_values: np.ndarray, names: Sequence[str]) -> go.Figure:
    """Mean |SHAP| per feature over a set of patients, (N, F) log-odds -> horizontal bar chart."""
    mean_abs = np.abs(np.asarray(shap_values)).mean(axis=0)
    order = np.argsort(mean_abs)
    fig = go.Figure(
        go.Bar(
            x=mean_abs[order],
            y=[names[i] for i in order],
            orientation="h",
            marker_color=NEUTRAL,
            text=[f"{v:.3f}" for v in mean_abs[order]],
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        title=_("Global importance: mean |SHAP| (training patients)"),
        xaxis_title=_("mean |contribution| (log-odds)"),
        height=360,
        margin={"l": 10, "r": 40, "t": 50, "b": 40},
    )
    return styled(fig)


def beeswarm(X: np.ndarray, shap_values: np.ndarray, names: Sequence[str], seed: int = 0) -> go.Figure:
    """One dot per patient and feature at its SHAP value, coloured by the feature's value (grey = not measured).

    Args:
        X: (N, F) feature values with NaN for not measured.
        shap_values: (N, F) log-odds contributions.
    """
    X = np.asarray(X, dtype=float)
    shap_values = np.asarray(shap_values, dtype=float)
    order = np.argsort(np.abs(shap_values).mean(axis=0))
    rng = np.random.default_rng(seed)
    not_measured = _("not measured")
    fig = go.Figure()
    for row, j in enumerate(order):
        col = X[:, j]
        measured = ~np.isnan(col)
        lo, hi = np.nanpercentile(col, [5, 95]) if measured.any() else (0.0, 1.0)
        scaled = np.clip((col - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
        jitter = rng.uniform(-0.3, 0.3, len(col))
        fig.add_trace(
            go.Scattergl(
                x=shap_values[measured, j],
                y=row + jitter[measured],
                mode="markers",
                marker={
                    "size": 4,
                    "color": scaled[measured],
                    "colorscale": "RdBu_r",
                    "cmin": 0,
                    "cmax": 1,
                    "colorbar": {"title": _("feature value"), "tickvals": [0, 1], "ticktext": [_("low"), _("high")]}
                    if row == 0
                    else None,
                    "showscale": row == 0,
                },
                name=names[j],
                showlegend=False,
                hovertext=[f"{names[j]} = {v:g}" for v in col[measured]],
                hoverinfo="text+x",
            )
        )
        if (~measured).any():
            fig.add_trace(
                go.Scattergl(
                    x=shap_values[~measured, j],
                    y=row + jitter[~measured],
                    mode="markers",
                    marker={"size": 4, "color": "#aaaaaa"},
                    name=not_measured,
                    showlegend=False,
                    hovertext=[_("{name} not measured").format(name=names[j])] * int((~measured).sum()),
                    hoverinfo="text+x",
                )
            )
    fig.update_layout(
        title=_("SHAP beeswarm (training patients; grey = not measured)"),
        xaxis_title=_("contribution (log-odds)"),
        yaxis={"tickvals": list(range(len(order))), "ticktext": [names[j] for j in order]},
        height=80 + 45 * len(order),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    return styled(fig)


def dependence_plot(
    feature: str,
    X: np.ndarray,
    shap_values: np.ndarray,
    names: Sequence[str],
    imputed: float | None = None,
    spec: FeatureSpec | None = None,
) -> go.Figure:
    """The feature's value vs its SHAP contribution per patient; not-measured patients drawn at the imputed value."""
    j = list(names).index(feature)
    unit = f" ({spec.unit})" if spec and spec.unit else ""
    col = np.asarray(X, dtype=float)[:, j]
    values = np.asarray(shap_values, dtype=float)[:, j]
    measured = ~np.isnan(col)
    fig = go.Figure(
        go.Scatter(
            x=col[measured],
            y=values[measured],
            mode="markers",
            name=_("measured"),
            marker={"size": 5, "color": DOWN, "opacity": 0.6},
        )
    )
    if (~measured).any():
        x_missing = np.full(int((~measured).sum()), imputed if imputed is not None else np.nanmin(col))
        fig.add_trace(
            go.Scatter(
                x=x_missing,
                y=values[~measured],
                mode="markers",
                name=_("not measured (imputed)"),
                marker={"size": 8, "color": UP, "symbol": "x"},
            )
        )
    fig.add_hline(y=0, line_color="#999999", line_dash="dot")
    fig.update_layout(
        title=_("Dependence: how {feature} moves the risk").format(feature=feature),
        xaxis_title=f"{feature}{unit}",
        yaxis_title=_("contribution (log-odds)"),
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    if spec is not None and spec.categorical:  # categories are drawn at their index: label them
        fig.update_xaxes(tickvals=list(range(len(spec.levels))), ticktext=list(spec.levels))
    return styled(fig)
