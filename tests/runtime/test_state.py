"""The durable state: what is acknowledged survives kill -9; claims honour limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from reelay.runtime.state import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    NewEvent,
    NewInvocation,
    Outcome,
    State,
)


def event(n: int = 0) -> NewEvent:
    return NewEvent("event", json.dumps({"n": n}), source="t", detail_type="d")


def test_acknowledged_events_survive_sigkill(tmp_path: Path) -> None:
    # A child appends, prints the acknowledged seq, and is killed at once: the parent must
    # find every acknowledged event in the log.
    code = (
        "import sys, json; from pathlib import Path; "
        "from reelay.runtime.state import State, NewEvent; "
        "s = State(Path(sys.argv[1])); "
        "[print(s.append([NewEvent('event', json.dumps({'n': i}))])[0].seq, flush=True) "
        " for i in range(100000)]"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(300)]
    child.kill()
    child.wait()
    acknowledged += [int(line) for line in child.stdout.read().split()]
    with State(tmp_path) as state:
        assert state.last_seq() >= acknowledged[-1]
        logged = {e.seq for e in state.events_after(0, limit=1_000_000)}
        assert set(acknowledged) <= logged


def test_route_claim_finish_and_recover(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        events = state.append([event(i) for i in range(6)])
        now = time.time()
        state.route(
            [NewInvocation(e.seq, e.time, "f" if e.seq % 2 else "g", 3, 60) for e in events],
            events[-1].seq,
        )
        assert state.route_cursor() == events[-1].seq
        claimed = state.claim(now + 1, 10, room={"f": 1})
        functions = sorted(inv.function for inv, _ in claimed)
        assert functions == ["f", "g", "g", "g"]  # only one of f's three: its room was 1
        assert all(inv.attempts == 1 and inv.status == RUNNING for inv, _ in claimed)
        assert state.claim(now + 1, 10, room={"f": 0}) == []
        # A dispatcher that dies leaves claims running; recovery requeues them uncounted.
        assert state.release() == 4
        assert state.counts()[QUEUED] == 6 and state.counts()[RUNNING] == 0
        (only,) = state.claim(now + 1, 10, only=[claimed[0][0].id])
        assert only[0].attempts == 1  # the lost attempt was not counted
        state.finish([Outcome(only[0].id, FAILED, condition="RetriesExhausted")])
        assert state.invocation(only[0].id).status == FAILED
        assert state.redrive(function="nope") == 0
        assert state.redrive() == 1
        assert state.invocation(only[0].id).status == QUEUED


def test_retry_waits_until_not_before(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        ((inv, _),) = state.claim(time.time() + 1, 1)
        later = time.time() + 100
        state.finish([Outcome(inv.id, QUEUED, not_before=later)])
        assert state.claim(time.time() + 1, 1) == []
        assert state.next_due() == later
        assert len(state.claim(later, 1)) == 1


def test_idle_means_routed_and_nothing_queued_or_running(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        assert state.idle()
        (e,) = state.append([event()])
        assert not state.idle()  # logged, not yet routed
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60.0)], e.seq)
        assert not state.idle()  # routed: queued
        ((inv, _),) = state.claim(time.time(), 1)
        assert not state.idle()  # running
        state.finish([Outcome(inv.id, SUCCEEDED, result="null")])
        assert state.idle()
