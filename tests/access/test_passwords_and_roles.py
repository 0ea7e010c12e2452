"""Argon2 hashing, password rules and the role table (no database needed)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from core.access import passwords, roles
from core.access.accounts import Account
from core.errors import AccountError, PermissionDeniedError

GOOD = "correct horse battery"


def test_hash_is_argon2id_salted_and_verifies() -> None:
    first, second = passwords.hash_password(GOOD), passwords.hash_password(GOOD)
    assert first.startswith("$argon2id$") and first != second and GOOD not in first
    assert passwords.verify(first, GOOD) and not passwords.verify(first, GOOD + "!")
    assert not passwords.verify("not a hash", GOOD)


@pytest.mark.parametrize("weak", ["", "xq7z", "elevenchars", " " + GOOD, GOOD + "\n"])
def test_weak_passwords_are_refused_without_echoing_them(weak: str) -> None:
    with pytest.raises(AccountError) as caught:
        passwords.hash_password(weak)
    assert not weak.strip() or weak.strip() not in str(caught.value)


@pytest.mark.parametrize("weak, why", [
    ("aaaaaaaaaaaa", "Repeats"), ("123456789012", "commonly used"), ("passwordpass", "commonly used"),
    ("asdfghjkl;asdf", "rows of keys"), ("abcdefghijklmnop", "Sequences"), ("199019901990", "Repeats"),
])
def test_common_and_patterned_passwords_are_refused_saying_why(weak: str, why: str) -> None:
    with pytest.raises(AccountError, match="too easy to guess") as caught:
        passwords.hash_password(weak)
    assert why in str(caught.value) and weak not in str(caught.value)


def test_the_account_name_makes_a_password_weak(monkeypatch) -> None:
    passwords.check_strength("alice.wonderland1", ())
    with pytest.raises(AccountError, match="too easy to guess"):
        passwords.check_strength("alice.wonderland1", ("alice.wonderland",))
    monkeypatch.setenv("LUCIDDX_MIN_PASSWORD_SCORE", "0")  # the site may relax the rule, never the length
    passwords.check_strength("aaaaaaaaaaaa")


def test_every_zxcvbn_message_is_in_our_catalog() -> None:
    """zxcvbn's own feedback strings, read from its source, all have an entry to translate."""
    import ast
    import inspect

    from zxcvbn import feedback

    said = {node.args[0].value for node in ast.walk(ast.parse(inspect.getsource(feedback)))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_"}
    assert said and said <= set(passwords.FEEDBACK)


def test_a_hash_made_with_other_parameters_needs_rehash() -> None:
    previous = passwords.use(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    try:
        old = passwords.hash_password(GOOD)
    finally:
        passwords.use(previous)
    assert passwords.needs_rehash(old) and passwords.verify(old, GOOD)
    assert not passwords.needs_rehash(passwords.hash_password(GOOD))


def _user(role: str, disabled: bool = False) -> Account:
    from datetime import datetime, timezone

    return Account(name="u1", role=role, disabled=disabled, created=datetime.now(timezone.utc))


EXPECTED_LEAST = {"predict": "clinician", "explain": "clinician", "risk": "clinician", "cards": "clinician",
                  "evaluate": "researcher", "validate": "researcher", "train": "researcher",
                  "users": "admin", "activate": "admin", "rollback": "admin", "threshold": "admin", "audit": "admin"}


@pytest.mark.parametrize("role", roles.ROLES)
@pytest.mark.parametrize("action", sorted(roles.PERMISSIONS))
def test_roles_matrix(role: str, action: str) -> None:
    least = roles.PERMISSIONS[action]
    assert EXPECTED_LEAST.get(action, least) == least
    should = roles.ROLES.index(role) >= roles.ROLES.index(least)
    assert roles.allowed(role, action) is should
    if should:
        roles.require(_user(role), action)
    else:
        with pytest.raises(PermissionDeniedError, match=least):
            roles.require(_user(role), action)


def test_require_refuses_no_user_disabled_accounts_and_unknown_actions() -> None:
    with pytest.raises(PermissionDeniedError, match="Sign in"):
        roles.require(None, "predict")
    with pytest.raises(PermissionDeniedError, match="disabled"):
        roles.require(_user("admin", disabled=True), "predict")
    with pytest.raises(ValueError):
        roles.require(_user("admin"), "no-such-action")
    assert not roles.allowed("superuser", "predict")
    assert roles.actions_for("clinician") == [a for a, r in roles.PERMISSIONS.items() if r == "clinician"]
