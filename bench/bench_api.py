"""Benchmark: REST ``POST /v1/predict`` latency against bare ``core`` predict, 1 and 8 concurrent clients.

Run: ``python bench/bench_api.py [--requests 40] [--film assets/samples/normal_1.jpeg]``
Starts ``python -m core serve-api`` (uvicorn, one worker) on a free port with a throw-away LUCIDDX_HOME,
an account and an API key; httpx clients in threads each send ``--requests`` uploads. The bare path is
``core.services.imaging.diagnose`` on the same bytes in this process (what the API calls per request),
timed with the same number of threads. Prints p50 / p95 milliseconds per request and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import free_port  # noqa: E402


def timed(fn, n: int, clients: int) -> list[float]:
    """Milliseconds of each of ``n`` calls of ``fn()`` per client, ``clients`` threads at once."""
    def run(_client: int) -> list[float]:
        times = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        return times

    with ThreadPoolExecutor(clients) as pool:
        return [t for chunk in pool.map(run, range(clients)) for t in chunk]


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = os.environ | {"LUCIDDX_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    server = subprocess.Popen([sys.executable, "-m", "core", "serve-api", "--port", str(port), "--log-level", "warning"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit("the API did not start: " + server.stderr.read().decode()[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="requests per client")
    parser.add_argument("--film", default=str(ROOT / "assets" / "samples" / "normal_1.jpeg"))
    args = parser.parse_args()

    import httpx

    home = Path(tempfile.mkdtemp(prefix="luciddx-bench-"))
    os.environ["LUCIDDX_HOME"] = str(home)
    from core.access import accounts, apikeys
    from core.services import imaging

    accounts.add("bench", "clinician", "benchmark-password-1")
    headers = {"Authorization": f"Bearer {apikeys.create('bench')}"}
    data, name = Path(args.film).read_bytes(), Path(args.film).name
    model = imaging.load_model()
    bare = lambda: imaging.diagnose(data, name, model, explain=False)  # noqa: E731
    port = free_port()
    server = start_server(home, port)
    rows = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=120) as client:
            def rest() -> None:
                response = client.post("/v1/predict", files={"file": (name, data, "image/jpeg")})
                response.raise_for_status()

            rest(), bare()  # warm-up: model loaded, graphs traced, connection open
            for clients in (1, 8):
                api, core = timed(rest, args.requests, clients), timed(bare, args.requests, clients)
                rows.append((clients, api, core))
    finally:
        server.terminate()
        server.wait(timeout=30)

    p = lambda times, q: float(np.percentile(times, q))  # noqa: E731
    print(f"\n{args.requests} requests per client, {Path(args.film).name} ({len(data) // 1024} KB), {os.cpu_count()} CPUs\n")
    print("| clients | REST p50 | REST p95 | bare core p50 | bare core p95 | REST / bare (p50) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for clients, api, core in rows:
        print(f"| {clients} | {statistics.median(api):.1f} ms | {p(api, 95):.1f} ms | {statistics.median(core):.1f} ms | "
              f"{p(core, 95):.1f} ms | {statistics.median(api) / statistics.median(core):.2f}x |")


if __name__ == "__main__":
    main()
