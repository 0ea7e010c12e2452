"""Which model versions a person may use: approved (active) ones for everyone, the others for research.

Every front end resolves the model a person names through :func:`resolve_model`: the image and risk
pages, the REST API (a key acts with its account's role), the DICOM node (its results reach clinicians,
so it uses approved versions only) and the command line (the server's operator, a researcher's tool).
A version is approved when an administrator activated it (``core.services.activation``) or it is the
newest bundled one; a trained version never is by being registered.
"""

from __future__ import annotations

from core.access import roles
from core.errors import ModelNotApprovedError
from core.i18n import _
from core.models import registry
from core.services import audit

# The DICOM node's results go to the PACS and to clinicians: it may use what a clinician may.
CLINICAL_USE = audit.Actor("dicom-node", "clinician")


def may_use_unapproved(actor: roles.HasRole | None) -> bool:
    """Whether ``actor`` may use versions no administrator activated (researchers, administrators, the OS user)."""
    return audit.allowed(actor, "use-unapproved")  # type: ignore[arg-type]  # an Account has name, role, disabled


def resolve_model(actor: roles.HasRole | None, spec: str | None, kind: str | None = None) -> registry.ModelRef:
    """``NAME``, ``NAME:VERSION`` or None (the default of ``kind``) as ``actor`` may use it.

    Raises:
        ModelNotFoundError: no such model or version, or one of another kind.
        ModelNotApprovedError: ``actor`` may use approved versions only and this one is not, or the
            name has no approved version yet.
    """
    ref = registry.resolve(spec, kind=kind)
    if registry.is_approved(ref) or may_use_unapproved(actor):
        return ref
    approved = registry.approved_version(ref.name)
    raise ModelNotApprovedError(
        _(
            "{spec} is not approved for clinical use: an administrator has not activated it. Use the approved "
            "version {approved}, or ask an administrator to review and activate this one."
        ).format(spec=ref.spec, approved=approved.spec if approved else _("(none yet)"))
    )


def usable_versions(actor: roles.HasRole | None, kind: str) -> list[registry.ModelRef]:
    """The versions of every ``kind`` model that ``actor`` may pick, oldest first per name."""
    research = may_use_unapproved(actor)
    return [
        ref
        for versions in registry.list_models(kind=kind).values()
        for ref in versions
        if research or registry.is_approved(ref)
    ]


def version_label(ref: registry.ModelRef) -> str:
    """``NAME:VERSION`` as a picker shows it: "(active)", or "(not approved)" for every other version."""
    if registry.is_approved(ref):
        return _("{spec} (active)").format(spec=ref.spec)
    return _("{spec} (not approved)").format(spec=ref.spec)
