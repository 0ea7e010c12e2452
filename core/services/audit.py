"""Who acts, whether they may, and the audit record of what they did: one place for every front end.

A front end names the actor (a signed-in account, an API key's account, or the operating-system user
who runs the command line) and calls :func:`authorize` before an action and :func:`record` after it.
The record holds the SHA-256 of the input bytes, never a file name or a patient field.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.access import apikeys, audit, roles
from core.access.accounts import Account
from core.errors import LucidDxError, PermissionDeniedError

log = logging.getLogger(__name__)

OS_ROLE = "os-user"


@dataclass(frozen=True)
class Actor:
    """Who acts: ``name`` and ``role`` (a role of :data:`core.access.roles.ROLES`, or ``os-user``)."""

    name: str
    role: str
    disabled: bool = False


# Anyone who acts: an API key's, the command line's or the DICOM node's actor, or a signed-in account.
Who = Actor | Account


def os_user() -> str:
    """The operating-system user, in the characters an audit record accepts."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name (a container without an /etc/passwd entry)
        name = "unknown"
    return re.sub(r"[^A-Za-z0-9._@-]", "_", name)[:64] or "unknown"


def actor_for_key(key: str) -> Actor:
    """The enabled account an API key belongs to, as an actor; AuthenticationError (401) otherwise."""
    account = apikeys.authenticate(key)
    return Actor(account.name, account.role, account.disabled)


def check_action(action: str) -> None:
    """ValueError for an action no role knows (a programming error, found where a route is declared)."""
    roles.allowed("clinician", action)


def known_action(action: str) -> bool:
    """Whether ``action`` is one the role table knows (a route's last path segment may name none)."""
    return action in roles.PERMISSIONS


def sha256_of(data: bytes) -> str:
    """The SHA-256 an audit record names an input by (never its file name)."""
    return audit.sha256_of(data)


def os_actor() -> Actor:
    """The command line's actor: whoever runs it already holds the machine's files and models."""
    return Actor(os_user(), OS_ROLE)


def command_actor() -> Actor:
    """Who a command acts for: the person who started it from the dashboard (a training job runs the command
    line for them, and says so in ``LUCIDDX_JOB_ACTOR``), else the operating-system user who runs it."""
    from core.jobs.runner import JOB_ACTOR_ENV

    name, _sep, role = os.environ.get(JOB_ACTOR_ENV, "").partition(":")
    if name and role in roles.ROLES and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", name):
        return Actor(name, role)
    return os_actor()


def started_by(actor: Who | None) -> tuple[str, str] | None:
    """(name, role) a job carries for ``actor`` (None: sign-in off, the job is the OS user's)."""
    return None if actor is None else (actor.name, actor.role)


def allowed(actor: Who | None, action: str) -> bool:
    """Whether ``actor`` may do ``action``: a question (what to offer), never recorded; see :func:`authorize`."""
    if actor is None or actor.role == OS_ROLE:
        return True
    return not getattr(actor, "disabled", False) and roles.allowed(actor.role, action)


def authorize(actor: Who | None, action: str) -> None:
    """Raise PermissionDeniedError unless ``actor`` may do ``action``, after recording the refusal as
    ``denied``; the OS user may do everything.

    ``None`` means sign-in is switched off (development only): nothing is checked.
    """
    if actor is None or actor.role == OS_ROLE:
        return
    try:
        roles.require(actor, action)
    except PermissionDeniedError:
        audit.record(actor.name, actor.role, action, outcome="denied")
        raise


def record(
    actor: Who | None,
    action: str,
    *,
    model: str | None = None,
    data: bytes | None = None,
    outcome: str = "ok",
    digest: str | None = None,
) -> None:
    """Append one audit record for ``actor`` (``None``: sign-in off, recorded as ``anonymous``).

    ``data``: the input bytes, recorded by their SHA-256; or ``digest``: a SHA-256 already computed.
    """
    name, role = (actor.name, actor.role) if actor is not None else ("anonymous", "none")
    digest = audit.sha256_of(data) if data is not None else digest
    audit.record(name, role, action, model=model, input_sha256=digest, outcome=outcome)


@dataclass
class Acting:
    """One action under way (see :func:`acting`): what it acts on, and how it ended if not plainly "ok"."""

    actor: Who | None
    action: str
    model: str | None = None
    digest: str | None = None
    outcome: str = "ok"
    refusals: tuple[type[BaseException], ...] = field(default=())

    def input(self, data: bytes) -> str:
        """Name the input by its SHA-256 (never its file name); returns the digest."""
        self.digest = sha256_of(data)
        return self.digest


@contextmanager
def acting(
    actor: Who | None,
    action: str,
    *,
    model: str | None = None,
    data: bytes | None = None,
    refusals: tuple[type[BaseException], ...] = (),
) -> Iterator[Acting]:
    """The one way a front end performs an audited action: authorize (a refusal is recorded as denied), run
    the block, then record one outcome: "ok" (or what the block set), "refused" for ``refusals``,
    "bad-input" for our own errors, "failed" for anything else (a bug of ours). A record that cannot be
    written raises (AccessStoreError): the caller shows it; it is never dropped.
    """
    authorize(actor, action)
    act = Acting(actor, action, model, sha256_of(data) if data is not None else None, refusals=refusals)
    outcome = "failed"
    try:
        yield act
        outcome = act.outcome
    except BaseException as exc:
        if refusals and isinstance(exc, refusals):
            outcome = "refused"
        elif isinstance(exc, LucidDxError):
            outcome = "bad-input"
        raise
    finally:
        record(actor, action, model=act.model, digest=act.digest, outcome=outcome)


def downloaded(actor: Who | None, action: str, model: str | None = None, data: bytes | None = None) -> None:
    """A download button was used (export, report, heatmap, de-identified file): recorded as done."""
    record(actor, action, model=model, data=data)


def denied(actor: Who | None, action: str) -> None:
    """A request turned away before it could act (no valid key: ``actor`` None, recorded as anonymous)."""
    record(actor, action, outcome="denied")


def refused(actor: Who | None, action: str) -> None:
    """A request refused for its input before it ran (a body over its size limit)."""
    record(actor, action, outcome="refused")


def instance_received(sender: str, role: str, action: str, model: str | None, digest: str | None, outcome: str) -> None:
    """The DICOM node's record of one received instance (the sender's AE title acts); a failing audit store
    is logged, never fatal to the node: the instance's own row in the node's index keeps its outcome."""
    try:
        record(Actor(sender, role), action, model=model, digest=digest, outcome=outcome)
    except (LucidDxError, ValueError) as exc:
        log.error("audit record of a received instance failed: %s", type(exc).__name__)


def command_finished(actor: Who, action: str, model: str | None, data: bytes | None, outcome: str) -> None:
    """The command line's record of one input of a finished command (raises if it cannot be written)."""
    record(actor, action, model=model, data=data, outcome=outcome)
