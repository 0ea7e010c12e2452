"""The quality gate before activation: a candidate version against the active one on the same locked cases.

Pass means non-inferior: the lower end of the 95% paired bootstrap interval of AUC(candidate) -
AUC(active) lies above ``-MARGIN``. Sensitivity and specificity of each version at its own threshold in
force (the site's, once adopted) are reported with intervals so an administrator sees what changes at
the bedside, but the verdict rests on AUC alone: a threshold can be re-chosen, a worse ranking cannot.
With no other active version the candidate passes, its own figures reported. Every activation is kept
as ``$LUCIDDX_HOME/models/<name>/activations/<time>-<version>.json`` with its gate result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core import config
from core.i18n import _
from core.models import metrics, registry

MARGIN = 0.02
PASSED, FAILED, NOT_RUN = "passed", "failed", "not-run"
RULE = "non-inferior: lower end of the 95% paired bootstrap interval of AUC(candidate) - AUC(active) > -margin"


@dataclass(frozen=True)
class Scored:
    """One version's positive-class scores (N,) in [0, 1] on the set's cases, in the set's order."""

    spec: str
    scores: np.ndarray
    threshold: float
    threshold_source: str


def _side(is_positive: np.ndarray, side: Scored) -> dict[str, Any]:
    measured = metrics.binary_metrics_with_ci(is_positive, side.scores, side.threshold)
    return {"model": side.spec, "threshold": side.threshold, "threshold_source": side.threshold_source,
            **{k: measured[k] for k in ("auc", "sensitivity", "specificity")}}


def compare(is_positive: np.ndarray, candidate: Scored, active: Scored | None, eval_set: dict[str, Any],
            margin: float = MARGIN) -> dict[str, Any]:
    """The gate's result: both versions' figures with intervals, the paired AUC difference, the verdict."""
    is_positive = np.asarray(is_positive, dtype=bool)
    result: dict[str, Any] = {
        "status": PASSED, "margin": margin, "rule": RULE, "n": int(len(is_positive)),
        "positives": int(is_positive.sum()), "eval_set": _set_summary(eval_set),
        "candidate": _side(is_positive, candidate), "active": None, "auc_difference": None,
    }
    if active is None:
        return result
    result["active"] = _side(is_positive, active)
    value, low, high = metrics.paired_auc_difference(is_positive, active.scores, candidate.scores)
    result["auc_difference"] = {"value": metrics.finite_or_none(value), "ci95": [low, high]}
    if low is None or low <= -margin:
        result["status"] = FAILED
    return result


def not_run(candidate: str, active: str | None, reason: str) -> dict[str, Any]:
    """The result when no locked set exists: activation then needs an administrator's override."""
    return {"status": NOT_RUN, "margin": MARGIN, "rule": RULE, "reason": reason,
            "candidate": {"model": candidate}, "active": {"model": active} if active else None, "auc_difference": None}


def _set_summary(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("fingerprint", "n", "prevalence", "locked_by", "locked_at")}


def explain(result: dict[str, Any]) -> str:
    """One sentence a person reads: the verdict with the numbers it rests on."""
    if result["status"] == NOT_RUN:
        return result["reason"]
    candidate = result["candidate"]
    if result["active"] is None:
        return _("{candidate}: AUC {auc} on {n} locked cases; there is no other active version to compare with.").format(
            candidate=candidate["model"], auc=_num(candidate["auc"]["value"]), n=result["n"])
    diff = result["auc_difference"]
    low, high = diff["ci95"]
    text = _("{candidate} vs {active} on {n} locked cases: AUC {auc_c} vs {auc_a}, difference {diff} "
             "(95% CI {low} to {high}); non-inferiority margin -{margin}.")
    text = text.format(candidate=candidate["model"], active=result["active"]["model"], n=result["n"],
                       auc_c=_num(candidate["auc"]["value"]), auc_a=_num(result["active"]["auc"]["value"]),
                       diff=_num(diff["value"]), low=_num(low), high=_num(high), margin=_num(result["margin"]))
    if result["status"] == FAILED:
        return text + " " + _("The lower end of the interval is below the margin: the candidate may be worse.")
    return text


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def record_activation(ref: registry.ModelRef, gate: dict[str, Any], by: str, override_reason: str | None,
                      previous: str | None = None) -> tuple[Path, str]:
    """Keep who activated which version (replacing ``previous``, the version active before), its gate result
    and any override reason; returns (path, SHA-256).

    The audit log accepts no free text (a reason could name a patient), so its record carries this
    file's SHA-256 instead: the chain then vouches for the reason without holding it.
    """
    now = datetime.now(timezone.utc)
    record = {"model": ref.spec, "activated_by": by, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "gate": gate, "override_reason": override_reason, "previous": previous}
    body = json.dumps(record, indent=2, default=float).encode("utf-8")
    path = activations_dir(ref.name) / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{ref.version}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path, hashlib.sha256(body).hexdigest()


def activations_dir(name: str) -> Path:
    return config.home_models_dir() / name / "activations"


def activations(name: str) -> list[dict[str, Any]]:
    """Every recorded activation of ``name``, oldest first."""
    folder = activations_dir(name)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []
