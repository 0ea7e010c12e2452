"""How a result looks outside ``core``: the one JSON shape of a prediction (CLI.md "predict").

The CLI's ``predict --json`` and the REST API's ``POST /v1/predict`` both call :func:`prediction_json`,
so the two can never drift apart.
"""

from __future__ import annotations

from typing import Any

from core.services.imaging import FileResult


def prediction_json(name: str, result: FileResult) -> dict[str, Any]:
    """The contract's object for one file: ``file``, ``ok``, ``error`` and, when ok, the prediction's fields."""
    if result.ok and result.prediction is not None:
        return {"file": name, "ok": True, "error": None, **result.prediction.as_dict()}
    return {"file": name, "ok": False, "error": result.error}
