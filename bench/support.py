"""The real dashboard and browser for benchmarks and browser tests: ``streamlit run server.py`` (the dashboard and its session-cookie routes) on a free port.

One launcher for every caller (browser tests, role tests, the page and many-users benchmarks): it
starts the server with a given ``LUCIDDX_HOME`` and extra environment, waits until it answers its
health check, and always stops that very process (terminate, then kill) when the block ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 60
SAMPLE = ROOT / "assets" / "samples" / "pneumonia_bacteria_1.jpeg"  # a 224 x 224 px film
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download is never used
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@dataclass(frozen=True)
class Dashboard:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


@contextmanager
def running_dashboard(home: Path, log: Path, **env: str) -> Iterator[Dashboard]:
    """The dashboard serving ``home`` (its output in ``log``), stopped by its own pid when the block ends."""
    port = free_port()
    environment = {**os.environ, "LUCIDDX_HOME": str(home), "PYTHONPATH": str(ROOT), **env}
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "server.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url, server, log)
        yield Dashboard(url, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
