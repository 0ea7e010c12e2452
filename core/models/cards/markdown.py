"""A card as Markdown: every section, with tables for metrics, thresholds and subgroups."""

from __future__ import annotations

import json
from typing import Any

from core.models import metrics


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _reading(value: Any) -> str:
    """A value as a reader sees it: probabilities and thresholds to two decimals (the JSON keeps all)."""
    if isinstance(value, float):
        return f"{value:.2f}"
    return "n/a" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _metric_cell(entry: dict[str, Any]) -> str:
    low, high = entry.get("ci95") or [None, None]
    if entry.get("value") is None:
        return "n/a"
    if low is None:
        return _fmt(entry["value"])
    return f"{entry['value']:.3f} ({low:.3f}-{high:.3f})"


def _bullets(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items]


def _details(card: dict[str, Any]) -> list[str]:
    d = card["model_details"]
    lines = [f"# Model card: {d['name']}:{d['version']}", ""]
    lines += [f"_Computed by `{card['generated']['by']}` at {card['generated']['at']} from "
              f"{', '.join(card['generated']['from'])} (card schema {card['schema_version']})._", ""]
    lines += ["## Model details", ""]
    for key in ("kind", "date", "architecture", "framework", "classes", "positive_class", "threshold",
                "threshold_rule", "training_device", "training_seconds"):
        lines.append(f"- **{key.replace('_', ' ').capitalize()}**: {_reading(d.get(key))}")
    lines.append(f"- **Input**: {json.dumps(d.get('input'))}")
    lines.append(f"- **Training command**: `{d.get('training_command')}`")
    return lines


def _use_and_factors(card: dict[str, Any]) -> list[str]:
    use = card["intended_use"]
    lines = ["", "## Intended use", "", "**Primary uses**", ""] + _bullets(use["primary_uses"])
    lines += ["", "**Primary users**", ""] + _bullets(use["primary_users"])
    lines += ["", "**Out of scope**", ""] + _bullets(use["out_of_scope"])
    lines += ["", "## Factors", ""] + _bullets(card["factors"]["relevant"])
    lines += ["", "Evaluated subgroups: " + ", ".join(f"{e['label']} (n={e['n']})" for e in card["factors"]["evaluated"])]
    m = card["metrics"]
    lines += ["", "## Metrics", "", f"- **Decision**: {m['decision']}", f"- **Uncertainty**: {m['uncertainty']}",
              f"- **Curves**: {', '.join(m['curves'])}", ""]
    return lines + [f"- **{r['label']}**: {r['meaning']}" for r in m["reported"]]


def _data(card: dict[str, Any]) -> list[str]:
    e = card["evaluation_data"]
    lines = ["", "## Evaluation data", "", e["description"], "", f"- n = {e['n']}",
             "- Class counts: " + ", ".join(f"{c}: {n}" for c, n in e["class_counts"].items())]
    t = card["training_data"]
    lines += ["", "## Training data", ""]
    lines += [f"- **{key.capitalize()}**: {t[key]}" for key in ("dataset", "source", "paper", "license", "population", "split")
              if t.get(key)]
    if t.get("class_counts"):
        lines.append("- **Counts**: " + ", ".join(f"{k}: {v}" for k, v in t["class_counts"].items()))
    return lines


def _overall_and_confusion(qa: dict[str, Any]) -> list[str]:
    lines = ["", "## Quantitative analyses", "", f"Overall (n = {qa['n']}), value (95% CI):", "",
             "| Metric | Value (95% CI) |", "|---|---|"]
    lines += [f"| {metrics.METRIC_LABELS[k]} | {_metric_cell(v)} |" for k, v in qa["overall"].items()]
    cm = qa["confusion_matrix"]
    lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
              "| true \\ predicted | " + " | ".join(cm["classes"]) + " |", "|---" * (len(cm["classes"]) + 1) + "|"]
    return lines + [f"| {c} | " + " | ".join(str(n) for n in row) + " |" for c, row in zip(cm["classes"], cm["counts"])]


