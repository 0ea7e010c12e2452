"""The real server with sign-in on, in headless Chromium: each role signs in and sees its own pages,
and two people at once never see each other's films."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.dashboard import running_dashboard
from tests.test_browser import SAMPLE, browser  # noqa: F401 (the shared Chromium fixture)

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
# role -> the navigation links it must see, and those it must not
HOMES: dict[str, Path] = {}  # server URL -> its LUCIDDX_HOME, for tests that look into its database
SEES = {"clinician": ({"Image diagnosis", "Patient risk", "Model cards"}, {"Retrain", "Administration"}),
        "researcher": ({"Image diagnosis", "Retrain"}, {"Administration"}),
        "admin": ({"Image diagnosis", "Retrain", "Administration"}, set())}


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "LUCIDDX_HOME": str(home), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", _ADD_ACCOUNTS], cwd=ROOT, env=env, check=True)
    with running_dashboard(home, home / "streamlit.log", LUCIDDX_AUTH="on") as dashboard:
        HOMES[dashboard.url] = home
        yield dashboard.url


_ADD_ACCOUNTS = f"""
from core.access import accounts
for role in ("clinician", "researcher", "admin"):
    accounts.add(role + "1", role, {PASSWORD!r})
accounts.add("clinician2", "clinician", {PASSWORD!r})
"""


def sign_in(browser: Browser, url: str, name: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("textbox", name="Name").fill(name)
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=60_000)
    return page


@pytest.mark.timeout(240)
@pytest.mark.parametrize("role", sorted(SEES))
def test_each_role_signs_in_and_sees_only_its_pages(server_url: str, browser: Browser, role: str) -> None:
    page = sign_in(browser, server_url, f"{role}1")
    sidebar = page.locator('[data-testid="stSidebar"]')
    must, must_not = SEES[role]
    for title in must:
        expect(sidebar.get_by_text(title, exact=True)).to_be_visible(timeout=30_000)
    for title in must_not:
        assert sidebar.get_by_text(title, exact=True).count() == 0, f"{role} sees {title}"
    page.context.close()


@pytest.mark.timeout(240)
def test_a_wrong_password_is_refused_without_saying_which_part(server_url: str, browser: Browser) -> None:
    page = browser.new_context().new_page()
    page.goto(server_url, wait_until="domcontentloaded")
    page.get_by_role("textbox", name="Name").fill("clinician1")
    page.get_by_role("textbox", name="Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The name or password is not right")).to_be_visible(timeout=30_000)
    page.context.close()


@pytest.mark.timeout(240)
def test_two_people_at_once_never_see_each_others_films(server_url: str, browser: Browser) -> None:
    first, second = sign_in(browser, server_url, "clinician1"), sign_in(browser, server_url, "clinician2")
    uploader = first.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached", timeout=60_000)
    uploader.set_input_files(str(SAMPLE))
    expect(first.get_by_text(SAMPLE.name).first).to_be_visible(timeout=60_000)
    expect(first.locator('[data-testid="stPlotlyChart"]').first).to_be_visible(timeout=90_000)  # a result drawn
    second.get_by_role("link", name="Image diagnosis").click()  # a fresh run of the same page in the other session
    second.wait_for_timeout(3000)
    assert second.get_by_text(SAMPLE.name).count() == 0
    assert second.locator('[data-testid="stPlotlyChart"]').count() == 0
    first.context.close(), second.context.close()


@pytest.mark.timeout(240)
def test_a_deep_link_survives_sign_in(server_url: str, browser: Browser) -> None:  # noqa: F811
    """Issue 21.9: a bookmark to a model's card opens that card once the reader has signed in."""
    page = browser.new_context(viewport={"width": 1400, "height": 1400}).new_page()
    page.goto(f"{server_url}/model_cards?model=chest_xray:1", wait_until="domcontentloaded")
    page.get_by_role("textbox", name="Name").fill("clinician1")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Model cards")).to_be_visible(timeout=60_000)
    # exact: the card below the headline has its own "Model card: chest_xray:1" title, rendered a moment later
    expect(page.get_by_role("heading", name="chest_xray:1", exact=True)).to_be_visible(timeout=30_000)
    assert "/model_cards" in page.url and "model=chest_xray" in page.url
