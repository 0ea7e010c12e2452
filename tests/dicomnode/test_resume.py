"""Issue 23 item 6: no film the DICOM node accepted is left unscored. A node stopped (or killed) after it told
the sender "success" but before scoring finished scores those instances when it starts again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.imaging import dicom_index as index
from tests.dicomnode.conftest import chest_dx, storescu, wait_for
from tests.support.dashboard import free_port

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK (storescu) not installed")


def test_instances_accepted_before_a_stop_are_scored_when_the_node_starts_again(isolated_home: Path, tmp_path: Path) -> None:
    from core.dicomnode.scp import DicomNode

    first = DicomNode("127.0.0.1", free_port(), "LUCIDDX", home=isolated_home).start()
    assert first.worker.ready.wait(120)
    first.worker.stop()  # the worker is gone (as in a killed process): what arrives now is accepted, not scored
    films = [chest_dx(tmp_path / f"film{i}.dcm") for i in range(3)]
    sent = storescu(first.port, *(tmp_path / f"film{i}.dcm" for i in range(3)))
    assert sent.returncode == 0, sent.stderr
    first.stop()
    uids = [str(ds.SOPInstanceUID) for ds in films]
    assert {index.get(uid, isolated_home).status for uid in uids} == {"queued"}
    index.update(uids[1], isolated_home, status="scoring")  # killed while scoring this one
    index.incoming_path(uids[2], isolated_home).unlink()  # and this one's file was lost with the disk

    second = DicomNode("127.0.0.1", free_port(), "LUCIDDX", home=isolated_home).start()
    try:
        rows = [wait_for(isolated_home, uid, timeout=120) for uid in uids]
    finally:
        second.stop()
    assert [row.status for row in rows] == ["done", "done", "failed"]
    assert all(row.label for row in rows[:2]) and all(row.results for row in rows[:2])
    assert "lost" in (rows[2].reason or "")
    assert index.unfinished(isolated_home) == []
