"""Where cards live and when they are rebuilt: beside a user's model, cached for read-only bundled ones.

A card is written as ``card.json`` when its version is registered (training calls :func:`write_card` on
the staging folder). :func:`load_card` rebuilds a card whose schema version or input fingerprint no
longer matches the files, so a card cannot go stale.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import config, i18n
from core.i18n import _, format_threshold
from core.models import registry, site_validation
from core.models.cards.build import CARD_SCHEMA_VERSION, build_card, fingerprint
from core.models.cards.prose import SECTIONS

EVIDENCE_METRICS = ("auc", "sensitivity", "specificity", "ppv", "npv", "accuracy")


def write_card(model_dir: Path) -> dict[str, Any]:
    """Build the card of the version in ``model_dir`` and store it as ``card.json`` there."""
    card = build_card(model_dir)
    registry.write_json_atomic(Path(model_dir) / registry.CARD_FILE, card)
    return card


def _cache_path(ref: registry.ModelRef) -> Path:
    return config.luciddx_home() / "cards" / ref.name / ref.version / registry.CARD_FILE


def is_current(card: dict[str, Any] | None, model_dir: Path) -> bool:
    """Whether ``card`` was built by this schema from exactly the files now in ``model_dir``."""
    return (
        isinstance(card, dict)
        and card.get("schema_version") == CARD_SCHEMA_VERSION
        and (card.get("generated") or {}).get("fingerprint") == fingerprint(model_dir)
    )


def _read_stored(path: Path) -> dict[str, Any] | None:
    """A stored card, or None when there is none or it is damaged (it is then rebuilt, not trusted)."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_card(ref: registry.ModelRef | str) -> dict[str, Any]:
    """The current card of a model version, rebuilt if missing, damaged, from an older schema, or stale.

    A rebuilt card is stored beside a user model; bundled models are read-only, so theirs is cached
    under ``$LUCIDDX_HOME/cards``. Name and version always come from the registry.

    Raises:
        InvalidModelError: the version's metadata or stored predictions cannot be read.
    """
    if isinstance(ref, str):
        ref = registry.resolve(ref)
    card = next((c for c in map(_read_stored, (ref.path / registry.CARD_FILE, _cache_path(ref)))
                 if c is not None and is_current(c, ref.path)), None)
    if card is None:
        card = build_card(ref.path)
        card["model_details"].update(name=ref.name, version=ref.version)
        registry.write_json_atomic(_cache_path(ref) if ref.bundled else ref.path / registry.CARD_FILE, card)
    elif not ref.bundled and (card["model_details"].get("name"), card["model_details"].get("version")) != (ref.name, ref.version):
        # Written in the staging folder before registration numbered the version: record the number now.
        card["model_details"].update(name=ref.name, version=ref.version)
        registry.write_json_atomic(ref.path / registry.CARD_FILE, card)
    card["model_details"].update(name=ref.name, version=ref.version, bundled=ref.bundled)
    attach_site_evidence(card, ref)
    return card


def attach_site_evidence(card: dict[str, Any], ref: registry.ModelRef) -> None:
    """Recorded external validations beside the internal one, which to read, and the threshold in force.

    They live under ``$LUCIDDX_HOME`` (not in the version's files), so they are added on every load.
    """
    external = [summarise_validation(v) for v in site_validation.list_validations(ref)]
    card["external_validations"] = external
    with i18n.using(i18n.DEFAULT_LANGUAGE):  # the stored and downloaded card stays English; localize.py renders it
        card["evidence"] = {"internal": internal_summary(card), "external": external, "read": reading_advice(card, external)}
    threshold, source = site_validation.threshold_in_force(ref)
    card["model_details"]["threshold_in_force"] = {"threshold": threshold, "source": source}
    card["evidence"]["headline"] = headline_evidence(ref, card, threshold, source)


def headline_evidence(ref: registry.ModelRef, card: dict[str, Any], threshold: float | None, source: str) -> dict[str, Any]:
    """The figures that apply where the model is used, to lead every display of it.

    With a site threshold adopted: the validation it came from, at that threshold. With a recorded site
    validation and the stored threshold: the latest validation, at the stored threshold. Otherwise the
    internal validation. ``scope`` says which ("site" / "internal"); metric entries are ``{"value", "ci95"}``.
    """
    validations = site_validation.list_validations(ref)
    chosen = None
    if source.startswith("site:"):
        chosen = next((v for v in validations if v["id"] == source.split(":", 1)[1]), None)
    elif validations and threshold is not None:
        chosen = validations[-1]
    if chosen is None or threshold is None:
        internal = card["evidence"]["internal"]
        return {"scope": "internal", "label": internal["label"], "n": internal["n"], "prevalence": internal["prevalence"],
                "threshold": threshold, "threshold_source": source,
                **{k: internal[k] for k in site_validation.HEADLINE_METRICS if k in internal}}
    adopted = site_validation.adopted_record(ref) if source.startswith("site:") else None
    rule = (adopted or {}).get("rule", "stored")
    candidate = next((row for row in chosen.get("thresholds", []) if row["rule"] == rule), {})
    return {"scope": "site", "label": f"site validation {chosen['id']}", "id": chosen["id"], "recorded": chosen["recorded"],
            "description": chosen.get("source", ""), "n": chosen["n"], "prevalence": chosen["prevalence"],
            "threshold": threshold, "threshold_source": source, "rule": rule,
            "adopted": (adopted or {}).get("adopted"), "chosen_on_these_cases": bool(candidate.get("chosen_on_these_cases")),
            "cross_fitted": candidate.get("cross_fitted"), **site_validation.figures_at(ref, chosen, threshold)}


