"""The dashboard in a real headless Chromium, over a real runtime encoding a real title."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from reelay.media.samples import make_clip

from .conftest import Browser, Served
from .pages import upload

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]


def test_a_title_uploaded_through_the_api_appears_progresses_and_plays(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    page = browser.page
    # Overview: every chart is drawn from the live stream, with no page reload.
    page.wait_for_selector("#charts .chart svg path.series", state="attached")
    assert page.locator("#charts .chart").count() == 6
    page.evaluate("window.__loaded = true")  # gone if the page reloads

    # 16 s in 2 s chunks: eight chunk encodes, so the title is seen while it progresses.
    title_id = upload(served, make_clip(tmp_path / "trailer.mp4", seconds=16, size="640x360"))
    row = page.locator("#titles tbody tr", has_text=title_id)
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if row.count():
            state = row.locator(".badge").inner_text()
            width = row.locator(".progress > div").get_attribute("style") or ""
            if not seen or seen[-1] != (state, width):
                seen.append((state, width))
            if state not in ("submitted", "processing"):  # settled
                break
        time.sleep(0.1)
    states = [s for s, _ in seen]
    assert states[-1] == "published", seen
    assert "processing" in states, f"the title was never seen in progress: {seen}"
    assert len({w for s, w in seen if s == "processing"}) >= 2, f"no progress was drawn: {seen}"
    assert page.evaluate("window.__loaded") is True
    overview = browser.screenshot("overview.png")

    # The title page: a bar per task (eight chunk encodes among them), QC charts, player.
    row.locator("a").click()
    page.wait_for_selector(".tl-row")
    tasks = served.http.get(f"/api/titles/{title_id}").json()["tasks"]
    assert page.locator(".tl-row").count() == len(tasks)
    chunks = page.locator(".tl-row", has_text="chunk")
    assert chunks.count() == 8
    assert page.locator(".tl-row .tl-bar.ok").count() >= len(tasks)
    first = chunks.first.locator(".tl-bar.ok").get_attribute("title") or ""
    assert "encode chunk 0" in first and "attempt 1" in first and "on " in first
    chunk0 = next(t for t in tasks if t["label"].startswith("chunk 0 "))
    assert chunks.first.locator(".tl-worker").inner_text() == chunk0["attempts"][0]["worker"]
    page.wait_for_selector("#qc .bars .bar")
    assert page.locator("#qc .panel").count() == 4  # fidelity and display VMAF, PSNR, bitrate
    vmaf = (
        page.locator("#qc .panel", has_text="Fidelity VMAF").locator(".bars span").all_inner_texts()
    )
    assert len(vmaf) == 2 * 2 and all(float(v) > 0 for v in vmaf[1::2])  # two renditions

    page.wait_for_selector("#player")
    page.wait_for_function("document.getElementById('player').currentTime > 2", timeout=60_000)
    assert page.evaluate("window.Hls !== undefined")
    played = page.evaluate("document.getElementById('player').videoHeight")
    assert played in (234, 360)  # a rendition of the published ladder is on screen
    summary = page.locator("#summary").inner_text()
    assert not re.search(r"published\s+publish", summary), summary  # the stage is done
    title_page = browser.screenshot("title.png")

    assert browser.console_errors == []
    assert overview.stat().st_size > 10_000 and title_page.stat().st_size > 10_000


def test_every_page_loads_without_console_errors(served: Served, browser: Browser) -> None:
    page = browser.page
    served.http.post(
        "/api/events",
        json={
            "Entries": [{"Source": "my.app", "DetailType": "Hello", "Detail": {"x": "<b>1</b>"}}]
        },
    )
    for hash_, ready in [
        ("#/functions", "#list tbody tr"),
        ("#/invocations", "#list"),
        ("#/events", "#list tbody tr"),
        ("#/dlq", "#list .empty"),
        ("#/alerts", "#rules tbody tr"),
        ("#/titles", "#list"),
        ("#/", "#charts .chart"),
    ]:
        page.evaluate(f"location.hash = '{hash_}'")
        page.wait_for_selector(ready)
    # Functions: the media app's twelve functions. Events: searchable, and text stays text.
    page.evaluate("location.hash = '#/functions'")
    page.wait_for_selector("#list tbody tr")
    assert page.locator("#list tbody tr").count() == 12
    page.evaluate("location.hash = '#/events'")
    page.wait_for_selector("#list tbody tr")
    page.fill("input[type=search]", "hello")
    assert page.locator("#list tbody tr:visible").count() == 1
    assert page.locator("#list b").count() == 0  # the detail's markup is escaped
    page.fill("input[type=search]", "no such event anywhere")
    assert page.locator("#list tbody tr:visible").count() == 0
    assert browser.console_errors == []
