"""Plotly figures of a model card: they draw what the card computed, and compute nothing new.

Each function takes a card (``core.models.cards.build_card``'s dict) or a comparison
(``core.models.cards.compare_versions``) and returns a ``go.Figure``; a chart the card cannot support
(e.g. a decision curve for a multi-class model) returns None.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from core.charts.theme import styled
from core.i18n import _
from core.models import metrics

_LAYOUT = dict(
    margin=dict(l=50, r=20, t=50, b=45), height=360, template="plotly_white", legend=dict(orientation="h", y=-0.2)
)


def _qa(card: dict[str, Any]) -> dict[str, Any]:
    return card["quantitative_analyses"]


def _title(card: dict[str, Any], what: str) -> dict[str, Any]:
    """Chart title with the model version as a smaller subtitle line (long titles get cut in columns)."""
    d = card["model_details"]
    return {"text": f"{what}<br><sup>{d['name']}:{d['version']}</sup>"}


def _curves(card: dict[str, Any], binary_key: str, by_class_key: str) -> dict[str, dict[str, Any]]:
    qa = _qa(card)
    if binary_key in qa:
        return {card["model_details"].get("positive_class") or _("positive"): qa[binary_key]}
    return qa.get(by_class_key, {})


def roc_figure(card: dict[str, Any]) -> go.Figure:
    """ROC curve(s) with the chance diagonal and the operating point marked."""
    fig = go.Figure()
    auc = _qa(card)["overall"]["auc"]
    roc_hover = _("FPR {fpr}<br>TPR {tpr}<br>threshold {threshold}").format(
        fpr="%{x:.3f}", tpr="%{y:.3f}", threshold="%{customdata:.4g}"
    )
    for label, curve in _curves(card, "roc_curve", "roc_curve_by_class").items():
        fig.add_trace(
            go.Scatter(
                x=curve["fpr"],
                y=curve["tpr"],
                mode="lines",
                name=f"{label}",
                customdata=curve["threshold"],
                hovertemplate=roc_hover,
            )
        )
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("chance"), line=dict(dash="dot", color="grey")))
    overall = _qa(card)["overall"]
    if card["model_details"].get("threshold") is not None and "roc_curve" in _qa(card):
        fig.add_trace(
            go.Scatter(
                x=[1 - overall["specificity"]["value"]],
                y=[overall["sensitivity"]["value"]],
                mode="markers",
                marker=dict(size=12, symbol="x", color="crimson"),
                name=_("operating threshold"),
            )
        )
    ci = auc["ci95"]
    if ci[0] is not None:
        subtitle = _("AUC {auc} (95% CI {low}-{high})").format(
            auc=f"{auc['value']:.3f}", low=f"{ci[0]:.3f}", high=f"{ci[1]:.3f}"
        )
    else:
        subtitle = _("AUC {auc}").format(auc=f"{auc['value']:.3f}")
    fig.update_layout(
        title=_title(card, _("ROC curve · {subtitle}").format(subtitle=subtitle)),
        xaxis_title=_("1 - specificity (false positive rate)"),
        yaxis_title=_("Sensitivity (true positive rate)"),
        **_LAYOUT,
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return styled(fig)


def pr_figure(card: dict[str, Any]) -> go.Figure:
    """Precision-recall curve(s) with the prevalence baseline."""
    fig = go.Figure()
    for label, curve in _curves(card, "pr_curve", "pr_curve_by_class").items():
        fig.add_trace(
            go.Scatter(
                x=curve["recall"],
                y=curve["precision"],
                mode="lines",
                name=_("{label} (AP {ap})").format(label=label, ap=f"{curve['average_precision']:.3f}"),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[curve["prevalence"]] * 2,
                mode="lines",
                line=dict(dash="dot", color="grey"),
                name=_("prevalence {prevalence}").format(prevalence=f"{curve['prevalence']:.2f}"),
            )
        )
    fig.update_layout(
        title=_title(card, _("Precision-recall curve")),
        xaxis_title=_("Recall (sensitivity)"),
        yaxis_title=_("Precision (PPV)"),
        **_LAYOUT,
    )
    fig.update_yaxes(range=[0, 1.02])
    return styled(fig)


def calibration_figure(card: dict[str, Any]) -> go.Figure:
    """Reliability diagram: observed rate vs mean predicted probability per bin (marker size = count)."""
    cal = _qa(card)["calibration"]
    bins = cal["bins"]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name=_("perfect calibration"), line=dict(dash="dot", color="grey"))
    )
    fig.add_trace(
        go.Scatter(
            x=[b["mean_predicted"] for b in bins],
            y=[b["observed"] for b in bins],
            mode="lines+markers",
            name=_("model"),
            marker=dict(size=[6 + 20 * (b["count"] / max(x["count"] for x in bins)) ** 0.5 for b in bins]),
            customdata=[b["count"] for b in bins],
            hovertemplate=_("predicted {predicted}<br>observed {observed}<br>n={n}").format(
                predicted="%{x:.2f}", observed="%{y:.2f}", n="%{customdata}"
            ),
        )
    )
    x_title = _("Top-class confidence") if "of" in cal else _("Mean predicted probability")
    title = _("Reliability diagram · ECE {ece}").format(ece=f"{cal['expected_calibration_error']:.3f}")
    fig.update_layout(title=_title(card, title), xaxis_title=x_title, yaxis_title=_("Observed frequency"), **_LAYOUT)
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    return styled(fig)


def decision_curve_figure(card: dict[str, Any]) -> go.Figure | None:
    """Net benefit of the model vs treating everyone / no one, over threshold probabilities."""
    curve = _qa(card).get("decision_curve")
    if not curve:
        return None
    x = curve["threshold_probability"]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=curve["model"], mode="lines", name=_("model")))
    fig.add_trace(go.Scatter(x=x, y=curve["treat_all"], mode="lines", name=_("treat all"), line=dict(dash="dash")))
    fig.add_trace(
        go.Scatter(x=x, y=curve["treat_none"], mode="lines", name=_("treat none"), line=dict(dash="dot", color="grey"))
    )
    top = max(max(curve["model"]), max(curve["treat_all"]), 0.01)
    fig.update_layout(
        title=_title(card, _("Decision curve")),
        xaxis_title=_("Threshold probability"),
        yaxis_title=_("Net benefit"),
        **_LAYOUT,
    )
    fig.update_yaxes(range=[-0.05 * top - 0.02, top * 1.1])
    return styled(fig)


def confusion_matrix_figure(card: dict[str, Any]) -> go.Figure:
    """Heatmap of counts (rows: true class, columns: predicted class)."""
    cm = _qa(card)["confusion_matrix"]
    fig = go.Figure(
        go.Heatmap(
            z=cm["counts"],
            x=cm["classes"],
            y=cm["classes"],
            colorscale="Blues",
            showscale=False,
            text=cm["counts"],
            texttemplate="%{text}",
            hovertemplate=_("true {true}<br>predicted {predicted}<br>n={n}").format(
                true="%{y}", predicted="%{x}", n="%{z}"
            ),
        )
    )
    fig.update_layout(
        title=_title(card, _("Confusion matrix")), xaxis_title=_("Predicted"), yaxis_title=_("True"), **_LAYOUT
    )
    fig.update_yaxes(autorange="reversed")
    return styled(fig)


def _interval_trace(
    names: list[str], entries: list[dict[str, Any]], label: str, key_value: str = "value"
) -> go.Scatter:
    values = [e[key_value] for e in entries]
    lows = [(v - e["ci95"][0]) if v is not None and e["ci95"][0] is not None else 0 for v, e in zip(values, entries)]
    highs = [(e["ci95"][1] - v) if v is not None and e["ci95"][1] is not None else 0 for v, e in zip(values, entries)]
    return go.Scatter(
        x=values,
        y=names,
        mode="markers",
        name=label,
        marker=dict(size=10),
        error_x=dict(type="data", symmetric=False, array=highs, arrayminus=lows),
    )


def metrics_figure(card: dict[str, Any]) -> go.Figure:
    """Forest plot: every overall metric with its 95% bootstrap interval."""
    overall = _qa(card)["overall"]
    names = [_(metrics.METRIC_LABELS[k]) for k in overall]
    fig = go.Figure(_interval_trace(names, list(overall.values()), _("value (95% CI)")))
    fig.update_layout(title=_title(card, _("Metrics with 95% CIs")), xaxis_title=_("Value"), **_LAYOUT)
    fig.update_yaxes(autorange="reversed")
    return styled(fig)


def subgroup_figure(card: dict[str, Any]) -> go.Figure | None:
    """Forest plot per subgroup: sensitivity, specificity and AUC (vs all negatives where needed)."""
    groups = _qa(card).get("subgroups")
    if not groups:
        return None
    fig = go.Figure()
    for metric in ("sensitivity", "specificity", "auc"):
        names, entries = [], []
        for g in groups:
            entry = g["metrics"][metric]
            if metric == "auc" and entry["value"] is None and "auc_vs_all_negatives" in g:
                entry = g["auc_vs_all_negatives"]
            if entry["value"] is not None:
                names.append(f"{g['label']} (n={g['n']})")
                entries.append(entry)
        if entries:
            fig.add_trace(_interval_trace(names, entries, _(metrics.METRIC_LABELS[metric])))
    fig.update_layout(
        title=_title(card, _("Subgroups (95% CIs)")), xaxis_title=_("Value"), scattermode="group", **_LAYOUT
    )
    return styled(fig)


def comparison_figure(comparison: dict[str, Any]) -> go.Figure:
    """Metric deltas (b - a) with 95% intervals; zero line marks 'no change'."""
    deltas = comparison["deltas"]
    keys = [k for k, v in deltas.items() if v["delta"] is not None]
    entries = [{"value": deltas[k]["delta"], "ci95": deltas[k]["ci95"]} for k in keys]
    fig = go.Figure(
        _interval_trace([_(metrics.METRIC_LABELS[k]) for k in keys], entries, f"{comparison['b']} - {comparison['a']}")
    )
    fig.add_vline(x=0, line_dash="dot", line_color="grey")
    fig.update_layout(
        title=_("Change from {a} to {b} (95% CI)").format(a=comparison["a"], b=comparison["b"]),
        xaxis_title=_("Difference"),
        **_LAYOUT,
    )
    fig.update_yaxes(autorange="reversed")
    return styled(fig)


def all_figures(card: dict[str, Any]) -> dict[str, go.Figure]:
    """Every chart the card supports, by title (in display order)."""
    candidates = {
        "Metrics": metrics_figure(card),
        "ROC": roc_figure(card),
        "Precision-recall": pr_figure(card),
        "Calibration": calibration_figure(card),
        "Decision curve": decision_curve_figure(card),
        "Confusion matrix": confusion_matrix_figure(card),
        "Subgroups": subgroup_figure(card),
    }
    return {k: v for k, v in candidates.items() if v is not None}
