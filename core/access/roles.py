"""Roles and what each may do: ``clinician`` < ``researcher`` < ``admin``; a higher role may do all a
lower one may. One table maps every action to the least role that may perform it."""

from __future__ import annotations

from typing import Protocol

from core.errors import PermissionDeniedError
from core.i18n import N_, _

ROLES = ("clinician", "researcher", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}

# action -> the least role allowed to do it. Front ends name these actions in require() and in the audit log.
PERMISSIONS: dict[str, str] = {
    # reading a case and its explanation
    "predict": "clinician",
    "explain": "clinician",
    "risk": "clinician",
    "cards": "clinician",
    "report": "clinician",
    "worklist": "clinician",
    # measuring and building models, preparing data
    "evaluate": "researcher",
    "validate": "researcher",
    "train": "researcher",
    "train-risk": "researcher",
    "deidentify": "researcher",
    "use-unapproved": "researcher",
    # running the installation
    "users": "admin",
    "apikeys": "admin",
    "activate": "admin",
    "rollback": "admin",
    "delete": "admin",
    "threshold": "admin",
    "audit": "admin",
    "eval-set": "admin",
}


# What each action and role is called where a person reads it (the codes above stay in logs and JSON).
ACTION_NAMES = {
    "predict": N_("Predicting on images"),
    "explain": N_("Explaining a prediction"),
    "risk": N_("Scoring patient risk"),
    "cards": N_("Reading model cards"),
    "report": N_("Case reports"),
    "worklist": N_("The DICOM worklist"),
    "evaluate": N_("Evaluating a model"),
    "validate": N_("Site validation"),
    "train": N_("Training models"),
    "train-risk": N_("Training risk models"),
    "deidentify": N_("De-identifying DICOM"),
    "use-unapproved": N_("Using model versions not approved for clinical use"),
    "users": N_("Managing accounts"),
    "apikeys": N_("Managing API keys"),
    "activate": N_("Activating model versions"),
    "rollback": N_("Rolling back models"),
    "delete": N_("Deleting model versions"),
    "threshold": N_("Changing thresholds"),
    "audit": N_("Reading the audit log"),
    "eval-set": N_("Locking evaluation sets"),
}
ROLE_NAMES = {"clinician": N_("clinician"), "researcher": N_("researcher"), "admin": N_("administrator")}


def action_name(action: str) -> str:
    return _(ACTION_NAMES.get(action, action))


def role_name(role: str) -> str:
    return _(ROLE_NAMES.get(role, role))


class HasRole(Protocol):
    """Anyone with a name and a role (an account, an API key's actor): read-only, as frozen dataclasses are."""

    @property
    def name(self) -> str: ...

    @property
    def role(self) -> str: ...


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`; raises ValueError naming the choices otherwise."""
    if role not in RANK:
        raise ValueError(_("Unknown role {role!r}: choose one of {roles}.").format(role=role, roles=", ".join(ROLES)))
    return role


def allowed(role: str, action: str) -> bool:
    """Whether ``role`` may perform ``action``. Unknown actions are a programming error (ValueError)."""
    if action not in PERMISSIONS:
        raise ValueError(f"unknown action {action!r}; add it to core.access.roles.PERMISSIONS")
    return role in RANK and RANK[role] >= RANK[PERMISSIONS[action]]


def require(user: HasRole | None, action: str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``user`` is signed in, enabled and allowed ``action``."""
    if user is None:
        raise PermissionDeniedError(_("Sign in first: {action} needs an account.").format(action=action_name(action)))
    if getattr(user, "disabled", False):
        raise PermissionDeniedError(
            _("The account {name} is disabled; ask an administrator to enable it.").format(name=user.name)
        )
    if not allowed(user.role, action):
        raise PermissionDeniedError(
            _("{action} needs the {needed} role; {name} is a {role}. Ask an administrator if you need it.").format(
                action=action_name(action),
                needed=role_name(PERMISSIONS[action]),
                name=user.name,
                role=role_name(user.role),
            )
        )


def actions_for(role: str) -> list[str]:
    """Every action ``role`` may perform, in table order."""
    return [action for action in PERMISSIONS if allowed(role, action)]
