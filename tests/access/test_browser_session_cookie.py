"""Issue 22.10: a signed-in session survives a reload, a bookmark and a second tab (an HttpOnly cookie the
server keeps), and ends for every tab on sign-out and after idle time. The real server, headless Chromium."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.access.test_browser_roles import server_url, sign_in  # noqa: F401 (the module's server, with accounts)
from tests.test_browser import browser  # noqa: F401 (the shared Chromium fixture)

COOKIE = "luciddx_session"


def session_cookie(context: BrowserContext, timeout_s: float = 30) -> dict:
    """The session cookie once the page has handed it over (a moment after sign-in)."""
    page = context.pages[0]
    for _ in range(int(timeout_s * 4)):
        found = [c for c in context.cookies() if c["name"] == COOKIE]
        if found:
            return found[0]
        page.wait_for_timeout(250)
    raise AssertionError("no session cookie was set after sign-in")


def signed_in_as(page: Page, name: str) -> None:
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible(timeout=60_000)


def asks_for_password(page: Page) -> None:
    expect(page.get_by_role("textbox", name="Password")).to_be_visible(timeout=60_000)
    assert page.get_by_text("Signed in as").count() == 0


@pytest.mark.timeout(300)
def test_reload_and_a_second_tab_stay_signed_in_until_sign_out(server_url: str, browser: Browser) -> None:  # noqa: F811
    page = sign_in(browser, server_url, "researcher1")
    cookie = session_cookie(page.context)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert cookie["expires"] > datetime.now(timezone.utc).timestamp() + 3600  # lives for the shift, not forever
    assert COOKIE not in page.evaluate("document.cookie")  # no page script can read it

    page.reload(wait_until="domcontentloaded")
    signed_in_as(page, "researcher1")

    second = page.context.new_page()  # a second tab at a bookmarked deep link
    second.goto(f"{server_url}/model_cards?model=chest_xray:1", wait_until="domcontentloaded")
    signed_in_as(second, "researcher1")
    expect(second.get_by_role("heading", name="chest_xray:1", exact=True)).to_be_visible(timeout=30_000)  # not the card title

    page.get_by_role("button", name="Sign out").click()
    asks_for_password(page)
    page.reload(wait_until="domcontentloaded")
    asks_for_password(page)  # the cookie no longer signs anyone in
    second.reload(wait_until="domcontentloaded")
    asks_for_password(second)  # nor in the other tab
    page.context.close()


@pytest.mark.timeout(300)
def test_an_idle_session_is_not_resumed_and_a_copied_cookie_is_worthless_after_it(
        server_url: str, browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    page = sign_in(browser, server_url, "clinician1")
    cookie = session_cookie(page.context)
    home = Path(_home_of(server_url))
    engine = sa.create_engine(f"sqlite:///{home / 'luciddx.db'}")
    with engine.begin() as db:  # two hours without activity (the idle limit is 30 minutes)
        db.execute(sa.text("UPDATE browser_sessions SET last_seen = :t WHERE account = 'clinician1' AND ended IS NULL"),
                   {"t": datetime.now(timezone.utc) - timedelta(hours=2)})
    engine.dispose()
    page.reload(wait_until="domcontentloaded")
    asks_for_password(page)

    stranger = browser.new_context()  # the same cookie copied into another browser
    stranger.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    other = stranger.new_page()
    other.goto(server_url, wait_until="domcontentloaded")
    asks_for_password(other)
    stranger.close(), page.context.close()


def _home_of(url: str) -> str:
    from tests.access import test_browser_roles

    return str(test_browser_roles.HOMES[url])
