"""A title through the served HTTP API: it exists from its upload, and its stage and
percent move forward only, through every stage in order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.media.progress import STAGES, TitleProgress
from reelay.media.samples import make_clip

from ..web import conftest as web
from ..web.conftest import Served

# The served API of the web tests (a real server on loopback, the media app on a runtime).
served = web.served
webhook = web.webhook

pytestmark = pytest.mark.media


@pytest.fixture
def app_environment() -> dict[str, str]:
    """Three chunks of one rendition and a short QC: every stage, in seconds."""
    return {
        "REELAY_MEDIA_LADDER": "demo",
        "REELAY_MEDIA_CHUNK_SECONDS": "1",
        "REELAY_MEDIA_QC": "10",
    }


@pytest.fixture
def idle(tmp_path: Path) -> Iterator[Served]:
    """The API over a home that no runtime serves: nothing runs, so nothing moves on."""
    from reelay.client import Client
    from reelay.config import Settings

    with Client(Settings.load(tmp_path / "home")) as client:
        yield from web._serve(client, None, None)


def upload(served: Served, name: str, data: bytes) -> str:
    response = served.http.post("/api/titles", params={"name": name}, content=data)
    assert response.status_code == 201, response.text
    return str(response.json()["title_id"])


def test_a_title_is_there_as_soon_as_its_upload_is_answered(idle: Served) -> None:
    title_id = upload(idle, "film.mp4", b"\0" * 4096)
    # Before, 404 ("no title") until inspect had run: 0.9 s idle, 22 s under load, and
    # for ever here, where no runtime runs.
    response = idle.http.get(f"/api/titles/{title_id}")
    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["title"]["status"] == "submitted"
    assert detail["title"]["key"] == "ingest/film.mp4"
    assert (detail["title"]["stage"], detail["title"]["percent"]) == (None, 0)
    assert detail["report"] is None and detail["tasks"] == []
    listed = idle.http.get("/api/titles").json()
    assert [t["id"] for t in listed] == [title_id]


def test_stage_and_percent_only_move_forward_through_every_stage(
    served: Served, tmp_path: Path
) -> None:
    src = make_clip(tmp_path / "short.mp4", seconds=3)
    title_id = upload(served, "short.mp4", src.read_bytes())
    samples: list[tuple[str, str | None, int]] = []
    while True:  # the test's timeout bounds this
        response = served.http.get(f"/api/titles/{title_id}")
        assert response.status_code == 200, response.text  # never "no title"
        t = response.json()["title"]
        if not samples or samples[-1] != (t["status"], t["stage"], t["percent"]):
            samples.append((t["status"], t["stage"], t["percent"]))
        if t["status"] not in ("submitted", "processing"):
            break
        time.sleep(0.02)
    assert samples[-1] == ("published", "publish", 100), samples
    percents = [p for _, _, p in samples]
    assert percents == sorted(percents), samples
    order = [STAGES.index(s) for _, s, _ in samples if s is not None]
    assert order == sorted(order), samples
    assert all(p < 100 for status, _, p in samples if status != "published"), samples

    # The title as it stood after each of its events, in the order the log has them:
    # every stage shows, in order, while it runs, and the percent rises within the
    # stages that do the work (it stood still at "package 82%" through all of QC).
    fold = TitleProgress()
    shown: list[tuple[str | None, int]] = []
    for event in served.client.state.events_after(0):
        detail = json.loads(event.body).get("detail") or {}
        if event.detail_type == "Media Title State Change":
            assert (detail.get("title") or {}).get("id") == title_id
            fold.fold(detail)
            shown.append((fold.stage, fold.percent))
    stages = [s for s, _ in shown]
    assert list(dict.fromkeys(stages)) == list(STAGES), stages
    by_stage: dict[str | None, list[int]] = {}
    for stage, percent in shown:
        by_stage.setdefault(stage, []).append(percent)
    for stage in ("encode", "qc"):
        assert len(set(by_stage[stage])) > 1, (stage, shown)
    assert [p for _, p in shown] == sorted(p for _, p in shown)
