"""``POST /v1/risk``: one patient as JSON ``{field: value}``, or a CSV upload (form field ``file``);
the answer is a list of CLI.md ``risk`` objects, one per patient (a bad CSV row: ``ok`` false + reason)."""

from __future__ import annotations

import functools
import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.api.auth import Caller, caller_for
from core.api.uploads import display_name, read_upload
from core.errors import InvalidOptionError, InvalidPatientDataError
from core.i18n import _
from core.services import catalog, tabular
from core.services.audit import Actor
from core.services.results import patient_json

router = APIRouter(tags=["risk"])

_VALUE = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": _VALUE,
                    "example": {"Glucose": 148, "BMI": 33.6, "Age": 50},
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}


@functools.lru_cache(maxsize=8)
def _cached(spec: str) -> tabular.RiskPredictor:
    return tabular.load(spec)


def risk_model(spec: str | None, account: Actor) -> tabular.RiskPredictor:
    """A risk model as ``account`` may use it (a clinician: approved versions only, else ModelNotApprovedError,
    a 403), loaded once per worker per version (the active version is looked up on every call)."""
    return _cached(tabular.usable_model(account, spec)[0])


def _patient(body: bytes) -> dict[str, Any]:
    try:
        values = json.loads(body)
    except RecursionError as exc:  # {"a":{"a":...}} thousands deep: the parser's stack, not ours
        raise InvalidPatientDataError(
            _("The request body is JSON nested too deeply; send one patient as a flat object {example}.").format(
                example='{"field": value, ...}'
            )
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPatientDataError(
            _("The request body is not valid JSON ({error}); send one patient as {example}.").format(
                error=exc, example='{"field": value, ...}'
            )
        ) from exc
    if not isinstance(values, dict):
        raise InvalidPatientDataError(
            _("Send one patient as a JSON object {example}, or a CSV file as the form field 'file'.").format(
                example='{"field": value, ...}'
            )
        )
    return values


async def _csv_upload(request: Request) -> tuple[bytes, str]:
    form = await request.form(max_files=1, max_fields=16)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidPatientDataError(_("Send the CSV file as the form field 'file'."))
    data = await run_in_threadpool(read_upload, upload, tabular.csv_limit())
    return data, display_name(upload)


@router.post("/risk", summary="Risk with exact SHAP explanation: one JSON patient or a CSV", openapi_extra=BODY)
async def risk(
    request: Request,
    model: str | None = Query(
        None, description="NAME or NAME:VERSION of a risk model (a clinician's key: approved versions only)."
    ),
    caller: Caller = Depends(caller_for("risk")),
) -> list[dict[str, Any]]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        data, name = await _csv_upload(request)
    elif kind in ("application/json", ""):
        data, name = await request.body(), ""
    else:
        raise InvalidOptionError(
            _("Send application/json (one patient) or multipart/form-data (a CSV file), not {kind}.").format(
                kind=kind[:60]
            )
        )
    caller.hash_input(data)
    patient = None if name else _patient(data)  # a malformed body is refused before any model loads
    predictor = await run_in_threadpool(risk_model, model, caller.account)
    caller.model = predictor.ref.spec
    approved = {"approved": catalog.is_approved(predictor.ref)}  # as the CLI's risk rows say it
    if patient is None:
        rows = await run_in_threadpool(tabular.score_rows_of, data, predictor, name)
        return [row | approved if row["ok"] else row for row in rows]
    return [await run_in_threadpool(patient_json, predictor, patient) | approved]
