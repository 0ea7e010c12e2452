"""``python -m core serve-api`` really serves: uvicorn in a subprocess, on 127.0.0.1 and a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.access import audit
from tests.api.conftest import ROOT, SAMPLES
from tests.support.dashboard import free_port



def test_serve_api_answers_health_docs_and_predict(isolated_home: Path, clinician) -> None:
    port = free_port()
    env = os.environ | {"LUCIDDX_HOME": str(isolated_home)}
    server = subprocess.Popen([sys.executable, "-m", "core", "serve-api", "--port", str(port), "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                health = httpx.get(f"{base}/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read().decode()[-2000:]
                time.sleep(0.3)
        assert health.json()["status"] == "ok" and "server" not in health.headers
        assert "/openapi.json" in httpx.get(f"{base}/docs").text
        film = SAMPLES / "normal_1.jpeg"
        response = httpx.post(f"{base}/v1/predict", headers=clinician, timeout=60,
                              files={"file": (film.name, film.read_bytes(), "image/jpeg")})
        assert response.status_code == 200 and response.json()["label"] == "NORMAL"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [(r.action, r.outcome) for r in audit.records()] == [("predict", "ok")]
