"""A title's page in a real headless Chromium: only its own player (the previous title's
is stopped when the page changes), retries that show in the timeline on a desktop and a
phone, and nothing promised that will not come (no QC for a rejected title).

The media app runs with an ffmpeg that fails the first time it is run, then works: one
task of the published title takes two attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import pytest

from .conftest import Browser, Served
from .pages import go, phone, publish_title, reject_title

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def app_environment(tmp_path: Path) -> dict[str, str]:
    flaky = tmp_path / "bin" / "ffmpeg"
    flaky.parent.mkdir()
    # mkdir is atomic: of the workers running ffmpeg at once, exactly one fails, once.
    flaky.write_text(
        "#!/bin/sh\n"
        f"mkdir '{tmp_path / 'failed-once'}' 2>/dev/null && "
        "{ echo 'flaky ffmpeg: failing once' >&2; exit 1; }\n"
        f"exec '{imageio_ffmpeg.get_ffmpeg_exe()}' \"$@\"\n"
    )
    flaky.chmod(0o755)
    return {
        "REELAY_MEDIA_LADDER": "demo",
        "REELAY_MEDIA_CHUNK_SECONDS": "2",
        "REELAY_FFMPEG": str(flaky),
    }


@dataclass
class Titles:
    published: str  # one of its tasks failed once, then ran again
    rejected: str


@pytest.fixture
def titles(served: Served, tmp_path: Path) -> Titles:
    # 360p: two renditions, so a chunk encode's label is long ("renditions 240p, 360p").
    return Titles(publish_title(served, tmp_path, size="640x360"), reject_title(served, tmp_path))


def master_requests(requests: list[str], title_id: str) -> int:
    return sum(f"/api/titles/{title_id}/files/" in u and u.endswith(".m3u8") for u in requests)


# Counts hls.js instances destroyed (stopped loading, media detached) from now on.
COUNT_DESTROYED = """() => {
  window.__destroyed = 0;
  const destroy = window.Hls.prototype.destroy;
  window.Hls.prototype.destroy = function () { window.__destroyed += 1; return destroy.call(this); };
}"""


def test_the_next_title_shows_only_its_own_player(
    served: Served, browser: Browser, titles: Titles
) -> None:
    page = browser.page
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    go(page, f"#/titles/{titles.published}", "#player")
    page.wait_for_function("document.getElementById('player').readyState >= 2")
    masters = master_requests(requests, titles.published)
    assert masters >= 1
    page.evaluate(COUNT_DESTROYED)

    # The rejected title's page, drawn from its own detail: no player, nothing loading.
    go(page, f"#/titles/{titles.rejected}", f"#summary >> text={titles.rejected}")
    page.wait_for_selector("#summary .badge.rejected")
    assert page.locator("video").count() == 0
    assert page.evaluate("window.__destroyed") == 1  # the previous player was stopped
    assert master_requests(requests, titles.published) == masters  # and not started again

    # Back to the published title: its player, once; then away to the list: stopped.
    go(page, f"#/titles/{titles.published}", "#player")
    assert page.locator("video").count() == 1
    page.wait_for_function("document.getElementById('player').readyState >= 2")
    go(page, "#/titles", "#list tbody tr")
    assert page.locator("video").count() == 0
    assert page.evaluate("window.__destroyed") == 2
    assert browser.console_errors == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_retries_show_in_the_timeline_name_column(
    served: Served, browser: Browser, titles: Titles, size: str
) -> None:
    tasks = served.http.get(f"/api/titles/{titles.published}").json()["tasks"]
    retried = [t for t in tasks if len(t["attempts"]) > 1]
    assert len(retried) == 1, [(t["label"], len(t["attempts"])) for t in tasks]
    task = retried[0]
    if size == "phone":
        with phone(browser, served) as small:
            check_retries(small, titles.published, task["id"], size)
    else:
        check_retries(browser, titles.published, task["id"], size)


def check_retries(browser: Browser, title_id: str, task_id: str, size: str) -> None:
    page = browser.page
    go(page, f"#/titles/{title_id}", f".tl-row[data-task='{task_id}']")
    name = page.locator(f".tl-row[data-task='{task_id}'] .tl-name")
    retries = name.locator(".badge")
    assert retries.inner_text() == "\N{MULTIPLICATION SIGN}2"
    assert retries.is_visible()
    # Both boxes in one look: read one after the other, the page could move between
    # them (the player or the charts above still laying out).
    cell, badge = page.evaluate(
        """(selector) => {
            const name = document.querySelector(selector);
            const box = (el) => {
                const r = el.getBoundingClientRect();
                return { x: r.x, y: r.y, width: r.width, height: r.height };
            };
            return [box(name), box(name.querySelector(".badge"))];
        }""",
        f".tl-row[data-task='{task_id}'] .tl-name",
    )
    assert badge["width"] > 0 and badge["height"] > 0
    inside = (
        cell["x"] <= badge["x"]
        and badge["x"] + badge["width"] <= cell["x"] + cell["width"]
        and cell["y"] <= badge["y"]
        and badge["y"] + badge["height"] <= cell["y"] + cell["height"]
    )
    assert inside, f"the retries badge at {badge} is outside its name cell {cell}"
    # Nothing covers it: what is at its centre is the badge.
    at = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y)?.className",
        [badge["x"] + badge["width"] / 2, badge["y"] + badge["height"] / 2],
    )
    assert "badge" in str(at), at
    browser.screenshot(f"retries-{size}.png")
    assert browser.console_errors == []


def test_a_rejected_title_promises_no_qc(served: Served, browser: Browser, titles: Titles) -> None:
    page = browser.page
    go(page, f"#/titles/{titles.rejected}", "#summary .badge.rejected")
    page.wait_for_selector("#qc .empty")
    qc = page.locator("#qc").inner_text()
    assert "appear" not in qc, qc
    assert "not checked" in qc.lower(), qc
    # Nor a player: nothing of it will be published.
    player = page.locator("#player-panel").inner_text()
    assert "appears" not in player and "rejected" in player, player
    assert browser.console_errors == []
