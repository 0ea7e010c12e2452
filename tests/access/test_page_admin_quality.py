"""The quality gate on a fresh install, from the Administration page: the first-run checklist, and locking an
evaluation set from a data-root folder or an uploaded zip (replacing one needs its own confirmation)."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import accounts
from core.access import audit as audit_log
from core.services import eval_sets
from tests.imaging.test_training import real_subset
from tests.services.test_approval import register_copy

ROOT = Path(__file__).resolve().parents[2]


def open_admin(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LUCIDDX_AUTH", "on")
    if accounts.find("admin1") is None:
        accounts.add("admin1", "admin", "correct horse battery")
    at = AppTest.from_file(str(ROOT / "pages" / "admin.py"), default_timeout=120)
    at.session_state["luciddx_session"] = {"name": "admin1", "role": "admin", "last_seen": datetime.now(timezone.utc)}
    at.run()
    assert not at.exception, at.exception
    return at


def checks(at: AppTest) -> dict[tuple[str, str], str]:
    table = next(d.value for d in at.dataframe if "check" in d.value.columns)
    return {(row["model"], row["check"]): bool(row["done"]) for _i, row in table.iterrows()}


def finish_lock(at) -> None:
    """The lock runs as an engine job: wait for it, then let the page show its outcome."""
    from core.services import jobs

    job_id = at.session_state["admin_evalset_job"]
    assert jobs.wait(job_id, timeout=300)["state"] in ("succeeded", "failed")
    at.run()
    assert not at.exception, at.exception


def test_a_fresh_install_shows_what_is_missing_and_locks_a_set_from_the_page(tmp_path: Path, monkeypatch) -> None:
    films = real_subset(tmp_path / "roots" / "site_films", per_class=4, seed=11)
    monkeypatch.setenv("LUCIDDX_DATA_ROOTS", str(tmp_path / "roots"))
    register_copy("chest_xray", "knee_xray")
    at = open_admin(monkeypatch)
    found = checks(at)
    assert found[("chest_xray", "Evaluation set locked")] is False
    assert found[("chest_xray", "Site validation recorded")] is False
    assert found[("chest_xray", "Site threshold adopted")] is False  # the default threshold is still in force
    assert found[("knee_xray", "Approved version")] is False  # a first version waits for an administrator
    assert any("checks are open" in w.value for w in at.warning)

    at.selectbox(key="admin_evalset_model").set_value("chest_xray").run()
    at.radio(key="admin_evalset_source").set_value("server").run()
    at.text_input(key="admin_evalset_path").input(str(films)).run()
    at.button(key="admin_evalset_lock").click().run()
    assert not at.exception, at.exception
    finish_lock(at)
    assert any("The evaluation set of chest_xray is locked: 8 cases" in s.value for s in at.success)
    assert checks(at)[("chest_xray", "Evaluation set locked")] is True
    assert audit_log.records(action="eval-set")[-1].model == "chest_xray"

    # Replacing the locked set from an uploaded zip: refused until its own confirmation is ticked.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(films.rglob("*.jpeg"))[:6]:
            archive.write(path, f"set/{path.parent.name}/{path.name}")
    at.radio(key="admin_evalset_source").set_value("upload").run()
    at.file_uploader(key="admin_evalset_upload").set_value([("site.zip", buffer.getvalue(), "application/zip")]).run()
    at.button(key="admin_evalset_lock").click().run()
    assert any("Tick the confirmation to replace" in e.value for e in at.error)
    assert eval_sets.show("chest_xray")["n"] == 8
    at.checkbox(key="admin_evalset_replace_chest_xray").check().run()
    at.button(key="admin_evalset_lock").click().run()
    assert not at.exception, at.exception
    finish_lock(at)
    assert eval_sets.show("chest_xray")["n"] == 6 and "uploads" in eval_sets.show("chest_xray")["location"]


def test_a_bad_upload_locks_nothing_and_says_why(monkeypatch) -> None:
    at = open_admin(monkeypatch)
    at.selectbox(key="admin_evalset_model").set_value("chest_xray").run()
    at.file_uploader(key="admin_evalset_upload").set_value([("notes.zip", b"not a zip", "application/zip")]).run()
    at.button(key="admin_evalset_lock").click().run()
    assert not at.exception, at.exception
    finish_lock(at)
    assert at.error and eval_sets.show("chest_xray") is None
    assert not list((eval_sets.eval_sets.sets_dir() / "uploads").glob("*"))
