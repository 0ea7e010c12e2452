"""The compact 'how far to trust this model' panel shown beside every prediction.

It draws what the model's card (``core.models.cards``) computed: version, intended use, key metrics with
95% intervals, limitations, the out-of-distribution check's measured rates, and a link to the full
card on the Model cards page.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import LucidDxError
from core.i18n import _, format_decimal, format_percent, format_threshold
from core.services import catalog

CARD_PAGE = "pages/model_cards.py"
SPEC_PARAM = "model"


@st.cache_data(show_spinner=False, max_entries=32)
def _cached_card(spec: str, path: str, stamp: float) -> dict[str, Any]:
    # ``path`` and ``stamp`` (newest file time in the version folder) key the cache: a rebuilt or
    # replaced model gets a fresh card.
    return catalog.model_card(spec)


def card_for(spec: str) -> dict[str, Any]:
    """The current card of ``NAME`` / ``NAME:VERSION`` (computed once per change of the files)."""
    ref = catalog.resolve(spec)
    stamp = max((p.stat().st_mtime for p in ref.path.iterdir() if p.is_file()), default=0.0)
    return catalog.display_card(ref, _cached_card(ref.spec, str(ref.path), stamp))


def threshold_note(card: dict[str, Any]) -> str | None:
    """Which threshold predictions use now, and where it came from."""
    in_force = card["model_details"].get("threshold_in_force") or {}
    if in_force.get("threshold") is None:
        return None
    if in_force["source"] == "stored":
        return _("Threshold in force: {threshold}, stored with this version.").format(
            threshold=format_threshold(in_force["threshold"])
        )
    return _(
        "Threshold in force: {threshold}, adopted by this site from its validation {validation} "
        "(stored threshold {stored})."
    ).format(
        threshold=format_threshold(in_force["threshold"]),
        validation=in_force["source"].split(":", 1)[1],
        stored=format_threshold(card["model_details"]["threshold"]),
    )


def format_metric(entry: dict[str, Any] | None) -> tuple[str, str | None]:
    """('0.912', '95% CI 0.850–0.963') for a card metric entry; ('n/a', None) when undefined."""
    if not entry or entry.get("value") is None:
        return _("n/a"), None
    low, high = entry.get("ci95") or [None, None]
    interval = (
        _("95% CI {low}–{high}").format(low=format_decimal(low, 3), high=format_decimal(high, 3))
        if low is not None
        else None
    )
    return format_decimal(entry["value"], 3), interval


def ood_note(card: dict[str, Any]) -> str | None:
    """One sentence on the out-of-distribution check, with its measured rates; None if not measured."""
    ood = card["quantitative_analyses"].get("out_of_distribution", {})
    if not ood.get("measured"):
        return None
    parts = []
    if ood.get("non_chest_flag_rate") is not None:
        parts.append(
            _("flagged {rate} of {n} non-chest test images").format(
                rate=format_percent(ood["non_chest_flag_rate"], 0), n=ood["non_chest_n"]
            )
        )
    if ood.get("validation_flag_rate") is not None:
        parts.append(
            _("{rate} of {n} validation X-rays").format(
                rate=format_percent(ood["validation_flag_rate"], 1), n=ood["validation_n"]
            )
        )
    return _(
        "Inputs unlike the training images are flagged as out of distribution and their prediction marked "
        "unreliable. Measured: {rates}."
    ).format(rates=_(", ").join(parts))


def site_headline(headline: dict[str, Any], shown: dict[str, str]) -> None:
    """The site's figures first: which validation, n, each metric with its interval, the threshold in force and its source."""
    st.markdown(
        _("**At this site** · {label} · recorded {date} · {n} cases").format(
            label=headline["label"], date=headline["recorded"][:10], n=headline["n"]
        )
    )
    cols = st.columns(len(shown))
    for col, (name, title) in zip(cols, shown.items()):
        value, interval = format_metric(headline.get(name))
        col.metric(title, value, help=interval)
        if interval:
            col.caption(interval)
    st.caption(
        _("Threshold in force: {threshold}, {source}.").format(
            threshold=format_threshold(headline["threshold"]), source=catalog.threshold_source_text(headline)
        )
    )
    _said, caution = catalog.headline_lines(headline)
    if caution:
        st.caption(":material/warning: " + caution)


def model_card_panel(model_spec: str) -> None:
    """Version, intended use, key metrics with CIs, limitations, OOD note, link to the full card."""
    try:
        card = card_for(model_spec)
    except LucidDxError as exc:
        st.error(str(exc))
        return
    details = card["model_details"]
    spec = f"{details['name']}:{details['version']}"
    with st.container(border=True):
        st.markdown(
            _("**Model card** · `{spec}` · {architecture} · {date}").format(
                spec=spec,
                architecture=details.get("architecture") or catalog.kind_name(details["kind"]),
                date=(details.get("date") or "")[:10],
            )
        )
        st.caption(card["intended_use"]["primary_uses"][0])
        shown = {"auc": _("AUC"), "sensitivity": _("Sensitivity"), "specificity": _("Specificity")}
        headline = card.get("evidence", {}).get("headline") or {}
        internal = catalog.key_metrics(card, tuple(shown))
        if headline.get("scope") == "site":
            site_headline(headline, shown)
            said, _caution = catalog.headline_lines(
                {
                    **card["evidence"]["internal"],
                    "scope": "internal",
                    "threshold": details.get("threshold"),
                    "threshold_source": "stored",
                }
            )
            st.caption(said)  # the internal figures follow, labelled as such, in one line
        else:
            cols = st.columns(len(shown))
            for col, (name, entry) in zip(cols, internal.items()):
                value, interval = format_metric(entry)
                col.metric(shown[name], value, help=interval)
                if interval:
                    col.caption(interval)
            n = card["quantitative_analyses"]["n"]
            on_cases = (
                _("Internal validation: {n} out-of-fold cases.")
                if details["kind"] == catalog.TABULAR_RISK
                else _("Internal validation: {n} held-out cases.")
            )
            st.caption(on_cases.format(n=n) + " " + card["metrics"]["decision"])
        limits = card["caveats_and_recommendations"][:2] + card["intended_use"]["out_of_scope"][:1]
        st.markdown(_("**Limitations**") + "\n" + "\n".join(f"- {item}" for item in limits))
        threshold = threshold_note(card)
        if threshold and headline.get("scope") != "site":
            st.caption(threshold)
        st.caption(card["evidence"]["read"])
        note = ood_note(card)
        if note:
            st.caption(":material/shield: " + note)
        try:
            st.page_link(
                CARD_PAGE,
                label=_("Read the full model card"),
                icon=":material/fact_check:",
                query_params={SPEC_PARAM: spec},
            )
        except st.errors.StreamlitAPIException:
            # The page runs outside the app's navigation (e.g. on its own in a test): say where the card is.
            st.caption(_("Full card: Model cards page, model {spec}.").format(spec=spec))
