"""Accounts, lockout, API keys and the audit chain, each on SQLite and on a real PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from core.access import accounts, apikeys, audit, passwords, store
from core.errors import AccountError, AccountLockedError, AuthenticationError

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.usefixtures("backend")


def test_schema_is_created_by_the_shipped_migration() -> None:
    engine = store.get_engine()
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert {"accounts", "api_keys", "audit_log", "sign_in_backoff", "browser_sessions"} <= set(sa.inspect(db).get_table_names())
        assert "language" in {c["name"] for c in sa.inspect(db).get_columns("accounts")}
    store.upgrade(engine)  # a second upgrade is a no-op


def test_a_database_from_the_first_release_upgrades_and_keeps_its_accounts(tmp_path) -> None:
    """Revision 0002 adds each account's language to an existing 0001 database; nothing else changes."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    store.upgrade(engine, "0001")
    with engine.begin() as db:
        db.execute(sa.text("INSERT INTO accounts (name, role, password_hash, disabled, failed_logins, created) "
                           "VALUES ('alice', 'admin', 'x', 0, 0, '2026-11-01 00:00:00')"))
        assert "language" not in {c["name"] for c in sa.inspect(db).get_columns("accounts")}
    store.upgrade(engine)
    with engine.connect() as db:
        assert db.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert db.execute(sa.text("SELECT name, role, language FROM accounts")).all() == [("alice", "admin", None)]


def test_add_list_disable_set_role() -> None:
    accounts.add("alice", "admin", PASSWORD)
    accounts.add("bob", "clinician", PASSWORD)
    assert [a.name for a in accounts.list_accounts()] == ["alice", "bob"]
    assert accounts.has_admin()
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("alice", "clinician", PASSWORD)
    with pytest.raises(AccountError, match="role"):
        accounts.add("carol", "superuser", PASSWORD)
    with pytest.raises(AccountError, match="account name"):
        accounts.add("bad name; drop", "clinician", PASSWORD)
    assert accounts.set_role("bob", "researcher").role == "researcher"
    assert accounts.disable("alice").disabled and not accounts.has_admin()
    with pytest.raises(AuthenticationError, match="not right"):  # the same words as any failure
        accounts.authenticate("alice", PASSWORD)
    with pytest.raises(AccountError, match="no account named"):
        accounts.disable("nobody")
    assert "password" not in str(accounts.list_accounts()[0].as_dict())


def test_authenticate_and_the_same_message_for_every_failure() -> None:
    """Unknown name, wrong password, disabled account: one message, so none tells which names exist."""
    accounts.add("alice", "researcher", PASSWORD)
    accounts.add("bob", "clinician", PASSWORD)
    accounts.disable("bob")
    assert accounts.authenticate("alice", PASSWORD).last_login is not None
    messages = set()
    for name, password in (("alice", "wrong password!!"), ("nobody", PASSWORD), ("bob", PASSWORD),
                           ("bob", "wrong password!!")):
        with pytest.raises(AuthenticationError) as caught:
            accounts.authenticate(name, password)
        messages.add(str(caught.value))
    assert len(messages) == 1
    assert "wrong password" not in messages.pop() and "disabled" not in str(caught.value)


