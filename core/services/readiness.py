"""The first-run checklist an administrator sees: what still stands between a fresh install and a safe one.

For every model name: is a version approved, is an evaluation set locked (without one the quality gate
cannot run, and every activation would be an override), is a site validation recorded for the approved
version, is a site threshold adopted or the bundled default still in force, do versions wait for review.
"""

from __future__ import annotations

from typing import Any

from core.i18n import _
from core.models import registry, site_validation
from core.services import audit, eval_sets, training


def checklist(actor: audit.Who | None) -> list[dict[str, Any]]:
    """One row per check: ``model``, ``check``, ``ok`` (bool), ``detail`` (what to do when not ok). Admin only."""
    audit.authorize(actor, "eval-set")
    rows: list[dict[str, Any]] = []
    if not training.data_roots():
        rows.append(
            {
                "model": "",
                "check": _("Data roots"),
                "ok": False,
                "detail": _(
                    "LUCIDDX_DATA_ROOTS is not set: evaluation sets and site validations can come from uploads only."
                ),
            }
        )
    for name, versions in registry.list_models().items():
        approved = registry.approved_version(name)
        locked = eval_sets.show(name)
        rows.append(
            {
                "model": name,
                "check": _("Evaluation set locked"),
                "ok": locked is not None,
                "detail": _("{n} locked cases").format(n=locked["n"])
                if locked
                else _("None: the quality gate cannot run, so every activation would be an override. Lock one below."),
            }
        )
        waiting = [
            r.spec
            for r in versions
            if not r.bundled
            and (approved is None or r.version != approved.version)
            and registry.version_key(r.version) > registry.version_key(approved.version if approved else "0")
        ]
        rows.append(
            {
                "model": name,
                "check": _("Approved version"),
                "ok": approved is not None,
                "detail": approved.spec if approved else _("None yet: clinicians cannot use {name}.").format(name=name),
            }
        )
        if waiting:
            rows.append(
                {
                    "model": name,
                    "check": _("Versions awaiting review"),
                    "ok": False,
                    "detail": _("{specs}: not approved; review the card and the gate, then activate or delete.").format(
                        specs=", ".join(waiting)
                    ),
                }
            )
        if approved is None:
            continue
        validations = site_validation.list_validations(approved)
        rows.append(
            {
                "model": name,
                "check": _("Site validation recorded"),
                "ok": bool(validations),
                "detail": _("{n} recorded for {spec}").format(n=len(validations), spec=approved.spec)
                if validations
                else _("None: {spec}'s figures come from its developers' data only.").format(spec=approved.spec),
            }
        )
        threshold, source = site_validation.threshold_in_force(approved)
        rows.append(
            {
                "model": name,
                "check": _("Site threshold adopted"),
                "ok": source != "stored",
                "detail": _("{threshold} from {source}").format(threshold=f"{threshold:.3f}", source=source)
                if source != "stored"
                else _("The default threshold {threshold} is still in force.").format(
                    threshold="n/a" if threshold is None else f"{threshold:.3f}"
                ),
            }
        )
    return rows
