"""`reelay up` stopped while a dashboard is open (a live stream connected), in a real
headless Chromium: the server stops cleanly, and the page says plainly it is stale."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .conftest import Browser, Up, chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def dashboard(up: Up) -> Iterator[Browser]:
    """The dashboard of `up` in Debian's headless Chromium, its live stream connected."""
    with chromium() as launched:
        page = launched.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.goto(f"{up.url}/?token={up.token}")
        page.wait_for_selector("#connection.live")
        page.wait_for_selector("#charts .chart svg path.series", state="attached")
        yield Browser(page, [])


def test_ctrl_c_with_a_dashboard_open_stops_cleanly(up: Up, dashboard: Browser) -> None:
    code, err = up.interrupt()
    assert code == 0, err
    assert "Traceback" not in err and "ERROR" not in err, err
    assert err.rstrip().endswith("reelay up: stopped"), err


def test_the_dashboard_says_plainly_when_its_server_is_gone(up: Up, dashboard: Browser) -> None:
    page = dashboard.page
    page.wait_for_selector("#stale", state="hidden")
    up.interrupt()
    banner = page.wait_for_selector("#stale", state="visible")
    assert banner is not None
    assert "Disconnected from the reelay server" in banner.inner_text()
    assert "stale" in banner.inner_text()
    assert page.locator("#connection").inner_text() == "disconnected"
    # Figures that no longer move are faded, so none is read as live.
    assert float(page.evaluate("getComputedStyle(document.querySelector('main')).opacity")) < 1
    dashboard.screenshot("disconnected.png")
