"""How a result looks outside ``core``: the one JSON shape of a prediction and of a scored patient
(CLI.md "predict", "risk").

The CLI's ``predict --json`` and the REST API's ``POST /v1/predict`` both call :func:`prediction_json`;
``POST /v1/risk`` with one patient calls :func:`patient_json`, whose object is a CSV row's (``core.tabular.batch``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.errors import InvalidPatientDataError
from core.services import tabular
from core.services.imaging import FileResult
from core.tabular import batch
from core.tabular.predictor import RiskPredictor


def prediction_json(name: str, result: FileResult) -> dict[str, Any]:
    """The contract's object for one file: ``file``, ``ok``, ``error`` and, when ok, the prediction's fields."""
    if result.ok and result.prediction is not None:
        return {"file": name, "ok": True, "error": None, **result.prediction.as_dict()}
    return {"file": name, "ok": False, "error": result.error}


def patient_json(predictor: RiskPredictor, values: Mapping[str, object]) -> dict[str, Any]:
    """One patient's form values scored as the CLI.md ``risk`` object (row 1).

    Raises:
        InvalidPatientDataError: a field is missing, not a number, or impossible (every such field named).
    """
    outcome = tabular.score_patient(predictor, values)
    if outcome.result is None:
        raise InvalidPatientDataError(" ".join(issue.message for issue in outcome.issues if issue.severity == "error"))
    return batch.row_result(1, outcome.result)
