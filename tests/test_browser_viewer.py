"""The film viewer in a real browser at 800 px wide: the label readable, zoom locked, window/level live.

Debian's chromium through Playwright (see tests/test_browser.py for the server and browser fixtures).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pydicom.data import get_testdata_file

from core.i18n import format_threshold
from core.models import registry
from tests.test_browser import page, server_url  # noqa: F401 (fixtures)

CT_SLICE = Path(get_testdata_file("CT_small.dcm"))
NARROW = {"width": 800, "height": 1400}
VIEWER = '.js-plotly-plot:has(g.im image)'


def axis_ranges(page: Page) -> dict[str, list[float]]:
    return page.eval_on_selector(VIEWER, """gd => ({x: gd._fullLayout.xaxis.range, x2: gd._fullLayout.xaxis2.range,
                                                   y: gd._fullLayout.yaxis.range, y2: gd._fullLayout.yaxis2.range})""")


def film_href(page: Page) -> str:
    return page.eval_on_selector(VIEWER, "gd => gd.querySelector('image').getAttribute('href')")


def choose(page: Page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


@pytest.mark.timeout(150)
def test_a_dicom_at_800_px_zooms_both_films_together_and_rewindows(server_url: str, page: Page) -> None:  # noqa: F811
    page.set_viewport_size(NARROW)
    page.goto(server_url, wait_until="domcontentloaded")
    uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    uploader.wait_for(state="attached", timeout=60_000)
    uploader.set_input_files(str(CT_SLICE))

    heading = page.get_by_role("heading", name=f"{CT_SLICE.name}: Not assessable")
    expect(heading).to_be_visible(timeout=60_000)
    threshold = format_threshold(registry.resolve("chest_xray").meta["threshold"])
    expect(page.get_by_text(re.compile(rf"^PNEUMONIA probability [0-9.]+, threshold {re.escape(threshold)}: Not assessable$"))
           ).to_be_visible()
    main = page.locator('[data-testid="stMain"]')
    assert main.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "no horizontal scrollbar at 800 px"
    box = heading.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= NARROW["width"]

    page.locator(VIEWER).scroll_into_view_if_needed(timeout=30_000)
    page.wait_for_function(f"() => document.querySelector('{VIEWER}')._fullLayout.xaxis.range", timeout=30_000)
    before = axis_ranges(page)
    page.locator(VIEWER).hover()
    page.locator(f'{VIEWER} .modebar-btn[data-title="Zoom in"]').click()
    page.wait_for_function(f"r => JSON.stringify(document.querySelector('{VIEWER}')._fullLayout.xaxis.range) != r",
                           arg=str(before["x"]).replace(" ", ""), timeout=10_000)
    after = axis_ranges(page)
    width = lambda r: abs(r[1] - r[0])  # noqa: E731
    assert width(after["x"]) < width(before["x"]) and width(after["y"]) < width(before["y"])
    assert after["x"] == after["x2"] and after["y"] == after["y2"], "the film and its overlay zoom together"

    default = film_href(page)
    choose(page, "Window/level", "Lung (CT)")
    page.wait_for_function(f"h => document.querySelector('{VIEWER}').querySelector('image').getAttribute('href') != h",
                           arg=default, timeout=30_000)
    expect(page.get_by_text("Window centre -600, width 1500", exact=False)).to_be_visible()
    assert film_href(page) != default, "the rendered film's pixels changed with the window"
    assert not page.locator('[data-testid="stException"]').count()