def threshold_source_text(headline: dict[str, Any]) -> str:
    """Where the threshold in force comes from, in words: stored with the version, or a site validation (id, date)."""
    source = headline.get("threshold_source") or "stored"
    if not source.startswith("site:"):
        return _("stored with this version")
    validation = source.split(":", 1)[1]
    if headline.get("scope") == "site" and headline.get("id") == validation:
        return _("adopted from site validation {id} of {date}").format(id=validation, date=headline["recorded"][:10])
    return _("adopted from site validation {id}").format(id=validation)


def headline_lines(headline: dict[str, Any]) -> tuple[str, str | None]:
    """(what the headline figures are, in one sentence; the caution when the threshold was chosen on those very cases)."""
    def cell(key: str) -> str:
        entry = headline.get(key) or {}
        if entry.get("value") is None:
            return _("n/a")
        low, high = entry.get("ci95") or [None, None]
        return f"{entry['value']:.3f}" + ("" if low is None else f" ({low:.3f}–{high:.3f})")

    threshold = headline.get("threshold")
    shown = _("n/a") if threshold is None else format_threshold(threshold)
    if headline["scope"] == "site":
        said = _("At this site ({label}, recorded {date}, {n} cases): sensitivity {sensitivity}, specificity {specificity}, "
                 "AUC {auc}, at threshold {threshold} ({source}).")
    else:
        said = _("Internal validation ({n} cases, the developer's data): sensitivity {sensitivity}, specificity "
                 "{specificity}, AUC {auc}, at threshold {threshold} ({source}).")
    text = said.format(label=_("site validation {id}").format(id=headline.get("id")), date=(headline.get("recorded") or "")[:10], n=headline["n"],
                       sensitivity=cell("sensitivity"), specificity=cell("specificity"), auc=cell("auc"), threshold=shown,
                       source=threshold_source_text(headline))
    honest = headline.get("cross_fitted") if headline.get("chosen_on_these_cases") else None
    caution = None
    if honest:
        caution = _("The threshold was chosen on these same cases, so these figures flatter it; chosen without the "
                    "scored cases (cross-fitting) it reached sensitivity {sensitivity}, specificity {specificity}.").format(
            sensitivity=_("n/a") if honest.get("sensitivity") is None else f"{honest['sensitivity']:.3f}",
            specificity=_("n/a") if honest.get("specificity") is None else f"{honest['specificity']:.3f}")
    return text, caution


def internal_summary(card: dict[str, Any]) -> dict[str, Any]:
    overall = card["quantitative_analyses"]["overall"]
    prevalence = (card["quantitative_analyses"].get("pr_curve") or {}).get("prevalence")
    return {"label": "internal validation", "description": card["evaluation_data"]["description"],
            "n": card["quantitative_analyses"]["n"], "prevalence": prevalence,
            **{k: overall[k] for k in EVIDENCE_METRICS if k in overall}}


def summarise_validation(entry: dict[str, Any]) -> dict[str, Any]:
    return {"label": f"external validation {entry['id']}", "id": entry["id"], "recorded": entry["recorded"],
            "description": entry.get("source", ""), "n": entry["n"], "prevalence": entry["prevalence"],
            "threshold": entry["threshold"],
            **{k: {"value": entry.get(k), "ci95": entry["intervals"].get(k, [None, None])} for k in EVIDENCE_METRICS}}


def reading_advice(card: dict[str, Any], external: list[dict[str, Any]]) -> str:
    """In words: which evidence a clinician should read."""
    if external:
        latest = external[-1]
        return _("Read the external validation recorded on {date} ({n} cases from {source}): it measures this model on "
                 "cases like yours. The internal validation comes from the data the model was developed on and is "
                 "optimistic.").format(date=latest["recorded"][:10], n=latest["n"], source=latest["description"] or _("your site"))
    return _("No external validation is recorded. The figures come from the data the model was developed on and are "
             "likely optimistic for your patients and equipment: validate it on your own labeled cases "
             "(python -m core validate --data DIR --model NAME:VERSION --record) before clinical use.")


def rebuild_card(ref: registry.ModelRef | str) -> dict[str, Any]:
    """Recompute a version's card now and store it beside the model (a build step for bundled models)."""
    if isinstance(ref, str):
        ref = registry.resolve(ref)
    card = build_card(ref.path)
    card["model_details"].update(name=ref.name, version=ref.version)
    registry.write_json_atomic(ref.path / registry.CARD_FILE, card)
    return card


def missing_sections(card: dict[str, Any]) -> list[str]:
    """Mitchell et al. sections that are absent or empty (an empty list means the card is complete)."""
    return [s for s in SECTIONS if not card.get(s)]


def key_metrics(card: dict[str, Any], names: tuple[str, ...] = ("auc", "sensitivity", "specificity")) -> dict[str, Any]:
    """The headline metrics ``{name: {"value", "ci95"}}`` for compact displays."""
    overall = card.get("quantitative_analyses", {}).get("overall", {})
    return {k: overall[k] for k in names if k in overall}


