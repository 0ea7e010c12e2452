"""The real server in a real headless browser: upload an X-ray, see a prediction and its heatmap.

Uses Debian's chromium (``apt-get install chromium chromium-driver``) through Playwright; no browser
is downloaded. Set ``LUCIDDX_SCREENSHOT=path.png`` to keep a screenshot of the finished page.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.imaging.classifier import load_classifier
from tests.support.dashboard import CHROMIUM, CHROMIUM_ARGS, SAMPLE, running_dashboard

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def server_url(isolated_home: Path, tmp_path: Path) -> Iterator[str]:
    with running_dashboard(isolated_home, tmp_path / "streamlit.log") as dashboard:
        yield dashboard.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1800})
        finally:
            browser.close()


@pytest.mark.timeout(150)
def test_upload_in_a_real_browser_shows_prediction_and_heatmap(server_url: str, page: Page) -> None:
    classes = load_classifier().classes
    page.goto(server_url, wait_until="domcontentloaded")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached", timeout=60_000)
    uploader.set_input_files(str(SAMPLE))

    heading = page.get_by_role("heading", name=f"{SAMPLE.name}:")
    expect(heading).to_be_visible(timeout=60_000)
    label = heading.inner_text().split(":", 1)[1].strip()
    assert label in classes

    viewer = page.locator(".js-plotly-plot").filter(has_text=f"Grad-CAM for {label}")
    expect(viewer).to_be_visible(timeout=60_000)
    page.wait_for_function("gd => gd.querySelectorAll('g.im image').length == 2", arg=viewer.element_handle(),
                           timeout=30_000)  # the film beside its overlay, in one figure
    expect(page.get_by_text("Download heatmap (PNG)")).to_be_visible()
    assert not page.locator('[data-testid="stException"]').count()

    if shot := os.environ.get("LUCIDDX_SCREENSHOT"):
        page.wait_for_timeout(1500)  # let the plotly bar finish drawing
        page.screenshot(path=shot, full_page=True)


@pytest.mark.timeout(150)
def test_a_chinese_browser_gets_the_page_in_chinese(server_url: str) -> None:
    """The first visit follows the browser's language (Accept-Language: zh-CN), film and heatmap included."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1800}).new_page()
            page.goto(server_url, wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="影像诊断")).to_be_visible(timeout=60_000)
            uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
            uploader.wait_for(state="attached", timeout=60_000)
            uploader.set_input_files(str(SAMPLE))
            expect(page.get_by_text("下载热力图（PNG）")).to_be_visible(timeout=90_000)
            viewer = page.locator(".js-plotly-plot").filter(has_text="Grad-CAM")
            page.wait_for_function("gd => gd.querySelectorAll('g.im image').length == 2", arg=viewer.element_handle(),
                                   timeout=30_000)
            assert not page.locator('[data-testid="stException"]').count()
            if shot := os.environ.get("LUCIDDX_SCREENSHOT_ZH"):
                page.wait_for_timeout(1500)
                page.screenshot(path=shot, full_page=True)
        finally:
            browser.close()