@pytest.mark.usefixtures("fast_lockout")
def test_back_off_slows_one_client_and_never_locks_the_account_for_another() -> None:
    """An attacker hammering alice's name from one client waits longer each time; alice, from her own
    client, signs in at once; an unknown name backs off exactly alike (no enumeration by lock-out)."""
    accounts.add("alice", "clinician", PASSWORD)
    now = datetime.now(timezone.utc)
    seen = {}
    for name in ("alice", "nobody"):
        messages = []
        for _ in range(5):
            with pytest.raises(AuthenticationError) as caught:
                accounts.authenticate(name, "not the password", now=now, client="ip:203.0.113.9")
            messages.append(str(caught.value))
        seen[name] = messages
    assert seen["alice"] == seen["nobody"]
    assert "wait" not in seen["alice"][1] and "wait 1 second" in seen["alice"][2]
    assert "wait" in seen["alice"][3]  # refused unchecked while waiting, with the same words and the wait
    with pytest.raises(AccountLockedError) as held:  # even the right password waits, from that client
        accounts.authenticate("alice", PASSWORD, now=now, client="ip:203.0.113.9")
    assert str(held.value).startswith(seen["nobody"][0])
    assert accounts.authenticate("alice", PASSWORD, now=now, client="ip:198.51.100.4").name == "alice"
    with pytest.raises(AuthenticationError, match="wait 2 seconds"):  # the next failure doubles the wait
        accounts.authenticate("alice", "not the password", now=now + timedelta(seconds=2), client="ip:203.0.113.9")
    assert accounts.authenticate("alice", PASSWORD, now=now + timedelta(seconds=5), client="ip:203.0.113.9")
    assert accounts.get("alice").locked_until is None


def test_back_off_is_capped_and_cleared_by_enable(monkeypatch) -> None:
    monkeypatch.setenv("LUCIDDX_MAX_FAILED_LOGINS", "1")
    monkeypatch.setenv("LUCIDDX_LOCKOUT_MINUTES", "1")
    accounts.add("alice", "clinician", PASSWORD)
    now = datetime.now(timezone.utc)
    for step in range(12):  # 1, 2, 4, ... seconds, but never more than a minute
        with pytest.raises(AuthenticationError):
            accounts.authenticate("alice", "not the password", now=now + timedelta(minutes=step), client="x")
    with pytest.raises(AccountLockedError, match="wait 60 seconds"):
        accounts.authenticate("alice", PASSWORD, now=now + timedelta(minutes=11), client="x")
    with store.get_engine().connect() as db:  # neither the name nor the client is stored in clear
        assert "alice" not in str(db.execute(sa.select(store.sign_in_backoff)).all())
    accounts.enable("alice")
    assert accounts.authenticate("alice", PASSWORD, now=now + timedelta(minutes=11), client="x").name == "alice"


def test_old_hash_parameters_are_upgraded_at_sign_in() -> None:
    previous = passwords.use(PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    try:
        accounts.add("alice", "clinician", PASSWORD)
    finally:
        passwords.use(previous)

    def stored() -> str:
        with store.get_engine().connect() as db:
            return db.execute(sa.select(store.accounts.c.password_hash)).scalar()

    assert passwords.needs_rehash(stored())
    accounts.authenticate("alice", PASSWORD)
    assert not passwords.needs_rehash(stored()) and passwords.verify(stored(), PASSWORD)


def test_session_idle_expiry(monkeypatch) -> None:
    monkeypatch.setenv("LUCIDDX_SESSION_IDLE_MINUTES", "30")
    now = datetime.now(timezone.utc)
    assert not accounts.session_expired(now - timedelta(minutes=29), now)
    assert accounts.session_expired(now - timedelta(minutes=31), now)


def test_api_keys_are_shown_once_stored_hashed_and_follow_the_account() -> None:
    accounts.add("alice", "researcher", PASSWORD)
    key = apikeys.create("alice")
    assert apikeys.authenticate(key).name == "alice"
    with store.get_engine().connect() as db:
        stored = db.execute(sa.select(store.api_keys)).first()
    assert key not in str(tuple(stored)) and key.split("_")[1] == stored.prefix
    with pytest.raises(AuthenticationError):
        apikeys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B"))
    accounts.disable("alice")
    with pytest.raises(AuthenticationError):
        apikeys.authenticate(key)
    accounts.enable("alice")
    assert apikeys.revoke(stored.prefix)
    with pytest.raises(AuthenticationError):
        apikeys.authenticate(key)
    assert apikeys.list_keys("alice")[0]["revoked"] is True


def _three_records() -> None:
    for index, outcome in enumerate(("ok", "denied", "ok")):
        audit.record("alice", "clinician", "predict", model="chest_xray:1",
                     input_sha256=audit.sha256_of(bytes([index])), outcome=outcome)


def test_audit_records_chain_and_filter() -> None:
    _three_records()
    audit.record("root", "os-user", "users")
    rows = audit.records()
    assert [r.seq for r in rows] == [1, 2, 3, 4] and rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:]))
    assert len(audit.records(user="alice")) == 3 and len(audit.records(action="users")) == 1
    assert audit.records(since=datetime.now(timezone.utc) + timedelta(minutes=1)) == []
    assert set(rows[0].public()) >= {"time", "user", "role", "action", "model", "input_sha256", "outcome"}
    result = audit.verify()
    assert result.ok and result.records == 4 and result.head == rows[-1].hash


