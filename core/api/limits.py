"""The guard in front of every request body: the API key first, then the body's bytes counted as they arrive.

FastAPI parses a multipart form (spooling files to temporary disk) before any route dependency runs, so
the key cannot be checked there without reading the upload first. :class:`BodyGuard` is a plain ASGI
middleware that answers 401/403 before one byte of the body is read, then counts the body as it streams,
with ``Content-Length`` or ``Transfer-Encoding: chunked`` alike, and refuses with 413 and the route's
limit as soon as the count passes it.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import i18n
from core.api.errors import status_of
from core.api.uploads import upload_limit
from core.errors import AuthenticationError, LucidDxError
from core.i18n import _
from core.services import audit
from core.services.tabular import csv_limit

FORM_OVERHEAD = 1024**2  # multipart boundaries and headers around a file at the size limit
MAX_JSON_BYTES = 1024**2
"""One patient as JSON is a few hundred bytes; anything past a megabyte is not a patient."""
PUBLIC_PATHS = ("/v1/health",)
_NO_BODY = ("GET", "HEAD", "OPTIONS")

log = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """A body past its limit: raised from ``receive`` so that whoever is reading it stops there."""

    def __init__(self, message: str) -> None:
        super().__init__(status_code=413, detail=message)


def body_limit(path: str, content_type: str) -> tuple[int, str]:
    """(the most bytes a body to ``path`` may have, the message that refuses one past it)."""
    if path.rstrip("/").endswith("/risk"):
        if content_type.startswith("multipart/"):
            limit = csv_limit()
            return limit + FORM_OVERHEAD, _(
                "The CSV upload is larger than the {limit} MB limit; split it into smaller files."
            ).format(limit=limit // 1024**2)
        return MAX_JSON_BYTES, _(
            "The request body is larger than the {limit} KB limit for one patient; send one "
            "patient as a JSON object, or many as a CSV file."
        ).format(limit=MAX_JSON_BYTES // 1024)
    limit = upload_limit()
    return limit + FORM_OVERHEAD, _(
        "The upload is larger than the {limit} MB limit; export a single image, or a smaller or compressed copy."
    ).format(limit=limit // 1024**2)


def _action(path: str) -> str | None:
    """The audited action of a ``/v1/<action>`` route, or None for a path that names none."""
    action = path.rstrip("/").rsplit("/", 1)[-1]
    return action if audit.known_action(action) else None


def _record_too_large(headers: Headers, action: str | None) -> None:
    """Audit a body refused for its size: the route's action and the (already authenticated) key's account."""
    if not action:
        return
    try:
        actor = audit.actor_for_key(headers.get("authorization", "").partition(" ")[2].strip())
        audit.refused(actor, action)
    except LucidDxError as exc:  # the store being down must not turn a 413 into a 500; it is logged
        log.error("the 413 refusal could not be recorded in the audit log: %s", type(exc).__name__)


def _check_caller(headers: Headers, action: str | None) -> None:
    """Authenticate the bearer key (and the role, where the route's action is known); audit a refusal."""
    scheme, _space, key = headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationError(
                _(
                    "An API key is required: send the header 'Authorization: Bearer <api key>'. "
                    "An administrator creates one with 'python -m core apikeys create --user NAME'."
                )
            )
        actor = audit.actor_for_key(key.strip())
    except AuthenticationError:
        if action:
            audit.denied(None, action)  # no key, no account: recorded as anonymous
        raise
    if action:
        audit.authorize(actor, action)  # a refusal is recorded as denied there


class BodyGuard:
    """ASGI middleware: the caller's language; key before body; body bytes counted as they stream (module text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        with i18n.using(i18n.negotiate(headers.get("accept-language"))):  # every answer in the caller's language
            if scope["method"] in _NO_BODY or scope["path"] in PUBLIC_PATHS:
                await self.app(scope, receive, send)
            else:
                await self._guarded(scope, receive, send, headers)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        try:
            await run_in_threadpool(_check_caller, headers, _action(scope["path"]))
        except LucidDxError as exc:
            code = status_of(exc)
            extra = {"WWW-Authenticate": "Bearer"} if code == 401 else None
            await JSONResponse({"detail": str(exc)}, status_code=code, headers=extra)(scope, receive, send)
            return
        limit, message = body_limit(scope["path"], headers.get("content-type", "").lower())
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await run_in_threadpool(_record_too_large, headers, _action(scope["path"]))
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        counted = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal counted
            message_in = await receive()
            if message_in["type"] == "http.request":
                counted += len(message_in.get("body", b""))
                if counted > limit:
                    raise BodyTooLarge(message)
            return message_in

        async def watching_send(message_out: Message) -> None:
            nonlocal started
            started = started or message_out["type"] == "http.response.start"
            await send(message_out)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as exc:  # read outside a route (a middleware): answer here, if nothing was sent yet
            if started:
                raise
            await run_in_threadpool(_record_too_large, headers, _action(scope["path"]))
            await JSONResponse({"detail": exc.detail}, status_code=413)(scope, receive, send)
