"""The REST service: ``create_app()`` builds the FastAPI application (routers per resource, API-key
auth and audit as a dependency, one error handler), served by ``python -m core serve-api``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from core import i18n
from core.api.catalog import router as models_router
from core.api.auth import record_refusal
from core.api.docs import render as render_docs
from core.api.errors import install as install_error_handlers
from core.api.imaging import router as images_router
from core.api.risk import router as risk_router
from core.api.uploads import MAX_BYTES
from core.i18n import _

API_VERSION = "1"
DESCRIPTION = ("LucidDx over HTTP: predict and explain chest films, score patients' risk with exact SHAP, read "
               "model cards, make PDF case reports. AI results are decision support only, not for diagnosis.")
FORM_OVERHEAD = 1024**2  # multipart boundaries and headers around a file at the size limit


async def _language_and_size(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Messages in the caller's ``Accept-Language``; a body announced over the upload limit is refused unread."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BYTES + FORM_OVERHEAD:
        await run_in_threadpool(record_refusal, request)  # the database and the key check block: off the loop
        return JSONResponse({"detail": _("The upload is larger than the {limit} MB limit; export a single image, or a "
                                         "smaller or compressed copy.").format(limit=MAX_BYTES // 1024**2)},
                            status_code=413)
    with i18n.using(i18n.negotiate(request.headers.get("accept-language"))):
        return await call_next(request)


def health() -> dict[str, str]:
    """No key needed, no secrets: whether the service answers."""
    return {"status": "ok", "service": "luciddx", "api_version": API_VERSION}


def create_app() -> FastAPI:
    """A new application; models load on first use and stay loaded for the worker's life."""
    app = FastAPI(title="LucidDx API", version=API_VERSION, description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json")
    install_error_handlers(app)
    app.middleware("http")(_language_and_size)
    routers = (images_router, risk_router, models_router)
    for router in routers:
        app.include_router(router, prefix="/v1")
    app.state.audited_routers = [("/v1", router) for router in routers]  # the action of a refusal (auth.py)
    app.get("/v1/health", tags=["service"], summary="Liveness (no API key)")(health)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def documentation() -> str:
        return render_docs(app.openapi())

    return app
