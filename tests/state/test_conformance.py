"""The State contract, on every backend (SQLite in a home, PostgreSQL): what is
acknowledged survives kill -9, claims honour limits and never overlap, a barrier fires
once, an idempotency key runs its effect once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelay.state import (
    CLAIMED,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Arrival,
    Attempt,
    NewEvent,
    NewInvocation,
    Outcome,
    Start,
    open_state,
)
from reelay.state._sqlite import SQLiteState


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest) -> str:
    """Each backend's URL: '' (SQLite in the test's home) and a PostgreSQL schema."""
    return "" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))


def event(n: int = 0) -> NewEvent:
    return NewEvent("event", json.dumps({"n": n}), source="t", detail_type="d")


def test_acknowledged_events_survive_sigkill(tmp_path: Path, state_url: str) -> None:
    # A child appends, prints the acknowledged seq, and is killed at once: the parent must
    # find every acknowledged event in the log.
    code = (
        "import sys, json; from pathlib import Path; "
        "from reelay.state import open_state, NewEvent; "
        "s = open_state(sys.argv[2], Path(sys.argv[1])); "
        "[print(s.append([NewEvent('event', json.dumps({'n': i}))])[0].seq, flush=True) "
        " for i in range(100000)]"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), state_url], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline()) for _ in range(300)]
    child.kill()
    child.wait()
    acknowledged += [int(line) for line in child.stdout.read().split()]
    with open_state(state_url, tmp_path) as state:
        assert state.last_seq() >= acknowledged[-1]
        logged = {e.seq for e in state.events_after(0, limit=1_000_000)}
        assert set(acknowledged) <= logged


def test_route_claim_finish_and_recover(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_retry_waits_until_not_before(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        ((inv, _),) = state.claim(time.time() + 1, 1)
        later = time.time() + 100
        state.finish([Outcome(inv.id, QUEUED, not_before=later)])
        assert state.claim(time.time() + 1, 1) == []
        assert state.next_due() == later
        assert len(state.claim(later, 1)) == 1


def test_idle_means_routed_and_nothing_queued_or_running(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_claimed_is_not_running_until_a_worker_starts_it(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_finish_without_a_start_notice_takes_the_start_from_the_attempt(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
        (e,) = state.append([event()])
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60)], e.seq)
        ((inv, _),) = state.claim(time.time(), 1)
        started = time.time() + 5
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 1, started))])
        row = state.invocation(inv.id)
        assert (row.started, row.worker) == (started, "7@host")


def test_a_running_attempt_lost_with_its_dispatcher_is_recorded_not_charged(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_ready_invocations_are_claimed_lowest_rank_first(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_events_carry_the_time_their_chain_began(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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
    with SQLiteState(tmp_path) as state:
        assert state.event(1).chain_start == 5.0
        ((inv, _),) = state.claim(10.0, 1)
        assert (inv.id, inv.rank, inv.uncharged, inv.status) == ("i", 5.0, 0, CLAIMED)


def test_a_redrive_keeps_the_history_and_gives_a_fresh_budget(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
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


def test_only_a_running_or_finished_invocation_has_a_worker(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
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
    from reelay.errors import StateError

    (tmp_path / "state.db").write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(StateError, match=r"state\.db: open failed: file is not a database"):
        open_state("", tmp_path)


def test_the_reads_observers_ask_for(tmp_path: Path, state_url: str) -> None:
    """The typed reads that metrics, the API and the dispatcher use instead of SQL."""
    with open_state(state_url, tmp_path) as state:
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


def test_an_older_home_gets_the_schema_version_and_a_newer_one_is_refused(
    tmp_path: Path, state_url: str
) -> None:
    from reelay.errors import StateError
    from reelay.state._sql import SCHEMA_VERSION

    with open_state(state_url, tmp_path) as state:
        assert state.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
        # Back to version 1 (before the nodes and access_keys tables): opening migrates
        # it forward, one version at a time.
        with state._write() as db:  # type: ignore[attr-defined]
            db.execute("DROP TABLE nodes")
            db.execute("DROP TABLE access_keys")
        state.set_meta("schema_version", "1")
    with open_state(state_url, tmp_path) as state:
        assert state.get_meta("schema_version") == "3"
        assert state.nodes() == []  # the tables are back
        assert state.access_keys() == []
        state.set_meta("schema_version", "99")
    with pytest.raises(StateError, match="schema version 99 was made by a newer reelay"):
        open_state(state_url, tmp_path)


def test_dispatchers_and_workers_are_seen(tmp_path: Path, state_url: str) -> None:
    from reelay.state import Node

    with open_state(state_url, tmp_path) as state:
        dispatcher = Node("dispatcher 1@a", "dispatcher", "a", 1, "0.1.0", 10.0, 10.0)
        worker = Node("2@b", "worker", "b", 2, "0.1.0", 12.0, 12.0)
        state.node_seen([dispatcher, worker])
        state.node_seen([Node("2@b", "worker", "b", 2, "0.1.0", 12.0, 30.0)])
        state.node_seen([Node("2@b", "worker", "b", 2, "0.1.0", 12.0, 20.0)])  # late: kept 30
        assert [(n.name, n.started, n.seen) for n in state.nodes()] == [
            ("2@b", 12.0, 30.0),
            ("dispatcher 1@a", 10.0, 10.0),
        ]
        assert [n.name for n in state.nodes(seen_since=15.0)] == ["2@b"]
        assert state.nodes()[0].as_dict()["kind"] == "worker"


def test_access_keys_are_added_listed_used_and_revoked(tmp_path: Path, state_url: str) -> None:
    from reelay.state import AccessKey

    with open_state(state_url, tmp_path) as state:
        first = AccessKey("AKIAFIRST0000000000A", "ci", "gAAAA-encrypted", 10.0)
        second = AccessKey("AKIASECOND000000000B", "", "gAAAA-other", 20.0)
        state.add_access_key(second)
        state.add_access_key(first)
        assert state.access_keys() == [first, second]  # oldest first
        assert state.access_key(first.id) == first
        assert state.access_key("AKIANOSUCHKEY0000000") is None
        state.access_key_used(first.id, 30.0)
        state.access_key_used(first.id, 25.0)  # late: the later use is kept
        assert state.access_key(first.id).last_used == 30.0  # type: ignore[union-attr]
        assert state.revoke_access_key(first.id, 40.0)
        assert not state.revoke_access_key(first.id, 50.0)  # already revoked
        assert not state.revoke_access_key("AKIANOSUCHKEY0000000", 50.0)
        revoked = state.access_key(first.id)
        assert revoked is not None and (revoked.revoked, revoked.secret) == (40.0, "")
        assert "secret" not in revoked.as_dict() and revoked.as_dict()["name"] == "ci"
        assert state.access_key(second.id) == second  # untouched
        from reelay.errors import StateError

        with pytest.raises(StateError):  # an id is never reused
            state.add_access_key(AccessKey(second.id, "again", "x", 60.0))


def test_opening_without_create_refuses_a_state_that_is_not_there(
    tmp_path: Path, state_url: str
) -> None:
    from reelay.errors import StateError

    with pytest.raises(StateError, match="there is none"):
        open_state(state_url, tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    with open_state(state_url, tmp_path) as state:
        state.append([event()])
    with open_state(state_url, tmp_path, create=False) as state:
        assert state.last_seq() == 1


def test_a_state_url_of_no_backend_is_refused(tmp_path: Path) -> None:
    from reelay.errors import ConfigError

    with pytest.raises(ConfigError, match="'mysql://x' is not a state URL"):
        open_state("mysql://x", tmp_path)


def test_an_unreachable_server_is_a_state_error_without_the_password(tmp_path: Path) -> None:
    from reelay.errors import StateError

    with pytest.raises(StateError) as caught:
        open_state("postgresql://reelay:s3cret@127.0.0.1:1/nope", tmp_path)
    message = str(caught.value)
    assert "postgresql://reelay@127.0.0.1:1/nope: open failed" in message
    assert "s3cret" not in message


def test_events_are_found_by_source_type_and_body_fields(tmp_path: Path, state_url: str) -> None:
    from reelay.state import EventFilter

    def s3(bucket: str, key: str) -> NewEvent:
        record = {"s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": "e1"}}}
        body = json.dumps({"Records": [record]})
        return NewEvent("s3", body, source="aws.s3", detail_type="ObjectCreated:Put")

    with open_state(state_url, tmp_path) as state:
        state.append(
            [
                s3("media", "ingest/a.mp4"),
                s3("media", "work/a/chunk.mp4"),
                s3("other", "ingest/b.mp4"),
                NewEvent("event", json.dumps({"detail": {"title": {"id": "t1"}}}), "m", "Done"),
                NewEvent("event", json.dumps({"detail": {"title": {"id": "t2"}}}), "m", "Done"),
                NewEvent("event", "{}", "m", "Started"),
            ]
        )
        uploads = EventFilter(
            source="aws.s3",
            detail_types=("ObjectCreated:*",),
            equals=((("Records", 0, "s3", "bucket", "name"), "media"),),
            prefixes=((("Records", 0, "s3", "object", "key"), "ingest/"),),
        )
        assert [e.seq for e in state.events_after(0, where=[uploads])] == [1]
        done = EventFilter(source="m", detail_types=("Done",))
        assert [e.seq for e in state.events_after(0, where=[uploads, done])] == [1, 4, 5]
        assert [e.seq for e in state.events_after(4, where=[uploads, done])] == [5]
        assert [e.seq for e in state.events_after(0, 2, where=[uploads, done])] == [1, 4]
        t1 = EventFilter(equals=((("detail", "title", "id"), "t1"),))
        assert [e.seq for e in state.events_after(0, where=[t1])] == [4]
        # A prefix is compared as text: LIKE's wildcards mean nothing in it.
        odd = EventFilter(prefixes=((("Records", 0, "s3", "object", "key"), "ingest%"),))
        assert state.events_after(0, where=[odd]) == []
        with pytest.raises(ValueError, match="not a plain key"):
            state.events_after(0, where=[EventFilter(equals=((("a'b",), "x"),))])
        # The invocations of matching events, with their events and attempts.
        state.route([NewInvocation(e.seq, e.time, "f", 3, 60) for e in state.events_after(0)], 6)
        ((inv, ev),) = state.invocations_of(1, 6, [t1])
        assert ev.seq == 4 and inv.event_seq == 4
        assert state.invocations_of(5, 6, [t1]) == []
        assert len(state.claim(time.time(), 1, only=[inv.id])) == 1
        state.finish([Outcome(inv.id, SUCCEEDED, result="1", attempt=attempt(inv.id, 1, 5.0))])
        assert [a.attempt for a in state.attempts_of([inv.id, "other"])] == [1]


def test_result_totals_sum_what_succeeded_invocations_returned(
    tmp_path: Path, state_url: str
) -> None:
    fields = (("throughput", "frames"), ("throughput", "media_seconds"))
    with open_state(state_url, tmp_path) as state:
        events = state.append([event(i) for i in range(4)])
        state.route([NewInvocation(e.seq, e.time, "enc", 1, 60) for e in events], 4)
        claimed = [inv for inv, _ in state.claim(time.time(), 4)]
        results = [
            {"throughput": {"frames": 100, "media_seconds": 4.0}},
            {"throughput": {"frames": 50, "media_seconds": 2.0}},
            {"other": 1},  # no throughput: not summed
            {"throughput": {"frames": float("nan")}},  # NaN, as Python writes it: null
        ]
        now = time.time()
        state.finish(
            [
                Outcome(inv.id, SUCCEEDED, result=json.dumps(r), attempt=attempt(inv.id, 1, now))
                for inv, r in zip(claimed, results, strict=True)
            ]
        )
        (total,) = state.result_totals(fields, None, 60)
        assert (total.function, total.sums, total.seconds) == ("enc", (150.0, 6.0), 0.77)
        (recent,) = state.result_totals(fields, now - 1, 60)
        assert recent.sums == (150.0, 6.0)
        assert state.result_totals(fields, now + 3600, 60) == []
        # The NaN result reads back as null, on every backend.
        assert state.invocation(claimed[3].id).as_dict()["result"] == {
            "throughput": {"frames": None}
        }


def test_logs_with_nul_characters_are_kept(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
        (e,) = state.append([NewEvent("event", json.dumps({"s": "a\x00b"}))])
        state.route([NewInvocation(e.seq, e.time, "f", 1, 60)], e.seq)
        ((inv, got),) = state.claim(time.time(), 1)
        assert json.loads(got.body)["s"] in ("a\x00b", "a\ufffdb")
        record = Attempt(inv.id, 1, "f", 1.0, 1.0, True, None, None, None, False, 1, "x\x00y", 0)
        state.finish([Outcome(inv.id, SUCCEEDED, result="null", attempt=record)])
        (kept,) = state.attempts(invocation_id=inv.id)
        assert kept.logs in ("x\x00y", "x\ufffdy")


# -- concurrency: many processes at once ------------------------------------------------

_CLAIMER = """
import json, sys, time
from pathlib import Path
from reelay.state import open_state, Outcome, SUCCEEDED
state = open_state(sys.argv[2], Path(sys.argv[1]))
taken = []
while True:
    got = state.claim(time.time(), 3)
    if not got:
        if state.pending()[0] == 0:
            break
        continue
    taken += [inv.id for inv, _ in got]
    state.finish([Outcome(inv.id, SUCCEEDED, result="null") for inv, _ in got])
