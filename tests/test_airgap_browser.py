"""In a real browser the dashboard loads nothing from outside the server: no font, icon or script CDN."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from tests.support.dashboard import CHROMIUM, CHROMIUM_ARGS, running_dashboard


@pytest.mark.timeout(180)
def test_every_request_of_a_page_load_and_a_navigation_stays_on_the_server(isolated_home: Path,
                                                                           tmp_path: Path) -> None:
    requested: list[str] = []
    with running_dashboard(isolated_home, tmp_path / "streamlit.log") as dashboard, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("request", lambda request: requested.append(request.url))
            page.goto(dashboard.url, wait_until="networkidle")
            page.get_by_text("Model cards").first.click()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(1500)  # favicons and lazily loaded fonts come after the first paint
        finally:
            browser.close()
    hosts = {urlparse(url).hostname for url in requested if urlparse(url).scheme in ("http", "https", "ws", "wss")}
    assert requested and hosts == {"127.0.0.1"}, sorted(u for u in requested if "127.0.0.1" not in u)
