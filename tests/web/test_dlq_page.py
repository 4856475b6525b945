"""A title that fails shows in the DLQ and fires alerts; redriven from the page, it is
published and the alerts resolve (in a real headless Chromium, with a real webhook)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from reelay.media.samples import make_clip

from .conftest import Browser, Served
from .pages import upload

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def app_environment(tmp_path: Path) -> dict[str, str]:
    # An ffmpeg that is not there yet: every encode fails until the test puts it there.
    return {
        "REELAY_MEDIA_LADDER": "demo",
        "REELAY_MEDIA_CHUNK_SECONDS": "2",
        "REELAY_FFMPEG": str(tmp_path / "bin" / "ffmpeg"),
    }


def wait_until(check: Any, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def alerts(served: Served, status: str) -> set[tuple[str, str]]:
    """(alertname, key) of the webhook messages received with this status."""
    return {
        (a["labels"]["alertname"], a["labels"].get("key", ""))
        for message in served.webhook
        for a in message["alerts"]
        if a["status"] == status
    }


def test_a_failed_title_is_redriven_from_the_dlq_page_and_its_alerts_resolve(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    title_id = upload(served, make_clip(tmp_path / "broken.mp4", seconds=4, size="320x240"))
    wait_until(
        lambda: [t["status"] for t in served.http.get("/api/titles").json()] == ["failed"],
        "the title to fail",
    )
    # Its page promises neither QC figures nor a player: a failed title is not checked
    # (unless it is redriven).
    page.evaluate(f"location.hash = '#/titles/{title_id}'")
    page.wait_for_selector("#summary .badge.failed")
    page.wait_for_selector("#qc .empty")
    qc, player = page.locator("#qc").inner_text(), page.locator("#player-panel").inner_text()
    assert "appear" not in qc and "not checked" in qc.lower(), qc
    assert "appears" not in player and "failed" in player, player

    # Both alerts fire, on the page and at the webhook; each firing is an event.
    wait_until(
        lambda: {("DeadLetters", ""), ("TitleFailed", title_id)} <= alerts(served, "firing"),
        "the alerts to fire",
    )
    fired = served.client.state.events(source="reelay.alerts")
    assert {e.detail_type for e in fired} == {"Alert Firing"}
    page.evaluate("location.hash = '#/alerts'")
    page.wait_for_selector("#firing tbody tr >> text=TitleFailed")
    dead_letters = page.locator("#firing tbody tr", has_text="DeadLetters")
    assert dead_letters.count() == 1
    value = dead_letters.locator("td").nth(3).inner_text()
    assert value.isdigit(), f"a count of dead letters reads {value!r}"  # "3", not "3.000"

    # The DLQ page lists the two chunk encodes and the audio encode, with their error.
    page.evaluate("location.hash = '#/dlq'")
    page.wait_for_selector("#list tbody tr")
    rows = page.locator("#list tbody tr")
    wait_until(lambda: rows.count() == 3, "three DLQ rows", 30)
    assert all("REELAY_FFMPEG" in text for text in rows.all_inner_texts())
    assert page.locator("#dlq-count").inner_text() == "3"
    browser.screenshot("dlq.png")

    # Fixed, one row is redriven by its own button, then the rest with "Redrive all".
    (tmp_path / "bin").mkdir()
    os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), tmp_path / "bin" / "ffmpeg")
    rows.first.locator("button.redrive").click()
    page.wait_for_selector("#redrive-result >> text=redriven: 1")
    wait_until(lambda: rows.count() == 2, "two DLQ rows left", 60)
    page.click("#redrive-all")
    page.wait_for_selector("#redrive-result >> text=redriven: 2")
    page.wait_for_selector("#list .empty >> text=The DLQ is empty.", timeout=120_000)

    wait_until(
        lambda: [t["status"] for t in served.http.get("/api/titles").json()] == ["published"],
        "the redriven title to be published",
    )
    wait_until(
        lambda: {("DeadLetters", ""), ("TitleFailed", title_id)} <= alerts(served, "resolved"),
        "the alerts to resolve",
    )
    page.evaluate("location.hash = '#/alerts'")
    page.wait_for_selector("#firing .empty >> text=No alert is firing.")
    resolved = served.client.state.events(source="reelay.alerts")
    assert sum(e.detail_type == "Alert Resolved" for e in resolved) == 2
    assert browser.console_errors == []
