"""What the dashboard's pages say, in a real headless Chromium: charts drawn to their
size, the functions' triggers and concurrency, an unknown title, invocation statuses."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Browser, Served
from .pages import go, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHARTS = """() => [...document.querySelectorAll('#charts svg')].map((svg) => ({
  aspect: svg.getAttribute('preserveAspectRatio'),
  drawn: [svg.viewBox.baseVal.width, svg.viewBox.baseVal.height],
  shown: [svg.getBoundingClientRect().width, svg.getBoundingClientRect().height],
}))"""


def drawn_at_their_size(charts: list[dict[str, Any]]) -> bool:
    return all(
        abs(c["drawn"][0] - c["shown"][0]) <= 1 and abs(c["drawn"][1] - c["shown"][1]) <= 1
        for c in charts
    )


def test_charts_are_drawn_at_the_size_they_are_shown(served: Served, browser: Browser) -> None:
    page = browser.page
    page.wait_for_selector("#charts .chart svg path.series", state="attached")
    charts = page.evaluate(CHARTS)
    assert len(charts) == 6
    # Stretching a drawing to its box (preserveAspectRatio="none") squashes its text.
    assert all(c["aspect"] in (None, "xMidYMid meet") for c in charts), charts
    assert drawn_at_their_size(charts), charts
    # A narrower window: the charts are drawn again at their new size.
    page.set_viewport_size({"width": 700, "height": 1000})
    page.wait_for_function(f"({CHARTS})().every(c => Math.abs(c.drawn[0] - c.shown[0]) <= 1)")
    assert drawn_at_their_size(page.evaluate(CHARTS))
    assert browser.console_errors == []


def test_functions_show_their_triggers_and_unlimited_concurrency(
    served: Served, browser: Browser
) -> None:
    page = browser.page
    functions = served.http.get("/api/functions").json()
    # Each trigger says what it is: the media app starts from uploads to its ingest prefix.
    by_name = {f["name"]: f for f in functions}
    assert by_name["inspect"]["triggers"] == ["s3:ObjectCreated:* s3://media/ingest/*"]
    go(page, "#/functions", "#list tbody tr")
    headers = page.locator("#list thead th").all_inner_texts()
    assert "Triggers" in headers and "Concurrency" in headers
    rows = {}
    for row in page.locator("#list tbody tr").all():
        cells = dict(zip(headers, row.locator("td").all_inner_texts(), strict=True))
        rows[cells[headers[0]].split("\n")[0]] = cells  # the name, above its handler
    # `fail` has no trigger of its own: it runs as the other functions' onFailure
    # destination, and says whose.
    (only,) = by_name["fail"]["triggers"]
    assert only.startswith("onFailure destination of ") and "inspect" in only
    for f in functions:
        cells = rows[f["name"]]
        triggers = "\n".join(f["triggers"]) or "none (invoked directly)"
        assert cells["Triggers"] == triggers, f["name"]
        expected = (
            "unlimited" if f["reserved_concurrency"] is None else str(f["reserved_concurrency"])
        )
        assert cells["Concurrency"] == expected, f["name"]
    assert browser.console_errors == []


def test_an_unknown_title_says_so_and_draws_no_empty_sections(
    served: Served, browser: Browser
) -> None:
    page = browser.page
    go(page, "#/titles/no-such-title", "h1 >> text=No such title")
    assert "no-such-title" in page.locator("main").inner_text()
    assert page.locator("main h2").count() == 0  # no Timeline, no QC
    assert browser.console_errors == []


def test_each_invocation_status_the_api_has_is_offered_and_looks_different(
    served: Served, browser: Browser
) -> None:
    page = browser.page
    document = served.http.get("/api/openapi.json").json()
    parameter = next(
        p
        for p in document["paths"]["/api/invocations"]["get"]["parameters"]
        if p["name"] == "status"
    )
    statuses = next(s["enum"] for s in parameter["schema"]["anyOf"] if "enum" in s)
    go(page, "#/invocations", "#status")
    wait_until(lambda: page.locator("#status option").count() == len(statuses) + 1, "statuses")
    assert page.locator("#status option").all_inner_texts()[1:] == statuses
    # Claimed (no worker yet) is told apart from running at a glance, and so is each other.
    looks = page.evaluate(
        """(statuses) => statuses.map((s) => {
             const span = document.createElement('span');
             span.className = `badge ${s}`;
             document.body.append(span);
             const style = getComputedStyle(span);
             const look = [style.backgroundColor, style.color, style.borderStyle].join(' ');
             span.remove();
             return look;
           })""",
        statuses,
    )
    assert len(set(looks)) == len(statuses), dict(zip(statuses, looks, strict=True))
    assert browser.console_errors == []
