"""Barriers: each assemble and the package run exactly once per title, under duplicate
deliveries and across a kill -9 of the runtime in the middle of encoding."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import InvalidEventError
from reelay.media.config import BUCKET, INGEST_PREFIX
from reelay.runtime import Runtime, load_app
from reelay.runtime._scratch import scratch_root, sweep_scratch
from reelay.state import ACTIVE, FAILED, SUCCEEDED

from .conftest import ClipFactory

APP = Path(__file__).parent / "apps" / "duplicating" / "reelay.yaml"
MEDIA_APP = "media"  # the built-in app, by name
THEN = {"Source": "t", "DetailType": "Done", "Detail": {"ok": True}}


def test_arrivals_count_distinct_parts_and_fire_once(tmp_path: Path) -> None:
    with Client(Settings.load(tmp_path)) as client:
        first = client.arrive("b", "1", 2, THEN)
        again = client.arrive("b", "1", 2, THEN)
        assert (first.arrived, first.fired, again.arrived, again.fired) == (1, False, 1, False)
        last = client.arrive("b", "2", 2, THEN)
        late = client.arrive("b", "2", 2, THEN)
        assert (last.arrived, last.fired, late.fired) == (2, True, False)
        assert [e.detail_type for e in client.state.events()] == ["Done"]
        assert client.state.barrier("b") == last and client.state.barrier("nope") is None
        with pytest.raises(ValueError, match="barrier 'b' has 2 parts; an arrival said 3"):
            client.arrive("b", "3", 3, THEN)
        with pytest.raises(ValueError, match="parts must be a positive integer"):
            client.arrive("c", "1", 0, THEN)
        with pytest.raises(InvalidEventError, match="DetailType must be a non-empty string"):
            client.arrive("c", "1", 1, {"Source": "t", "Detail": {}})
        assert client.state.barrier("c") is None  # a refused arrival changes nothing


def counts_by_function(client: Client) -> dict[str, int]:
    out: dict[str, int] = {}
    for inv in client.state.invocations(limit=100000):
        assert inv.status == SUCCEEDED, (inv.function, inv.error)
        out[inv.function] = out.get(inv.function, 0) + 1
    return out


@pytest.mark.media
def test_duplicate_deliveries_do_not_repeat_a_join(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("dup.mp4", seconds=5)
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    with Runtime(load_app(APP), settings) as runtime:
        runtime.start()
        runtime.client.put_object(BUCKET, f"{INGEST_PREFIX}dup.mp4", src)
        assert runtime.wait_idle(timeout=240)
        counts = counts_by_function(runtime.client)
        logs = runtime.client.state.attempts(function="notify")
    # 3 chunks x 1 group and 1 audio output, each delivered twice; so are the joins' events
    assert counts["encode"] == 6 and counts["encode_audio"] == 2
    # ...yet each join ran once more only for its own duplicated event, never for an arrival
    assert counts["assemble"] == 2 and counts["package"] == 2
    assert counts["publish"] == 1 and counts["notify"] == 1  # the user's function, once
    assert "published dup-" in logs[0].logs


def wait_for(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.media
@pytest.mark.slow
def test_kill_9_in_the_middle_of_encoding(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("long.mp4", seconds=12, size="640x360")
    home = tmp_path / "home"
    env = os.environ | {
        "REELAY_RETRY_DELAYS": "0.2,0.5",
        "REELAY_MEDIA_LADDER": "demo",
        "REELAY_MEDIA_CHUNK_SECONDS": "2",
        "REELAY_MEDIA_QC": "10",
    }

    def up() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reelay.cli",
                "up",
                "--app",
                str(MEDIA_APP),
                "--home",
                str(home),
                "--workers",
                "2",
            ],
            stdout=(tmp_path / "up.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    client = Client(Settings.load(home))
    first = up()
    try:
        client.put_object(BUCKET, f"{INGEST_PREFIX}long.mp4", src)
        encoded = lambda: sum(  # noqa: E731
            1 for i in client.state.invocations(function="encode", status=SUCCEEDED)
        )
        assert wait_for(lambda: encoded() >= 2, 120), (tmp_path / "up.log").read_text()
        os.killpg(first.pid, signal.SIGKILL)  # the runtime and its workers, mid-encode
        first.wait()
        assert encoded() < 6, "the kill came too late to test anything"
        second = up()
        try:
            published = lambda: any(  # noqa: E731
                e.detail_type == "Media Title Published" for e in client.state.events(limit=10000)
            )
            assert wait_for(published, 240), (tmp_path / "up.log").read_text()
            assert wait_for(lambda: not any(client.state.counts()[s] for s in ACTIVE), 60)
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(timeout=60)
        # Every temporary file was in a worker's scratch: with the workers gone, one
        # sweep leaves nothing (the killed run's scratch went at the second start).
        sweep_scratch(home)
        assert list(scratch_root(home).iterdir()) == []
        invocations = client.state.invocations(limit=100000)
        assert not [i for i in invocations if i.status == FAILED]
        by_function: dict[str, int] = {}
        for i in invocations:
            by_function[i.function] = by_function.get(i.function, 0) + 1
        assert by_function["assemble"] == 2  # one per rendition: 240p and 360p
        assert by_function["package"] == 1 and by_function["publish"] == 1
        published_events = [
            e for e in client.state.events(limit=10000) if e.detail_type == "Media Title Published"
        ]
        assert len(published_events) == 1
        report = json.loads(
            client.get_object(BUCKET, json.loads(published_events[0].body)["detail"]["report"])
        )
        assert report["status"] == "published"
        assert all(r["frames"] == 300 for r in report["renditions"] if r["kind"] == "video")
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        client.close()
