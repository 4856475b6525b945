"""A title is pinned to the bytes it started from: new bytes uploaded under its key while
it runs are another title, and change nothing of this one."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media._ffmpeg import ffmpeg_path
from reelay.media.config import title_id_for
from reelay.media.titles import Titles
from reelay.runtime import Runtime, load_app
from reelay.runtime._scratch import cache_root

from .conftest import ClipFactory
from .test_pipeline import assert_settled, events

pytestmark = pytest.mark.media

KEY = "ingest/clip.mp4"
ENVIRONMENT = {
    "REELAY_MEDIA_LADDER": "demo",
    "REELAY_MEDIA_CHUNK_SECONDS": "1",
    "REELAY_MEDIA_QC": "10",
}


def thumbnail(path: Path) -> bytes:
    """The first picture, 16x12 in grey: enough to tell two clips apart."""
    grey = ("-frames:v", "1", "-vf", "scale=16:12,format=gray", "-f", "rawvideo", "-")
    return subprocess.run(
        [ffmpeg_path(), "-v", "error", "-i", str(path), *grey],
        capture_output=True,
        check=True,
    ).stdout


def distance(a: bytes, b: bytes) -> float:
    assert len(a) == len(b) == 16 * 12
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def report(client: Client, title_id: str) -> dict[str, Any]:
    return json.loads(client.get_object("media", f"reports/{title_id}.json"))


def video_frames(title_report: dict[str, Any]) -> list[int]:
    return [r["frames"] for r in title_report["renditions"] if r["kind"] == "video"]


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The home's object store, each in turn: a hard link or a server-side copy pins."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("REELAY_STORE", f"s3://p{uuid.uuid4().hex[:10]}?endpoint={endpoint}")
    return str(request.param)


def test_new_bytes_under_the_key_of_a_running_title_are_another_title(
    clip: ClipFactory, tmp_path: Path, store: str
) -> None:
    first = clip("pin-first.mp4", seconds=3)  # 75 frames
    second = clip("pin-second.mp4", seconds=5, extra=("-vf", "negate"))  # 125, another picture
    assert distance(thumbnail(first), thumbnail(second)) > 50
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    assert settings.store_url.startswith(f"{store}://")
    app = load_app("media").with_environment(ENVIRONMENT)
    with Runtime(app, settings, max_workers=2) as runtime:
        client = runtime.client
        a = title_id_for(KEY, client.put_object("media", KEY, first).etag)
        # Served by hand until the first title is inspected: nothing its inspection
        # triggers (the plan, then the encodes) is routed before the new upload below.
        assert runtime.dispatcher is not None
        deadline = time.monotonic() + 120
        while not any(
            e["title"]["id"] == a for e in events(settings.home, "Media Title Inspected")
        ):
            assert time.monotonic() < deadline, "the first title was not inspected"
            if not runtime.dispatcher.step():
                time.sleep(0.05)
        b = title_id_for(KEY, client.put_object("media", KEY, second).etag)
        assert a != b
        # The stages of the first title run on machines that never fetched its source.
        shutil.rmtree(cache_root(settings.home) / "sources" / a)
        runtime.start()
        assert runtime.wait_idle(timeout=300)
        failed = [x for x in client.state.attempts(limit=10000) if not x.ok]
    assert failed == []
    published = {e["title"]["id"] for e in events(settings.home, "Media Title Published")}
    assert published == {a, b}
    with Client(settings) as client:
        assert video_frames(report(client, a)) == [75]
        assert video_frames(report(client, b)) == [125]
        assert report(client, a)["source"]["duration_s"] == pytest.approx(3.0, abs=0.05)
        # Each title's pictures are its own upload's, not the other's.
        for title, own, other in ((a, first, second), (b, second, first)):
            rendition = tmp_path / f"{title}.mp4"
            client.download("media", f"work/{title}/renditions/240p.mp4", rendition)
            near, far = (distance(thumbnail(rendition), thumbnail(c)) for c in (own, other))
            assert near < 10 and far > 50, (title, near, far)
        # Settled titles leave no snapshot behind; the key holds the newer upload.
        assert [o.key for o in client.list_objects("media", "work/") if "/source" in o.key] == []
        assert client.get_object("media", KEY) == second.read_bytes()
    assert_settled(settings.home)


def test_a_key_overwritten_before_its_title_starts_fails_that_title_saying_so(
    clip: ClipFactory, tmp_path: Path
) -> None:
    first = clip("pin-first.mp4", seconds=3)
    second = clip("pin-second.mp4", seconds=5, extra=("-vf", "negate"))
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    app = load_app("media").with_environment(ENVIRONMENT)
    with Runtime(app, settings, max_workers=2) as runtime:
        client = runtime.client
        a = title_id_for(KEY, client.put_object("media", KEY, first).etag)
        b = title_id_for(KEY, client.put_object("media", KEY, second).etag)
        runtime.start()
        assert runtime.wait_idle(timeout=300)
        (failed,) = events(settings.home, "Media Title Failed")
        assert failed["title"]["id"] == a
        assert failed["error"]["code"] == "REPLACED"
        message = failed["error"]["message"]
        assert message.startswith(f"s3://media/{KEY} was overwritten before this title")
        assert f"another title ({b})" in message
        assert Titles(client.state).get(a)["status"] == "failed"
        assert report(client, a)["error"]["message"] == message
        assert report(client, b)["status"] == "published"
        assert video_frames(report(client, b)) == [125]
        # The same bytes uploaded again under the key are that title again, and go on.
        assert title_id_for(KEY, client.put_object("media", KEY, first).etag) == a
        assert runtime.wait_idle(timeout=300)
        assert report(client, a)["status"] == "published"
        assert video_frames(report(client, a)) == [75]
        assert Titles(client.state).get(a)["status"] == "published"
    assert_settled(settings.home)
