"""The analytics page in a real Chromium: while the flow-log generator puts records on
the stream, each aggregate's live chart moves with the newest window; the metric can be
switched; the SQL console answers, and says what is wrong with bad SQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.analytics.generator import FlowLogs, generate
from reelay.config import Settings
from reelay.runtime import Runtime, load_app
from reelay.web import Server, create_app, ensure_token

from .conftest import SCREENSHOTS, Browser, chromium, console_errors
from .pages import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FLOWS = 'section.aggregate[data-name="flows_by_app"]'


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Browser]:
    """The analytics app served with its dashboard, the generator putting flow logs, and
    Chromium signed in on the analytics page."""
    settings = Settings.load(tmp_path / "home")
    stop = threading.Event()
    with Runtime(load_app("analytics"), settings, max_workers=2) as runtime:
        runtime.client.streams.create_stream("vpc-flows", 2)
        runtime.start()
        token, _ = ensure_token(settings.home)
        put = threading.Thread(
            target=generate,
            args=(runtime.client.streams,),
            kwargs={"rate": 150.0, "stop": stop, "flows": FlowLogs(seed=5, late=0.02)},
        )
        put.start()
        try:
            with (
                Server(create_app(runtime.client, token, app=runtime.app), port=0) as server,
                chromium() as launched,
            ):
                tab = launched.new_context(viewport={"width": 1440, "height": 1100}).new_page()
                errors = console_errors(tab)
                tab.goto(f"{server.url}/?token={token}#/analytics")
                tab.wait_for_selector("#connection.live")
                yield Browser(tab, errors)
        finally:
            stop.set()
            put.join()


def test_the_live_chart_moves_while_the_generator_runs(page: Browser) -> None:
    tab = page.page
    chart = tab.locator(f"{FLOWS} svg")
    chart.locator("polyline").first.wait_for(timeout=60_000)

    def drawn() -> str:
        return str(chart.inner_html()) + tab.locator(f"{FLOWS} .bars-box").inner_text()

    seen = [drawn()]
    for _ in range(3):  # each second's message redraws it with the newest window grown
        wait_until(lambda: drawn() != seen[-1], "the chart to move", timeout=30)
        seen.append(drawn())
    assert len(set(seen)) == 4
    heading = tab.locator(f"{FLOWS} .heading")
    assert "bytes (sum of bytes) per window, by src_app → dst_app" in heading.inner_text()
    legend = tab.locator(f"{FLOWS} .legend-box").inner_text()
    assert "edge-gateway → playback" in legend  # the top pair by bytes
    facts = tab.locator(f"{FLOWS} .facts").inner_text()
    assert "vpc-flows" in facts and "vpc-flows-late" in facts
    tab.locator(f"{FLOWS} select").select_option("flows")
    wait_until(lambda: "flows (count) per window" in heading.inner_text(), "the metric to switch")
    # every aggregate of the example is drawn: reelay's own functions too
    for name in ("talkers", "rejects", "functions"):
        tab.locator(f'section.aggregate[data-name="{name}"] svg').wait_for(timeout=60_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.locator(f"{FLOWS} select").select_option("bytes")
    tab.wait_for_timeout(1500)
    page.screenshot("analytics.png")
    assert page.console_errors == []


def test_the_sql_console(page: Browser) -> None:
    tab = page.page
    tab.locator(f"{FLOWS} svg polyline").first.wait_for(timeout=60_000)
    box = tab.locator("#sql textarea")
    wait_until(lambda: "FROM flows_by_app" in box.input_value(), "the suggested query")
    tab.locator("#sql button").click()
    answer = tab.locator("#sql .answer")
    answer.locator("table").wait_for()
    header = answer.locator("th").all_inner_texts()
    assert header == [
        "window_start",
        "window_end",
        "src_app",
        "dst_app",
        "bytes",
        "packets",
        "flows",
        "rejected",
    ]
    assert "edge-gateway" in answer.inner_text()
    box.fill("SELECT nope FROM flows_by_app")
    box.press("Control+Enter")
    error = answer.locator(".query-error")
    error.wait_for()
    assert 'Binder Error: Referenced column "nope" not found' in error.inner_text()
    box.fill("DELETE FROM flows_by_app")
    tab.locator("#sql button").click()
    wait_until(lambda: "this is a DELETE statement" in error.inner_text(), "the refusal")
    assert [e for e in page.console_errors if "400" not in e] == []  # the refused queries' 400s
