"""The dispatcher: routes logged events to functions, runs them, records what happened.

One dispatcher serves a home at a time (`HomeLock`); any number of processes may append
events meanwhile. Each turn of its loop:

1. finishes attempts that came back from the executor: success, a retry after Lambda's
   backoff, or the DLQ and the on-failure destination, written in one transaction with
   the destination events they cause;
2. routes events appended since its cursor to the functions whose triggers match,
   creating invocations and advancing the cursor in one transaction;
3. fires schedules that are due (once per fire time, even across restarts), and invokes
   the next batches of its stream triggers (`reelay.runtime.mappings`);
4. fails queued invocations older than their maximum event age;
5. claims ready invocations up to the executor's capacity and each function's reserved
   concurrency, and submits them; when a worker starts one, it is marked running.

Ready invocations are claimed in rank order, and the executor starts waiting tasks in
the same order (`Task.priority`). With the default ``oldest-first`` scheduling an
invocation's rank is the time its event chain began (the upload of a title, say), so the
dispatcher finishes what it started: a title's last steps run before younger titles'
first ones, and the first title publishes long before the last instead of all together.
Aging bounds the wait of everything else: an invocation created `AGING_S` after its
chain began ranks as if its chain began `AGING_S` before it was created, so young work
(an unrelated event, a schedule) waits behind older chains for at most about that long.
``fifo`` ranks by the event's own time: first in, first out (see `state.rank`).

It sleeps on the home's doorbell socket and the executor's completions, so an event
appended by another process starts its handler within milliseconds, without polling.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import select
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import unquote_plus

from reelay import __version__
from reelay.config import Settings
from reelay.errors import StreamError
from reelay.events import PatternIndex, bus_event
from reelay.observe.logstream import LOG_STREAM, LogStream
from reelay.runtime._scratch import sweep_scratch
from reelay.runtime._task import Task, TaskResult
from reelay.runtime.app import App, Destination, FunctionSpec
from reelay.runtime.executors import Executor
from reelay.runtime.mappings import StreamMappings
from reelay.state import (
    FAILED,
    QUEUED,
    SUCCEEDED,
    Attempt,
    Event,
    Invocation,
    NewEvent,
    NewInvocation,
    Node,
    Outcome,
    Scheduling,
    Start,
    State,
    rank,
)
from reelay.streams import Streams

# Events appended together with their invocation (`State.append_invocation`): routing
# them would invoke twice. They have no retries nor destinations of the dispatcher's: a
# synchronous invoke's caller, a stream trigger's mapping, decides what follows.
CREATED_WITH_INVOCATION = ("invoke", "stream")
IDLE_RECHECK_S = 0.5  # a lost doorbell ring delays work by at most this much
EXPIRY_CHECK_S = 1.0
ROUTE_BATCH = 2000
# Invocations claimed per worker: those beyond the one running wait in the executor's
# queue, so workers never idle while the dispatcher records results (measured: 2 per
# worker gives ~2,500 no-ops/s on 2 cores, 8 gives ~3,300). Their timeouts start when
# they start; reserved concurrency counts them from the claim.
PREFETCH = 8
# A claim is a lease: an attempt that started and whose result has not come back by
# its timeout plus this grace (a lost Ray node, say) is failed as timed out and
# retried, and its late result is ignored. The lease runs from the attempt's start,
# not from the claim, so waiting in the executor's queue never expires it.
LEASE_GRACE_S = 60.0
# Scratch left by dead workers is swept at start and this often (and object writes
# that dead writers left without their event are settled).
SWEEP_S = 60.0
# A dispatcher says it is alive this often (`State.node_seen`: the API's and /metrics'
# list of dispatchers and workers); workers are seen when they start an attempt.
NODE_BEAT_S = 5.0
# How long `State.append_once` keys are kept: SQS keeps a message 14 days at most.
ONCE_KEEP_S = 14 * 86400.0


@dataclass
class Claim:
    """An attempt handed to the executor and not yet recorded."""

    attempt: int
    future: Future[TaskResult]
    timeout_s: float
    lease_until: float = math.inf  # set when a worker starts it


def _worker_node(name: str, seen: float) -> Node:
    """A worker named ``pid@host``, as its start notices show it. It runs the
    dispatcher's reelay: a worker of another version refuses every task."""
    pid, _, host = name.partition("@")
    return Node(name, "worker", host, int(pid) if pid.isdigit() else None, __version__, seen, seen)


