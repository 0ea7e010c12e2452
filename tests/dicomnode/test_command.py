"""``python -m core dicom-node`` as users start it: a real process, DCMTK against it, SIGTERM stops it,
and its whole log (stderr) never carries the patient's name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.config import PROJECT_ROOT
from tests.dicomnode.conftest import PATIENT_ID, PATIENT_NAME, chest_dx, echoscu, storescu
from tests.support.dashboard import free_port


def _worklist(env: dict) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "core", "worklist", "--json"], capture_output=True, text=True,
                         env=env, cwd=PROJECT_ROOT, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_the_command_serves_scores_and_stops_cleanly(isolated_home: Path, tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {"LUCIDDX_HOME": str(isolated_home)}
    log_file = (tmp_path / "node.log").open("w+")
    node = subprocess.Popen([sys.executable, "-m", "core", "dicom-node", "--port", str(port), "--aet", "LUCIDDX"],
                            stdout=subprocess.DEVNULL, stderr=log_file, env=env, cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 90
        while echoscu(port).returncode != 0:
            assert node.poll() is None and time.monotonic() < deadline, (tmp_path / "node.log").read_text()
            time.sleep(0.5)
        source = chest_dx(tmp_path / "film.dcm")
        assert storescu(port, tmp_path / "film.dcm").returncode == 0
        while not (rows := _worklist(env)) or rows[0]["status"] in ("queued", "scoring"):
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)
        assert rows[0]["sop_instance_uid"] == source.SOPInstanceUID and rows[0]["status"] == "done"
    finally:
        node.send_signal(signal.SIGTERM)
        code = node.wait(timeout=60)
    assert code == 0
    log = (tmp_path / "node.log").read_text()
    assert "listening on 127.0.0.1" in log and "done in" in log
    assert PATIENT_NAME not in log and "PATIENT" not in log and PATIENT_ID not in log


def test_misuse_exits_2_with_the_reason(isolated_home: Path) -> None:
    env = os.environ | {"LUCIDDX_HOME": str(isolated_home), "LUCIDDX_PACS": "not-a-target"}
    run = subprocess.run([sys.executable, "-m", "core", "dicom-node", "--port", str(free_port())], capture_output=True,
                         text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    assert run.returncode == 2 and "AET@host:port" in run.stderr and "Traceback" not in run.stderr
