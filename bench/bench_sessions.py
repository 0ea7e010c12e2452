"""Many clinicians at once: N browser sessions sign in, upload a film and wait for prediction + Grad-CAM.

Starts the real dashboard (sign-in on, a fresh LUCIDDX_HOME with N accounts), then drives Debian's
chromium through Playwright: first one session alone (the baseline), then N concurrent sessions.
Prints time to result (p50/p95) for both, the ratio, failures, the server's peak memory (VmHWM), and the
CPU seconds spent during the N sessions by the browsers apart from the server and from the Ray engine
(sampled every 0.5 s with psutil, so processes that end mid-run are counted).

Each engine is measured in the same run: ``in-process`` (LUCIDDX_SERVE=off: the dashboard runs the model)
and ``serve`` (LUCIDDX_SERVE=on: the dashboard prepares films, a Ray Serve replica on the machine's own Ray
head scores them in batches; the head is stopped afterwards).

    python bench/bench_sessions.py --sessions 20 [--engines in-process,serve]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from playwright.async_api import Browser, async_playwright, expect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import CHROMIUM, CHROMIUM_ARGS, SAMPLE, running_dashboard  # noqa: E402

PASSWORD = "correct horse battery"


def add_accounts(home: Path, users: int) -> None:
    """An administrator (so the sign-in form shows) and ``users`` clinicians, all with PASSWORD."""
    env = {**os.environ, "LUCIDDX_HOME": str(home), "PYTHONPATH": str(ROOT)}
    add = ("from core.access import accounts\n"
           f"accounts.add('admin', 'admin', {PASSWORD!r})\n"
           f"for i in range({users}):\n    accounts.add(f'clinician{{i}}', 'clinician', {PASSWORD!r})\n")
    subprocess.run([sys.executable, "-c", add], cwd=ROOT, env=env, check=True)


def loads_tensorflow(pid: int) -> bool:
    """Whether the process has TensorFlow's library mapped (the dashboard should not, with LUCIDDX_SERVE=on)."""
    return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text(errors="replace")


def peak_memory_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SessionFailed(Exception):
    """A session that got no result: the step it was at, and what went wrong there."""


async def one_session(browser: Browser, url: str, user: str, wait_s: float = 300.0) -> float:
    """Seconds from the upload to the drawn result (sign-in is not counted); SessionFailed names the step."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1400})
    context.set_default_timeout(wait_s * 1000)
    step = "open the page"
    try:
        page = await context.new_page()
        await page.goto(url, wait_until="domcontentloaded")
        step = "sign in"
        await page.get_by_role("textbox", name="Name").fill(user)
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        await uploader.wait_for(state="attached")
        step = "upload -> result"
        started = time.perf_counter()
        await uploader.set_input_files(str(SAMPLE))
        await expect(page.locator('[data-testid="stPlotlyChart"]').first).to_be_visible(timeout=wait_s * 1000)
        await expect(page.locator('[data-testid="stException"]')).to_have_count(0)
        return time.perf_counter() - started
    except Exception as exc:
        raise SessionFailed(f"{user} at '{step}': {type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
    finally:
        await context.close()


def session_wait(sessions: int, alone_s: float) -> float:
    """How long one session may wait: all sessions queued one film at a time, 3x slack for the browsers
    that share the CPU, and never under 5 minutes (sign-in of many browsers included)."""
    return max(300.0, 3.0 * sessions * alone_s + 60.0)


class CpuMeter:
    """CPU seconds (user + system) per group of processes while running: browsers, server, Ray engine."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.seen: dict[int, tuple[str, float]] = {}
        self.baseline: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def group(self, proc: psutil.Process) -> str | None:
        name = " ".join(proc.cmdline()[:3]).lower()
        # Ray first: the machine's head is started by the dashboard's first film, so it is the server's child.
        if "ray" in name or "gcs_server" in name or "raylet" in name:
            return "engine"
        if proc.pid == self.server_pid or self.server_pid in {p.pid for p in proc.parents()}:
            return "server"
        if "chrom" in name or "playwright" in name:
            return "browsers"
        return None

    def _read(self) -> dict[int, tuple[str, float]]:
        found = {}
        for proc in psutil.process_iter():
            try:
                group = self.group(proc)
                if group is not None:
                    times = proc.cpu_times()
                    found[proc.pid] = (group, times.user + times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.seen.update(self._read())

    def __enter__(self) -> CpuMeter:
        self.baseline = {pid: cpu for pid, (_group, cpu) in self._read().items()}
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.seen.update(self._read())

    def totals(self) -> dict[str, float]:
        sums = {"browsers": 0.0, "server": 0.0, "engine": 0.0}
        for pid, (group, cpu) in self.seen.items():
            sums[group] += cpu - self.baseline.get(pid, 0.0)
        return sums


async def run(url: str, sessions: int, server_pid: int) -> tuple[list[float], list[float], list[str], float, dict[str, float], float]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            await one_session(browser, url, "clinician0")  # warm-up: the model loads once per process
            alone = [await one_session(browser, url, "clinician0") for _ in range(3)]
            wait_s = session_wait(sessions, statistics.median(alone))
            started = time.perf_counter()
            with CpuMeter(server_pid) as meter:
                outcomes = await asyncio.gather(
                    *(one_session(browser, url, f"clinician{i}", wait_s) for i in range(sessions)), return_exceptions=True
                )
            wall = time.perf_counter() - started
        finally:
            await browser.close()
    together = [o for o in outcomes if isinstance(o, float)]
    failures = [str(o) if isinstance(o, SessionFailed) else f"{type(o).__name__}: {str(o)[:120]}"
                for o in outcomes if not isinstance(o, float)]
    return alone, together, failures, wait_s, meter.totals(), wall


def server_trouble(log: Path) -> list[str]:
    """Lines of the server log that explain lost sessions (websocket drops, errors), at most 10."""
    words = ("websocket", "disconnect", "error", "exception", "timeout")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line[:160] for line in lines if any(w in line.lower() for w in words)][:10]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


