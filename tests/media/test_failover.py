"""Two `reelay up` serve the media app on one PostgreSQL state and one object store; the
one serving is killed with kill -9, with its workers, in the middle of encoding a title:
the standby takes over, re-runs the encodes that were lost, and the title is published
once, complete."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media.config import BUCKET, INGEST_PREFIX, SOURCE, title_id_for
from reelay.media.titles import STATE_CHANGE, Titles
from reelay.state import ACTIVE, FAILED, RUNNING, SUCCEEDED, EventFilter, State, lost_error

from ..runtime.test_crash import alive, children_of, wait_until
from ..runtime.test_failover import start_up
from .conftest import ClipFactory
from .test_pipeline import decode

pytestmark = [pytest.mark.media, pytest.mark.slow]

# The media pipeline, small: 12 s of 640x360 in 2 s chunks, one rendition per encode
# task (GROUP 1), so 6 chunks x 2 renditions = 12 short encodes, two at a time.
APP = """\
service: failover
include: [media]
provider:
  environment:
    REELAY_MEDIA_LADDER: demo
    REELAY_MEDIA_CHUNK_SECONDS: "2"
    REELAY_MEDIA_GROUP: "1"
    REELAY_MEDIA_QC: "10"
"""
SECONDS, FPS = 12, 25
ENCODES = ("encode", "encode_audio")
LOST = lost_error(None)["errorType"]


def pipeline_events(state: State, title_id: str, *detail_types: str) -> list[dict[str, Any]]:
    """The details of the pipeline's events of these types about one title, oldest first."""
    where = (EventFilter(source=SOURCE, detail_types=detail_types),)
    details = [json.loads(e.body)["detail"] for e in state.events_after(0, 100000, where=where)]
    return [d for d in details if d["title"]["id"] == title_id]


def running_encodes(state: State) -> set[str]:
    return {i.id for f in ENCODES for i in state.invocations(function=f, status=RUNNING)}


def mid_encode(state: State, encoded: int) -> bool:
    done = state.invocations(function="encode", status=SUCCEEDED)
    return len(done) >= encoded and bool(running_encodes(state))


def test_a_standby_publishes_a_title_once_when_the_dispatcher_dies_mid_encode(
    clip: ClipFactory, tmp_path: Path, postgres_url: str
) -> None:
    seed = random.randrange(1 << 30)
    encoded = random.Random(seed).randint(1, 6)  # video encodes done (of 12) when killed
    app = tmp_path / "reelay.yaml"
    app.write_text(APP)
    src = clip("failover.mp4", seconds=SECONDS, size="640x360")
    objects = tmp_path / "objects"
    store = f"file://{objects}"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    settings = Settings.load(tmp_path / "uploader", state_url=postgres_url, store_url=store)
    with Client(settings) as client:
        state = client.state
        titles = Titles(state)

        def up(name: str, log: Path) -> subprocess.Popen[bytes]:
            options = ("--workers", "2")
            return start_up(tmp_path / name, log, postgres_url, store, app=app, options=options)

        def text(log: Path) -> str:
            return log.read_text(errors="replace")[-4000:]

        first = up("a", logs[0])
        second = None
        workers: list[int] = []
        try:
            assert wait_until(lambda: "reelay up: app" in logs[0].read_text(), 60), text(logs[0])
            second = up("b", logs[1])
            assert wait_until(lambda: "standing by" in logs[1].read_text(), 60), text(logs[1])
            info = client.put_object(BUCKET, f"{INGEST_PREFIX}failover.mp4", src)
            title_id = title_id_for(info.key, info.etag)

            # Mid-encode: `encoded` video encodes done and some encode running. The state is
            # read with the dispatcher frozen (it alone records that an invocation ended),
            # so the kill cuts short what was read as running; if nothing was, it goes on.
            running: set[str] = set()
            while not running:
                assert wait_until(lambda: mid_encode(state, encoded), 120), text(logs[0])
                os.killpg(first.pid, signal.SIGSTOP)
                workers = children_of(first.pid)
                running = running_encodes(state)
                if not running:
                    os.killpg(first.pid, signal.SIGCONT)
            status = titles.get(title_id)["status"]
            done = len(state.invocations(function="encode", status=SUCCEEDED))
            # A machine dying: the dispatcher and its workers (each leads its own process
            # group, with the ffmpeg it runs) all at once.
            killed_at = time.time()
            for group in (first.pid, *workers):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)
            first.wait()
            assert status == "processing", status  # killed before it was published
            assert not pipeline_events(state, title_id, "Media Title Published")
            assert wait_until(lambda: not any(alive(pid) for pid in workers), 15), workers

            assert wait_until(lambda: "taking over" in logs[1].read_text(), 60), text(logs[1])
            assert wait_until(lambda: titles.get(title_id)["status"] != "processing", 180), (
                titles.get(title_id),
                text(logs[1]),
            )
            assert wait_until(lambda: not any(state.counts()[s] for s in ACTIVE), 60), (
                state.counts(),
                text(logs[1]),
            )
            second.send_signal(signal.SIGINT)
            assert second.wait(60) == 0, text(logs[1])
        finally:
            for process in (first, second):
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        where = f"seed {seed}: {done} encodes done and {len(running)} running when killed"

        # One title, published once.
        assert [(t["id"], t["status"]) for t in titles.all()] == [(title_id, "published")], where
        (published,) = pipeline_events(state, title_id, "Media Title Published")
        states = [d["status"] for d in pipeline_events(state, title_id, STATE_CHANGE)]
        assert states.count("COMPLETE") == 1 and "ERROR" not in states, states
        assert not pipeline_events(state, title_id, "Media Title Failed", "Media Title Held")
        assert [i.status for i in state.invocations(function="publish")] == [SUCCEEDED]

        # Nothing failed for good; the encodes the kill cut short were lost, and ran again
        # on the standby's workers.
        invocations = state.invocations(limit=100000)
        assert state.counts()[FAILED] == 0, [(i.function, i.error) for i in invocations]
        assert not [i for i in invocations if i.function == "fail" or i.status != SUCCEEDED]
        for inv_id in running:
            attempts = state.attempts_of([inv_id])
            assert [a.error_type for a in attempts if not a.ok] == [LOST], (attempts, where)
            (rerun,) = [a for a in attempts if a.ok]
            assert rerun.started > killed_at, where

        # What was published is whole: its report says so, and its manifests decode.
        report = json.loads(client.get_object(BUCKET, str(published["report"])))
        assert report["status"] == "published", report
        video = [r for r in report["renditions"] if r["kind"] == "video"]
        assert [(r["name"], r["frames"]) for r in video] == [
            ("240p", SECONDS * FPS),
            ("360p", SECONDS * FPS),
        ]
        assert report["chunks"] == SECONDS // 2
        outputs = {kind: url.removeprefix("s3://") for kind, url in report["outputs"].items()}
        assert {"hls", "dash"} <= set(outputs), outputs
        for path in outputs.values():
            assert (objects / path).is_file(), path
        decode(str(objects / outputs["hls"]))
        decode(str(objects / outputs["dash"]), "-map", "0:v", "-map", "0:a")
