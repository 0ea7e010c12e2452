"""Tabular risk verbs every front end shares: load a model, score + explain one patient or a CSV, train from a table.

Each verb returns a result or a message, never a traceback: a bad row or field is reported and the
rest goes on. Front ends (``core.cli.tabular``, ``pages/patient_risk.py``) only translate their input
into these calls and the results into their output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import config
from core.access.roles import HasRole
from core.errors import InvalidOptionError, TrainingCancelledError
from core.i18n import N_, _, translated
from core.models import kinds, registry
from core.models.cards import risk_explanations
from core.services import approval
from core.tabular import batch, training
from core.tabular.overrides import Overrides, parse_overrides
from core.tabular.predictor import RiskPredictor, RiskResult, load_risk_model
from core.tabular.schema import FeatureSpec, FieldIssue, Schema
from core.tabular.training import RunOptions

MAX_CSV_MB = batch.MAX_CSV_BYTES // 1024**2
"""The largest patients CSV read, in MB: the upload box states it."""

__all__ = [
    "MAX_CSV_MB",
    "FeatureSpec",
    "FieldIssue",
    "PatientOutcome",
    "RiskPredictor",
    "RiskResult",
    "Schema",
    "export_csv",
    "load",
    "model_choices",
    "model_labels",
    "usable_model",
    "score_csv",
    "score_patient",
    "score_rows_of",
    "top_contributions",
    "train",
]


@dataclass
class PatientOutcome:
    """One patient from a form: the scored result, or the issues that stopped it (warnings ride along either way)."""

    result: RiskResult | None
    issues: list[FieldIssue] = field(default_factory=list)
    clean: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    def issues_by_field(self) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {}
        for issue in self.issues:
            out.setdefault(issue.field, []).append((issue.severity, issue.message))
        return out


def load(spec: str | None = None, actor: HasRole | None = None) -> RiskPredictor:
    """A registered risk model ("NAME" or "NAME:VERSION") as ``actor`` may use it (a clinician: approved
    versions only; None: sign-in switched off). Raises a LucidDxError when missing, not approved or damaged.

    With LUCIDDX_SERVE on, its predictions (risk, interval, exact SHAP) come from a Ray Serve replica that
    holds the version (``core.engine.serving``); this process keeps the schema that checks the form."""
    predictor = load_risk_model(approval.resolve_model(actor, spec, kinds.TABULAR_RISK).spec)
    return ServedRiskPredictor(predictor) if _served() else predictor


def _served() -> bool:
    from core.engine import serving

    return serving.enabled()


def _served_load(spec: str) -> RiskPredictor:
    return load_risk_model(spec)


def _served_predict(
    predictor: RiskPredictor, patients: list[dict[str, Any]], warnings: list[list[str]] | None
) -> list[RiskResult]:
    return predictor.predict(patients, warnings)


# What a Serve replica runs: this module's own functions, so served and in-process patients go through one path.
SERVED_WORK = (_served_load, _served_predict)


class ServedRiskPredictor(RiskPredictor):
    """A risk model version whose predictions a Ray Serve replica makes: the same schema, threshold and
    results as the local predictor it wraps (the replica runs ``RiskPredictor.predict`` on the same version)."""

    def __init__(self, local: RiskPredictor) -> None:  # no super().__init__: a view of an already loaded version
        self.__dict__.update(local.__dict__)

    def predict(
        self, patients: Sequence[Mapping[str, Any]], warnings: Sequence[list[str]] | None = None
    ) -> list[RiskResult]:
        if not patients:
            return []
        from core.engine import serving

        return serving.score_patients(
            self.spec, [dict(p) for p in patients], [list(w) for w in warnings] if warnings else None, SERVED_WORK
        )


def warm_served(spec: str) -> bool:
    """When risk models are served, load ``NAME:VERSION`` in a replica now (an activation). Returns whether it
    did anything."""
    if not _served():
        return False
    from core.engine import serving

    serving.warm_risk(spec, SERVED_WORK)
    return True


def usable_model(actor: HasRole | None, spec: str | None) -> tuple[str, bool]:
    """(``NAME:VERSION``, approved) of the risk model ``spec`` as ``actor`` may use it."""
    ref = approval.resolve_model(actor, spec, kinds.TABULAR_RISK)
    return ref.spec, registry.is_approved(ref)


def model_choices(actor: HasRole | None = None) -> tuple[list[str], int]:
    """The risk model versions ``actor`` may use (a clinician: approved ones only), and the index of the
    default model's active version."""
    refs = approval.usable_versions(actor, kinds.TABULAR_RISK)
    specs = [ref.spec for ref in refs]
    default_name = config.default_model(kinds.TABULAR_RISK)
    approved = [ref.spec for ref in refs if registry.is_approved(ref)]
    preferred = next((s for s in approved if s.partition(":")[0] == default_name), approved[0] if approved else None)
    return specs, specs.index(preferred) if preferred else 0


def model_labels(specs: list[str]) -> dict[str, str]:
    """How a picker names each ``NAME:VERSION``: "(active)" or "(not approved)"."""
    return {spec: approval.version_label(registry.resolve(spec)) for spec in specs}


def score_patient(predictor: RiskPredictor, values: Mapping[str, object]) -> PatientOutcome:
    """Validate and score one patient's form values; errors come back as issues at their fields."""
    clean, issues = predictor.schema.check_patient(values)
    if any(i.severity == "error" for i in issues):
        return PatientOutcome(None, issues)
    result = predictor.predict([clean], [[i.message for i in issues]])[0]
    return PatientOutcome(result, issues, clean)


