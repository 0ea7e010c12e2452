"""The dashboard's own HTTP routes for the session cookie, beside Streamlit's (``server.py`` mounts them).

A Streamlit page talks to the browser over a websocket and cannot set an HTTP cookie, let alone an
HttpOnly one. So after a sign-in the page has the browser post a one-time code here (``POST
/auth/session``), and the answer sets the cookie: HttpOnly (no page script can read it), SameSite=Strict
(no other site's page sends it), Secure over HTTPS, living no longer than the session's absolute limit.
``POST /auth/signout`` ends the session the cookie names and expires the cookie. Both refuse a request
from another origin. They only translate to and from ``core.services.signin``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import LucidDxError
from core.services import signin

log = logging.getLogger(__name__)
MAX_BODY = 1024


def _same_origin(request: Request) -> bool:
    """A browser names the page's origin on a POST; it must be this server (host and port)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request (those always carry Origin on POST)
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "").lower() == "https"


async def _small_body(request: Request) -> bytes | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return body


async def open_cookie(request: Request) -> Response:
    if not _same_origin(request):
        return Response(status_code=403)
    body = await _small_body(request)
    code = parse_qs(body.decode("ascii", "replace")).get("code", [""])[0] if body else ""
    try:
        found = signin.exchange(code)
    except LucidDxError as exc:
        log.error("The session cookie could not be handed over: %s", type(exc).__name__)
        return Response(status_code=503)
    if found is None:
        return Response(status_code=403)
    cookie, session = found
    response = Response(status_code=204)
    response.set_cookie(
        signin.COOKIE_NAME,
        cookie,
        max_age=signin.max_age(session),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def drop_cookie(request: Request) -> Response:
    if not _same_origin(request):
        return Response(status_code=403)
    try:
        signin.end_cookie_session(request.cookies.get(signin.COOKIE_NAME))
    except LucidDxError as exc:
        log.error("A session could not be ended: %s", type(exc).__name__)
    response = Response(status_code=204)
    response.delete_cookie(signin.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


def routes() -> list[Route]:
    return [
        Route("/auth/session", open_cookie, methods=["POST"]),
        Route("/auth/signout", drop_cookie, methods=["POST"]),
    ]
