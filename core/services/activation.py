"""Activation as every front end does it: the quality gate first, then the switch, the record and the audit.

A version goes live only if it is non-inferior to the active version on the model's locked evaluation
set (``core.models.gate``), or if an administrator overrides with a typed reason. Rolling back is an
activation too. The audit record says "gate-passed" or "override" and carries the SHA-256 of the
activation record, which holds the gate's numbers and the reason.
"""

from __future__ import annotations

import logging
from typing import Any

from core.errors import EvalSetError, GateFailedError, InvalidOptionError
from core.i18n import _
from core.models import eval_sets as eval_set_store
from core.models import gate as gate_mod
from core.models import kinds, registry
from core.services import audit, eval_sets

log = logging.getLogger(__name__)
# An override is never the quick path: its reason says what was checked instead of the gate.
MIN_REASON_CHARS, MIN_REASON_WORDS = 20, 4
# Below this many validation cases an interval is too wide to say much; the evidence says so.
FEW_CASES = 100


def evidence(name: str, version: str) -> dict[str, Any]:
    """What an override of the gate for ``name:version`` sets aside: the version's own validation (n, AUC)
    and the locked evaluation set (None when no set is locked)."""
    ref = registry.resolve(f"{name}:{version}")
    validation = ref.meta.get("validation") or {}
    locked = eval_sets.show(name)
    return {
        "model": ref.spec,
        "kind": ref.kind,
        "validation_n": validation.get("n"),
        "validation_auc": validation.get("auc"),
        "eval_set_n": locked["n"] if locked else None,
    }


def evidence_text(found: dict[str, Any]) -> str:
    """The evidence as the sentence an administrator reads before overriding, e.g. "validated on 6 films"."""
    n, auc = found["validation_n"], found["validation_auc"]
    unit = _("films") if found["kind"] == kinds.IMAGE_CLASSIFIER else _("patients")
    if n is None:
        text = _("{model} has no recorded validation.").format(model=found["model"])
    else:
        text = _("{model} was validated on {n} {unit} (validation AUC {auc}).").format(
            model=found["model"], n=n, unit=unit, auc="n/a" if auc is None else f"{auc:.3f}"
        )
        if n < FEW_CASES:
            text += " " + _("That is too few {unit} to trust its figures.").format(unit=unit)
    if found["eval_set_n"] is None:
        text += " " + _("No evaluation set is locked, so the gate compared nothing.")
    return text


def check_reason(reason: str | None) -> str:
    """``reason`` stripped, if it has some substance; InvalidOptionError saying what is missing otherwise."""
    text = " ".join((reason or "").split())
    if len(text) < MIN_REASON_CHARS or len(text.split()) < MIN_REASON_WORDS:
        raise InvalidOptionError(
            _(
                "An override needs a reason of at least {words} words and {chars} characters that says what was checked "
                'instead of the gate (no patient details); "{reason}" is not enough.'
            ).format(words=MIN_REASON_WORDS, chars=MIN_REASON_CHARS, reason=text[:60])
        )
    return text


def _other_active(candidate: registry.ModelRef) -> registry.ModelRef | None:
    active = registry.approved_version(candidate.name)
    return None if active is None or active.spec == candidate.spec else active


def run_gate(name: str, version: str) -> dict[str, Any]:
    """The gate's result for ``name:version`` against the active version (see ``core.models.gate``).

    Raises EvalSetError when the locked set changed or cannot be read; returns status "not-run" when
    no set is locked.
    """
    candidate = registry.resolve(f"{name}:{version}")
    active = _other_active(candidate)
    record = eval_set_store.load(name)
    if record is None:
        return gate_mod.not_run(
            candidate.spec,
            active.spec if active else None,
            _(
                "No evaluation set is locked for {name}, so the quality gate cannot run: lock one with "
                "`python -m core eval-set lock --model {name} --data DIR`, or override with a reason."
            ).format(name=name),
        )
    refs = [candidate] + ([active] if active else [])
    is_positive, scores = eval_sets.scored_cases(record, refs)
    sides = [gate_mod.Scored(ref.spec, s, *eval_sets.threshold_of(ref)) for ref, s in zip(refs, scores)]
    return gate_mod.compare(is_positive, sides[0], sides[1] if active else None, record)