class Router:
    """Which functions an event triggers. Pattern matching is indexed, not a scan."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.patterns: PatternIndex[str] = PatternIndex()
        self.s3: dict[str, list[tuple[str, Any]]] = {}
        for spec in app.functions.values():
            for pattern in spec.patterns:
                self.patterns.add(spec.name, pattern.compiled)
            for trigger in spec.s3:
                self.s3.setdefault(trigger.bucket, []).append((spec.name, trigger))

    def targets(self, event: Event) -> list[str]:
        if event.kind in CREATED_WITH_INVOCATION:
            return []
        if event.target is not None:
            return [event.target] if event.target in self.app.functions else []
        body = json.loads(event.body)
        if event.kind == "s3":
            names = []
            for record in body.get("Records", []):
                bucket = record["s3"]["bucket"]["name"]
                key = unquote_plus(record["s3"]["object"]["key"])
                names += [
                    fn
                    for fn, trigger in self.s3.get(bucket, ())
                    if trigger.matches(bucket, record["eventName"], key)
                ]
            return list(dict.fromkeys(names))
        return list(dict.fromkeys(self.patterns.match(body)))


def destination_record(
    inv: Invocation, event: Event, condition: str, result: TaskResult | None, region: str
) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's destination."""
    function_arn = f"arn:aws:lambda:{region}:000000000000:function:{inv.function}:$LATEST"
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    payload: Any = None
    if result is not None and result.ok:
        payload = json.loads(result.payload) if result.payload else None
    elif result is not None:
        response["functionError"] = "Unhandled"
        payload = result.error
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": inv.id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": inv.charged_attempts,  # in this round (see redrive)
        },
        "requestPayload": json.loads(event.body),
        "responseContext": response,
        "responsePayload": payload,
    }


def destination_events(
    dest: Destination, record: dict[str, Any], outcome: str, region: str, root: float | None
) -> list[NewEvent]:
    """The event that takes an invocation record to its destination: an asynchronous
    invoke of a function, or an event on the bus (``outcome``: Success or Failure)."""
    detail_type = f"Lambda Function Invocation Result - {outcome}"
    if dest.function is not None:
        return [
            NewEvent(
                "invoke-async",
                json.dumps(record),
                source="lambda",
                detail_type=detail_type,
                target=dest.function,
                root=root,
            )
        ]
    envelope = bus_event(
        "lambda",
        detail_type,
        record,
        region=region,
        resources=[record["requestContext"]["functionArn"]],
    )
    return [
        NewEvent(
            "event",
            json.dumps(envelope),
            source="lambda",
            detail_type=detail_type,
            id=envelope["id"],
            root=root,
        )
    ]


