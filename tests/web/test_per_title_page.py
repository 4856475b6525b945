"""A per-title ladder drawn on its title's page, in a real headless Chromium: a line per
resolution of the trial encodes, the hull, a labelled marker per rung picked, drawn at
its size on screen and again when that changes, no label over another or outside the
chart; and no such chart for a title without a per-title ladder.

The media app runs with a tiny per-title ladder (three heights, three CRFs, ten frames
a trial), so a 3 s title is measured, laddered and published in seconds.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from reelay.media.samples import make_clip

from .conftest import SCREENSHOTS, Browser, Served
from .pages import go, publish_title, settle, upload

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.slow]

TINY_AUTO = """name: tiny-auto
segment_seconds: 1
auto:
  vmaf: [40, 95]
  max_rungs: 4
  heights: [144, 240, 360]
  crfs: [22, 30, 38]
  sample_share: 0.25
  windows: 2
  trial_frames: 10
audio:
  - {name: aac64, codec: aac, bitrate_kbps: 64, channels: 2}
"""


@pytest.fixture
def app_environment() -> dict[str, str]:
    return {
        "REELAY_MEDIA_LADDER": TINY_AUTO,
        "REELAY_MEDIA_CHUNK_SECONDS": "2",
        "REELAY_MEDIA_QC_FRAMES": "20",
    }


# What the chart drew: its lines (name, points, dots), the hull's, the rungs' labels and
# their boxes, and the drawing's size against the size it is shown at.
DRAWN = """() => {
  const svg = document.querySelector('#per-title svg');
  const shown = svg.getBoundingClientRect();
  const box = (el) => {
    const b = el.getBoundingClientRect(); // where it is on screen, turned or not
    return [b.left - shown.left, b.top - shown.top, b.right - shown.left, b.bottom - shown.top];
  };
  return {
    lines: [...svg.querySelectorAll('.series:not(.hull)')].map((g) => ({
      name: g.dataset.name,
      points: g.querySelector('polyline').points.numberOfItems,
      dots: g.querySelectorAll('circle.dot').length,
    })),
    hull: [...svg.querySelectorAll('.series.hull polyline')].map((p) => p.points.numberOfItems),
    marks: svg.querySelectorAll('.mark circle').length,
    labels: [...svg.querySelectorAll('.mark-label')].map((t) => t.textContent),
    boxes: [...svg.querySelectorAll('.mark-label, .label, .axis-label')].map((t) => ({
      kind: t.getAttribute('class'), text: t.textContent, box: box(t),
    })),
    drawn: [svg.viewBox.baseVal.width, svg.viewBox.baseVal.height],
    shown: [shown.width, shown.height],
    label: svg.getAttribute('aria-label'),
  };
}"""


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def check_drawing(drawn: dict[str, Any]) -> None:
    """Drawn at its size; every text inside it; no rung label over another text."""
    width, height = drawn["drawn"]
    assert abs(width - drawn["shown"][0]) <= 1 and abs(height - drawn["shown"][1]) <= 1, drawn
    texts = drawn["boxes"]
    for t in texts:
        x0, y0, x1, y1 = t["box"]
        assert x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height, f"clipped: {t}"
    for a, b in itertools.combinations(texts, 2):
        if "mark-label" in (a["kind"], b["kind"]):
            assert not overlaps(a["box"], b["box"]), f"{a} overlaps {b}"


def test_a_per_title_ladder_is_drawn_on_its_title_page(
    served: Served, browser: Browser, tmp_path: Path
) -> None:
    made_id = publish_title(served, tmp_path, seconds=3, size="640x360")
    sound = upload(served, make_clip(tmp_path / "radio.mp4", seconds=2, video=None))
    assert settle(served, sound) == "published"
    made = served.http.get(f"/api/titles/{made_id}").json()["report"]["per_title"]
    assert served.http.get(f"/api/titles/{sound}").json()["report"]["per_title"] is None
    curves, hull, picks = made["curves"]["h264"], made["hull"]["h264"], made["picks"]["h264"]
    assert set(curves) == {"144", "240", "360"} and len(picks) >= 2, made

    page = browser.page
    go(page, f"#/titles/{made_id}", "#per-title svg .mark")
    drawn = page.evaluate(DRAWN)
    # A line per resolution, a dot per trial encode of it; the hull through all its points.
    assert sorted(
        (line["name"], line["points"], line["dots"]) for line in drawn["lines"]
    ) == sorted((f"{h}p h264", len(ps), len(ps)) for h, ps in curves.items())
    assert drawn["hull"] == [len(hull)]
    # A marker per rung, labelled with its name in the ladder and its predicted rate.
    names = {(r["height"], r["crf"]): r["name"] for r in made["ladder"]}
    assert drawn["marks"] == len(picks)
    assert drawn["labels"] == [
        f"{names[p['height'], p['crf']]} · {p['bitrate_kbps']:.0f} kbit/s" for p in picks
    ]
    assert drawn["label"].startswith("Per-title ladder: display VMAF against bitrate")
    panel = page.locator("#per-title")
    assert panel.locator("h2").inner_text() == "Per-title ladder"
    legend = panel.locator(".legend").inner_text()
    assert all(f"{h}p h264" in legend for h in curves) and "hull" in legend and "rung" in legend
    caption = panel.locator(".caption").inner_text()
    assert "Target display VMAF 40\N{EN DASH}95" in caption and "up to 4 rungs" in caption, caption
    assert {"bitrate (kbit/s, log scale)", "display VMAF"} <= {
        t["text"] for t in drawn["boxes"] if t["kind"] == "axis-label"
    }
    check_drawing(drawn)
    page.wait_for_function("document.getElementById('player').readyState >= 2")  # a frame shown
    browser.screenshot("title-per-title.png")
    panel.screenshot(path=str(SCREENSHOTS / "per-title-chart.png"))

    # Narrower windows: drawn again at the new size, the labels still clear.
    for width in (700, 390):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_function(f"(({DRAWN})()).drawn[0] === Math.round(({DRAWN})().shown[0])")
        check_drawing(page.evaluate(DRAWN))

    # A title without a per-title ladder: its page has QC figures and no such chart.
    go(page, f"#/titles/{sound}", f"#summary >> text={sound}")
    page.wait_for_selector("#qc .bars .bar")
    assert page.locator("#per-title").inner_html() == ""
    assert page.locator(".plot").count() == 0
    assert page.get_by_text("Per-title ladder").count() == 0
    assert browser.console_errors == []
