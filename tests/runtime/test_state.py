"""The durable state: what is acknowledged survives kill -9; claims honour limits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from reelay.runtime.state import (
    CLAIMED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Attempt,
    NewEvent,
    NewInvocation,
    Outcome,
    Start,
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
        assert all(inv.attempts == 1 and inv.status == CLAIMED for inv, _ in claimed)
        assert state.claim(now + 1, 10, room={"f": 0}) == []
        # A dispatcher that dies leaves claims; recovery requeues them uncounted.
        assert state.release() == 4
        assert state.counts()[QUEUED] == 6 and state.counts()[CLAIMED] == 0
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


def attempt(inv_id: str, n: int, started: float, ok: bool = True) -> Attempt:
    return Attempt(inv_id, n, "f", started, 385.0, ok, None, None, "7@host", False, 10, "", 0)


def test_claimed_is_not_running_until_a_worker_starts_it(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        claimed_at = time.time()
        ((inv, _),) = state.claim(claimed_at, 1)
        row = state.invocation(inv.id)
        assert (row.status, row.claimed, row.started, row.worker) == (
            CLAIMED,
            claimed_at,
            None,
            None,
        )
        started = claimed_at + 80  # it waited 80 s for a worker
        state.start([Start(inv.id, 1, started, "7@host")])
        row = state.invocation(inv.id)
        assert (row.status, row.started, row.worker) == (RUNNING, started, "7@host")
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 1, started))])
        row = state.invocation(inv.id)
        # Its start is the handler's (durations are measured from it), not the claim.
        assert (row.claimed, row.started) == (claimed_at, started)
        # A start notice that comes after the outcome changes nothing.
        state.start([Start(inv.id, 1, started, "7@host")])
        assert state.invocation(inv.id).status == SUCCEEDED


def test_finish_without_a_start_notice_takes_the_start_from_the_attempt(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        ((inv, _),) = state.claim(time.time(), 1)
        started = time.time() + 5
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 1, started))])
        row = state.invocation(inv.id)
        assert (row.started, row.worker) == (started, "7@host")


def test_a_running_attempt_lost_with_its_dispatcher_is_recorded_not_charged(
    tmp_path: Path,
) -> None:
    with State(tmp_path) as state:
        events = state.append([event(0), event(1)])
        state.route([NewInvocation(e.seq, e.time, "f", 2, 60) for e in events], events[-1].seq)
        (running, _), (waiting, _) = state.claim(time.time(), 2)
        started = time.time()
        state.start([Start(running.id, 1, started, "4242@node")])
        state.beat(started + 7.0)  # the dispatcher's last sign of life
        assert state.release() == 2  # what a dispatcher killed with kill -9 left
        lost = state.invocation(running.id)
        assert (lost.status, lost.attempts, lost.uncharged, lost.charged_attempts) == (
            QUEUED,
            1,
            1,
            0,
        )
        assert lost.error is not None and "4242@node was lost" in lost.error["errorMessage"]
        (record,) = state.attempts(invocation_id=running.id)
        assert (record.attempt, record.ok, record.error_type, record.worker, record.started) == (
            1,
            False,
            "Runtime.ExitError",
            "4242@node",
            started,
        )
        assert "was lost" in (record.error_message or "")
        assert record.duration_ms == 7000.0  # it ran at least until the last sign of life
        # The claim that never started leaves no trace and no count.
        assert state.invocation(waiting.id).attempts == 0
        assert state.attempts(invocation_id=waiting.id) == []
        # The re-run is attempt 2, so the history keeps both.
        ((again, _),) = state.claim(time.time(), 1, only=[running.id])
        assert again.attempts == 2 and again.charged_attempts == 1
        state.finish([Outcome(again.id, SUCCEEDED, result="1", attempt=attempt(again.id, 2, 1.0))])
        assert sorted(a.attempt for a in state.attempts(invocation_id=running.id)) == [1, 2]


def test_ready_invocations_are_claimed_lowest_rank_first(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        events = state.append([event(i) for i in range(4)])
        ranks = [30.0, 10.0, None, 20.0]  # None: the event's own time (the newest here)
        state.route(
            [
                NewInvocation(e.seq, e.time, f"f{i}", 3, 60, rank)
                for i, (e, rank) in enumerate(zip(events, ranks, strict=True))
            ],
            events[-1].seq,
        )
        order = [inv.function for inv, _ in state.claim(time.time() + 1, 4)]
        assert order == ["f1", "f3", "f0", "f2"]


def test_events_carry_the_time_their_chain_began(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (root,) = state.append([event()])
        (child,) = state.append([NewEvent("event", "{}", root=root.chain_start)])
        assert root.root is None and root.chain_start == root.time
        assert state.event(child.seq).chain_start == root.time
        assert state.event(child.seq).as_dict()["root"] == root.time


# The event log and invocations as the first release made them.
LEGACY_SCHEMA = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, time REAL NOT NULL,
    kind TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', detail_type TEXT NOT NULL DEFAULT '',
    target TEXT, body TEXT NOT NULL
);
CREATE TABLE invocations (
    id TEXT PRIMARY KEY, event_seq INTEGER NOT NULL REFERENCES events(seq),
    function TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
    not_before REAL NOT NULL, started REAL, finished REAL, worker TEXT, condition TEXT,
    error TEXT, result TEXT, redrives INTEGER NOT NULL DEFAULT 0
);
INSERT INTO events (id, time, kind, body) VALUES ('e', 5.0, 'event', '{}');
INSERT INTO invocations (id, event_seq, function, status, max_attempts, created, expires,
    not_before) VALUES ('i', 1, 'f', 'queued', 3, 5.0, 65.0, 5.0);
"""


