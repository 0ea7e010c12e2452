"""What a reader waits for on the Image diagnosis page, in a real browser against a real server.

Starts ``streamlit run app.py`` (an empty, temporary LUCIDDX_HOME) and drives Debian's chromium with
Playwright. Prints a markdown table of:

- first paint: a fresh browser (new process, empty cache) opens the app; time until the page title
  "Image diagnosis" is visible. The first run meets a cold server (its first script run) and is
  shown on its own; the median is over the next ``--runs`` fresh browsers.
- upload -> result: in a fresh browser whose page has painted, time from setting the 224 px sample
  film on the uploader to its label heading being visible. The first run also loads the model
  (lazily, once per server process) and is shown on its own; the median is over the next ``--runs``.

    python bench/bench_page.py [--runs 5] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.support import CHROMIUM_ARGS, SAMPLE, running_dashboard  # noqa: E402

TITLE = "Image diagnosis"
TIMEOUT_MS = 120_000


def _launch(playwright: Playwright, chromium: str) -> Browser:
    return playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)


def first_paint(playwright: Playwright, chromium: str, url: str) -> float:
    """Seconds from navigation to the visible page title, in a fresh browser."""
    browser = _launch(playwright, chromium)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.get_by_role("heading", name=TITLE).wait_for(state="visible", timeout=TIMEOUT_MS)
        return time.perf_counter() - start
    finally:
        browser.close()


def upload_to_result(playwright: Playwright, chromium: str, url: str) -> float:
    """Seconds from setting the 224 px film on the uploader to its label heading being visible."""
    browser = _launch(playwright, chromium)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url, wait_until="domcontentloaded")
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        uploader.wait_for(state="attached", timeout=TIMEOUT_MS)
        start = time.perf_counter()
        uploader.set_input_files(str(SAMPLE))
        page.get_by_role("heading", name=f"{SAMPLE.name}:").wait_for(state="visible", timeout=TIMEOUT_MS)
        return time.perf_counter() - start
    finally:
        browser.close()


def render(rows: list[tuple[str, float, float]], runs: int) -> str:
    lines = [f"| step ({platform.machine()}, {os.cpu_count()} CPUs) | first run (cold) | median of {runs} |",
             "|---|---:|---:|"]
    lines += [f"| {name} | {cold:.2f} s | {median:.2f} s |" for name, cold, median in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as home, running_dashboard(Path(home), Path(home) / "streamlit.log",
                                                                          LUCIDDX_AUTH="off") as dashboard, \
            sync_playwright() as playwright:
        url = dashboard.url
        paints = [first_paint(playwright, args.chromium, url) for _ in range(args.runs + 1)]
        results = [upload_to_result(playwright, args.chromium, url) for _ in range(args.runs + 1)]
    rows = [
        ("first paint: fresh browser -> page title visible", paints[0], statistics.median(paints[1:])),
        ("upload -> result: 224 px film -> label visible", results[0], statistics.median(results[1:])),
    ]
    print(render(rows, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