def _warm_served(ref: registry.ModelRef) -> bool | None:
    """Where models are served (LUCIDDX_SERVE), load the newly active version in a replica beside the old one, so
    the first film or patient after the switch does not wait for it; nothing restarts, nothing is dropped.
    The activation stands whatever happens here (a replica that cannot load it is the next request's error).
    Returns whether it was loaded (None: not served)."""
    from core.errors import LucidDxError

    try:
        if ref.kind == kinds.IMAGE_CLASSIFIER:
            from core.services import imaging

            return imaging.warm_served(ref.spec) or None
        if ref.kind == kinds.TABULAR_RISK:
            from core.services import tabular

            return tabular.warm_served(ref.spec) or None
    except LucidDxError as exc:
        log.warning("%s is active but could not be loaded by its served replicas: %s", ref.spec, exc)
        return False
    return None


def activate(actor: audit.Who | None, name: str, version: str, override_reason: str | None = None) -> dict[str, Any]:
    """Make ``name:version`` active if it passes the gate, or with an override reason (admins only).

    An override's reason needs some substance (``check_reason``); its activation record keeps the evidence
    it set aside (``evidence``) beside the gate's result, and the audit record says "override".

    Returns ``{"model", "active": True, "served", "gate", "override", "activation_record"}`` (``served``: whether
    the served replicas loaded it, None where models are not served).
    Raises:
        PermissionDeniedError: ``actor`` may not activate.
        GateFailedError: the gate did not pass and no reason was given (its ``gate`` holds the numbers).
        InvalidOptionError: a reason was given but is too short to say anything.
        EvalSetError: the locked set changed, and no reason was given.
    """
    audit.authorize(actor, "activate")
    spec = registry.resolve(f"{name}:{version}").spec
    reason = (override_reason or "").strip() or None
    try:
        result = run_gate(name, version)
    except EvalSetError as exc:
        if reason is None:
            audit.record(actor, "activate", model=spec, outcome="failed")
            raise
        result = gate_mod.not_run(spec, None, str(exc))
    passed = result["status"] == gate_mod.PASSED
    if not passed and reason is not None:
        try:
            reason = check_reason(reason)
        except InvalidOptionError:
            audit.record(actor, "activate", model=spec, outcome="failed")
            raise
    if not passed and reason is None:
        audit.record(actor, "activate", model=spec, outcome="failed")
        raise GateFailedError(
            _(
                "{explanation} {model} was not activated. An administrator may still activate it with an override and "
                "a typed reason (python -m core activate {model} --override --reason TEXT)."
            ).format(explanation=gate_mod.explain(result), model=spec),
            result,
        )
    if not passed:
        result = {**result, "evidence": evidence(name, version)}  # what the override set aside, kept with it
    previous = _other_active(registry.resolve(spec))  # what the audit log shows as changed: previous -> this
    ref = registry.activate(name, version)
    path, digest = gate_mod.record_activation(
        ref,
        result,
        actor.name if actor else "anonymous",
        None if passed else reason,
        previous.spec if previous else None,
    )
    audit.record(actor, "activate", model=ref.spec, digest=digest, outcome="gate-passed" if passed else "override")
    served = _warm_served(ref)
    return {
        "model": ref.spec,
        "active": True,
        "served": served,
        "gate": result,
        "override": not passed,
        "override_reason": None if passed else reason,
        "activation_record": str(path),
    }


def activate_after_training(actor: audit.Who | None, spec: str) -> dict[str, Any]:
    """``train --activate``: try to activate a just-registered version through the gate, never override.

    Returns ``{"activated": bool, "gate": result or None, "reason": text or None}``: training succeeded
    either way, so a refusal is reported, not raised.
    """
    name, _sep, version = spec.partition(":")
    try:
        done = activate(actor, name, version)
    except GateFailedError as exc:
        return {"activated": False, "gate": exc.gate, "reason": str(exc)}
    except EvalSetError as exc:
        return {"activated": False, "gate": None, "reason": str(exc)}
    return {"activated": True, "gate": done["gate"], "reason": None}


def gate_not_run(candidate: str, active: str | None, reason: str) -> dict[str, Any]:
    """A gate result that says why the gate could not be run (shown in place of the comparison)."""
    return gate_mod.not_run(candidate, active, reason)


def gate_passed(result: dict[str, Any]) -> bool:
    return result["status"] == gate_mod.PASSED


def gate_explanation(result: dict[str, Any]) -> str:
    """The gate's verdict in one or two sentences, in the reader's language."""
    return gate_mod.explain(result)