def test_an_older_home_is_brought_up_to_date(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "state.db")
    db.executescript(LEGACY_SCHEMA)
    db.close()
    with State(tmp_path) as state:
        assert state.event(1).chain_start == 5.0
        ((inv, _),) = state.claim(10.0, 1)
        assert (inv.id, inv.rank, inv.uncharged, inv.status) == ("i", 5.0, 0, CLAIMED)


def test_a_redrive_keeps_the_history_and_gives_a_fresh_budget(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 1, 60)], e.seq)
        ((inv, _),) = state.claim(time.time(), 1)
        state.start([Start(inv.id, 1, time.time(), "1@host")])
        state.release()  # attempt 1 lost with its worker: not charged
        ((inv, _),) = state.claim(time.time(), 1)
        assert (inv.attempts, inv.charged_attempts) == (2, 1)
        failed = attempt(inv.id, 2, time.time(), ok=False)
        state.finish([Outcome(inv.id, FAILED, condition="RetriesExhausted", attempt=failed)])
        assert state.redrive() == 1
        ((inv, _),) = state.claim(time.time(), 1)
        # The third attempt is the first of the new round: one try of a budget of one.
        assert (inv.attempts, inv.uncharged, inv.charged_attempts) == (3, 2, 1)
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 3, 1.0))])
        assert sorted(a.attempt for a in state.attempts(invocation_id=inv.id)) == [1, 2, 3]


def test_only_a_running_or_finished_invocation_has_a_worker(tmp_path: Path) -> None:
    with State(tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        ((inv, _),) = state.claim(time.time(), 1)
        started = time.time()
        state.start([Start(inv.id, 1, started, "7@host")])
        failed = attempt(inv.id, 1, started, ok=False)
        state.finish([Outcome(inv.id, QUEUED, not_before=time.time(), attempt=failed)])
        retry = state.invocation(inv.id)
        assert (retry.status, retry.worker, retry.started) == (QUEUED, None, None)
        ((inv, _),) = state.claim(time.time(), 1)
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 2, 9.0))])
        done = state.invocation(inv.id)
        assert (done.status, done.worker, done.started) == (SUCCEEDED, "7@host", 9.0)


def test_database_errors_are_state_errors_naming_the_database(tmp_path: Path) -> None:
    import pytest

    from reelay.errors import StateError

    (tmp_path / "state.db").write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StateError, match=r"state\.db: open failed: file is not a database"):
        State(tmp_path)


def test_the_reads_observers_ask_for(tmp_path: Path) -> None:
    """The typed reads that metrics, the API and the dispatcher use instead of SQL."""
    with State(tmp_path) as state:
        events = state.append([event(i) for i in range(4)])
        functions = ["f", "f", "g", "g"]
        state.route(
            [
                NewInvocation(e.seq, e.time, fn, 1, 60)
                for e, fn in zip(events, functions, strict=True)
            ],
            events[-1].seq,
        )
        assert set(state.ready(["g"], time.time()).values()) == {"g"}
        assert state.ready([], time.time()) == {}
        count, oldest = state.pending()
        assert count == 4 and oldest == events[0].time
        claimed = state.claim(time.time(), 3)
        now = time.time()
        outcomes = [
            Outcome(
                claimed[0][0].id, SUCCEEDED, result="1", attempt=attempt(claimed[0][0].id, 1, now)
            ),
            Outcome(
                claimed[1][0].id,
                FAILED,
                condition="RetriesExhausted",
                attempt=attempt(claimed[1][0].id, 1, now, ok=False),
            ),
        ]
        state.finish(outcomes)
        by_function = state.counts_by_function([QUEUED, CLAIMED, FAILED])
        assert sum(by_function.values()) == 3 and by_function[(claimed[1][0].function, FAILED)] == 1
        assert state.event_counts() == {"event": 4}
        assert sorted(ok for _, ok in state.attempts_ended_since(now - 1, 60)) == [False, True]
        assert state.attempts_ended_since(now + 3600, 60) == []
        totals = {(t.function, t.outcome): t for t in state.attempt_totals([0.1, 1.0])}
        assert sum(t.count for t in totals.values()) == 2
        assert all(t.buckets == (0, 1) for t in totals.values())  # 385 ms: under 1 s, not 0.1 s
        stats = state.function_stats()
        assert sum(s.attempts for s in stats.values()) == 2
        assert sum(s.errors for s in stats.values()) == 1
        (failed,) = state.attempts(ok=False)
        assert failed.invocation_id == claimed[1][0].id
