"""The users / apikeys / audit / deidentify commands as a user runs them (subprocesses, CLI.md contract)."""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from pydicom.data import get_testdata_file

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"


def run_cli(*args: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "LUCIDDX_HOME": str(home)}
    env.pop("LUCIDDX_DB_URL", None)
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_users_from_first_admin_to_audit_verify(isolated_home: Path) -> None:
    added = run_cli("users", "add", "alice", "--role", "admin", "--json", home=isolated_home, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["role"] == "admin" and PASSWORD not in added.stdout + added.stderr

    weak = run_cli("users", "add", "bob", "--role", "clinician", "--json", home=isolated_home, stdin="hunter2\n")
    assert weak.returncode == 1 and "too short" in json.loads(weak.stdout)["error"] and "hunter2" not in weak.stderr
    misuse = run_cli("users", "add", "bob", "--role", "superuser", home=isolated_home, stdin=PASSWORD)
    assert misuse.returncode == 2
    no_password_argument = run_cli("users", "add", "bob", "--role", "clinician", "--password", PASSWORD,
                                   home=isolated_home)
    assert no_password_argument.returncode == 2 and "never accepted" in no_password_argument.stderr
    assert PASSWORD not in no_password_argument.stderr + no_password_argument.stdout

    run_cli("users", "add", "bob", "--role", "clinician", home=isolated_home, stdin=PASSWORD)
    assert run_cli("users", "set-role", "bob", "researcher", home=isolated_home).returncode == 0
    assert run_cli("users", "disable", "bob", home=isolated_home).returncode == 0
    listing = json.loads(run_cli("users", "list", "--json", home=isolated_home).stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listing] == [("alice", "admin", False),
                                                                        ("bob", "researcher", True)]
    unknown = run_cli("users", "disable", "carol", "--json", home=isolated_home)
    assert unknown.returncode == 1 and "no account named carol" in json.loads(unknown.stdout)["error"]

    key = run_cli("apikeys", "create", "--user", "alice", "--json", home=isolated_home)
    assert json.loads(key.stdout)["key"].startswith("ldx_") and "shown once" in key.stderr

    log = json.loads(run_cli("audit", "--action", "users", "--json", home=isolated_home).stdout)
    assert log and all(r["user"] == getpass.getuser() and r["role"] == "os-user" for r in log)
    assert {"time", "user", "role", "action", "model", "input_sha256", "outcome"} <= set(log[0])
    assert "failed" in {r["outcome"] for r in log}
    since = json.loads(run_cli("audit", "--since", "2999-01-01", "--json", home=isolated_home).stdout)
    assert since == []
    assert run_cli("audit", "--since", "yesterday", home=isolated_home).returncode == 2

    verified = run_cli("audit", "verify", "--json", home=isolated_home)
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True

    with sqlite3.connect(isolated_home / "luciddx.db") as db:  # someone edits the log behind our back
        db.execute("UPDATE audit_log SET user = 'mallory' WHERE seq = 3")
    broken = run_cli("audit", "verify", home=isolated_home)
    assert broken.returncode == 1 and "record 3" in broken.stdout


def test_deidentify_writes_good_files_and_reports_bad_ones(isolated_home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "notes.dcm"
    bad.write_text("not DICOM")
    good = get_testdata_file("CT_small.dcm")
    out = tmp_path / "clean"
    done = run_cli("deidentify", str(bad), good, "--out", str(out), "--json", home=isolated_home)
    assert done.returncode == 1
    rows = json.loads(done.stdout)
    assert [r["ok"] for r in rows] == [False, True] and "notes.dcm" in rows[0]["error"]
    assert set(rows[1]) >= {"file", "ok", "error", "out", "removed", "burned_in_annotation"}
    assert Path(rows[1]["out"]).parent == out and rows[1]["removed"] > 0
    assert rows[1]["burned_in_annotation"] in ("YES", "NO", "unknown")
    assert "CompressedSamples" not in done.stdout + done.stderr
    log = json.loads(run_cli("audit", "--action", "deidentify", "--json", home=isolated_home).stdout)
    assert [r["outcome"] for r in log] == ["bad-input", "ok"]
    assert log[1]["input_sha256"] and "notes" not in json.dumps(log) and "CT_small" not in json.dumps(log)


def test_audit_checkpoint_catches_a_truncation_and_refuses_a_tampered_file(isolated_home: Path, tmp_path: Path) -> None:
    from core.access import audit

    for index in range(4):
        audit.record("alice", "clinician", "predict", input_sha256=audit.sha256_of(bytes([index])))
    checkpoint = tmp_path / "kept-elsewhere.json"
    written = run_cli("audit", "checkpoint", "--out", str(checkpoint), "--json", home=isolated_home)
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["count"] == 4 == json.loads(checkpoint.read_text())["count"]
    intact = run_cli("audit", "verify", "--checkpoint", str(checkpoint), home=isolated_home)
    assert intact.returncode == 0 and "intact" in intact.stdout
    with sqlite3.connect(isolated_home / "luciddx.db") as db:  # the last records are cut off
        db.execute("DELETE FROM audit_log WHERE seq >= 3")
    assert audit.verify().ok  # the chain alone cannot tell
    cut = run_cli("audit", "verify", "--checkpoint", str(checkpoint), "--json", home=isolated_home)
    assert cut.returncode == 1 and json.loads(cut.stdout)["broken"] == 3 and "deleted" in json.loads(cut.stdout)["reason"]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(json.loads(checkpoint.read_text()) | {"count": 2}))
    refused = run_cli("audit", "verify", "--checkpoint", str(forged), home=isolated_home)
    assert refused.returncode == 1 and "refused" in refused.stderr and "forged.json" in refused.stderr


def test_apikeys_revoke_by_prefix_or_key_and_weak_passwords_say_why(isolated_home: Path) -> None:
    from core.access import accounts, apikeys

    accounts.add("alice", "clinician", PASSWORD)
    first, second = apikeys.create("alice"), apikeys.create("alice")
    by_prefix = run_cli("apikeys", "revoke", first.split("_")[1], "--json", home=isolated_home)
    assert by_prefix.returncode == 0 and json.loads(by_prefix.stdout)["user"] == "alice"
    by_key = run_cli("apikeys", "revoke", second, home=isolated_home)
    assert by_key.returncode == 0 and second not in by_key.stdout + by_key.stderr
    assert [k["revoked"] for k in apikeys.list_keys("alice")] == [True, True]
    unknown = run_cli("apikeys", "revoke", "0123456789ab", home=isolated_home)
    assert unknown.returncode == 1 and "apikeys list" in unknown.stderr
    weak = run_cli("users", "add", "bob", "--role", "clinician", "--json", home=isolated_home, stdin="passwordpass\n")
    error = json.loads(weak.stdout)["error"]
    assert weak.returncode == 1 and "too easy to guess" in error and "commonly used password" in error
