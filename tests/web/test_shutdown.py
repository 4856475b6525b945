"""`reelay up` stopped while a dashboard is open (a live stream connected), in a real
headless Chromium: the server stops cleanly, and the page says plainly it is stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from .conftest import CHROMIUM, CHROMIUM_FLAGS, Browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@dataclass
class Up:
    process: subprocess.Popen[str]
    url: str
    token: str
    started: str  # what it printed on stderr while starting

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a terminal sends it (to the process group): the exit code and
        everything printed on stderr."""
        os.killpg(self.process.pid, signal.SIGINT)
        _, err = self.process.communicate(timeout=120)
        return self.process.returncode, self.started + err


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    """`reelay up --app media` in its own process group, on a free port."""
    command = [sys.executable, "-m", "reelay.cli", "up", "--app", "media", "--workers", "1"]
    command += ["--home", str(tmp_path / "home"), "--http", "127.0.0.1:0"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stderr is not None
        started = ""
        while not started.endswith("\n") or "dashboard: " not in started:
            line = process.stderr.readline()
            assert line, f"reelay up exited while starting:\n{started}"
            started += line
        link = started.split("dashboard: ", 1)[1].split()[0]
        url, token = link.split("/?token=")
        yield Up(process, url, token, started)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


@pytest.fixture
def dashboard(up: Up) -> Iterator[Browser]:
    """The dashboard of `up` in Debian's headless Chromium, its live stream connected."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: scripts/system-deps.sh installs it (as root)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = chromium.new_context(viewport={"width": 1440, "height": 900}).new_page()
            page.goto(f"{up.url}/?token={up.token}")
            page.wait_for_selector("#connection.live")
            page.wait_for_selector("#charts .chart svg path.series", state="attached")
            yield Browser(page, [])
        finally:
            chromium.close()


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