print(json.dumps(taken))
"""


def _run_all(code: str, tmp_path: Path, state_url: str, n: int, *args: str) -> list[str]:
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), state_url, str(i), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    outs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0] * n
    return outs


def test_processes_claiming_at_once_never_take_one_invocation_twice(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
        events = state.append([event(i) for i in range(300)])
        state.route([NewInvocation(e.seq, e.time, "f", 1, 600) for e in events], 300)
        outs = _run_all(_CLAIMER, tmp_path, state_url, 4)
        taken = [i for out in outs for i in json.loads(out)]
        assert len(taken) == 300 and len(set(taken)) == 300  # each once, none twice
        assert state.counts()[SUCCEEDED] == 300
        assert all(inv.attempts == 1 for inv in state.invocations(limit=300))


_ARRIVER = """
import sys
from pathlib import Path
from reelay.state import open_state, NewEvent
state = open_state(sys.argv[2], Path(sys.argv[1]))
me = int(sys.argv[3])
for part in range(me, 40, 4):
    for _ in range(2):  # every arrival twice, as a redelivery would
        state.arrive("b", f"p{part}", 40, NewEvent("event", "{}", "t", "Complete"))
"""


def test_a_barrier_arrived_at_from_many_processes_fires_exactly_once(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
        state.append([event()])  # the barrier opens on a log that has events
        _run_all(_ARRIVER, tmp_path, state_url, 4)
        assert state.barrier("b") == Arrival("b", 40, 40, True)
        fired = [e for e in state.events_after(0) if e.detail_type == "Complete"]
        assert len(fired) == 1


_ONCE = """
import json, os, sys
from pathlib import Path
from reelay.state import open_state
state = open_state(sys.argv[2], Path(sys.argv[1]))
ran = 0
for key in range(30):
    verdict, _ = state.idempotency_begin(f"k{key}", f"owner{sys.argv[3]}", 4e9)
    if verdict == "run":
        with open(sys.argv[4], "a") as effects:
            effects.write(f"k{key}\\n")
        state.idempotency_complete(f"k{key}", f"owner{sys.argv[3]}", json.dumps(key))
