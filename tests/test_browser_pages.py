"""Every page in a real browser: it draws its title without an error, and a screenshot is taken.

Headless Debian Chromium on a machine without an emoji font: icons are Streamlit's Material font, so
nothing in the navigation or on the page depends on a system glyph (the emoji scan checks the source).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support.dashboard import running_dashboard
from tests.test_browser import browser  # noqa: F401 (the shared Chromium fixture)

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"": "Image diagnosis", "patient_risk": "Patient risk", "model_cards": "Model cards",
         "worklist": "DICOM worklist", "retrain": "Retrain", "risk_training": "Risk model from a table",
         "admin": "Administration"}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home")
    with running_dashboard(home, home / "streamlit.log", LUCIDDX_AUTH="off") as dashboard:
        yield dashboard.url


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", sorted(PAGES))
def test_each_page_draws_in_a_real_browser(server_url: str, browser: Browser, path: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        page.goto(f"{server_url}/{path}", wait_until="domcontentloaded")
        expect(page.get_by_role("heading", name=PAGES[path], exact=True)).to_be_visible(timeout=90_000)
        page.wait_for_timeout(1000)
        assert not page.locator('[data-testid="stException"]').count()
        shot = tmp_path / f"{path or 'image_diagnosis'}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
        sidebar = page.locator('[data-testid="stSidebar"]')
        for title in PAGES.values():
            expect(sidebar.get_by_text(title, exact=True)).to_be_visible()
    finally:
        page.close()
