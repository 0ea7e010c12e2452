"""Who is calling: ``Authorization: Bearer <api key>`` -> an account, its role checked per route, and
every call recorded in the audit log (user, role, action, model, SHA-256 of the input, outcome).

A route asks for ``caller = Depends(caller_for("predict"))``; it sets ``caller.model`` and
``caller.input_sha256`` as it learns them, and the outcome is recorded when the route returns or raises:
``ok``; ``bad-input`` for a LucidDxError (the request or file was refused, as the pages record it);
``failed`` for anything else; ``denied`` for no valid key or a role below the action. The input is named
only by its SHA-256, never by a file name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from core.services import audit
from core.services.audit import Actor
from core.errors import AuthenticationError, LucidDxError, PermissionDeniedError
from core.i18n import _

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
        raise AuthenticationError(_("An API key is required: send the header 'Authorization: Bearer <api key>'. "
                                    "An administrator creates one with 'python -m core apikeys create --user NAME'."))
    return audit.actor_for_key(credentials.credentials)


def caller_for(action: str) -> Callable[..., Iterator[Caller]]:
    """A dependency that authenticates, checks ``action`` against the role, and audits the call."""
    audit.check_action(action)  # an unknown action is a programming error, found at import

    def dependency(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Iterator[Caller]:
        try:
            account = authenticate(credentials)
        except AuthenticationError:
            audit.record(None, action, outcome="denied")
            raise
        try:
            audit.authorize(account, action)
        except PermissionDeniedError:
            audit.record(account, action, outcome="denied")
            raise
        caller = Caller(account, action)
        outcome = "failed"  # a bug of ours, unless the route returns or refuses the input
        try:
            yield caller
            outcome = "ok"
        except LucidDxError:
            outcome = "bad-input"
            raise
        finally:
            audit.record(account, action, model=caller.model, digest=caller.input_sha256, outcome=outcome)

    return dependency
