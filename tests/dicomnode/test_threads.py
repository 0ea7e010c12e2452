"""A burst from the PACS is scored by several worker threads at once (issue 23, 7d): every instance still ends
alone, done or failed with its own reason, and a broken one in the middle stops none of the others."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.dicomnode.conftest import chest_dx, storescu, wait_for
from tests.support.dashboard import free_port

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="DCMTK (storescu) not installed")


def test_a_burst_is_scored_side_by_side_and_a_broken_instance_fails_alone(isolated_home: Path, tmp_path: Path) -> None:
    from core.dicomnode.scp import DicomNode

    node = DicomNode("127.0.0.1", free_port(), "LUCIDDX", home=isolated_home, threads=3).start()
    try:
        assert node.worker.ready.wait(120)
        assert sum(t.is_alive() for t in node.worker._threads) == 3
        files = [tmp_path / f"film{i}.dcm" for i in range(5)]
        films = [chest_dx(path, pixels=(i != 2)) for i, path in enumerate(files)]
        sent = storescu(node.port, *files)
        assert sent.returncode == 0, sent.stderr
        rows = [wait_for(isolated_home, str(ds.SOPInstanceUID), timeout=120) for ds in films]
    finally:
        node.stop()
    assert [row.status for row in rows] == ["done", "done", "failed", "done", "done"]
    assert rows[2].reason and all(row.results for i, row in enumerate(rows) if i != 2)
    assert not any(t.is_alive() for t in node.worker._threads)  # stop() ends every thread
