"""kill -9 of `reelay up` while 1,000 events flow: nothing is lost, effects happen once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.runtime._scratch import scratch_root, sweep_scratch
from reelay.state import FAILED, RUNNING, SUCCEEDED, State

APP = Path(__file__).parent / "apps" / "basic" / "reelay.yaml"
EVENTS = 1000
# An attempt killed with its dispatcher holds its idempotency key until its lease (the
# function's 6 s timeout) runs out: the retries of its re-run must outlast that.
RETRY_DELAYS = "1,6"


def start_up(home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"REELAY_RETRY_DELAYS": RETRY_DELAYS}
    return subprocess.Popen(
        [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP), "--home", str(home)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sigkill_mid_stream_loses_nothing_and_effects_happen_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    home = tmp_path / "home"
    log = tmp_path / "up.log"
    client = Client(Settings.load(home))
    state = client.state
    first = start_up(home, log)
    sent = 0

    def produce() -> None:
        nonlocal sent
        for start in range(0, EVENTS, 10):
            client.put_events(
                [
                    {
                        "Source": "test.app",
                        "DetailType": "effect",
                        "Detail": {"key": f"k{start + i:04d}"},
                    }
                    for i in range(10)
                ]
            )
            sent += 10
            time.sleep(0.02)

    producer = threading.Thread(target=produce)
    try:
        assert wait_until(lambda: "reelay up: app" in log.read_text(), 60), log.read_text()
        producer.start()
        # Kill at a random moment once work is really flowing through the first process.
        assert wait_until(lambda: state.counts()[SUCCEEDED] >= 20, 60), log.read_text()
        time.sleep(rng.uniform(0.0, 0.8))
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.wait()
        sent_before, done_before = sent, state.counts()[SUCCEEDED]
        assert sent_before < EVENTS, "the kill came after the last event: not mid-stream"
        second = start_up(home, log)
        assert wait_until(lambda: log.read_text().count("reelay up: app") == 2, 60)
        producer.join()
        try:
            assert wait_until(
                state.idle,
                180,
            ), (state.counts(), log.read_text()[-3000:])
        finally:
            second.send_signal(signal.SIGINT)
            assert second.wait(60) == 0, log.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
        if producer.is_alive():
            producer.join()
    info = f"seed {seed}: killed after {sent_before} sent, {done_before} done"
    counts = state.counts()
    assert counts[SUCCEEDED] == EVENTS and counts[FAILED] == 0, (counts, info)
    invocations = state.invocations(function="effect", limit=EVENTS * 2)
    assert len({i.event_seq for i in invocations}) == EVENTS, info  # every event routed once
    effects = (home / "out" / "effects.log").read_text().split()
    check_effects(effects, state, EVENTS, info, killed_at)
    client.close()


def check_effects(
    effects: list[str], state: State, events: int, info: str, killed_at: float
) -> None:
    """Every guarded effect happened, once; twice only where the kill cut its attempt
    between the effect and its record (documented in `reelay.idempotency`): an attempt
    lost with its worker, of an invocation that then ran again, or one whose start the
    killed dispatcher had not yet written (starts are written in batches: the claim is
    then given back as never made, and every attempt on record began after the kill)."""
    counts = Counter(effects)
    assert set(counts) == {f"k{i:04d}" for i in range(events)}, info
    repeated = {key for key, n in counts.items() if n > 1}
    assert all(counts[key] == 2 for key in repeated), (counts.most_common(3), info)
    cut = set()
    for inv in state.invocations(function="effect", limit=events * 2):
        attempts = state.attempts_of([inv.id])
        if any(a.error_type == "Runtime.ExitError" for a in attempts) or all(
            a.started >= killed_at for a in attempts
        ):
            cut.add(json.loads(state.event(inv.event_seq).body)["detail"]["key"])
    assert repeated <= cut, (repeated - cut, info)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_do_not_outlive_a_killed_dispatcher(tmp_path: Path) -> None:
    home = tmp_path / "home"
    log = tmp_path / "up.log"
    up = start_up(home, log)
    client = Client(Settings.load(home))
    try:
        assert wait_until(lambda: "reelay up: app" in log.read_text(), 60), log.read_text()
        workers = children_of(up.pid)
        assert workers, "reelay up started no worker processes"
        # One worker hangs in a handler (timeout 1 s, sleeps 30 s), the other is idle.
        client.put_events([{"Source": "test.app", "DetailType": "slow", "Detail": "{}"}])
        assert wait_until(lambda: client.state.counts()[RUNNING] == 1, 30)
        time.sleep(0.2)
        up.kill()
        up.wait()
        # Both workers, the idle one and the one hung in a handler, die with it.
        assert wait_until(lambda: not any(alive(pid) for pid in workers), 15), [
            pid for pid in workers if alive(pid)
        ]
    finally:
        if up.poll() is None:
            up.kill()
        client.close()


def test_a_killed_dispatcher_leaves_no_orphan_and_no_litter_and_its_lost_attempt_shows(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    log = tmp_path / "up.log"
    up = start_up(home, log)
    client = Client(Settings.load(home))
    marker = home / "out" / "spawn.json"
    second = None
    try:
        assert wait_until(lambda: "reelay up: app" in log.read_text(), 60), log.read_text()
        client.put_events([{"Source": "test.app", "DetailType": "spawn", "Detail": "{}"}])
        assert wait_until(marker.exists, 30), log.read_text()
        spawned = json.loads(marker.read_text())
        scratch = Path(spawned["scratch"])
        # The handler's temporary files are in its worker's scratch, under the home.
        assert scratch.parents[2] == scratch_root(home) and scratch.is_dir()
        (inv,) = client.state.invocations(function="spawn")
        assert inv.status == RUNNING and inv.worker and inv.started
        up.kill()
        up.wait()
        # The worker and the child its handler started die with the dispatcher.
        assert wait_until(lambda: not alive(spawned["child"]), 10), "the child outlived it"
        assert scratch.is_dir()  # swept by the next start, not by the dying worker
        second = start_up(home, log)
        assert wait_until(lambda: client.state.invocation(inv.id).status == SUCCEEDED, 60), (
            log.read_text()[-3000:]
        )
        assert not scratch.parents[1].exists()  # the dead worker's scratch was swept
        done = client.state.invocation(inv.id)
        assert (done.attempts, done.uncharged) == (2, 1)
        lost, rerun = sorted(client.state.attempts(invocation_id=inv.id), key=lambda a: a.attempt)
        assert (lost.ok, lost.error_type, lost.worker, lost.started) == (
            False,
            "Runtime.ExitError",
            inv.worker,
            inv.started,
        )
        assert "was lost" in (lost.error_message or "")
        assert rerun.ok and rerun.attempt == 2
        # The live workers' scratch (the re-run made one) is never swept.
        live = [p for p in scratch_root(home).iterdir() if not p.name.startswith(".")]
        assert live and sweep_scratch(home) == [] and all(p.is_dir() for p in live)
        second.send_signal(signal.SIGINT)
        assert second.wait(60) == 0, log.read_text()[-3000:]
    finally:
        for proc in (up, second):
            if proc is not None and proc.poll() is None:
                proc.kill()  # a failure above: no drain (the spawn handler runs 120 s)
                proc.wait()
        client.close()
