"""Password hashing with Argon2id (argon2-cffi's PasswordHasher, its recommended parameters), and the
strength rule every new password meets: long enough, and not guessable by zxcvbn's estimate (common
passwords, repeats, sequences, keyboard rows, dates, names) -- the message says why, in the reader's language.

A stored hash made with older parameters is replaced at the next successful sign-in
(:func:`needs_rehash`). Passwords are never logged, stored in clear, or echoed in a message.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from core.access import settings
from core.errors import AccountError
from core.i18n import N_, _

# zxcvbn's feedback (English, from its own gettext domain, which we do not ship) -> our catalog's msgids.
FEEDBACK = {
    text: text
    for text in (
        N_("Add another word or two. Uncommon words are better."),
        N_("Capitalization doesn't help very much."),
        N_("Reversed words aren't much harder to guess."),
        N_("Predictable substitutions like '@' instead of 'a' don't help very much."),
        N_("Use a few words, avoid common phrases."),
        N_("No need for symbols, digits, or uppercase letters."),
        N_("Straight rows of keys are easy to guess."),
        N_("Short keyboard patterns are easy to guess."),
        N_("This is a top-10 common password."),
        N_("This is a top-100 common password."),
        N_("This is a very common password."),
        N_("This is similar to a commonly used password."),
        N_("A word by itself is easy to guess."),
        N_("All-uppercase is almost as easy to guess as all-lowercase."),
        N_("Use a longer keyboard pattern with more turns."),
        N_('Repeats like "aaa" are easy to guess.'),
        N_('Repeats like "abcabcabc" are only slightly harder to guess than "abc".'),
        N_("Names and surnames by themselves are easy to guess."),
        N_("Common names and surnames are easy to guess."),
        N_("Avoid repeated words and characters."),
        N_('Sequences like "abc" or "6543" are easy to guess.'),
        N_("Avoid sequences."),
        N_("Recent years are easy to guess."),
        N_("Dates are often easy to guess."),
        N_("Avoid recent years."),
        N_("Avoid years that are associated with you."),
        N_("Avoid dates and years that are associated with you."),
    )
}

_hasher = PasswordHasher()


def hasher() -> PasswordHasher:
    """The hasher in force (tests may swap in cheaper or different parameters with :func:`use`)."""
    return _hasher


def use(new: PasswordHasher) -> PasswordHasher:
    """Hash with ``new`` from now on; returns the previous hasher."""
    global _hasher
    previous, _hasher = _hasher, new
    return previous


def _said(text: str) -> str:
    """One line of zxcvbn's feedback in the reader's language (its own English when we have no entry)."""
    return _(FEEDBACK[text]) if text in FEEDBACK else text


def check_strength(password: str, context: tuple[str, ...] = ()) -> None:
    """Raise :class:`AccountError` unless ``password`` is long enough and hard enough to guess.

    ``context``: words that make a password weak here (the account name). zxcvbn scores 0-4 by estimated
    guesses; below ``LUCIDDX_MIN_PASSWORD_SCORE`` (3: about 10^8 guesses) is refused with its warning and
    suggestions. The message never repeats the password.
    """
    if not isinstance(password, str) or len(password) < settings.min_password_length():
        raise AccountError(
            _("The password is too short: use at least {n} characters (a few unrelated words work well).").format(
                n=settings.min_password_length()
            )
        )
    if password.strip() != password:
        raise AccountError(_("The password starts or ends with a space or newline; remove it."))
    from zxcvbn import zxcvbn

    # zxcvbn's run time grows with length; what it cannot judge past 100 characters is long enough anyway.
    estimate = zxcvbn(password[:100], user_inputs=[word for word in context if word])
    if estimate["score"] >= settings.min_password_score():
        return
    feedback = estimate.get("feedback") or {}
    why = [_said(feedback["warning"])] if feedback.get("warning") else []
    why += [_said(text) for text in feedback.get("suggestions") or []]
    if not why:
        why = [_("common words, names, dates and patterns are tried first; use a few unrelated words.")]
    raise AccountError(_("The password is too easy to guess: {why}").format(why=" ".join(why)))


def hash_password(password: str, context: tuple[str, ...] = ()) -> str:
    """The Argon2id hash of a new password that passed :func:`check_strength` (``context``: the account name)."""
    check_strength(password, context)
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
