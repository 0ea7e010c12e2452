"""The keyed audit chain (HMAC with a key outside the database) and signed checkpoints, attacked as
someone who can write the database but does not hold the key would."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.access import audit, auditkey, store
from core.errors import AuditCheckpointError, AuditKeyError


def _records(n: int) -> None:
    for index in range(n):
        audit.record("alice", "clinician", "predict", model="chest_xray:1",
                     input_sha256=audit.sha256_of(bytes([index])), outcome="ok")


def _rows() -> list[dict]:
    with store.get_engine().connect() as db:
        return [dict(row._mapping) for row in db.execute(sa.select(store.audit_log).order_by(store.audit_log.c.seq))]


def _rewrite(rows: list[dict]) -> None:
    """Replace the whole log with ``rows`` (what an attacker with write access to the database can do)."""
    with store.get_engine().begin() as db:
        db.execute(store.audit_log.delete())
        for row in rows:
            db.execute(store.audit_log.insert().values(**row))


def _rechain(rows: list[dict], start: int, key: bytes | None) -> list[dict]:
    """Recompute every link from index ``start`` on with ``key`` (None: plain SHA-256, as the old chain did)."""
    for index in range(start, len(rows)):
        rows[index]["prev_hash"] = rows[index - 1]["hash"] if index else audit.GENESIS
        rows[index]["hash"] = audit.record_hash(rows[index]["prev_hash"], rows[index], key)
    return rows


def test_the_key_lives_outside_the_database_in_a_private_file(isolated_home: Path) -> None:
    _records(1)
    key_file = isolated_home / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    with store.get_engine().connect() as db:
        assert secret not in str(db.execute(sa.select(store.audit_log)).all())
    assert audit.verify().ok


@pytest.mark.parametrize("key", [None, b"a guess at the key, not the real one"])
def test_a_forged_appended_record_is_found_without_the_key(key: bytes | None) -> None:
    _records(3)
    rows = _rows()
    rows.append(dict(rows[-1], seq=4, user="mallory", outcome="ok"))
    _rewrite(_rechain(rows, 3, key))
    result = audit.verify()
    assert not result.ok and result.broken == 4 and "changed" in result.reason


def test_an_edited_record_with_every_later_hash_recomputed_is_found() -> None:
    _records(4)
    rows = _rows()
    rows[1]["outcome"] = "denied"
    _rewrite(_rechain(rows, 1, None))
    result = audit.verify()
    assert not result.ok and result.broken == 2


def test_rewriting_the_log_as_old_unkeyed_records_is_found() -> None:
    """Passing keyed records off as pre-upgrade ones (a fake switch record after them) does not verify."""
    _records(3)
    rows = _rechain(_rows(), 0, None)
    rows[1]["user"] = "mallory"
    rows.append(dict(rows[-1], seq=4, user=audit.SYSTEM_USER, role=audit.SYSTEM_ROLE, action=audit.KEY_ACTION))
    _rewrite(_rechain(rows, 1, None))
    result = audit.verify()
    assert not result.ok and result.broken == 4


def test_checkpoint_detects_a_truncated_log_and_a_rewrite(tmp_path: Path, monkeypatch) -> None:
    _records(5)
    path = tmp_path / "elsewhere" / "checkpoint.json"
    written = audit.write_checkpoint(path)
    saved = json.loads(path.read_text())
    assert saved == written and saved["count"] == 5 and set(saved) >= {"count", "head", "time", "signature"}
    _records(2)  # the log grows after the checkpoint: still intact
    assert audit.verify(audit.read_checkpoint(path)).ok
    with store.get_engine().begin() as db:  # cut off the last four records: the chain itself stays valid
        db.execute(sa.text("DELETE FROM audit_log WHERE seq > 3"))
    assert audit.verify().ok
    result = audit.verify(audit.read_checkpoint(path))
    assert not result.ok and result.broken == 4 and "deleted" in result.reason
    # Someone holding the key rebuilds the log: the chain is valid, the checkpoint kept elsewhere is not fooled.
    rows = _rows()
    rows[2]["outcome"] = "failed"
    _rewrite(_rechain(rows, 2, audit.chain_key()))
    _records(3)
    assert audit.verify().ok
    result = audit.verify(audit.read_checkpoint(path))
    assert not result.ok and result.broken == 5 and "rewritten" in result.reason


@pytest.mark.parametrize("edit", [
    lambda c: c | {"count": c["count"] - 2},
    lambda c: c | {"head": "0" * 64},
    lambda c: c | {"signature": c["signature"][::-1]},
    lambda c: {k: v for k, v in c.items() if k != "signature"},
])
def test_a_tampered_checkpoint_is_refused(tmp_path: Path, edit) -> None:
    _records(3)
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(edit(audit.write_checkpoint(tmp_path / "real.json"))))
    with pytest.raises(AuditCheckpointError, match="checkpoint"):
        audit.read_checkpoint(path)


def test_a_checkpoint_from_another_key_is_refused_and_a_changed_key_is_named(tmp_path: Path, monkeypatch) -> None:
    _records(2)
    audit.write_checkpoint(tmp_path / "checkpoint.json")
    monkeypatch.setenv("LUCIDDX_AUDIT_KEY", "another installation's key, long enough to use")
    with pytest.raises(AuditCheckpointError, match="another key"):
        audit.read_checkpoint(tmp_path / "checkpoint.json")
    result = audit.verify()
    assert not result.ok and result.broken == 1 and "LUCIDDX_AUDIT_KEY" in result.reason


def test_key_from_the_environment_or_a_named_file_and_clear_refusals(tmp_path: Path, monkeypatch) -> None:
    named = tmp_path / "secrets" / "luciddx-audit.key"
    monkeypatch.setenv("LUCIDDX_AUDIT_KEY_FILE", str(named))
    with pytest.raises(AuditKeyError, match="cannot be read"):  # a named file is never invented
        auditkey.secret()
    named.parent.mkdir()
    named.write_text("k" * 40)
    named.chmod(0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        auditkey.secret()
    named.chmod(0o600)
    assert auditkey.secret() == b"k" * 40
    monkeypatch.setenv("LUCIDDX_AUDIT_KEY", "short")
    with pytest.raises(AuditKeyError, match="shorter than 32"):
        auditkey.secret()


def test_an_unkeyed_log_upgrades_with_a_marked_switch_and_stays_checked(tmp_path: Path, monkeypatch) -> None:
    """A database of revision 0002 keeps its records; the upgrade appends one keyed switch record, and
    rewriting the old records (with their unkeyed hashes recomputed) is still found."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("LUCIDDX_DB_URL", url)
    engine = sa.create_engine(url)
    store.upgrade(engine, "0002")
    rows, prev = [], audit.GENESIS
    for seq in (1, 2, 3):
        fields = {"seq": seq, "time": f"2026-11-0{seq}T08:00:00.000000Z", "user": "alice", "role": "clinician",
                  "action": "predict", "model": None, "input_sha256": None, "outcome": "ok"}
        rows.append(fields | {"prev_hash": prev, "hash": audit.record_hash(prev, fields)})
        prev = rows[-1]["hash"]
    with engine.begin() as db:
        db.execute(store.audit_log.insert(), rows)
    engine.dispose()
    _records(1)  # the first use upgrades: 0003 appends the switch, then this record is keyed
    after = audit.records()
    assert [(r.seq, r.action) for r in after] == [(1, "predict"), (2, "predict"), (3, "predict"),
                                                   (4, audit.KEY_ACTION), (5, "predict")]
    assert audit.verify().ok and audit.verify().records == 5
    old = _rows()
    old[1]["user"] = "mallory"
    _rewrite(_rechain(old[:3], 1, None) + old[3:])
    result = audit.verify()
    assert not result.ok and result.broken == 4
