"""Errors as JSON ``{"detail": "<the message the CLI gives>"}``: a user's mistake is a 4xx, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    AuthenticationError,
    InvalidExplanationError,
    InvalidOptionError,
    InvalidPatientDataError,
    LucidDxError,
    ModelNotFoundError,
    PermissionDeniedError,
    UnsupportedImageError,
    UploadTooLargeError,
)

log = logging.getLogger("luciddx.api")

# Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[LucidDxError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (ModelNotFoundError, 404),
    (UploadTooLargeError, 413),
    (UnsupportedImageError, 422),
    (InvalidPatientDataError, 422),
    (InvalidExplanationError, 422),
    (InvalidOptionError, 400),
    (LucidDxError, 400),
)


def status_of(exc: LucidDxError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def _luciddx(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LucidDxError)
    code = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


def _validation(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's list of problems, said in one sentence per field like our other messages."""
    assert isinstance(exc, RequestValidationError)
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": "; ".join(parts) or "The request is not valid."}, status_code=422)


def _http(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    """A bug of ours: logged with its traceback on the server, one line to the client (no internals)."""
    log.exception("unexpected error")
    return JSONResponse(
        {"detail": f"LucidDx failed unexpectedly ({type(exc).__name__}). The server log has details."}, status_code=500
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(LucidDxError, _luciddx)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
