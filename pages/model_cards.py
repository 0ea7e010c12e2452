"""Model cards: pick a model and version, read its card, see its charts, compare two versions."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from core import i18n
from core.charts import cards as card_charts
from core.errors import LucidDxError
from core.i18n import _, format_threshold
from core.services import catalog
from ui.auth import require_page
from ui.card_panel import SPEC_PARAM, card_for, format_metric, ood_note, threshold_note
from ui.language import apply_language


@st.cache_data(show_spinner=False, max_entries=16)
def cached_comparison(spec_a: str, spec_b: str, stamp: str, language: str) -> dict[str, Any]:
    # ``stamp`` (both cards' fingerprints) keys the cache so replaced predictions are re-compared;
    # ``language`` because the result carries its method in words.
    return catalog.compare_versions(spec_a, spec_b)


def pick_version() -> tuple[str, list[str]]:
    """Model and version pickers (preselected from ?model=NAME:VERSION); returns the spec and all versions."""
    models = catalog.models_by_name()
    if not models:
        raise LucidDxError(_("No models are registered: train one on the Retrain page."))
    wanted = st.query_params.get(SPEC_PARAM, "")
    wanted_name, _sep, wanted_version = wanted.partition(":")
    names = list(models)
    name = st.selectbox(
        _("Model"), names, index=names.index(wanted_name) if wanted_name in names else 0, key="card_model"
    )
    versions = [r.version for r in models[name]]
    approved = catalog.approved_version(name)
    active = approved.version if approved else None
    default = wanted_version if wanted_name == name and wanted_version in versions else (active or versions[-1])
    # Labels made now, in this run's language: every version but the active one is not approved for clinical use.
    labels = {
        v: _("{version} (active)").format(version=v) if v == active else _("{version} (not approved)").format(version=v)
        for v in versions
    }
    version = st.selectbox(
        _("Version"),
        versions,
        index=versions.index(default),
        key=f"card_version_{name}",
        format_func=labels.__getitem__,
    )
    if version != active:
        st.warning(
            _("{name}:{version} is not approved for clinical use: an administrator has not activated it.").format(
                name=name, version=version
            ),
            icon=":material/warning:",
        )
    return f"{name}:{version}", [f"{name}:{v}" for v in versions]


def show_headline(card: dict[str, Any]) -> None:
    details = card["model_details"]
    source = _("bundled") if details.get("bundled") else _("trained in this installation")
    st.subheader(f"{details['name']}:{details['version']}")
    st.caption(
        _("{kind} · {source} · created {created} · card computed {computed} from {files}").format(
            kind=catalog.kind_name(details["kind"]),
            source=source,
            created=details.get("date"),
            computed=card["generated"]["at"],
            files=", ".join(card["generated"]["from"]),
        )
    )
    headline = card["evidence"].get("headline") or {}
    if headline.get("scope") == "site":  # the figures that apply here lead; the internal ones follow, labelled
        said, caution = catalog.headline_lines(headline)
        st.markdown("#### " + _("At this site: {label}").format(label=headline["label"]))
        metric_row(headline, ("sensitivity", "specificity", "auc", "ppv", "npv", "accuracy"))
        st.caption(said)
        if caution:
            st.warning(caution, icon=":material/warning:")
        st.markdown("#### " + _("Internal validation (the developer's data)"))
    metric_row(card["quantitative_analyses"]["overall"], catalog.BINARY_METRICS)
    note = ood_note(card)
    if note:
        st.info(note)
    show_evidence(card)
    if not details.get("documented_model"):
        st.warning(_("This version was trained on a user's own data and has not been independently evaluated."))


def metric_row(figures: dict[str, Any], names: tuple[str, ...]) -> None:
    """One metric per name with its 95% interval, four to a row."""
    cols = st.columns(4)
    for i, name in enumerate(names):
        value, interval = format_metric(figures.get(name))
        cols[i % 4].metric(_(catalog.METRIC_LABELS[name]), value, help=interval)
        if interval:
            cols[i % 4].caption(interval)


def show_evidence(card: dict[str, Any]) -> None:
    """Internal and external validations side by side, with the advice on which to read."""
    evidence = card["evidence"]
    (st.success if evidence["external"] else st.warning)(evidence["read"])
    columns = [*reversed(evidence["external"]), evidence["internal"]]  # the site's figures lead, newest first
    rows = [
        {"": _("cases (n)"), **{c["label"]: str(c["n"]) for c in columns}},
        {
            "": _("prevalence"),
            **{c["label"]: _("n/a") if c.get("prevalence") is None else f"{c['prevalence']:.1%}" for c in columns},
        },
    ]
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv"):
        row = {"": _(catalog.METRIC_LABELS[key])}
        for c in columns:
            value, interval = format_metric(c.get(key))
            row[c["label"]] = value + (f" ({interval})" if interval else "")
        rows.append(row)
    st.dataframe(rows, hide_index=True)
    note = threshold_note(card)
    if note:
        st.caption(note)


def show_downloads(card: dict[str, Any]) -> None:
    stem = f"model_card_{card['model_details']['name']}_v{card['model_details']['version']}"
    left, right = st.columns(2)
    left.download_button(
        _("Download card (Markdown)"),
        catalog.card_markdown(card),
        file_name=f"{stem}.md",
        mime="text/markdown",
        key="card_md",
    )
    right.download_button(
        _("Download card (JSON)"),
        json.dumps(card, indent=2),
        file_name=f"{stem}.json",
        mime="application/json",
        key="card_json",
    )


def show_charts(card: dict[str, Any]) -> None:
    figures = card_charts.all_figures(card)
    titles = list(figures)
    for left, right in zip(titles[::2], titles[1::2] + [None]):
        cols = st.columns(2)
        cols[0].plotly_chart(figures[left], key=f"chart_{left}")
        if right:
            cols[1].plotly_chart(figures[right], key=f"chart_{right}")
    table = card["quantitative_analyses"].get("threshold_table")
    if table:
        st.markdown(_("**Threshold table** (the chosen operating threshold is marked)"))
        st.dataframe(
            [
                {
                    "threshold": format_threshold(r["threshold"]),
                    "chosen": _("◀ chosen") if r["chosen"] else "",
                    "sensitivity": r["sensitivity"],
                    "specificity": r["specificity"],
                    "PPV": r["ppv"],
                    "NPV": r["npv"],
                    "flagged": r["flagged"],
                    "note": r["note"],
                }
                for r in table
            ],
            hide_index=True,
        )


def show_comparison(spec: str, all_specs: list[str]) -> None:
    others = [s for s in all_specs if s != spec]
    if not others:
        st.info(_("This model has a single version; retrain it to compare versions."))
        return
    other = st.selectbox(_("Compare with"), others, key="card_compare_with")
    baseline, candidate = sorted([other, spec], key=lambda s: catalog.version_key(s.partition(":")[2]))
    stamp = "|".join(card_for(s)["generated"]["fingerprint"] for s in (baseline, candidate))
    comparison = cached_comparison(baseline, candidate, stamp, i18n.language())
    st.plotly_chart(card_charts.comparison_figure(comparison), key="chart_compare")
    st.dataframe(
        [
            {
                "metric": _(catalog.METRIC_LABELS[k]),
                baseline: v["a"],
                candidate: v["b"],
                "change": v["delta"],
                "change 95% CI": _("n/a") if v["ci95"][0] is None else f"{v['ci95'][0]:+.3f} to {v['ci95'][1]:+.3f}",
            }
            for k, v in comparison["deltas"].items()
        ],
        hide_index=True,
    )
    paired = next(iter(comparison["deltas"].values()))["paired"]
    st.caption(
        comparison["method"]
        + (
            _("; paired (both versions scored the same cases).")
            if paired
            else _("; independent (the versions were validated on different cases).")
        )
    )
    left, right = st.columns(2)
    for col, s in ((left, baseline), (right, candidate)):
        with col:
            st.markdown(f"**{s}**")
            st.markdown(catalog.card_markdown(card_for(s)).split("## Quantitative analyses")[0])


apply_language()
require_page("cards")
st.title(_("Model cards"))
st.caption(
    _(
        "Every number on a card is computed from the model's stored validation predictions and measurements "
        "(Mitchell et al., 2019, Model Cards for Model Reporting)."
    )
)
try:
    chosen, specs = pick_version()
    model_card = card_for(chosen)
except LucidDxError as exc:
    st.error(str(exc))
    st.stop()
show_headline(model_card)
show_downloads(model_card)
missing = catalog.missing_sections(model_card)
if missing:
    st.error(_("This card is incomplete: {sections} missing.").format(sections=", ".join(missing)))
card_tab, charts_tab, compare_tab = st.tabs([_("Card"), _("Charts"), _("Compare versions")])
with card_tab:
    st.markdown(catalog.card_markdown(model_card))
with charts_tab:
    show_charts(model_card)
with compare_tab:
    try:
        show_comparison(chosen, specs)
    except LucidDxError as exc:
        st.error(str(exc))
