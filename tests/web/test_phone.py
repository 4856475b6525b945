"""Every dashboard page on a phone (390 x 844 CSS pixels) in a real headless Chromium:
nothing wider than the screen, the whole nav reachable, the player and the timeline
usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Browser, Served
from .pages import PHONE, box, go, in_viewport, phone, post_events, publish_title

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]


def test_every_page_fits_a_phone(served: Served, browser: Browser, tmp_path: Path) -> None:
    title_id = publish_title(served, tmp_path)
    post_events(served, 3, "a-rather-long-name-" * 8)
    with phone(browser, served) as small:
        page = small.page
        pages = [
            ("#/", "#charts .chart svg path.series"),
            ("#/titles", "#list tbody tr"),
            (f"#/titles/{title_id}", "#player"),
            ("#/titles/no-such-title", "text=No such title"),
            ("#/functions", "#list tbody tr"),
            ("#/invocations", "#list tbody tr"),
            ("#/events", "#list tbody tr"),
            ("#/dlq", "#list .empty"),
            ("#/alerts", "#rules tbody tr"),
            ("#/nodes", "#list tbody tr"),
        ]
        for hash_, ready in pages:
            go(page, hash_, ready)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{hash_} is {width} px wide on a phone"
            links = page.locator("nav a")
            for i in range(links.count()):
                assert in_viewport(page, f"nav a >> nth={i}"), links.nth(i).inner_text()

        # A row opened on a phone (long lines in its detail) still fits.
        go(page, "#/events", "#list tbody tr")
        page.locator("#list tbody tr[data-key]").first.click()
        page.wait_for_selector("tr.detail-row pre")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # Each nav link takes a tap to its page.
        for link in page.locator("nav a").all():
            href = link.get_attribute("href")
            link.tap()
            page.wait_for_function(f"location.hash === {href!r}")

        # The title page: the player on screen as it opens, each timeline lane most of the
        # screen's width (a lane is where the bars are read).
        go(page, f"#/titles/{title_id}", "#player")
        page.wait_for_function("document.getElementById('player').readyState >= 2")
        assert in_viewport(page, "#player")
        lanes = page.eval_on_selector_all(".tl-lane", "ls => ls.map(l => l.clientWidth)")
        assert lanes and min(lanes) >= 0.6 * PHONE["width"], lanes
        assert box(page, ".tl-row")["width"] <= PHONE["width"]
        small.screenshot("title-phone.png")
        go(page, "#/", "#charts .chart svg path.series")
        small.screenshot("overview-phone.png")
        assert small.console_errors == []
