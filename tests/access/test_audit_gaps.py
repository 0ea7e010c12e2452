"""Refusals and failures that must leave an audit record: activation by a role below it, a
de-identification that fails (page service and command line), an administration verb refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from core.access import audit as audit_log
from core.cli import main
from core.errors import PermissionDeniedError, UnsupportedImageError
from core.services import activation, admin, deid
from core.services.audit import Actor


@pytest.mark.parametrize("role", ["clinician", "researcher"])
def test_an_activation_refused_for_the_role_is_recorded(role: str) -> None:
    with pytest.raises(PermissionDeniedError):
        activation.activate(Actor("kim", role), "chest_xray", "1")
    with pytest.raises(PermissionDeniedError):
        admin.verify_audit(Actor("kim", role))
    assert [(r.user, r.role, r.action, r.outcome) for r in audit_log.records()] == [
        ("kim", role, "activate", "denied"), ("kim", role, "audit", "denied")]


def test_a_failed_deidentification_is_recorded_without_the_file_name() -> None:
    with pytest.raises(UnsupportedImageError):
        deid.deidentified(b"DICM but not really", "Doe_Jane.dcm", Actor("dr.lee", "clinician"))
    (record,) = audit_log.records()
    assert (record.user, record.action, record.outcome) == ("dr.lee", "deidentify", "bad-input")
    assert record.input_sha256 == audit_log.sha256_of(b"DICM but not really") and "Doe" not in repr(record)


def test_a_deidentify_run_that_cannot_write_is_recorded(tmp_path: Path, capsys) -> None:
    blocked = tmp_path / "out"
    blocked.write_text("a file where the output folder should be")
    assert main(["deidentify", get_testdata_file("CT_small.dcm"), "--out", str(blocked)]) == 1
    assert [(r.action, r.outcome) for r in audit_log.records(action="deidentify")] == [("deidentify", "bad-input")]  # the output folder is the caller's to fix
    assert audit_log.verify().ok
