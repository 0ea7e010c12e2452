"""Many clinicians at once: N browser sessions sign in, upload a film and wait for prediction + Grad-CAM.

Starts the real dashboard (sign-in on, a fresh LUCIDDX_HOME with N accounts), then drives Debian's
chromium through Playwright: first one session alone (the baseline), then N concurrent sessions.
Prints time to result (p50/p95) for both, the ratio, failures, and the server's peak memory (VmHWM),
which stays bounded because the model is loaded once per process.

    python bench/bench_sessions.py --sessions 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


async def run(url: str, sessions: int) -> tuple[list[float], list[float], list[str], float]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            await one_session(browser, url, "clinician0")  # warm-up: the model loads once per process
            alone = [await one_session(browser, url, "clinician0") for _ in range(3)]
            wait_s = session_wait(sessions, statistics.median(alone))
            outcomes = await asyncio.gather(*(one_session(browser, url, f"clinician{i}", wait_s) for i in range(sessions)),
                                            return_exceptions=True)
        finally:
            await browser.close()
    together = [o for o in outcomes if isinstance(o, float)]
    failures = [str(o) if isinstance(o, SessionFailed) else f"{type(o).__name__}: {str(o)[:120]}"
                for o in outcomes if not isinstance(o, float)]
    return alone, together, failures, wait_s


def server_trouble(log: Path) -> list[str]:
    """Lines of the server log that explain lost sessions (websocket drops, errors), at most 10."""
    words = ("websocket", "disconnect", "error", "exception", "timeout")
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [line[:160] for line in lines if any(w in line.lower() for w in words)][:10]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        add_accounts(Path(home), args.sessions)
        log = Path(home) / "streamlit.log"
        with running_dashboard(Path(home), log, LUCIDDX_AUTH="on") as dashboard:
            alone, together, failures, wait_s = asyncio.run(run(dashboard.url, args.sessions))
            peak = peak_memory_mb(dashboard.pid)
        trouble = server_trouble(log)
    median_alone = statistics.median(alone)
    print(f"{args.sessions} concurrent sessions, sample {SAMPLE.name}, {os.cpu_count()} CPUs, "
          f"each session waits up to {wait_s:.0f} s for its result (3 x sessions x one alone + 60 s, at least 300 s)\n")
    print("| sessions | results | p50 upload -> result | p95 | vs one session alone |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| 1 (alone, 3 runs) | {len(alone)} | {median_alone:.2f} s | {percentile(alone, 0.95):.2f} s | 1.0x |")
    print(f"| {args.sessions} at once | {len(together)} | {statistics.median(together) if together else float('nan'):.2f} s | "
          f"{percentile(together, 0.95):.2f} s | {(statistics.median(together) if together else float('nan')) / median_alone:.1f}x |")
    print(f"\nfailures: {len(failures)}" + "".join(f"\n  - {f}" for f in failures))
    print(f"server peak memory (VmHWM): {peak:.0f} MB")
    print(f"server log lines about websockets/errors: {len(trouble)}" + "".join(f"\n  | {t}" for t in trouble))


if __name__ == "__main__":
    main()
