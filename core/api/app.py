"""The REST service: ``create_app()`` builds the FastAPI application (routers per resource, API-key
auth and audit as a dependency, one error handler), served by ``python -m core serve-api``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from core.api.catalog import router as models_router
from core.api.docs import render as render_docs
from core.api.errors import install as install_error_handlers
from core.api.imaging import router as images_router
from core.api.limits import BodyGuard
from core.api.risk import router as risk_router

API_VERSION = "1"
DESCRIPTION = (
    "LucidDx over HTTP: predict and explain chest films, score patients' risk with exact SHAP, read "
    "model cards, make PDF case reports. AI results are decision support only, not for diagnosis."
)


def health() -> dict[str, str]:
    """No key needed, no secrets: whether the service answers."""
    return {"status": "ok", "service": "luciddx", "api_version": API_VERSION}


def create_app() -> FastAPI:
    """A new application; models load on first use and stay loaded for the worker's life."""
    app = FastAPI(
        title="LucidDx API",
        version=API_VERSION,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    install_error_handlers(app)
    # Plain ASGI, not @app.middleware("http"): that one reads the body in a task group of its own, which
    # would turn a mid-stream 413 into a 400. BodyGuard also sets the language of every answer.
    app.add_middleware(BodyGuard)
    routers = (images_router, risk_router, models_router)
    for router in routers:
        app.include_router(router, prefix="/v1")
    app.state.audited_routers = [("/v1", router) for router in routers]  # the action of a refusal (auth.py)
    app.get("/v1/health", tags=["service"], summary="Liveness (no API key)")(health)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def documentation() -> str:
        return render_docs(app.openapi())

    return app
