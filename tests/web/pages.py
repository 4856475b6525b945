"""What the dashboard's browser tests share: feeding a served home, waiting for it, and
reading where things are on the page."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

from reelay.media.samples import make_clip

from .conftest import Browser, Served, console_errors

PHONE = {"width": 390, "height": 844}


def wait_until(check: Callable[[], Any], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def post_events(served: Served, count: int, name: str) -> None:
    """`count` custom events through the API, each with detail {"name": "NAME-i"}."""
    for start in range(0, count, 10):
        entries = [
            {"Source": "my.app", "DetailType": "Hello", "Detail": {"name": f"{name}-{i}"}}
            for i in range(start, min(start + 10, count))
        ]
        response = served.http.post("/api/events", json={"Entries": entries})
        assert response.status_code == 201, response.text


def upload(served: Served, src: Path) -> str:
    """Upload a file through the API: the id of the title it starts."""
    with src.open("rb") as f:
        response = served.http.post("/api/titles", params={"name": src.name}, content=f)
    assert response.status_code == 201, response.text
    return str(response.json()["title_id"])


def settle(served: Served, title_id: str) -> str:
    """Wait until the title is settled: its status (published, held, rejected, failed)."""

    def status() -> str | None:
        titles = served.http.get("/api/titles").json()
        return next((t["status"] for t in titles if t["id"] == title_id), None)

    settled = ("published", "held", "rejected", "failed")
    wait_until(lambda: status() in settled, "the title to settle")
    return str(status())


def publish_title(served: Served, tmp_path: Path, seconds: float = 2, size: str = "320x240") -> str:
    """Upload a short clip through the API and wait until its title is published."""
    title_id = upload(served, make_clip(tmp_path / "short.mp4", seconds=seconds, size=size))
    assert settle(served, title_id) == "published"
    return title_id


def reject_title(served: Served, tmp_path: Path) -> str:
    """Upload a file that is not media and wait until its title is rejected."""
    src = tmp_path / "notes.mp4"
    src.write_text("these are notes, not a video\n" * 40)
    title_id = upload(served, src)
    assert settle(served, title_id) == "rejected"
    return title_id


def box(page: Page, selector: str) -> dict[str, float]:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not on the page"
    return found


def in_viewport(page: Page, selector: str) -> bool:
    """Whether the element is entirely within the visible part of the page."""
    size = page.viewport_size
    assert size is not None
    b = box(page, selector)
    return (
        b["x"] >= 0
        and b["y"] >= 0
        and b["x"] + b["width"] <= size["width"] + 0.5
        and b["y"] + b["height"] <= size["height"] + 0.5
    )


def go(page: Page, hash_: str, ready: str) -> None:
    page.evaluate(f"location.hash = {hash_!r}")
    page.wait_for_selector(ready)


@contextmanager
def phone(browser: Browser, served: Served) -> Iterator[Browser]:
    """The dashboard in a phone-sized browser (390 x 844 CSS pixels, touch), signed in."""
    chromium = browser.page.context.browser
    assert chromium is not None
    context = chromium.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    try:
        page = context.new_page()
        errors = console_errors(page)
        page.goto(f"{served.url}/?token={served.token}")
        page.wait_for_selector("#connection.live")
        yield Browser(page, errors)
    finally:
        context.close()
