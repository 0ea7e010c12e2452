"""Optional OIDC single sign-on: which hospital identity maps to which local account.

Off unless ``LUCIDDX_SSO=oidc`` and an ``[auth]`` section (Streamlit's ``st.login`` settings) exists in
``.streamlit/secrets.toml``. The identity provider only proves who a person is; what they may do stays
here: the verified e-mail, else the subject, must name an existing, enabled local account, whose role
comes from our database. Anyone else is refused (and the front end audits a failed login).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.access import accounts
from core.errors import AuthenticationError
from core.i18n import _

MODE_VARIABLE = "LUCIDDX_SSO"
PROVIDER_VARIABLE = "LUCIDDX_SSO_PROVIDER"


def requested() -> bool:
    """Whether the administrator switched SSO on (``LUCIDDX_SSO=oidc``)."""
    return os.environ.get(MODE_VARIABLE, "").strip().lower() == "oidc"


def configured(auth_section: Mapping[str, object] | None, library_present: bool) -> bool:
    """SSO is offered only when asked for, with Streamlit's ``[auth]`` settings and Authlib installed."""
    if not requested() or not auth_section or not library_present:
        return False
    return bool(auth_section.get("redirect_uri")) and bool(auth_section.get("cookie_secret"))


def provider() -> str | None:
    """The ``[auth.<provider>]`` to use (``LUCIDDX_SSO_PROVIDER``), or None for a single unnamed one."""
    return os.environ.get(PROVIDER_VARIABLE, "").strip() or None


def candidate_names(claims: Mapping[str, object]) -> list[str]:
    """Local account names the identity may map to: the verified e-mail (lower case), then the subject."""
    names = []
    email = str(claims.get("email") or "").strip().lower()
    if email and claims.get("email_verified", True) is not False:
        names.append(email)
    subject = str(claims.get("sub") or "").strip()
    if subject:
        names.append(subject)
    return [n for n in names if accounts.NAME_PATTERN.match(n)]


def account_for(claims: Mapping[str, object]) -> accounts.Account:
    """The enabled local account of a signed-in hospital identity.

    Raises:
        AuthenticationError: no local account has that e-mail or subject as its name, or it is disabled.
    """
    for name in candidate_names(claims):
        account = accounts.find(name)
        if account is not None and not account.disabled:
            return account
        if account is not None:
            raise AuthenticationError(
                _("The account {name} is disabled; ask an administrator to enable it.").format(name=account.name)
            )
    raise AuthenticationError(
        _(
            "Your hospital account has no LucidDx account. Ask an administrator to create one "
            "named after your e-mail address (python -m core users add EMAIL --role ROLE)."
        )
    )
