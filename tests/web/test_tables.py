"""The dashboard's long tables in a real headless Chromium: pages read from the server,
details opened next to their row, and live updates that leave the rest of a row alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Browser, Served
from .pages import (
    PHONE,
    go,
    in_viewport,
    phone,
    post_events,
    publish_title,
    reject_title,
    wait_until,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = "#list tbody tr[data-key]"
DESKTOP = {"width": 1280, "height": 800}


def keys(browser: Browser) -> list[str]:
    return [
        str(k) for k in browser.page.eval_on_selector_all(ROWS, "rs => rs.map(r => r.dataset.key)")
    ]


def test_events_are_paged_by_the_server_and_a_row_opens_under_itself(
    served: Served, browser: Browser
) -> None:
    page = browser.page
    post_events(served, 130, "paged")
    newest = [str(e["seq"]) for e in served.http.get("/api/events", params={"limit": 50}).json()]
    go(page, "#/events", ROWS)
    wait_until(lambda: keys(browser) == newest, "the newest 50 events")

    # A row far down the page opens its detail right under itself, on screen.
    row = page.locator(ROWS).nth(45)
    detail = page.locator(f"{ROWS}:nth-child(46) + tr.detail-row .detail")
    row.click()
    detail.locator("pre").wait_for()
    assert '"name": "paged-' in detail.inner_text()
    assert in_viewport(page, f"{ROWS}:nth-child(46) + tr.detail-row .detail")
    row.click()
    detail.wait_for(state="detached")

    # Older: the next page, as the API pages it; Newer: back again.
    older = [
        str(e["seq"])
        for e in served.http.get("/api/events", params={"limit": 50, "before": newest[-1]}).json()
    ]
    assert len(older) == 50 and int(older[0]) < int(newest[-1])
    page.locator(".pager [data-go=older]").first.click()
    wait_until(lambda: keys(browser) == older, "the next 50 events")
    assert page.locator(".pager .page").first.inner_text() == "page 2"
    page.locator(".pager [data-go=newer]").first.click()
    wait_until(lambda: keys(browser) == newest, "the newest events again")
    assert browser.console_errors == []


def test_invocations_are_paged_and_a_row_shows_its_attempts_under_it(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    publish_title(served, tmp_path)
    listed = served.http.get("/api/invocations", params={"limit": 1000}).json()
    assert len(listed) > 8
    first = [i["id"] for i in listed[:4]]
    go(page, "#/invocations?size=4", ROWS)
    wait_until(lambda: keys(browser) == first, "the newest four invocations")
    page.locator(".pager [data-go=older]").first.click()
    second = [
        i["id"]
        for i in served.http.get(
            "/api/invocations", params={"limit": 4, "before": first[-1]}
        ).json()
    ]
    assert second == [i["id"] for i in listed[4:8]]
    wait_until(lambda: keys(browser) == second, "the next four invocations")

    page.locator(ROWS).last.click()
    detail = page.locator("tr.detail-row .detail")
    detail.locator("pre").first.wait_for()
    assert "Attempt 1" in detail.inner_text() and second[-1] in detail.inner_text()
    assert in_viewport(page, "tr.detail-row .detail")
    assert browser.console_errors == []


def test_a_text_selection_in_a_live_table_survives_its_updates(
    served: Served, browser: Browser
) -> None:
    page = browser.page
    post_events(served, 5, "old")
    go(page, "#/events", "#list tbody tr >> text=old-2")
    summary = page.locator("#list tbody tr", has_text='"old-2"').locator("td").last
    summary.evaluate(
        """el => { const range = document.createRange(); range.selectNodeContents(el);
                   getSelection().removeAllRanges(); getSelection().addRange(range); }"""
    )
    selected = page.evaluate("getSelection().toString()")
    assert '"old-2"' in selected

    # Four live updates, each adding a row above the selected one.
    for i in range(4):
        post_events(served, 1, f"new{i}")
        page.wait_for_selector(f"#list tbody tr >> text=new{i}-0")
    assert page.evaluate("getSelection().toString()") == selected
    assert browser.console_errors == []


def test_no_page_is_wider_than_the_screen_with_rows_open(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    # Long cells: S3 events' records, a rejected title's error, long names in events.
    title_id = publish_title(served, tmp_path)
    reject_title(served, tmp_path)
    post_events(served, 3, "a-rather-long-name-" * 8)
    browser.page.set_viewport_size(DESKTOP)
    fits(browser, title_id, DESKTOP["width"])
    with phone(browser, served) as small:
        fits(small, title_id, PHONE["width"])


def fits(browser: Browser, title_id: str, width: int) -> None:
    """Every page, with rows of each table opened, is no wider than `width`: long cells
    wrap (or a table scrolls in its own box), the page never scrolls sideways."""
    page = browser.page
    pages = [
        ("#/", "#charts .chart svg path.series", []),
        ("#/titles", "#list tbody tr", []),
        (f"#/titles/{title_id}", "#player", []),
        ("#/functions", "#list tbody tr", []),
        ("#/invocations", ROWS, ["inspect", "publish"]),
        ("#/events", ROWS, ["aws.s3", "a-rather-long-name-", "Media Title Rejected"]),
        ("#/dlq", "#list .empty", []),
        ("#/alerts", "#rules tbody tr", []),
        ("#/nodes", "#list tbody tr", []),
    ]
    for hash_, ready, opened in pages:
        go(page, hash_, ready)
        for text in opened:
            page.locator(ROWS, has_text=text).first.click()
        page.wait_for_function(
            "n => document.querySelectorAll('tr.detail-row .detail pre').length >= n",
            arg=len(opened),
        )
        browser.screenshot(f"fits-{width}-{hash_.strip('#/').replace('/', '-') or 'overview'}.png")
        wide = page.evaluate("document.documentElement.scrollWidth")
        assert wide <= width, f"{hash_} is {wide} px wide in a {width} px window"
        assert page.evaluate("window.scrollX") == 0, f"{hash_} scrolled sideways"
    assert browser.console_errors == []
