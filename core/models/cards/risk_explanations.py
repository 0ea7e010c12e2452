"""What a reader may trust in a risk model's explanations, in words, from the figures its explanations.json holds.

The figures are measured by ``core.tabular.agreement`` (via ``scripts/explain_card.py``) on patients the
explaining model did not train on; here they are only read and judged against fixed, stated limits.
"""

from __future__ import annotations

from typing import Any

from core.i18n import N_, _, format_percent

EXPLAINER_NAMES = {
    "shap.LinearExplainer (interventional, full training background)": N_(
        "SHAP linear explainer (interventional, the whole training set as background)"
    ),
    "shap.TreeExplainer (tree_path_dependent)": N_("SHAP tree explainer (tree-path dependent)"),
}


def explainer_name(explainer: str) -> str:
    """The stored explainer's description in the reader's language (an unknown one as written)."""
    return _(EXPLAINER_NAMES[explainer]) if explainer in EXPLAINER_NAMES else explainer

TRUST_MIN_AGREEMENT = 0.8  # median rank correlation with the exact values for an explainer to "agree"
TRUST_MIN_TOP_UNCHANGED = 0.8  # share of refits keeping the same top features for them to be "stable"


def _low(summary: dict[str, Any], metric: str) -> float | None:
    return ((summary.get(metric) or {}).get("median_ci95") or [None, None])[0]


def _high(summary: dict[str, Any], metric: str) -> float | None:
    return ((summary.get(metric) or {}).get("median_ci95") or [None, None])[1]


def verdicts(section: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Per approximate method: beats the shuffled baseline (its rank correlation's interval lies wholly above the
    baseline's) and agrees (also a median of at least ``TRUST_MIN_AGREEMENT``); and whether the top features are
    stable across refits."""
    methods = section.get("methods") or {}
    random_high = _high(methods.get("random") or {}, "rank_corr")
    out: dict[str, dict[str, bool]] = {}
    for method in ("kernel_shap", "lime"):
        summary = methods.get(method) or {}
        low = _low(summary, "rank_corr")
        beats = low is not None and random_high is not None and low > random_high
        median = (summary.get("rank_corr") or {}).get("median")
        out[method] = {"beats_random": beats, "agrees": beats and median is not None and median >= TRUST_MIN_AGREEMENT}
    stable = section.get("stability") or {}
    out["stability"] = {
        "top_stable": float(stable.get("top_unchanged") or 0.0) >= TRUST_MIN_TOP_UNCHANGED,
        "leader_stable": float(stable.get("top_feature_share") or 0.0) >= TRUST_MIN_TOP_UNCHANGED,
    }
    return out


def _agreement_sentence(section: dict[str, Any], method: str, agrees: bool, beats: bool) -> str:
    methods = section["methods"]
    figures = {
        "method": _((section.get("labels") or {}).get(method, method)),
        "r": f"{methods[method]['rank_corr']['median']:.2f}",
        "low": f"{_low(methods[method], 'rank_corr') or 0.0:.2f}",
        "high": f"{_high(methods[method], 'rank_corr') or 0.0:.2f}",
        "random": f"{methods['random']['rank_corr']['median']:.2f}",
        "overlap": f"{methods[method]['top_overlap']['mean']:.2f}",
        "random_overlap": f"{methods['random']['top_overlap']['mean']:.2f}",
    }
    if agrees:
        return _(
            "{method} ranked the features like the exact values (median rank correlation {r}, 95% CI {low} to "
            "{high}; shuffled values: {random}) and shared {overlap} of the top three on average (shuffled: "
            "{random_overlap})."
        ).format(**figures)
    if beats:
        return _(
            "{method} agreed only in part (median rank correlation {r}, 95% CI {low} to {high}; shuffled values: "
            "{random}; top-three overlap {overlap}, shuffled: {random_overlap}): better than chance, but not a "
            "substitute for the exact values."
        ).format(**figures)
    return _(
        "{method} ranked the features no better than shuffled values (median rank correlation {r}, 95% CI {low} "
        "to {high}; shuffled: {random}), though it found {overlap} of the top three on average (shuffled: "
        "{random_overlap}): do not read this model through it."
    ).format(**figures)


def advice(section: dict[str, Any]) -> str:
    """In words (current language): the shown values are exact; whether KernelSHAP and LIME agree; how stable
    the top features are across refits."""
    found = verdicts(section)
    text = _(
        "The contributions shown for each patient are exact SHAP values of this model ({explainer}): they add up "
        "to its log-odds, so they are not an estimate."
    ).format(explainer=explainer_name(section.get("exact_explainer") or "SHAP"))
    if section.get("family") == "gradient_boosting":
        text += " " + _(
            "For trees the exact values follow the trees' own paths, while KernelSHAP and LIME break the links "
            "between features, so some disagreement is a difference of question, not an error."
        )
    text += " " + _("Measured on {n} patients the explaining model did not train on:").format(n=section.get("n"))
    for method in ("kernel_shap", "lime"):
        if method in (section.get("methods") or {}):
            text += " " + _agreement_sentence(section, method, found[method]["agrees"], found[method]["beats_random"])
    stable = section.get("stability") or {}
    if stable:
        text += " " + _(
            "Across {refits} bootstrap refits, {feature} stayed the most important feature in {leader} of refits and "
            "the top three were unchanged in {top} (chance: {chance})."
        ).format(
            refits=stable.get("refits"),
            feature=stable.get("top_feature"),
            leader=format_percent(float(stable.get("top_feature_share") or 0.0), 0),
            top=format_percent(float(stable.get("top_unchanged") or 0.0), 0),
            chance=format_percent(float(stable.get("top_chance") or 0.0), 2),
        )
        if not found["stability"]["top_stable"]:
            text += " " + _("Below the first features, read the order of importance as approximate.")
    return text