class Dispatcher:
    """Runs an app's functions for the events of one home. See the module docstring."""

    def __init__(
        self,
        app: App,
        settings: Settings,
        state: State,
        executor: Executor,
        *,
        out: TextIO | None = None,
        verbose: bool = False,
        only: Collection[str] | None = None,
        scheduling: Scheduling = "oldest-first",
        reconcile: Callable[[], object] | None = None,
        streams: Streams | None = None,
    ) -> None:
        self.scheduling = scheduling
        # Settles object writes whose writer died (a worker killed mid put_object), with
        # the scratch sweep; the Runtime passes `Client.reconcile_objects`.
        self.reconcile = reconcile
        self.app = app
        self.settings = settings
        self.state = state
        self.executor = executor
        self.router = Router(app)
        self.out = out
        self.verbose = verbose
        self.inflight: dict[str, Claim] = {}
        self.running: Counter[str] = Counter()
        self._throttled: dict[str, str] = {}  # id -> function, held back by concurrency
        # Serve only these invocations (a synchronous `reelay invoke`): no routing, no
        # schedules, nothing else claimed.
        self.only = set(only) if only is not None else None
        self._done: queue.SimpleQueue[tuple[Invocation, Event, TaskResult]] = queue.SimpleQueue()
        self._starts: queue.SimpleQueue[Start] = queue.SimpleQueue()
        self._bell_r, self._bell_w = socket.socketpair()
        self._bell_r.setblocking(False)
        self._bell_w.setblocking(False)
        self._cursor = state.route_cursor()
        self._next_expiry = 0.0
        self._next_sweep = time.time() + SWEEP_S
        self._next_node_beat = 0.0
        self._workers_seen: dict[str, float] = {}  # worker -> the sighting last written
        host, now = socket.gethostname(), time.time()
        self.node = Node(
            f"dispatcher {os.getpid()}@{host}",
            "dispatcher",
            host,
            os.getpid(),
            __version__,
            now,
            now,
        )
        self._run_id = uuid.uuid4().hex[:12]
        self._schedules: dict[str, float] = {}
        self._environments = {
            spec.name: spec.environment | settings.environment() for spec in app.functions.values()
        }
        # Every attempt's log, on the built-in log stream (see reelay.observe.logstream),
        # but those of the functions that read it: each would feed itself forever.
        self.log_stream = LogStream(streams, self._log) if streams is not None else None
        if self.log_stream is not None and only is None:
            self.log_stream.ensure()
        self._unlogged = {
            spec.name
            for spec in app.functions.values()
            if any(t.stream == LOG_STREAM for t in spec.streams)
        }
        self.streams = streams
        self.mappings: StreamMappings | None = None
        if streams is not None and only is None and any(s.streams for s in app.functions.values()):
            self.mappings = StreamMappings(
                app,
                state,
                streams,
                region=settings.region,
                emit=lambda dest, record: destination_events(
                    dest, record, "Failure", settings.region, None
                ),
                log=self._log,
            )

    # -- the loop --------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event,
        *,
        drain_s: float | None = None,
    ) -> None:
        """Serve until ``stop`` is set, then drain in-flight work.

        Draining waits up to ``drain_s`` seconds (default: the longest function timeout)
        for running attempts to finish and records them; what is still running after
        that is left to the next start, which requeues it.
        """
        doorbell = self.state.listen()
        waitables: list[Any] = [self._bell_r] + ([doorbell] if doorbell else [])
        try:
            while not stop.is_set():
                if not self.step():
                    ready, _, _ = select.select(waitables, [], [], self._idle_timeout())
                    if self._bell_r in ready:
                        with contextlib.suppress(OSError):
                            while self._bell_r.recv(4096):
                                pass
                    if doorbell is not None and doorbell in ready:
                        doorbell.drain()
        finally:
            self.drain(drain_s)
            if doorbell is not None:
                doorbell.close()

    def step(self) -> bool:
        """One turn of the loop; True if anything happened."""
        now = time.time()
        starts = self._take_starts()
        busy = self._finish_done()
        self._record_starts(starts)
        if self.only is None:
            busy = self._route() or busy
            self._fire_schedules(now)
        if self.mappings is not None:
            busy = self.mappings.step(now) or busy
        if now >= self._next_expiry:
            if self.only is None:
                self._expire(now)
            self._expire_leases(now)
            if self.inflight:
                self.state.beat(now)
            self._next_expiry = now + EXPIRY_CHECK_S
        if now >= self._next_node_beat:
            self.node = replace(self.node, seen=now)
            self.state.node_seen([self.node])
            self._next_node_beat = now + NODE_BEAT_S
        if now >= self._next_sweep:
            sweep_scratch(self.settings.home)
            if self.reconcile is not None and self.only is None:
                self.reconcile()
            if self.only is None:
                self.state.forget_once(now - ONCE_KEEP_S)
                self._trim_streams(now)
            self._next_sweep = now + SWEEP_S
        return self._claim(now) or busy or bool(starts)

    def _trim_streams(self, now: float) -> None:
        """Drop the records streams keep no longer (their retention)."""
        if self.streams is None:
            return
        try:
            self.streams.trim(now)
        except StreamError as exc:
            self._log(f"trimming streams failed: {exc}")

    def drain(self, timeout_s: float | None = None) -> None:
        """Give back claims that have not started; wait for and record those that have."""
        if timeout_s is None:
            timeout_s = max((f.timeout_s for f in self.app.functions.values()), default=6.0)
        # Starts not yet recorded first: a claim a worker started is running, not a claim
        # to give back, even if the drain gives up on it.
        self._record_starts(self._take_starts())
        unstarted = [id_ for id_, claim in self.inflight.items() if claim.future.cancel()]
        self.state.release(unstarted)
        for request_id in unstarted:
            self.running[self.state.invocation(request_id).function] -= 1
            del self.inflight[request_id]
        deadline = time.time() + timeout_s
        while self.inflight and time.time() < deadline:
            wait(
                [c.future for c in self.inflight.values()],
                deadline - time.time(),
                return_when=FIRST_COMPLETED,
            )
            self._finish_done()
        self._finish_done()

    def _idle_timeout(self) -> float:
        now = time.time()
        wake = now + IDLE_RECHECK_S
        due = self.state.next_due()
        # A due time already past belongs to work that could not be claimed (throttled,
        # or the executor is full): a completion or a new event wakes the loop for it.
        if due is not None and due > now:
            wake = min(wake, due)
        if self._schedules:
            wake = min(wake, min(self._schedules.values()))
        if self.mappings is not None and (poll := self.mappings.next_wake(now)) is not None:
            wake = min(wake, poll)
        return max(wake - time.time(), 0.0)

    def _log(self, line: str) -> None:
        if self.out is not None:
            stamp = datetime.now().strftime("%H:%M:%S")
            print(f"{stamp} {line}", file=self.out, flush=True)

    # -- routing -----------------------------------------------------------------------

    def _route(self) -> bool:
        events = self.state.events_after(self._cursor, ROUTE_BATCH)
        if not events:
            return False
        new = []
        for event in events:
            targets = self.router.targets(event)
            # (an event appended with its invocation, a direct invoke or a stream batch,
            # targets no one here: it was never to be routed)
            if (
                event.target is not None
                and event.kind not in CREATED_WITH_INVOCATION
                and not targets
            ):
                self._log(f"event {event.seq} targets unknown function {event.target!r}: dropped")
            for name in targets:
                spec = self.app.functions[name]
                new.append(
                    NewInvocation(
                        event.seq,
                        event.time,
                        name,
                        spec.max_attempts,
                        spec.max_event_age_s,
                        rank(event, self.scheduling),
                    )
                )
        self.state.route(new, events[-1].seq)
        self._cursor = events[-1].seq
        return True

    # -- schedules -----------------------------------------------------------------------

    def _fire_schedules(self, now: float) -> None:
        for spec in self.app.functions.values():
            for trigger in spec.schedules:
                key = f"schedule:{spec.name}:{trigger.name}"
                due = self._schedules.get(key)
                if due is None:
                    after = datetime.fromtimestamp(now, UTC)
                    nxt = trigger.schedule.next_after(after)
                    self._schedules[key] = nxt.timestamp() if nxt else float("inf")
                    continue
                if now < due:
                    continue
                fire_time = datetime.fromtimestamp(due, UTC)
                body = (
                    trigger.input
                    if trigger.input is not None
                    else bus_event(
                        "aws.events",
                        "Scheduled Event",
                        {},
                        region=self.settings.region,
                        time=fire_time,
                        resources=[
                            f"arn:aws:events:{self.settings.region}:000000000000:rule/"
                            f"{trigger.name}"
                        ],
                    )
                )
                fired = self.state.fire_schedule(
                    key,
                    fire_time.isoformat(),
                    NewEvent(
                        "schedule",
                        json.dumps(body),
                        source="aws.events",
                        detail_type="Scheduled Event",
                        target=spec.name,
                    ),
                )
                if fired:
                    self._log(f"schedule {trigger.expression} fired {spec.name}")
                # Fire times missed while nothing ran are skipped, as EventBridge does.
                nxt = trigger.schedule.next_after(max(fire_time, datetime.now(UTC)))
                self._schedules[key] = nxt.timestamp() if nxt else float("inf")

    # -- claiming and submitting -------------------------------------------------------

    def _claim(self, now: float) -> bool:
        free = PREFETCH * self.executor.max_workers - len(self.inflight)
        if free <= 0:
            return False
        room = {
            spec.name: spec.reserved_concurrency - self.running[spec.name]
            for spec in self.app.functions.values()
            if spec.reserved_concurrency is not None
        }
        only = list(self.only) if self.only is not None else None
        claimed = self.state.claim(now, free, room=room, only=only)
        for inv, event in claimed:
            self._submit(inv, event)
        self._count_throttles(
            now, [inv.id for inv, _ in claimed], [fn for fn, left in room.items() if left <= 0]
        )
        return bool(claimed)

    def _count_throttles(self, now: float, claimed: list[str], full: list[str]) -> None:
        """Count each ready invocation held back by its function's reserved concurrency,
        once per wait (Lambda's Throttles metric): a wait ends when it is claimed."""
        waiting = self.state.ready(full, now)
        new = Counter(fn for id_, fn in waiting.items() if id_ not in self._throttled)
        # Keep the waits still going: of full functions only those still waiting (others
        # were claimed or expired); of the rest, those not claimed just now.
        self._throttled = {
            id_: fn
            for id_, fn in self._throttled.items()
            if (id_ in waiting if fn in full else id_ not in claimed)
        } | waiting
        if new:
            self.state.add_throttles(new)

    def _submit(self, inv: Invocation, event: Event) -> None:
        spec = self.app.functions.get(inv.function)
        future: Future[TaskResult]
        if spec is None:  # the app served now lacks the function the event was routed to
            future = Future()
            future.set_running_or_notify_cancel()
            future.set_result(
                TaskResult(
                    inv.id,
                    ok=False,
                    error={
                        "errorType": "ResourceNotFoundException",
                        "errorMessage": f"Function not found: {inv.function}",
                        "stackTrace": [],
                    },
                )
            )
        else:
            attempt = inv.attempts

            def started(worker: str | None, at: float) -> None:  # on an executor thread
                self._starts.put(Start(inv.id, attempt, at, worker))
                self.wake()

            future = self.executor.submit(self._task(spec, inv, event), on_start=started)
        self.running[inv.function] += 1
        self.inflight[inv.id] = Claim(inv.attempts, future, spec.timeout_s if spec else 0.0)
        future.add_done_callback(lambda f: self._completed(inv, event, f))

    def _task(self, spec: FunctionSpec, inv: Invocation, event: Event) -> Task:
        return Task(
            request_id=inv.id,
            function_name=spec.name,
            handler=spec.handler,
            app_root=str(self.app.root),
            python_path=self.app.code.python_path,
            event=event.body,
            timeout_s=spec.timeout_s,
            memory_mb=spec.memory_mb,
            attempt=inv.attempts,
            region=self.settings.region,
            priority=inv.rank if inv.rank is not None else event.time,
            environment=self._environments[spec.name]
            | {
                "REELAY_REQUEST_ID": inv.id,
                # Events the handler causes belong to this event's chain (see `rank`).
                "REELAY_ROOT": repr(event.chain_start),
                # Unique per attempt and per dispatcher run: a redelivery after a crash
                # must not pass for the attempt it replaces (see reelay.idempotency).
                "REELAY_ATTEMPT_ID": f"{inv.id}:{inv.attempts}:{self._run_id}",
                "REELAY_TIMEOUT": str(spec.timeout_s),
            },
        )

    def _completed(self, inv: Invocation, event: Event, future: Future[TaskResult]) -> None:
        # Runs on an executor thread: hand over to the loop and wake it.
        if future.cancelled():  # given back by `drain`; the state has it queued again
            return
        try:
            result = future.result()
        except BaseException as exc:  # the executor itself broke; the attempt failed
            result = TaskResult(
                inv.id,
                ok=False,
                error={
                    "errorType": "Reelay.ExecutorError",
                    "errorMessage": str(exc),
                    "stackTrace": [],
                },
            )
        self._done.put((inv, event, result))
        self.wake()

    # -- starting and finishing -------------------------------------------------------

    def _take_starts(self) -> list[Start]:
        starts = []
        while True:
            try:
                starts.append(self._starts.get_nowait())
            except queue.Empty:
                return starts

    def _record_starts(self, starts: list[Start]) -> None:
        """Mark started attempts running and start their leases; an attempt whose
        result was already recorded needs neither."""
        live = []
        for start in starts:
            claim = self.inflight.get(start.invocation_id)
            if claim is None or claim.attempt != start.attempt:
                continue
            claim.lease_until = start.started + claim.timeout_s + LEASE_GRACE_S
            live.append(start)
        if live:
            self.state.start(live)
            # A worker's sighting is written when it is new or its last is a beat old:
            # not a write per batch of starts.
            due = {
                s.worker: s.started
                for s in live
                if s.worker is not None
                and s.started >= self._workers_seen.get(s.worker, -math.inf) + NODE_BEAT_S
            }
            if due:
                self._workers_seen.update(due)
                self.state.node_seen([_worker_node(name, at) for name, at in due.items()])

    # -- finishing -----------------------------------------------------------------------

    def _finish_done(self) -> bool:
        outcomes: list[Outcome] = []
        events: list[NewEvent] = []
        batches: list[Invocation] = []  # of stream triggers: their mapping decides what next
        now = time.time()
        while True:
            try:
                inv, event, result = self._done.get_nowait()
            except queue.Empty:
                break
            claim = self.inflight.get(inv.id)
            if claim is None or claim.attempt != inv.attempts:
                continue  # a late result of an attempt whose lease already expired
            del self.inflight[inv.id]
            self.running[inv.function] -= 1
            outcome, caused = self._decide(inv, event, result, now)
            outcomes.append(outcome)
            events += caused
            if event.kind == "stream":
                batches.append(replace(inv, status=outcome.status, result=outcome.result))
        if outcomes:
            self.state.finish(outcomes, events)
            if self.log_stream is not None:
                self.log_stream.publish(
                    [
                        o.attempt
                        for o in outcomes
                        if o.attempt is not None and o.attempt.function not in self._unlogged
                    ]
                )
        if self.mappings is not None:
            for inv in batches:
                self.mappings.finished(inv)
        return bool(outcomes)

    def _decide(
        self, inv: Invocation, event: Event, result: TaskResult, now: float
    ) -> tuple[Outcome, list[NewEvent]]:
        error = result.error or {}
        attempt = Attempt(
            invocation_id=inv.id,
            attempt=inv.attempts,
            function=inv.function,
            started=result.started_at or now,
            duration_ms=result.duration_ms,
            ok=result.ok,
            error_type=error.get("errorType"),
            error_message=error.get("errorMessage"),
            worker=result.worker,
            cold_start=result.cold_start,
            max_memory_mb=result.max_memory_mb,
            logs=result.logs,
            logs_truncated=result.logs_truncated,
        )
        spec = self.app.functions.get(inv.function)
        if result.ok:
            if self.verbose:
                self._log(f"{inv.function} {inv.id} ok {result.duration_ms:.1f} ms")
            caused = self._destination(
                spec.on_success if spec else None, inv, event, "Success", result
            )
            return Outcome(
                inv.id, SUCCEEDED, condition="Success", result=result.payload, attempt=attempt
            ), caused
        message = f"{error.get('errorType')}: {error.get('errorMessage')}"
        delays = self.settings.retry_delays or (0.0,)
        delay = delays[min(inv.charged_attempts - 1, len(delays) - 1)]
        if inv.charged_attempts < inv.max_attempts and now + delay <= inv.expires:
            self._log(
                f"{inv.function} {inv.id} attempt {inv.attempts} failed ({message}); "
                f"retry in {delay:g} s"
            )
            return Outcome(
                inv.id, QUEUED, not_before=now + delay, error=result.error, attempt=attempt
            ), []
        exhausted = inv.charged_attempts >= inv.max_attempts
        condition = "RetriesExhausted" if exhausted else "EventAgeExceeded"
        return self._fail(inv, event, condition, result, attempt)

    def _fail(
        self,
        inv: Invocation,
        event: Event,
        condition: str,
        result: TaskResult | None,
        attempt: Attempt | None,
    ) -> tuple[Outcome, list[NewEvent]]:
        error = (
            result.error
            if result is not None
            else {
                "errorType": "EventAgeExceeded",
                "errorMessage": "the event is older than the function's maximumEventAge",
            }
        )
        then = (
            "its stream trigger retries or discards the batch"
            if event.kind == "stream"
            else "sent to the DLQ"
        )
        self._log(
            f"{inv.function} {inv.id} failed ({condition}): "
            f"{(error or {}).get('errorType')}: {(error or {}).get('errorMessage')}; {then}"
        )
        spec = self.app.functions.get(inv.function)
        caused = self._destination(spec.on_failure if spec else None, inv, event, condition, result)
        return Outcome(inv.id, FAILED, condition=condition, error=error, attempt=attempt), caused

    def _destination(
        self,
        dest: Destination | None,
        inv: Invocation,
        event: Event,
        condition: str,
        result: TaskResult | None,
    ) -> list[NewEvent]:
        if dest is None or event.kind in CREATED_WITH_INVOCATION:
            return []
        record = destination_record(inv, event, condition, result, self.settings.region)
        outcome = "Success" if condition == "Success" else "Failure"
        # A destination continues its invocation's chain.
        return destination_events(dest, record, outcome, self.settings.region, event.chain_start)

    def _expire_leases(self, now: float) -> None:
        for request_id, claim in list(self.inflight.items()):
            if now > claim.lease_until:
                inv = self.state.invocation(request_id)
                error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": "the attempt's lease expired before its result came back",
                    "stackTrace": [],
                }
                self._done.put(
                    (
                        replace(inv, attempts=claim.attempt),
                        self.state.event(inv.event_seq),
                        TaskResult(request_id, ok=False, error=error),
                    )
                )

    def _expire(self, now: float) -> None:
        outcomes, events = [], []
        for inv, event in self.state.expired(now):
            outcome, caused = self._fail(inv, event, "EventAgeExceeded", None, None)
            outcomes.append(outcome)
            events += caused
        if outcomes:
            self.state.finish(outcomes, events)

    def wake(self) -> None:
        """Wake the loop now (from another thread or a signal handler)."""
        with contextlib.suppress(OSError):
            self._bell_w.send(b"!")

    def close(self) -> None:
        if self.log_stream is not None:
            self.log_stream.close()
        self._bell_r.close()
        self._bell_w.close()
