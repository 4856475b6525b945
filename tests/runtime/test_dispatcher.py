"""The runtime end to end: events in, handlers run on real worker processes, outcomes out."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay.config import Settings
from reelay.errors import HomeBusyError
from reelay.runtime import Runtime, load_app
from reelay.state import CLAIMED, FAILED, QUEUED, RUNNING, SUCCEEDED

APP = Path(__file__).parent / "apps" / "basic" / "reelay.yaml"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(tmp_path / "home", retry_delays=(0.05, 0.1))


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with Runtime(load_app(APP), settings, max_workers=2) as rt:
        rt.start()
        yield rt


def lines(settings: Settings, name: str) -> list[dict[str, Any]]:
    path = settings.home / "out" / name
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def ping(rt: Runtime, detail_type: str, **detail: Any) -> str:
    (event_id,) = rt.client.put_events(
        [{"Source": "test.app", "DetailType": detail_type, "Detail": detail}]
    )
    return event_id


def test_s3_put_triggers_handler_with_exact_records(runtime: Runtime, settings: Settings) -> None:
    info = runtime.client.put_object("uploads", "in/a photo+1.jpg", b"hello")
    runtime.client.put_object("uploads", "elsewhere/b.jpg", b"not matched by the prefix rule")
    assert runtime.wait_idle(30)
    (seen,) = lines(settings, "echo.jsonl")
    (record,) = seen["event"]["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "uploads"
    assert record["s3"]["object"]["key"] == "in/a+photo%2B1.jpg"
    assert record["s3"]["object"]["size"] == 5 and record["s3"]["object"]["eTag"] == info.etag
    (inv,) = runtime.client.state.invocations(function="echo")
    assert inv.status == SUCCEEDED and inv.id == seen["request_id"]
    assert json.loads(inv.result or "null") == {"seen": "records"}
    (attempt,) = runtime.client.state.attempts(function="echo")
    assert f"echo echo {inv.id}" in attempt.logs and attempt.ok


def test_patterns_route_only_matching_events(runtime: Runtime, settings: Settings) -> None:
    ping(runtime, "ping", n=1)
    runtime.client.put_events([{"Source": "other.app", "DetailType": "ping", "Detail": "{}"}])
    assert runtime.wait_idle(30)
    (seen,) = lines(settings, "echo.jsonl")
    assert seen["event"]["source"] == "test.app" and seen["event"]["detail"] == {"n": 1}
    assert seen["event"]["detail-type"] == "ping" and seen["event"]["version"] == "0"


def test_the_dispatcher_and_its_workers_are_seen(runtime: Runtime) -> None:
    import socket

    import reelay

    ping(runtime, "ping", n=1)
    assert runtime.wait_idle(30)
    nodes = {n.kind: n for n in runtime.client.state.nodes()}
    host = socket.gethostname()
    dispatcher, worker = nodes["dispatcher"], nodes["worker"]
    assert dispatcher.name == f"dispatcher {os.getpid()}@{host}" and dispatcher.pid == os.getpid()
    (inv,) = runtime.client.state.invocations(function="echo")
    assert worker.name == inv.worker and worker.host == host and worker.pid != os.getpid()
    assert dispatcher.version == worker.version == reelay.__version__
    assert inv.started is not None and abs(worker.seen - inv.started) < 1  # its start notice


def test_retries_until_success_with_attempts_recorded(runtime: Runtime) -> None:
    ping(runtime, "flaky")
    assert runtime.wait_idle(30)
    (inv,) = runtime.client.state.invocations(function="flaky")
    assert inv.status == SUCCEEDED and inv.attempts == 3
    attempts = runtime.client.state.attempts(invocation_id=inv.id)
    assert [a.ok for a in sorted(attempts, key=lambda a: a.attempt)] == [False, False, True]
    assert attempts[-1].error_message == "flaky failure 1"


def test_exhausted_retries_go_to_dlq_and_on_failure_destination(
    runtime: Runtime, settings: Settings
) -> None:
    ping(runtime, "broken", item=7)
    assert runtime.wait_idle(30)
    (inv,) = runtime.client.state.invocations(function="broken")
    assert inv.status == FAILED and inv.attempts == 3 and inv.condition == "RetriesExhausted"
    assert inv.error is not None and inv.error["errorType"] == "ValueError"
    # The destination is a function: it receives Lambda's destination record directly.
    records = [s["event"] for s in lines(settings, "sink.jsonl")]
    (record,) = [r for r in records if "requestContext" in r]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:broken:$LATEST")
    assert record["requestPayload"]["detail"] == {"item": 7}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "always broken"


def test_zero_retries_and_event_destination(runtime: Runtime, settings: Settings) -> None:
    ping(runtime, "once")
    assert runtime.wait_idle(30)
    (inv,) = runtime.client.state.invocations(function="once")
    assert inv.status == FAILED and inv.attempts == 1
    # The destination is the event bus: sink's pattern matches the result event.
    (seen,) = [s["event"] for s in lines(settings, "sink.jsonl")]
    assert seen["source"] == "lambda"
    assert seen["detail-type"] == "Lambda Function Invocation Result - Failure"
    assert seen["detail"]["requestContext"]["requestId"] == inv.id
    # The result event continues the failed invocation's chain.
    result = runtime.client.state.events(source="lambda", limit=1)[0]
    assert result.chain_start == runtime.client.state.event(inv.event_seq).chain_start
    assert result.root is not None


def test_redrive_runs_dlq_entries_again(runtime: Runtime) -> None:
    ping(runtime, "once")
    assert runtime.wait_idle(30)
    state = runtime.client.state
    (inv,) = state.invocations(status=FAILED, function="once")
    assert state.redrive(ids=[inv.id]) == 1
    assert runtime.wait_idle(30)
    again = state.invocation(inv.id)
    # A fresh budget (one attempt: maximumRetryAttempts 0); the history keeps both.
    assert again.status == FAILED and again.redrives == 1 and again.attempts == 2
    assert again.charged_attempts == 1
    assert sorted(a.attempt for a in state.attempts(invocation_id=inv.id)) == [1, 2]
    assert state.redrive(ids=["not-an-id"]) == 0


def test_timeout_kills_worker_and_runtime_keeps_serving(runtime: Runtime) -> None:
    ping(runtime, "slow")
    assert runtime.wait_idle(30)
    (inv,) = runtime.client.state.invocations(function="slow")
    assert inv.status == FAILED
    assert inv.error is not None and inv.error["errorType"] == "Sandbox.Timedout"
    ping(runtime, "ping")
    assert runtime.wait_idle(30)
    assert runtime.client.state.invocations(function="echo")[0].status == SUCCEEDED


def test_reserved_concurrency_is_never_exceeded(runtime: Runtime, settings: Settings) -> None:
    runtime.client.put_events(
        [{"Source": "test.app", "DetailType": "exclusive", "Detail": "{}"}] * 6
    )
    assert runtime.wait_idle(30)
    log = (settings.home / "out" / "exclusive.log").read_text().split()
    kinds = log[0::2]
    assert kinds == ["start", "end"] * 6  # never two starts without an end between them


def test_reserved_concurrency_zero_throttles_until_event_age_expires(runtime: Runtime) -> None:
    ping(runtime, "disabled")
    state = runtime.client.state
    deadline = time.monotonic() + 10
    while not state.invocations(function="disabled") and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    (inv,) = state.invocations(function="disabled")
    assert inv.status == QUEUED and inv.attempts == 0  # throttled, not run
    with state._write() as db:  # age the event past maximumEventAge
        db.execute(
            "UPDATE invocations SET created = created - 30000, "
            "expires = expires - 30000 WHERE id = ?",
            (inv.id,),
        )
    assert runtime.wait_idle(30)
    inv = state.invocation(inv.id)
    assert inv.status == FAILED and inv.condition == "EventAgeExceeded" and inv.attempts == 0


def test_idempotent_effect_happens_once(runtime: Runtime, settings: Settings) -> None:
    runtime.client.put_events(
        [{"Source": "test.app", "DetailType": "effect", "Detail": {"key": "k1"}}] * 3
        + [{"Source": "test.app", "DetailType": "effect", "Detail": {"key": "k2"}}]
    )
    assert runtime.wait_idle(30)
    effects = (settings.home / "out" / "effects.log").read_text().split()
    assert sorted(effects) == ["k1", "k2"]
    results = {
        json.loads(i.result or "null") for i in runtime.client.state.invocations(function="effect")
    }
    assert results == {"k1", "k2"}


def test_second_dispatcher_on_same_home_is_refused(runtime: Runtime, settings: Settings) -> None:
    with pytest.raises(HomeBusyError, match="already serving"), Runtime(load_app(APP), settings):
        pass


def test_schedule_fires_once_per_time_even_across_restarts(
    settings: Settings, tmp_path: Path
) -> None:
    app_dir = tmp_path / "sched"
    app_dir.mkdir()
    (app_dir / "h.py").write_text("def tick(event, context):\n    return event['source']\n")
    (app_dir / "reelay.yaml").write_text(
        "functions:\n  tick:\n    handler: h.tick\n"
        "    events: [{schedule: {rate: rate(1 minute), name: every-minute}}]\n"
    )
    app = load_app(app_dir / "reelay.yaml")
    for _ in range(2):  # the second run is a restart that must not fire the same time again
        with Runtime(app, settings, max_workers=1) as rt:
            assert rt.dispatcher is not None
            rt.dispatcher.step()  # computes the next fire time
            key = "schedule:tick:every-minute"
            rt.dispatcher._schedules[key] = 1_700_000_040.0  # pretend it was due in 2023
            rt.dispatcher.step()
            rt.start()
            assert rt.wait_idle(30)
    (inv,) = rt.client.state.invocations(function="tick")
    assert inv.status == SUCCEEDED and json.loads(inv.result or "null") == "aws.events"
    (event,) = rt.client.state.events(kind="schedule")
    body = json.loads(event.body)
    assert body["detail-type"] == "Scheduled Event" and body["resources"] == [
        "arn:aws:events:us-east-1:000000000000:rule/every-minute"
    ]
    assert body["time"] == "2023-11-14T22:14:00Z"


def test_events_from_another_thread_start_quickly(runtime: Runtime) -> None:
    # Not a timing assertion: every event appended concurrently is handled exactly once.
    def burst() -> None:
        for i in range(50):
            ping(runtime, "ping", n=i)

    threads = [threading.Thread(target=burst) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runtime.wait_idle(60)
    counts = runtime.client.state.counts()
    assert counts[SUCCEEDED] == 150 and counts[FAILED] == 0


def test_stop_gives_back_unstarted_claims_and_finishes_started_ones(settings: Settings) -> None:
    app = load_app(APP)
    with Runtime(app, settings, max_workers=1) as rt:
        rt.start()
        ping(rt, "nap")  # the worker is up and idle after this one
        assert rt.wait_idle(30)
        rt.client.put_events([{"Source": "test.app", "DetailType": "nap", "Detail": "{}"}] * 6)
        state = rt.client.state
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = state.counts()
            if counts[CLAIMED] == 5 and counts[RUNNING] == 1:
                break  # all six claimed: one running, five waiting in the executor
            time.sleep(0.01)
        # Claimed is not running: only the one a worker started has a worker and a start.
        running = state.invocations(status=RUNNING)
        claimed = state.invocations(status=CLAIMED)
        assert len(running) == 1 and len(claimed) == 5, state.counts()
        assert running[0].worker and running[0].started is not None
        assert all(i.worker is None and i.started is None and i.claimed for i in claimed)
    counts = state.counts()
    assert counts[RUNNING] == counts[CLAIMED] == 0, counts  # nothing left by a stopped dispatcher
    assert 2 <= counts[SUCCEEDED] < 7 and counts[SUCCEEDED] + counts[QUEUED] == 7, counts
    assert all(i.attempts == 0 for i in state.invocations(status=QUEUED))
    with Runtime(app, settings, max_workers=2) as rt:
        assert rt.recovered == 0
        rt.start()
        assert rt.wait_idle(30)
        assert rt.client.state.counts()[SUCCEEDED] == 7


def test_lost_attempt_fails_at_its_lease_and_is_retried(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import Future

    from reelay.runtime import dispatcher as dispatcher_module

    assert runtime.executor is not None
    real_submit = runtime.executor.submit
    lost: list[Future[Any]] = []

    def lose_first(task: Any, on_start: Any = None) -> Future[Any]:
        if not lost:  # the first attempt starts and vanishes, as on a lost cluster node
            lost.append(Future())
            lost[0].set_running_or_notify_cancel()
            on_start("gone@nowhere", time.time())
            return lost[0]
        return real_submit(task, on_start)

    monkeypatch.setattr(runtime.executor, "submit", lose_first)
    monkeypatch.setattr(dispatcher_module, "LEASE_GRACE_S", -5.0)  # lease: 6 s timeout - 5 s
    ping(runtime, "ping")
    assert runtime.wait_idle(30)
    (inv,) = runtime.client.state.invocations(function="echo")
    assert inv.status == SUCCEEDED and inv.attempts == 2
    first = [a for a in runtime.client.state.attempts(invocation_id=inv.id) if a.attempt == 1]
    assert first[0].error_type == "Sandbox.Timedout" and "lease expired" in (
        first[0].error_message or ""
    )


def test_throttled_work_does_not_spin_the_loop(runtime: Runtime) -> None:
    from reelay.runtime import dispatcher as dispatcher_module

    ping(runtime, "disabled")  # due at once, but never claimable
    state = runtime.client.state
    deadline = time.monotonic() + 10
    while not state.invocations(function="disabled") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runtime.dispatcher is not None
    assert state.next_due() is not None and state.next_due() <= time.time()  # type: ignore[operator]
    # The loop sleeps until a completion, an event or the periodic recheck wakes it.
    assert runtime.dispatcher._idle_timeout() > dispatcher_module.IDLE_RECHECK_S / 2


def test_invocation_of_a_function_the_app_no_longer_has_fails_cleanly(runtime: Runtime) -> None:
    from reelay.state import NewEvent

    _, request_id = runtime.client.state.append_invocation(
        NewEvent("invoke", "{}", target="gone"), "gone", max_attempts=1, max_event_age_s=60
    )
    runtime.dispatcher.wake()  # type: ignore[union-attr]
    assert runtime.wait_idle(30)
    inv = runtime.client.state.invocation(request_id)
    assert inv.status == FAILED and inv.error is not None
    assert inv.error["errorMessage"] == "Function not found: gone"


@pytest.mark.parametrize(
    ("scheduling", "order"),
    [
        # Older chains finish first: the events a handler causes keep their chain's age.
        ("oldest-first", ["A1", "A2", "A3", "B1", "B2", "B3"]),
        ("fifo", ["A1", "B1", "A2", "B2", "A3", "B3"]),
    ],
)
def test_ready_work_of_older_chains_runs_first(
    settings: Settings, scheduling: Any, order: list[str]
) -> None:
    with Runtime(load_app(APP), settings, max_workers=1, scheduling=scheduling) as rt:
        ping(rt, "nap")  # the worker is busy while both chains start
        ping(rt, "chain", name="A", step=1)
        ping(rt, "chain", name="B", step=1)
        rt.start()
        assert rt.wait_idle(60)
    assert (settings.home / "out" / "chain.log").read_text().split() == order
    root = {e.id: e for e in rt.client.state.events(limit=20)}
    chain_events = [e for e in root.values() if e.detail_type == "chain"]
    assert len({e.chain_start for e in chain_events}) == 2  # two chains, each its own root


def test_an_unknown_scheduling_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="unknown scheduling 'lifo'; valid: oldest-first, fifo"):
        Runtime(load_app(APP), settings, scheduling="lifo").__enter__()  # type: ignore[arg-type]


def test_a_drain_that_gives_up_leaves_a_started_attempt_running_not_claimed(
    settings: Settings,
) -> None:
    """Stopping without waiting for a running attempt: the next start records it as
    lost (it ran), rather than taking it for a claim that never started."""
    stop = threading.Event()
    with Runtime(load_app(APP), settings, max_workers=1) as rt:
        serving = threading.Thread(target=rt.serve, args=(stop,), kwargs={"drain_s": 0.0})
        serving.start()
        ping(rt, "nap", seconds=30)
        state = rt.client.state
        deadline = time.monotonic() + 30
        while not state.invocations(status=RUNNING) and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()  # the nap runs on: the drain gives up on it at once
        assert rt.dispatcher is not None
        rt.dispatcher.wake()
        serving.join()
    (inv,) = state.invocations(function="nap")
    assert inv.status == RUNNING
    with Runtime(load_app(APP), settings, max_workers=1) as rt:
        assert rt.recovered == 1
        (lost,) = rt.client.state.attempts(invocation_id=inv.id)
        assert lost.error_type == "Runtime.ExitError" and "was lost" in (lost.error_message or "")
