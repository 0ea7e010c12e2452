"""Password hashing with Argon2id (argon2-cffi's PasswordHasher, its recommended parameters).

A stored hash made with older parameters is replaced at the next successful sign-in
(:func:`needs_rehash`). Passwords are never logged, stored in clear, or echoed in a message.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.access import settings
from core.errors import AccountError
from core.i18n import _

_hasher = PasswordHasher()


def hasher() -> PasswordHasher:
    """The hasher in force (tests may swap in cheaper or different parameters with :func:`use`)."""
    return _hasher


def use(new: PasswordHasher) -> PasswordHasher:
    """Hash with ``new`` from now on; returns the previous hasher."""
    global _hasher
    previous, _hasher = _hasher, new
    return previous


def check_strength(password: str) -> None:
    """Raise :class:`AccountError` unless ``password`` is long enough (the message never repeats it)."""
    if not isinstance(password, str) or len(password) < settings.min_password_length():
        raise AccountError(
            _("The password is too short: use at least {n} characters (a few unrelated words work well).")
            .format(n=settings.min_password_length()))
    if password.strip() != password:
        raise AccountError(_("The password starts or ends with a space or newline; remove it."))


def hash_password(password: str) -> str:
    check_strength(password)
    return _hasher.hash(password)


def verify(stored_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; False (never an exception) for a damaged hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether ``stored_hash`` was made with parameters other than the current ones."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


# A hash to verify against when the account does not exist, so that "no such user" takes as long as
# "wrong password" and timing does not reveal which names exist.
_DUMMY = None


def burn_time(password: str) -> None:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = _hasher.hash("not-a-real-password-" * 2)
    verify(_DUMMY, password)
