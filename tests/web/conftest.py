"""Fixtures for the web tests: a real server on loopback over a real home.

``api``: the HTTP API over a home with no runtime (fast; for requests and their
errors); ``web``: the same, failing the test if the server logged an error. ``served``: the same with the media app served by a real `Runtime`, and the
built-in alert rules posting to a webhook receiver on loopback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import Page, sync_playwright

from reelay.client import Client
from reelay.config import Settings
from reelay.observe.alerts import Alerter, AlertRules, load_alert_rules
from reelay.runtime import Runtime, load_app
from reelay.web import Server, create_app, ensure_token


@dataclass
class Served:
    url: str
    token: str
    client: Client
    home: Path
    http: httpx.Client
    webhook: list[dict[str, Any]] = field(default_factory=list)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook receiver on loopback: its URL and the JSON bodies it was sent."""
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _serve(client: Client, runtime: Runtime | None, alerter: Alerter | None) -> Iterator[Served]:
    token, _ = ensure_token(client.settings.home)
    app = create_app(client, token, app=runtime.app if runtime else None, alerter=alerter)
    with (
        Server(app, port=0) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as http,
    ):
        yield Served(server.url, token, client, client.settings.home, http)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Served]:
    with Client(Settings.load(tmp_path / "home")) as client:
        yield from _serve(client, None, None)


@pytest.fixture
def web(api: Served) -> Iterator[Served]:
    """`api`, and the test fails if the server logged an unhandled exception (a 500 or
    a broken stream), whether or not the test looked at that response."""
    errors: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record)

    handler = Collect(logging.ERROR)
    logger = logging.getLogger("uvicorn.error")  # configured when the fixture started
    logger.addHandler(handler)
    try:
        yield api
    finally:
        logger.removeHandler(handler)
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
def app_environment() -> dict[str, str]:
    """The media app's environment in `served` (a test module may override this)."""
    return {"REELAY_MEDIA_LADDER": "demo", "REELAY_MEDIA_CHUNK_SECONDS": "2"}


@pytest.fixture
def served(
    tmp_path: Path,
    webhook: tuple[str, list[dict[str, Any]]],
    app_environment: dict[str, str],
) -> Iterator[Served]:
    url, received = webhook
    builtin = load_alert_rules()  # the built-in rules (reelay's and media's), posting to url
    rules = AlertRules(tuple(replace(r, webhook=url) for r in builtin), builtin.source, url)
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    app = load_app("media").with_environment(app_environment)
    with Runtime(app, settings, max_workers=2) as runtime:
        runtime.start()
        alerter = Alerter(rules, runtime.client)
        for served in _serve(runtime.client, runtime, alerter):
            served.webhook = received
            yield served


# -- a real browser --------------------------------------------------------------------------

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's hosts, which
# a closed network refuses; tests bind to loopback only.
CHROMIUM_FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@dataclass
class Browser:
    page: Page
    console_errors: list[str]

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextlib.contextmanager
def chromium() -> Iterator[PlaywrightBrowser]:
    """Debian's headless Chromium, driven by Playwright; the test is skipped, saying
    why, where there is none."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: scripts/system-deps.sh installs it (as root)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


def console_errors(page: Page) -> list[str]:
    """The errors ``page`` logs or throws from now on (a list that grows)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


@pytest.fixture
def browser(served: Served) -> Iterator[Browser]:
    """Headless Chromium signed in to the dashboard."""
    with chromium() as launched:
        page = launched.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        errors = console_errors(page)
        page.goto(f"{served.url}/?token={served.token}")
        page.wait_for_selector("#connection.live")
        yield Browser(page, errors)


# -- `reelay up` as a user runs it ------------------------------------------------------------


@dataclass
class Up:
    """A real `reelay up --app media` process, started and serving on a free port."""

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
