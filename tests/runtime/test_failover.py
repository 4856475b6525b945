"""Two `reelay up` on one PostgreSQL state: one serves, the other stands by; kill -9 the
one serving and the other takes over and finishes everything, losing nothing and never
running one invocation twice at a time."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.state import FAILED, SUCCEEDED

from .test_crash import APP, RETRY_DELAYS, check_effects, wait_until

EVENTS = 400


def start_up(
    home: Path,
    log: Path,
    state_url: str,
    store_url: str,
    *,
    app: Path = APP,
    options: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """`reelay up` of ``app`` on the shared state and store, in a process group of its
    own (which a test may kill whole: `os.killpg`)."""
    env = os.environ | {
        "REELAY_RETRY_DELAYS": RETRY_DELAYS,
        "REELAY_STATE": state_url,
        "REELAY_STORE": store_url,
    }
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "reelay.cli", "up", "--app", str(app)),
            *("--home", str(home), "--http", "127.0.0.1:0", *options),
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_standby_takes_over_when_the_serving_dispatcher_is_killed(
    tmp_path: Path, postgres_url: str
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    store = f"file://{tmp_path / 'objects'}"
    homes = [tmp_path / "a", tmp_path / "b"]
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    client = Client(Settings.load(tmp_path / "producer", state_url=postgres_url, store_url=store))
    state = client.state
    first = start_up(homes[0], logs[0], postgres_url, store)
    second = None
    sent = 0

    def produce() -> None:
        nonlocal sent
        for start in range(0, EVENTS, 10):
            client.put_events(
                [
                    {"Source": "test.app", "DetailType": "effect", "Detail": {"key": f"k{n:04d}"}}
                    for n in range(start, start + 10)
                ]
            )
            sent += 10
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    try:
        assert wait_until(lambda: "reelay up: app" in logs[0].read_text(), 60), logs[0].read_text()
        second = start_up(homes[1], logs[1], postgres_url, store)
        assert wait_until(lambda: "standing by" in logs[1].read_text(), 60), logs[1].read_text()
        assert "another dispatcher" in logs[1].read_text()
        producer.start()
        assert wait_until(lambda: state.counts()[SUCCEEDED] >= 20, 60), logs[0].read_text()
        time.sleep(rng.uniform(0.0, 0.5))
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.wait()
        done_before = state.counts()[SUCCEEDED]
        assert wait_until(lambda: "taking over" in logs[1].read_text(), 60), logs[1].read_text()
        producer.join()
        assert wait_until(state.idle, 180), (state.counts(), logs[1].read_text()[-3000:])
        second.send_signal(signal.SIGINT)
        assert second.wait(60) == 0, logs[1].read_text()[-3000:]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
        if producer.is_alive():
            producer.join()
    info = f"seed {seed}: killed after {done_before} done"
    counts = state.counts()
    assert counts[SUCCEEDED] == EVENTS and counts[FAILED] == 0, (counts, info)
    # Each effect happened (once: see `check_effects`), in whichever home's worker ran it.
    effects = [
        line
        for home in homes
        if (home / "out" / "effects.log").exists()
        for line in (home / "out" / "effects.log").read_text().split()
    ]
    check_effects(effects, state, EVENTS, info, killed_at)
    assert (homes[1] / "out" / "effects.log").exists(), "the standby ran nothing"
    # No invocation ran twice at a time: its attempts follow one another.
    for inv in state.invocations(function="effect", limit=EVENTS * 2):
        attempts = sorted(state.attempts_of([inv.id]), key=lambda a: a.attempt)
        for before, after in itertools.pairwise(attempts):
            assert before.started + before.duration_ms / 1000 <= after.started + 0.05, info
    client.close()


def test_a_second_dispatcher_that_may_not_stand_by_is_refused(
    tmp_path: Path, postgres_url: str
) -> None:
    from reelay.errors import HomeBusyError
    from reelay.runtime import Runtime, load_app

    settings = Settings.load(tmp_path / "a", state_url=postgres_url)
    other = Settings.load(tmp_path / "b", state_url=postgres_url)
    busy = pytest.raises(HomeBusyError, match=r"another dispatcher \(.* pid \d+\)")
    with Runtime(load_app(APP), settings, max_workers=1), busy, Runtime(load_app(APP), other):
        pass
    with Runtime(load_app(APP), other, max_workers=1):  # free again once the first stops
        pass


def test_ctrl_c_while_standing_by_stops_cleanly(tmp_path: Path, postgres_url: str) -> None:
    store = f"file://{tmp_path / 'objects'}"
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = start_up(tmp_path / "a", logs[0], postgres_url, store)
    second = None
    try:
        assert wait_until(lambda: "reelay up: app" in logs[0].read_text(), 60), logs[0].read_text()
        second = start_up(tmp_path / "b", logs[1], postgres_url, store)
        assert wait_until(lambda: "standing by" in logs[1].read_text(), 60), logs[1].read_text()
        second.send_signal(signal.SIGINT)
        assert second.wait(30) == 0, logs[1].read_text()
        assert "stopped before serving" in logs[1].read_text()
        assert "Traceback" not in logs[1].read_text()
        assert first.poll() is None  # the one serving goes on
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                process.wait(60)