def kernel_check(predictor: RiskPredictor, result: RiskResult) -> dict[str, Any]:
    """This patient's exact SHAP values checked against KernelSHAP on the same model's log-odds.

    Same settings as the card's measurement (``core.tabular.agreement.Settings``): rank correlation of
    |contribution|, how many of the exact top three KernelSHAP also ranks top three and how many keep their
    sign, the seconds it took, and whether it agrees by the card's limit (rank correlation at least
    ``TRUST_MIN_AGREEMENT``).
    """
    import time

    import numpy as np

    from core.models.cards.risk_explanations import TRUST_MIN_AGREEMENT
    from core.tabular import agreement
    from core.tabular.model import single_threaded

    names = predictor.schema.names
    X = predictor.schema.to_matrix([result.values])
    started = time.perf_counter()
    with single_threaded():
        kernel = agreement.kernel_contributions(predictor.model, X, agreement.Settings())[0]
    seconds = time.perf_counter() - started
    found = agreement.compare(np.array([result.contributions[n] for n in names]), kernel)
    top = min(agreement.TOP_K, len(names))
    return {
        **found,
        "top": top,
        "shared": int(round(found["top_overlap"] * top)),
        "same_sign": int(round(found["top_sign_agreement"] * top)),
        "seconds": seconds,
        "agrees": found["rank_corr"] >= TRUST_MIN_AGREEMENT,
    }


def csv_limit() -> int:
    """The largest CSV of patients LucidDx reads, in bytes (read at call time)."""
    return batch.MAX_CSV_BYTES


def score_rows_of(source: Path | bytes | str, predictor: RiskPredictor, name: str = "") -> list[dict[str, Any]]:
    """Score a CSV (path, or an upload's bytes) with a loaded model: one CLI.md result per data row.

    Raises InvalidPatientDataError when the file is unreadable or lacks a feature column.
    """
    _header, rows = batch.read_patient_csv(source, predictor.schema, name)
    return batch.score_rows(rows, predictor)


def score_csv(source: Path | bytes | str, model_spec: str | None = None, name: str = "") -> list[dict[str, Any]]:
    """Score every patient in a CSV with a registered model. Bad rows are reported, good rows still scored.

    With LUCIDDX_SERVE on, the rows go to the replica holding the version, as the form's patients do."""
    predictor = load_risk_model(model_spec)
    return score_rows_of(source, ServedRiskPredictor(predictor) if _served() else predictor, name)


def batch_table(results: Sequence[Mapping[str, Any]], predictor: RiskPredictor | None = None) -> list[dict[str, Any]]:
    """The batch as flat rows, each naming the model version and threshold (``predictor``'s for unscored rows)."""
    return batch.batch_table(
        results, model=predictor.spec if predictor else None, threshold=predictor.threshold if predictor else None
    )


def export_csv(results: Sequence[Mapping[str, Any]], predictor: RiskPredictor) -> str:
    """The results as CSV text for download, safe to open in a spreadsheet."""
    return batch.batch_csv(results, predictor.schema.names, predictor.spec, predictor.threshold)


def top_contributions(contributions: Mapping[str, float], top: int = 3) -> list[tuple[str, float]]:
    return sorted(contributions.items(), key=lambda kv: -abs(kv[1]))[:top]


def train(
    csv_path: Path,
    name: str,
    target: str | None = None,
    positive: str | None = None,
    command: str = "",
    activate: bool = False,
    progress: Callable[[str], None] | None = None,
    run: RunOptions | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train and register a risk model version from a labelled table (see ``core.tabular.training``)."""
    return training.train_risk_model(
        Path(csv_path),
        name,
        target=target,
        positive=positive,
        command=command,
        activate=activate,
        progress=progress,
        options=run,
        **options,
    )


def run_options(overrides_file: str | None, data_label: str | None, channel: Any = None) -> RunOptions:
    """A training run's options from the command line: the overrides JSON file, the data's label, a job channel.

    With a channel, every step is written as a progress event and a requested cancel stops the run.
    Raises InvalidOptionError when the overrides file is unreadable.
    """
    overrides = Overrides()
    if overrides_file:
        try:
            overrides = parse_overrides(json.loads(Path(overrides_file).read_text()))
        except (OSError, ValueError) as exc:
            raise InvalidOptionError(
                _("{file}: not a readable overrides JSON file ({reason}).").format(file=overrides_file, reason=exc)
            ) from exc

    def events(event: dict[str, Any]) -> None:
        channel.write(event)
        if channel.cancelled():
            raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))

    return RunOptions(overrides, data_label, events if channel is not None else None)


# The bundled risk models' outcomes, named here so the translation catalog carries them.
BUNDLED_OUTCOMES = (N_("diabetes"), N_("thyroid dysfunction"), N_("hypertension"))
_YES = {"yes", "y", "1", "true", "positive"}


def outcome_name(predictor: RiskPredictor) -> str:
    """What the risk is of, in the reader's language: the positive class, or the model's name when the
    class is only "Yes"/"1" (hypertension_risk -> "hypertension")."""
    positive = str(predictor.schema.positive_class)
    name = predictor.ref.name.removesuffix("_risk").replace("_", " ") if positive.strip().lower() in _YES else positive
    return translated(name) or name


FAMILY_NAMES = {
    "logistic": N_("logistic regression"),
    "spline_logistic": N_("spline logistic regression (GAM-like)"),
    "gradient_boosting": N_("gradient boosting"),
}


def family_name(family: str) -> str:
    """A model family as a reader sees it, in their language (the code stays in meta.json)."""
    return _(FAMILY_NAMES[family]) if family in FAMILY_NAMES else family


def explainer_name(explainer: str) -> str:
    """The stored explainer's description in the reader's language (an unknown one as written)."""
    return risk_explanations.explainer_name(explainer)
