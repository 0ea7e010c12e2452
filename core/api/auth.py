"""Who is calling: ``Authorization: Bearer <api key>`` -> an account, its role checked per route, and
every call recorded in the audit log (user, role, action, model, SHA-256 of the input, outcome).

A route asks for ``caller = Depends(caller_for("predict"))``; it sets ``caller.model`` and
``caller.input_sha256`` as it learns them, and the outcome is recorded when the route returns or raises:
``ok``; ``bad-input`` for a LucidDxError (the file or fields were read and refused, as the pages record it);
``refused`` for a request turned away before its content was judged (FastAPI's 422 validation, an upload
over the size limit -- also when the middleware refuses it unread, :func:`record_refusal`); ``failed`` for
anything else (an error of ours); ``denied`` for no valid key or a role below the action. The input is
named only by its SHA-256, never by a file name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.errors import AuthenticationError, LucidDxError, UploadTooLargeError
from core.i18n import _
from core.services import audit
from core.services.audit import Actor

log = logging.getLogger("luciddx.api")
bearer = HTTPBearer(auto_error=False, description="An API key: `python -m core apikeys create --user NAME`.")


@dataclass
class Caller:
    """The account behind one request's key and what the audit record will say about it."""

    account: Actor
    action: str
    model: str | None = None
    input_sha256: str | None = None

    def hash_input(self, data: bytes) -> str:
        self.input_sha256 = audit.sha256_of(data)
        return self.input_sha256


def authenticate(credentials: HTTPAuthorizationCredentials | None) -> Actor:
    """The enabled account of a bearer key; AuthenticationError (401) when missing or not valid."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise AuthenticationError(
            _(
                "An API key is required: send the header 'Authorization: Bearer <api key>'. "
                "An administrator creates one with 'python -m core apikeys create --user NAME'."
            )
        )
    return audit.actor_for_key(credentials.credentials)


def caller_for(action: str) -> Callable[..., Iterator[Caller]]:
    """A dependency that authenticates, checks ``action`` against the role, and audits the call."""
    audit.check_action(action)  # an unknown action is a programming error, found at import

    def dependency(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Iterator[Caller]:
        try:
            account = authenticate(credentials)
        except AuthenticationError:
            audit.denied(None, action)
            raise
        # Authorized (a refusal recorded as "denied"), run and recorded by the services' one audited context.
        with audit.acting(account, action, refusals=(RequestValidationError, UploadTooLargeError)) as act:
            caller = Caller(account, action)
            try:
                yield caller
            finally:
                act.model, act.digest = caller.model, caller.input_sha256

    dependency.luciddx_action = action  # type: ignore[attr-defined]  # read by record_refusal
    return dependency


def _action_of(request: Request) -> str:
    """The audit action of the route ``request`` is for (its caller_for dependency), else "request".

    ``app.state.audited_routers``: the (prefix, router) pairs ``create_app`` included.
    """
    path = request.url.path
    for prefix, router in getattr(request.app.state, "audited_routers", ()):
        if not path.startswith(prefix):
            continue
        for route in router.routes:
            regex, methods = getattr(route, "path_regex", None), getattr(route, "methods", None) or ()
            if regex is None or not regex.match(path[len(prefix) :]) or request.method not in methods:
                continue
            for dependency in route.dependant.dependencies:
                action = getattr(dependency.call, "luciddx_action", None)
                if action:
                    return action
    return "request"


def record_refusal(request: Request, outcome: str = "refused") -> None:
    """Audit a request the middleware turns away before any route runs (a body over the size limit): its
    route's action, and the key's account when the header names a valid one (headers only; no body is read)."""
    credentials = None
    scheme, _sep, token = request.headers.get("authorization", "").partition(" ")
    if token.strip():
        credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
    try:
        try:
            actor = authenticate(credentials)
        except AuthenticationError:
            actor = None  # recorded as "anonymous"
        (audit.refused if outcome == "refused" else audit.denied)(actor, _action_of(request))
    except LucidDxError as exc:  # the store being down must not turn a 413 into a 500
        log.error("the refusal could not be recorded in the audit log: %s", type(exc).__name__)
