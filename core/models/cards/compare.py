"""Compare two versions of a model on their stored evaluation predictions."""

from __future__ import annotations

from typing import Any

from core.i18n import _
from core.models import metrics, registry
from core.models.cards.build import load_predictions


def compare_versions(ref_a: registry.ModelRef | str, ref_b: registry.ModelRef | str) -> dict[str, Any]:
    """Metric deltas (b - a) with 95% bootstrap intervals between two versions' stored predictions."""
    refs = [registry.resolve(r) if isinstance(r, str) else r for r in (ref_a, ref_b)]
    sides = []
    for ref in refs:
        preds = load_predictions(ref.path)
        classes = list(ref.meta["classes"])
        positive = classes.index(ref.meta["positive_class"]) if ref.meta.get("positive_class") in classes else None
        sides.append({**preds, "positive": positive, "threshold": ref.meta.get("threshold")})
    deltas = metrics.delta_with_ci(sides[0], sides[1])
    return {"a": refs[0].spec, "b": refs[1].spec, "deltas": deltas,
            "method": _("b - a; 95% percentile bootstrap of the difference, {resamples} resamples").format(
                resamples=metrics.DEFAULT_RESAMPLES)}