"""


def test_an_idempotency_key_runs_its_effect_once_across_processes(
    tmp_path: Path, state_url: str
) -> None:
    effects = tmp_path / "effects.log"
    with open_state(state_url, tmp_path) as state:
        _run_all(_ONCE, tmp_path, state_url, 4, str(effects))
        assert sorted(effects.read_text().split()) == sorted(f"k{k}" for k in range(30))
        assert state.idempotency_begin("k7", "late", 4e9) == ("done", "7")


def test_meta_by_prefix_and_updated_together_or_not_at_all(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
        assert state.meta_items("a:") == {}
        assert state.update_meta({"a:1": "one", "a:2": "two", "b:1": "other"})
        assert state.meta_items("a:") == {"a:1": "one", "a:2": "two"}
        assert state.meta_items("a:1") == {"a:1": "one"}
        # A compare-and-set that finds another value changes nothing, deletes included
        assert not state.update_meta({"a:3": "x"}, ["a:1"], expect={"a:2": "old"})
        assert not state.update_meta({"a:3": "x"}, expect={"a:9": "none"})
        assert not state.update_meta({"a:3": "x"}, expect={"a:2": None})
        assert state.meta_items("a:") == {"a:1": "one", "a:2": "two"}
        assert state.update_meta({"a:3": "x", "a:2": "2"}, ["a:1"], expect={"a:2": "two"})
        assert state.update_meta({"a:9": "new"}, expect={"a:9": None})
        assert state.meta_items("a:") == {"a:2": "2", "a:3": "x", "a:9": "new"}
        assert state.get_meta("a:1") is None and state.get_meta("b:1") == "other"


_ADDER = """
import sys
from pathlib import Path
from reelay.state import open_state
state = open_state(sys.argv[2], Path(sys.argv[1]))
done = 0
while done < 25:
    now = state.get_meta("counter")
    if state.update_meta({"counter": str(int(now or 0) + 1)}, expect={"counter": now}):
        done += 1
