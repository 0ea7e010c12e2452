"""Model routes: ``GET /v1/models`` and ``GET /v1/models/{name}/card`` (json, or ``?format=md``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse, Response

from core.api.auth import Caller, caller_for
from core.services import catalog

router = APIRouter(tags=["models"])


@router.get("/models", summary="Every registered model version")
def models(caller: Caller = Depends(caller_for("cards"))) -> list[dict[str, Any]]:
    """Like ``python -m core models --json``: model (NAME:VERSION), kind, bundled, active, approved, created.

    Only the active version is approved: a clinician's key can use no other (403)."""
    return catalog.model_listing()


@router.get(
    "/models/{name}/card",
    summary="A model's card (JSON, or Markdown with format=md)",
    responses={200: {"content": {"application/json": {}, "text/markdown": {}}}},
)
def card(
    name: str = Path(..., description="NAME (its active version) or NAME:VERSION."),
    format: Literal["json", "md"] = Query("json"),
    caller: Caller = Depends(caller_for("cards")),
) -> Response:
    found = catalog.card_document(name)
    details = found["model_details"]
    caller.model = f"{details['name']}:{details['version']}"
    if format == "md":
        return PlainTextResponse(catalog.card_text(found, "md"), media_type="text/markdown; charset=utf-8")
    return Response(catalog.card_text(found, "json"), media_type="application/json")
