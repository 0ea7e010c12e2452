"""Benchmark: REST ``POST /v1/predict`` under locust, in-process model vs Ray Serve with 1 and 2 replicas.

Run: ``python bench/bench_serve.py [--seconds 20] [--users 1 8 32]``
For each server set-up (LUCIDDX_SERVE=off; on with LUCIDDX_SERVE_REPLICAS=1; on with 2) this starts
``python -m core serve-api`` in its own process, warms it with one request, then runs headless locust
(``locust -f bench/locustfile.py --headless -u N -r N -t Ss --csv ...``) in ANOTHER process per user
count and reads its aggregated CSV row: p50, p95 (ms), failures, requests/s; ratios against in-process.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_api import start_server  # noqa: E402
from bench.support import free_port  # noqa: E402

SETUPS = {"in-process": {"LUCIDDX_SERVE": "off"},
          "serve x1": {"LUCIDDX_SERVE": "on", "LUCIDDX_SERVE_REPLICAS": "1"},
          "serve x2": {"LUCIDDX_SERVE": "on", "LUCIDDX_SERVE_REPLICAS": "2"}}


def locust(port: int, users: int, seconds: int, key: str, film: Path, out: Path) -> dict[str, float]:
    prefix = out / f"u{users}"
    env = os.environ | {"BENCH_API_KEY": key, "BENCH_FILM": str(film)}
    subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locustfile.py"), "--headless",
                    "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}",
                    "--csv", str(prefix), "--only-summary", "--loglevel", "ERROR"],
                   env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + 120)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    return {"p50": float(row["50%"]), "p95": float(row["95%"]), "failures": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]), "n": int(row["Request Count"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--film", default=str(ROOT / "assets" / "samples" / "normal_1.jpeg"))
    args = parser.parse_args()

    import httpx

    home = Path(tempfile.mkdtemp(prefix="luciddx-bench-"))
    os.environ["LUCIDDX_HOME"] = str(home)
    from core.access import accounts, apikeys

    accounts.add("bench", "clinician", "benchmark-password-1")
    key = apikeys.create("bench")
    film = Path(args.film)
    results: dict[tuple[str, int], dict[str, float]] = {}
    for setup, env in SETUPS.items():
        os.environ.update(env)
        port = free_port()
        server = start_server(home, port)
        try:
            started = time.time()
            httpx.post(f"http://127.0.0.1:{port}/v1/predict", files={"file": (film.name, film.read_bytes(), "image/jpeg")},
                       headers={"Authorization": f"Bearer {key}"}, timeout=300).raise_for_status()
            print(f"{setup}: first answer after {time.time() - started:.1f} s", flush=True)
            for users in args.users:
                out = Path(tempfile.mkdtemp(prefix="locust-"))
                results[setup, users] = locust(port, users, args.seconds, key, film, out)
                print(setup, users, results[setup, users], flush=True)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"\nPOST /v1/predict, {film.name}, {args.seconds} s per cell, {os.cpu_count()} CPUs\n")
    print("| set-up | users | p50 ms | p95 ms | failures | req/s | req/s vs in-process | p50 vs in-process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for (setup, users), r in results.items():
        base = results.get(("in-process", users))
        ratio_rps = f"{r['rps'] / base['rps']:.2f}x" if base and base["rps"] else "-"
        ratio_p50 = f"{r['p50'] / base['p50']:.2f}x" if base and base["p50"] else "-"
        print(f"| {setup} | {users} | {r['p50']:.0f} | {r['p95']:.0f} | {r['failures']} | {r['rps']:.1f} | {ratio_rps} | {ratio_p50} |")


if __name__ == "__main__":
    main()