"""


def test_compare_and_set_from_many_processes_loses_no_update(
    tmp_path: Path, state_url: str
) -> None:
    with open_state(state_url, tmp_path) as state:
        state.append([event()])
        _run_all(_ADDER, tmp_path, state_url, 4)
        assert state.get_meta("counter") == "100"


def test_appends_from_many_processes_are_read_in_order_without_gaps(
    tmp_path: Path, state_url: str
) -> None:
    code = """
import json, sys
from pathlib import Path
from reelay.state import open_state, NewEvent
state = open_state(sys.argv[2], Path(sys.argv[1]))
for i in range(100):
    state.append([NewEvent("event", json.dumps({"w": sys.argv[3], "i": i}))])
"""
    with open_state(state_url, tmp_path) as state:
        # A reader that follows the log while writers append never skips an event: what
        # it read past is never filled in later (the router's cursor depends on it).
        children = [
            subprocess.Popen([sys.executable, "-c", code, str(tmp_path), state_url, str(w)])
            for w in range(4)
        ]
        seen: list[int] = []
        while any(child.poll() is None for child in children):
            seen += [e.seq for e in state.events_after(seen[-1] if seen else 0)]
        assert [child.wait() for child in children] == [0] * 4
        seen += [e.seq for e in state.events_after(seen[-1] if seen else 0)]
        assert seen == sorted(seen) and len(set(seen)) == 400
        assert {e.seq for e in state.events_after(0, 1000)} == set(seen)


def test_events_delivered_twice_are_appended_once(tmp_path: Path, state_url: str) -> None:
    with open_state(state_url, tmp_path) as state:
        (first,) = state.append_once("s3:b/k@0001", [event(1)])
        assert state.append_once("s3:b/k@0001", [event(1)]) == []
        assert [e.seq for e in state.events_after(0)] == [first.seq]
        assert len(state.append_once("s3:b/k@0002", [event(2), event(3)])) == 2
        assert state.forget_once(time.time() - 3600) == 0  # both too young to forget
        assert state.forget_once(time.time() + 1) == 2
        assert len(state.append_once("s3:b/k@0001", [event(1)])) == 1  # forgotten: again
