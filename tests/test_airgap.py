"""Started as a hospital starts it (scripts/serve.sh), the dashboard sends nothing off the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.dashboard import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "support"


SERVE = ["bash", "scripts/serve.sh"]


def listening_on(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at ``port`` (from /proc/net/tcp: state 0A is LISTEN)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _sep, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


LISTENING: dict[str, set[str]] = {}


def serve(tmp_path: Path, home: Path, extra_env: dict[str, str], command: list[str] = SERVE) -> tuple[list[str], str]:
    """Run scripts/serve.sh with outbound traffic recorded and refused; load a page; return (attempts, log).
    The addresses it listened on are left in LISTENING["last"]."""
    port, net_log, log = free_port(), tmp_path / "net.log", tmp_path / "server.log"
    net_log.write_text("")
    env = {**os.environ, "LUCIDDX_HOME": str(home), "LUCIDDX_PYTHON": sys.executable, "PYTHONPATH": str(SUPPORT),
           "LUCIDDX_NET_LOG": str(net_log), **extra_env}
    with open(log, "w") as out:
        server = subprocess.Popen([*command, "--server.port", str(port)], cwd=ROOT, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server, log)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
        time.sleep(2.0)  # Streamlit's start-up messages (and any lookup) come right after the health check
        LISTENING["last"] = listening_on(port)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    return net_log.read_text().split("\n")[:-1], log.read_text()


def test_the_default_start_listens_on_loopback_and_reaches_nothing(tmp_path: Path, isolated_home: Path) -> None:
    attempts, log = serve(tmp_path, isolated_home, {})
    assert attempts == [], f"outbound attempts: {attempts}"
    assert LISTENING["last"] == {"127.0.0.1"}, LISTENING["last"]
    assert "External URL" not in log and "Inotify" not in log


def test_serving_the_network_on_purpose_still_reaches_nothing(tmp_path: Path, isolated_home: Path) -> None:
    attempts, log = serve(tmp_path, isolated_home, {"LUCIDDX_ADDRESS": "0.0.0.0", "LUCIDDX_PUBLIC_HOST": "luciddx.local"})
    assert attempts == [], f"outbound attempts: {attempts}"
    assert "luciddx.local" in log and LISTENING["last"] == {"0.0.0.0"}  # the reader sees a wider address too


def test_the_recorder_catches_streamlits_external_ip_lookup(tmp_path: Path, isolated_home: Path) -> None:
    """Without our start command's settings Streamlit asks a public web service for the external IP."""
    plain = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address", "0.0.0.0"]
    attempts, _ = serve(tmp_path, isolated_home, {}, plain)
    assert attempts, "the recorder saw no outbound attempt, so it could not prove the other tests"
