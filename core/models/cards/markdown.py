"""A card as Markdown: every section, with tables for metrics, thresholds and subgroups."""

from __future__ import annotations

import json
from typing import Any

from core.i18n import _, format_percent, format_threshold
from core.models import kinds, metrics
from core.models.cards.localize import acquisition_change, localized
from core.models.recipe_text import explanation


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


def _bold(text: str) -> str:
    return "**" + text + "**"


def _field(label: str, value: str) -> str:
    return "- " + _bold(label) + ": " + value


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _bullets(items: list[str]) -> list[str]:
    return [f"- {item}" for item in items]


def _details(card: dict[str, Any]) -> list[str]:
    d = card["model_details"]
    lines = [_("# Model card: {model}").format(model=f"{d['name']}:{d['version']}"), ""]
    lines += [_("_Computed by `{by}` at {at} from {sources} (card schema {schema})._").format(
        by=card["generated"]["by"], at=card["generated"]["at"], sources=", ".join(card["generated"]["from"]),
        schema=card["schema_version"]), ""]
    lines += [_("## Model details"), ""]
    for key, label in _detail_labels().items():
        if key == "kind":
            lines.append(_field(label, kinds.kind_name(d.get(key))))
            continue
        lines.append(_field(label, format_threshold(d[key]) if key == "threshold" and d.get(key) is not None else _reading(d.get(key))))
    lines.append(_field(_("Input"), json.dumps(d.get("input"))))
    lines.append(_field(_("Training command"), f"`{d.get('training_command')}`"))
    return lines


def _detail_labels() -> dict[str, str]:
    return {"kind": _("Kind"), "date": _("Date"), "architecture": _("Architecture"), "framework": _("Framework"),
            "classes": _("Classes"), "positive_class": _("Positive class"), "threshold": _("Threshold"),
            "threshold_rule": _("Threshold rule"), "training_device": _("Training device"),
            "training_seconds": _("Training seconds")}


def _use_and_factors(card: dict[str, Any]) -> list[str]:
    use = card["intended_use"]
    lines = ["", _("## Intended use"), "", _bold(_("Primary uses")), ""] + _bullets(use["primary_uses"])
    lines += ["", _bold(_("Primary users")), ""] + _bullets(use["primary_users"])
    lines += ["", _bold(_("Out of scope")), ""] + _bullets(use["out_of_scope"])
    lines += ["", _("## Factors"), ""] + _bullets(card["factors"]["relevant"])
    lines += ["", _("Evaluated subgroups: {groups}").format(
        groups=", ".join(f"{e['label']} (n={e['n']})" for e in card["factors"]["evaluated"]))]
    m = card["metrics"]
    lines += ["", _("## Metrics"), "", _field(_("Decision"), m["decision"]), _field(_("Uncertainty"), m["uncertainty"]),
              _field(_("Curves"), ", ".join(_(c) for c in m["curves"])), ""]
    return lines + [f"- **{r['label']}**: {r['meaning']}" for r in m["reported"]]


def _data(card: dict[str, Any]) -> list[str]:
    e = card["evaluation_data"]
    lines = ["", _("## Evaluation data"), "", e["description"], "", f"- n = {e['n']}",
             "- " + _("Class counts: {counts}").format(counts=", ".join(f"{c}: {n}" for c, n in e["class_counts"].items()))]
    t = card["training_data"]
    lines += ["", _("## Training data"), ""]
    labels = {"dataset": _("Dataset"), "source": _("Source"), "paper": _("Paper"), "license": _("License"),
              "population": _("Population"), "split": _("Split")}
    lines += [f"- **{label}**: {t[key]}" for key, label in labels.items() if t.get(key)]
    if t.get("class_counts"):
        lines.append(_field(_("Counts"), ", ".join(f"{k}: {v}" for k, v in t["class_counts"].items())))
    if t.get("recipe"):
        lines.append(_field(_("Recipe"), explanation(t["recipe"])))
    if t.get("pretraining"):
        pre = t["pretraining"]
        said = _("{epochs} epochs of contrastive learning (SimCLR) on the {images} training films, labels unused, "
                 "before the labeled training").format(epochs=pre["epochs"], images=pre["images"])
        if pre.get("loss"):
            said += " " + _("(contrastive loss {first:.2f} → {last:.2f})").format(first=pre["loss"][0], last=pre["loss"][1])
        lines.append(_field(_("Self-supervised pretraining"), said))
    return lines