ENGINES = {"in-process": {"LUCIDDX_SERVE": "off"}, "serve": {"LUCIDDX_SERVE": "on"}}


def measure(engine: str, sessions: int) -> dict:
    with tempfile.TemporaryDirectory() as home:
        add_accounts(Path(home), sessions)
        log = Path(home) / "streamlit.log"
        try:
            with running_dashboard(Path(home), log, LUCIDDX_AUTH="on", **ENGINES[engine]) as dashboard:
                alone, together, failures, wait_s, cpu, wall = asyncio.run(run(dashboard.url, sessions, dashboard.pid))
                peak = peak_memory_mb(dashboard.pid)
                tensorflow = loads_tensorflow(dashboard.pid)
        finally:  # the machine's Ray head outlives the dashboard by design: stop it with its LUCIDDX_HOME
            env = {**os.environ, "LUCIDDX_HOME": home, "PYTHONPATH": str(ROOT)}
            subprocess.run([sys.executable, "-m", "core", "engine", "stop"], cwd=ROOT, env=env, capture_output=True)
        trouble = server_trouble(log)
    return {"engine": engine, "alone": alone, "together": together, "failures": failures, "wait_s": wait_s,
            "cpu": cpu, "wall": wall, "peak": peak, "trouble": trouble, "tensorflow": tensorflow}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--engines", default="in-process,serve", help="comma-separated: in-process, serve")
    args = parser.parse_args()
    results = [measure(engine, args.sessions) for engine in args.engines.split(",")]
    base = statistics.median(results[0]["alone"])
    print(f"{args.sessions} concurrent sessions, sample {SAMPLE.name}, {os.cpu_count()} CPUs; ratios against one "
          f"session alone on the {results[0]['engine']} engine ({base:.2f} s), measured in this run\n")
    print("| engine | sessions | results | p50 upload -> result | p95 | vs alone (same engine) | vs alone (in-process) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        alone = statistics.median(r["alone"])
        p50 = statistics.median(r["together"]) if r["together"] else float("nan")
        print(f"| {r['engine']} | 1 (alone, 3 runs) | {len(r['alone'])} | {alone:.2f} s | {percentile(r['alone'], 0.95):.2f} s | 1.0x | {alone / base:.2f}x |")
        print(f"| {r['engine']} | {args.sessions} at once | {len(r['together'])} | {p50:.2f} s | "
              f"{percentile(r['together'], 0.95):.2f} s | {p50 / alone:.1f}x | {p50 / base:.1f}x |")
    print("\nCPU seconds during the concurrent sessions (user + system; 2 CPUs give 2 s per second of wall time):\n")
    print("| engine | wall | browsers | server (dashboard) | Ray engine (head, replica) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        c = r["cpu"]
        print(f"| {r['engine']} | {r['wall']:.0f} s | {c['browsers']:.0f} s | {c['server']:.0f} s | {c['engine']:.0f} s |")
    for r in results:
        print(f"\n{r['engine']}: failures {len(r['failures'])}" + "".join(f"\n  - {f}" for f in r["failures"]))
        print(f"{r['engine']}: dashboard peak memory (VmHWM) {r['peak']:.0f} MB, TensorFlow loaded in it: "
              f"{'yes' if r['tensorflow'] else 'no'}; "
              f"server log lines about websockets/errors: {len(r['trouble'])}" + "".join(f"\n  | {t}" for t in r["trouble"]))


if __name__ == "__main__":
    main()