@pytest.mark.parametrize("bad", [{"input_sha256": "chest_of_john_doe.dcm"}, {"outcome": "whatever"},
                                 {"model": "name with spaces"}])
def test_audit_refuses_anything_but_a_digest_for_the_input(bad: dict) -> None:
    with pytest.raises(ValueError):
        audit.record("alice", "clinician", "predict", **bad)


@pytest.mark.parametrize("tamper, broken, words", [
    ("UPDATE audit_log SET outcome = 'ok' WHERE seq = 2", 2, "changed"),
    ("DELETE FROM audit_log WHERE seq = 2", 2, "missing"),
    ("UPDATE audit_log SET seq = CASE seq WHEN 1 THEN 2 ELSE 1 END WHERE seq IN (1, 2)", 1, "follow"),
])
def test_verify_names_the_first_tampered_record(tamper: str, broken: int, words: str) -> None:
    _three_records()
    if tamper.startswith("UPDATE audit_log SET seq"):  # swap two rows in two steps (unique seq)
        tamper = ["UPDATE audit_log SET seq = 100 WHERE seq = 1", "UPDATE audit_log SET seq = 1 WHERE seq = 2",
                  "UPDATE audit_log SET seq = 2 WHERE seq = 100"]
    with store.get_engine().begin() as db:
        for statement in tamper if isinstance(tamper, list) else [tamper]:
            db.execute(sa.text(statement))
    result = audit.verify()
    assert not result.ok and result.broken == broken and words in result.reason


def test_concurrent_writers_keep_one_unbroken_chain() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def append(worker: int) -> None:
        for index in range(8):
            audit.record(f"user{worker}", "clinician", "predict", input_sha256=audit.sha256_of(bytes([worker, index])))

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(append, range(4)))
    result = audit.verify()
    assert result.ok and result.records == 32


def _hold_write_lock(database: str, seconds: float) -> None:
    import sqlite3
    import threading

    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(seconds, lambda: (holder.execute("COMMIT"), holder.close())).start()


@pytest.mark.parametrize("held_s, recorded", [(0.8, True), (6.0, False)])
def test_an_audit_record_waits_out_a_busy_sqlite_writer_then_says_so(tmp_path, monkeypatch, held_s, recorded) -> None:
    """Twenty sign-ins on a CPU starved by their browsers held SQLite's lock past its timeout and one sign-in
    failed (bench_sessions): a record retries a little longer; a lock never released is a clear error."""
    from core.errors import AccessStoreError

    database = tmp_path / "busy.sqlite"
    url = f"sqlite:///{database}"
    monkeypatch.setenv("LUCIDDX_DB_URL", url)
    monkeypatch.setenv("LUCIDDX_DB_TIMEOUT_S", "0.2")
    monkeypatch.setattr(store, "_engines", {})
    store.get_engine(url)  # schema created before the lock is taken
    _hold_write_lock(str(database), held_s)
    if recorded:
        assert audit.record("alice", "clinician", "login").user == "alice"
    else:
        with pytest.raises(AccessStoreError, match="busy"):
            audit.record("alice", "clinician", "login")