def _overall_and_confusion(qa: dict[str, Any]) -> list[str]:
    lines = ["", _("## Quantitative analyses"), "", _("Overall (n = {n}), value (95% CI):").format(n=qa["n"]), "",
             _row([_("Metric"), _("Value (95% CI)")]), "|---|---|"]
    lines += [_row([_(metrics.METRIC_LABELS[k]), _metric_cell(v)]) for k, v in qa["overall"].items()]
    cm = qa["confusion_matrix"]
    lines += ["", _("Confusion matrix (rows: true, columns: predicted):"), "",
              _row([_("true") + " \\ " + _("predicted"), *cm["classes"]]),
              "|---" * (len(cm["classes"]) + 1) + "|"]
    return lines + [f"| {c} | " + " | ".join(str(n) for n in row) + " |" for c, row in zip(cm["classes"], cm["counts"])]


def _thresholds_and_subgroups(qa: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if qa.get("threshold_table"):
        head = [_("Threshold"), _("Sensitivity"), _("Specificity"), _("PPV"), _("NPV"), _("Flagged"), _("Note")]
        lines += ["", _("Threshold table:"), "", "| " + " | ".join(head) + " |", "|---|---|---|---|---|---|---|"]
        for row in qa["threshold_table"]:
            mark = "**" if row["chosen"] else ""
            lines.append(f"| {mark}{format_threshold(row['threshold'])}{mark} | {_fmt(row['sensitivity'])} | {_fmt(row['specificity'])} | "
                         f"{_fmt(row['ppv'])} | {_fmt(row['npv'])} | {row['flagged']} | {row['note']} |")
    if qa.get("subgroups"):
        head = [_("Subgroup"), "n", _("pos/neg"), "AUC", _("Sensitivity"), _("Specificity"), _("AUC vs all negatives")]
        lines += ["", _("Subgroups (95% CI):"), "", "| " + " | ".join(head) + " |", "|---|---|---|---|---|---|---|"]
        for s in qa["subgroups"]:
            vs = _metric_cell(s["auc_vs_all_negatives"]) if "auc_vs_all_negatives" in s else ""
            lines.append(f"| {s['label']} | {s['n']} | {s['positives']}/{s['negatives']} | {_metric_cell(s['metrics']['auc'])} | "
                         f"{_metric_cell(s['metrics']['sensitivity'])} | {_metric_cell(s['metrics']['specificity'])} | {vs} |")
    return lines


def _calibration_robustness_ood(qa: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    cal = qa.get("calibration", {})
    if cal:
        lines += ["", _("Calibration: expected calibration error {ece} over {bins} non-empty bins.").format(
            ece=_fmt(cal.get("expected_calibration_error")), bins=len(cal.get("bins", [])))]
    if qa.get("robustness_auc"):
        lines += ["", _("Robustness (AUC after simulated acquisition changes): {values}").format(
            values=", ".join(f"{acquisition_change(k)} {v:.3f}" for k, v in qa["robustness_auc"]["values"].items()))]
    o = qa.get("out_of_distribution", {})
    lines += ["", _("Out-of-distribution check:")]
    if o.get("measured"):
        lines += ["- " + _("Method: {method}").format(method=o["method"]),
                  "- " + _("Flags {rate} of {n} validation chest X-rays").format(
                      rate=_pct(o.get("validation_flag_rate")), n=o.get("validation_n")),
                  "- " + _("Flags {rate} of {n} non-chest images ({sources})").format(
                      rate=_pct(o.get("non_chest_flag_rate")), n=o.get("non_chest_n"), sources=o.get("non_chest_sources")),
                  "- " + _("Detector cost: {ms} ms per image").format(ms=o.get("detector_ms_per_image"))]
    else:
        lines.append(f"- {o.get('note') or _('not measured')}")
    return lines


def _evidence(card: dict[str, Any]) -> list[str]:
    """Internal and every external validation side by side, and which one to read."""
    evidence = card.get("evidence")
    if not evidence:
        return []
    columns = [*reversed(evidence["external"]), evidence["internal"]]  # the site's figures lead, newest first
    lines = ["", _("## Evidence: which figures to read"), "", f"**{evidence['read']}**", ""]
    if (evidence.get("headline") or {}).get("scope") == "site":  # the site's figures lead; else the table says it all
        from core.models.cards.store import headline_lines  # store imports this module's callers

        said, caution = headline_lines(evidence["headline"])
        lines += [_field(_("Figures that apply here"), said)] + ([f"  {caution}"] if caution else []) + [""]
    lines += ["| | " + " | ".join(c["label"] for c in columns) + " |", "|---" * (len(columns) + 1) + "|",
             _row([_("Cases (n)"), *(str(c["n"]) for c in columns)]),
             _row([_("Prevalence"), *(_pct(c.get("prevalence")) for c in columns)])]
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv"):
        lines.append(_row([_(metrics.METRIC_LABELS[key]), *(_metric_cell(c.get(key) or {}) for c in columns)]))
    in_force = card["model_details"].get("threshold_in_force") or {}
    if in_force.get("threshold") is not None:
        lines += ["", _("Threshold in force: {threshold} ({source}).").format(
            threshold=format_threshold(in_force["threshold"]), source=in_force["source"])]
    return lines


def _with_ci(value: float | None, interval: list | None) -> str:
    low, high = interval or [None, None]
    return f"{_fmt(value)} ({_fmt(low)}-{_fmt(high)})" if low is not None else _fmt(value)


def _explanations(card: dict[str, Any]) -> list[str]:
    """How far each saliency method can be trusted for this model: measured faithfulness and sanity check."""
    e = card.get("explanations")
    if not e:
        return []
    if kinds.normalise(e.get("kind")) == kinds.TABULAR_RISK:
        return _risk_explanations(e)
    lines = ["", _("## Explanations"), "", f"**{e['advice']}**", "",
             _("Measured on {n} held-out films ({counts}) the model did not train on, of {total} held-out in all; "
               "pixels removed to a blurred copy of the film in {steps} steps; means with 95% bootstrap intervals over films. "
               "Deletion AUC: lower is more faithful; insertion AUC: higher; randomisation: rank correlation with the map "
               "of the model with its top layers re-initialised, lower means the map depends on what the model learned.").format(
                 n=e["n"], counts=", ".join(f"{c}: {k}" for c, k in (e.get("classes") or {}).items()),
                 total=e.get("held_out_total", "?"), steps=e.get("steps")), "",
             _row([_("Method"), _("Deletion AUC (random)"), _("Insertion AUC (random)"), _("Randomisation r"),
                   _("Stability r"), _("Seconds per film")]), "|---" * 6 + "|"]
    labels = e.get("labels") or {}
    for method, s in (e.get("methods") or {}).items():
        ci = s.get("intervals") or {}
        name = labels.get(method, method)
        if s.get("n") not in (None, e["n"]):
            name += " " + _("(n = {n})").format(n=s["n"])
        lines.append(_row([name,
                           f"{_with_ci(s['deletion_auc'], ci.get('deletion_auc'))} ({_fmt(s['random_deletion_auc'])})",
                           f"{_with_ci(s['insertion_auc'], ci.get('insertion_auc'))} ({_fmt(s['random_insertion_auc'])})",
                           _with_ci(s["randomization_rank_corr"], ci.get("randomization_rank_corr")),
                           _with_ci(s["stability_rank_corr"], ci.get("stability_rank_corr")), _fmt(s["seconds_per_film"], 2)]))
    if e.get("command"):
        lines += ["", _("Computed with: {command}").format(command=f"`{e['command']}`")]
    return lines


SHOWN_FEATURES = 10  # the stability table lists the features the reference fit ranks first


def _median_cell(summary: dict[str, Any], digits: int = 2) -> str:
    """``median (low-high) [mean]`` of one agreement metric over patients."""
    low, high = summary.get("median_ci95") or [None, None]
    return f"{_fmt(summary.get('median'), digits)} ({_fmt(low, digits)}-{_fmt(high, digits)}) [{_fmt(summary.get('mean'), digits)}]"


def _risk_explanations(e: dict[str, Any]) -> list[str]:
    """A risk model's explanations: agreement with exact SHAP per held-out patient, and stability of importance."""
    settings, labels = e.get("settings") or {}, e.get("labels") or {}
    lines = ["", _("## Explanations"), "", f"**{e['advice']}**", "",
             _("Measured on {n} patients ({positives} with the outcome) that the explaining model did not train on: "
               "each is explained by the model of the {folds}-fold cross-validation fold that held it out. KernelSHAP: "
               "{background} background rows, {samples} samples per patient, on the log-odds; LIME: {lime_samples} "
               "samples, on the probability (only ranks and signs are compared). Random baseline: each patient's exact "
               "values shuffled across features. Per patient, against exact SHAP: rank correlation of |contribution| "
               "over the features, share of the exact top {k} also in the method's top {k}, share of the exact top {k} "
               "with the same sign. Median (95% bootstrap interval) [mean] over patients.").format(
                 n=e.get("n"), positives=e.get("positives"), folds=e.get("folds"), background=settings.get("background"),
                 samples=settings.get("kernel_samples"), lime_samples=settings.get("lime_samples"),
                 k=settings.get("top_k", 3)), "",
             _row([_("Method vs exact SHAP"), _("Rank correlation"), _("Top-3 overlap"), _("Sign agreement (top 3)"),
                   _("Seconds per patient")]), "|---" * 5 + "|"]
    for method, s in (e.get("methods") or {}).items():
        lines.append(_row([_(labels.get(method, method)), _median_cell(s["rank_corr"]), _median_cell(s["top_overlap"]),
                           _median_cell(s["top_sign_agreement"]), _fmt(s.get("seconds_per_patient"), 3)]))
    lines += ["", _("Exact SHAP took {seconds} s per patient.").format(seconds=_fmt(e.get("exact_seconds_per_patient"), 3))]
    st = e.get("stability")
    if st:
        lines += ["", _("### Stability of global importance"), "",
                  _("{refits} bootstrap refits of the same recipe on {train} training rows; importance = mean |exact SHAP| "
                    "(log-odds) on {held} held-out rows; the reference is the recipe fitted on all {train} rows. "
                    "Median (95% interval) over refits.").format(refits=st["refits"], train=st["train_rows"],
                                                                 held=st["held_out_rows"]), "",
                  _row([_("Feature"), _("Importance (reference fit)"), _("Rank (reference fit)"), _("In the top 3")]),
                  "|---" * 4 + "|"]
        shown = [f for f in st["features"] if f["reference_rank"] <= SHOWN_FEATURES]
        for f in shown:
            low, high = f["importance_ci95"]
            rank_low, rank_high = f["rank_ci95"]
            lines.append(_row([f["name"], f"{_fmt(f['importance'])} ({_fmt(low)}-{_fmt(high)}) ({_fmt(f['reference_importance'])})",
                               f"{_fmt(f['rank'], 0)} ({_fmt(rank_low, 0)}-{_fmt(rank_high, 0)}) ({f['reference_rank']})",
                               format_percent(f["top_share"], 0)]))
        rest = [f for f in st["features"] if f["reference_rank"] > SHOWN_FEATURES]
        if rest:
            lines += ["", _("{count} more features, each with a reference importance of at most {most}.").format(
                count=len(rest), most=_fmt(max(f["reference_importance"] for f in rest)))]
        corr, chance = st["rank_corr"], st["random_rank_corr"]
        lines += ["", _("Rank correlation of each refit's importances with the reference: median {r} ({low}-{high}); "
                        "a random ranking: {random}. Top three unchanged in {top} of refits (chance: {chance}).").format(
            r=_fmt(corr["median"], 2), low=_fmt(corr["ci95"][0], 2), high=_fmt(corr["ci95"][1], 2),
            random=_fmt(chance["median"], 2), top=format_percent(st["top_unchanged"], 0),
            chance=format_percent(st["top_chance"], 2))]
    if e.get("command"):
        lines += ["", _("Computed with: {command}").format(command=f"`{e['command']}`")]
    return lines


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown in the current language: every section, tables for metrics, thresholds and subgroups."""
    card = localized(card)
    qa = card["quantitative_analyses"]
    lines = _details(card) + _evidence(card) + _use_and_factors(card) + _data(card)
    lines += _overall_and_confusion(qa) + _thresholds_and_subgroups(qa) + _calibration_robustness_ood(qa)
    lines += _explanations(card)
    lines += ["", _("## Ethical considerations"), ""] + _bullets(card["ethical_considerations"])
    lines += ["", _("## Caveats and recommendations"), ""] + _bullets(card["caveats_and_recommendations"])
    return "\n".join(lines) + "\n"