def _thresholds_and_subgroups(qa: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if qa.get("threshold_table"):
        lines += ["", "Threshold table:", "", "| Threshold | Sensitivity | Specificity | PPV | NPV | Flagged | Note |",
                  "|---|---|---|---|---|---|---|"]
        for row in qa["threshold_table"]:
            mark = "**" if row["chosen"] else ""
            lines.append(f"| {mark}{row['threshold']:.3f}{mark} | {_fmt(row['sensitivity'])} | {_fmt(row['specificity'])} | "
                         f"{_fmt(row['ppv'])} | {_fmt(row['npv'])} | {row['flagged']} | {row['note']} |")
    if qa.get("subgroups"):
        lines += ["", "Subgroups (95% CI):", "",
                  "| Subgroup | n | pos/neg | AUC | Sensitivity | Specificity | AUC vs all negatives |",
                  "|---|---|---|---|---|---|---|"]
        for s in qa["subgroups"]:
            vs = _metric_cell(s["auc_vs_all_negatives"]) if "auc_vs_all_negatives" in s else ""
            lines.append(f"| {s['label']} | {s['n']} | {s['positives']}/{s['negatives']} | {_metric_cell(s['metrics']['auc'])} | "
                         f"{_metric_cell(s['metrics']['sensitivity'])} | {_metric_cell(s['metrics']['specificity'])} | {vs} |")
    return lines


def _calibration_robustness_ood(qa: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    cal = qa.get("calibration", {})
    if cal:
        lines += ["", f"Calibration: expected calibration error {_fmt(cal.get('expected_calibration_error'))} over "
                  f"{len(cal.get('bins', []))} non-empty bins."]
    if qa.get("robustness_auc"):
        lines += ["", "Robustness (AUC after simulated acquisition changes): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in qa["robustness_auc"]["values"].items())]
    o = qa.get("out_of_distribution", {})
    lines += ["", "Out-of-distribution check:"]
    if o.get("measured"):
        lines += [f"- Method: {o['method']}",
                  f"- Flags {_pct(o.get('validation_flag_rate'))} of {o.get('validation_n')} validation chest X-rays",
                  f"- Flags {_pct(o.get('non_chest_flag_rate'))} of {o.get('non_chest_n')} non-chest images ({o.get('non_chest_sources')})",
                  f"- Detector cost: {o.get('detector_ms_per_image')} ms per image"]
    else:
        lines.append(f"- {o.get('note', 'not measured')}")
    return lines


def _evidence(card: dict[str, Any]) -> list[str]:
    """Internal and every external validation side by side, and which one to read."""
    evidence = card.get("evidence")
    if not evidence:
        return []
    columns = [evidence["internal"], *evidence["external"]]
    lines = ["", "## Evidence: which figures to read", "", f"**{evidence['read']}**", "",
             "| | " + " | ".join(c["label"] for c in columns) + " |", "|---" * (len(columns) + 1) + "|",
             "| Cases (n) | " + " | ".join(str(c["n"]) for c in columns) + " |",
             "| Prevalence | " + " | ".join(_pct(c.get("prevalence")) for c in columns) + " |"]
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv"):
        lines.append(f"| {metrics.METRIC_LABELS[key]} | " + " | ".join(_metric_cell(c.get(key) or {}) for c in columns) + " |")
    in_force = card["model_details"].get("threshold_in_force") or {}
    if in_force.get("threshold") is not None:
        lines += ["", f"Threshold in force: {in_force['threshold']:.2f} ({in_force['source']})."]
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown: every section, tables for metrics, thresholds and subgroups."""
    qa = card["quantitative_analyses"]
    lines = _details(card) + _evidence(card) + _use_and_factors(card) + _data(card)
    lines += _overall_and_confusion(qa) + _thresholds_and_subgroups(qa) + _calibration_robustness_ood(qa)
    lines += ["", "## Ethical considerations", ""] + _bullets(card["ethical_considerations"])
    lines += ["", "## Caveats and recommendations", ""] + _bullets(card["caveats_and_recommendations"])
    return "\n".join(lines) + "\n"
