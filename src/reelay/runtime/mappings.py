"""Stream triggers: Lambda's event source mapping for Kinesis streams, in the dispatcher.

For each ``stream:`` trigger of a function and each shard of its stream (with a
``parallelizationFactor`` N, each of N groups of the shard's partition keys: records of
one key stay in order) there is a *lane*: a checkpoint (the cursor of the next record to
process) and at most one batch in flight. Each turn of the dispatcher's loop,
`StreamMappings.step` reads new records for the idle lanes and invokes the function
with Lambda's Kinesis event; when an invocation ends, `StreamMappings.finished` moves
its lane on:

- success: the checkpoint passes the batch;
- a partial failure (``ReportBatchItemFailures``): it passes the records before the
  first one reported; the rest is retried;
- a failure: the batch is retried (halved first with ``bisectBatchOnFunctionError``:
  halving does not count as a retry) until ``maximumRetryAttempts`` or
  ``maximumRecordAgeInSeconds`` discards it: its ``KinesisBatchInfo`` goes to the
  trigger's ``destinations.onFailure`` and the checkpoint passes it. Meanwhile the batch
  holds its lane, as a failing batch holds its shard on AWS.

With ``tumblingWindowInSeconds`` a batch never spans two windows (by arrival time); each
invocation gets the window and the ``state`` the previous one returned, and the window
ends with an invocation marked ``isFinalInvokeForWindow`` (no records) once a record of
a later window arrives or the window's end has passed.

A lane's state lives in the State (`State.set_meta`), written in the same transaction as
its batch's invocation (`State.append_invocation`), so a dispatcher killed at any moment
resumes where it stopped: a batch in flight is waited for, or judged by its recorded
outcome. Records are processed at least once; a batch runs again only when its outcome
was not recorded (guard effects that must happen once with `reelay.idempotency`).
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from reelay.errors import StreamError
from reelay.runtime.app import App, Destination, StreamTrigger
from reelay.state import FAILED, SUCCEEDED, Invocation, NewEvent, State
from reelay.streams import Position, PutRequest, Record, Streams, hash_key

__all__ = ["LANE_PREFIX", "StreamMappings", "kinesis_event"]

LANE_PREFIX = "stream-lane:"
POLL_S = 0.1  # how often an idle lane looks for new records (Lambda: once a second)
REFRESH_S = 5.0  # how often the streams' shards are listed again (a stream made later)
MAX_PAYLOAD = 6 * 1024 * 1024 - 64 * 1024  # Lambda's 6 MB request, less the envelope
MAX_WINDOW_STATE = 1024 * 1024  # Lambda ends a window early when its state outgrows this
STREAM_EVENT_AGE_S = 7 * 86400.0  # an invocation of a batch never expires by age
ACCOUNT = "000000000000"
ALL_FAILED = -1  # a batch failed as a whole (cursors are never negative)

Emit = Callable[[Destination, dict[str, Any]], list[NewEvent]]


def stream_arn(region: str, stream: str) -> str:
    return f"arn:aws:kinesis:{region}:{ACCOUNT}:stream/{stream}"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def kinesis_event(records: list[Record], shard_id: str, arn: str, region: str) -> dict[str, Any]:
    """The event Lambda gives a function for a batch of Kinesis records."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data).decode(),
                    "approximateArrivalTimestamp": round(r.arrival, 3),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/reelay",
                "awsRegion": region,
                "eventSourceARN": arn,
            }
            for r in records
        ]
    }


@dataclass
class Batch:
    """The batch a lane works on: ``count`` records of the lane from cursor ``start``
    (the same records on every try), through the record at cursor ``last``."""

    start: int
    count: int
    last: int
    first_arrival: float
    last_arrival: float
    first_sequence: str
    last_sequence: str
    tries: int = 0  # failed invocations that count against maximumRetryAttempts
    invocations: int = 0
    id: str | None = None  # its invocation in flight
    final: bool = False  # the window's final invocation (no records)
    window: float | None = None  # the start of its tumbling window


@dataclass
class Lane:
    key: str
    function: str
    trigger: StreamTrigger
    shard_id: str
    slot: int  # the partition-key group (parallelizationFactor)
    checkpoint: int | None = None  # None: not begun (the starting position decides)
    batch: Batch | None = None
    window: float | None = None  # the open tumbling window's start
    window_state: dict[str, Any] = field(default_factory=dict)
    not_before: float = 0.0  # no read before then (a retry's backoff, a poll interval)
    waiting_since: float | None = None  # a batching window began

    def saved(self) -> str:
        return json.dumps(
            {
                "checkpoint": self.checkpoint,
                "batch": asdict(self.batch) if self.batch else None,
                "window": self.window,
                "state": self.window_state,
            }
        )

    def load(self, text: str | None) -> None:
        if not text:
            return
        saved = json.loads(text)
        self.checkpoint = saved["checkpoint"]
        self.batch = Batch(**saved["batch"]) if saved["batch"] else None
        self.window = saved["window"]
        self.window_state = saved["state"]


class StreamMappings:
    """The event source mappings of an app's stream triggers; the dispatcher drives it
    (see the module's docstring)."""

    def __init__(
        self,
        app: App,
        state: State,
        streams: Streams,
        *,
        region: str,
        emit: Emit,
        log: Callable[[str], None],
    ) -> None:
        self.state = state
        self.streams = streams
        self.region = region
        self.emit = emit
        self.log = log
        self.triggers = [
            (spec.name, trigger) for spec in app.functions.values() for trigger in spec.streams
        ]
        self.lanes: dict[str, Lane] = {}
        self.by_invocation: dict[str, Lane] = {}
        self._next_refresh = 0.0
        self._missing: set[str] = set()  # streams reported missing (said once)

    # -- the loop ---------------------------------------------------------------------

    def step(self, now: float) -> bool:
        """Invoke the next batch of every lane that can take one; True if any went."""
        if now >= self._next_refresh:
            self._refresh()
            self._next_refresh = now + REFRESH_S
        busy = False
        for lane in list(self.lanes.values()):
            if lane.batch is not None and lane.batch.id is not None:
                continue  # in flight
            if now < lane.not_before:
                continue
            try:
                busy = self._advance(lane, now) or busy
            except StreamError as exc:
                self.log(f"stream trigger of {lane.function} on {lane.trigger.stream}: {exc}")
                lane.not_before = now + REFRESH_S
        return busy

    def next_wake(self, now: float) -> float | None:
        """When `step` next has something to do without being woken."""
        return now + POLL_S if self.lanes or self.triggers else None

    def finished(self, inv: Invocation) -> None:
        """An invocation ended; if it was a lane's batch, move the lane on."""
        lane = self.by_invocation.pop(inv.id, None)
        if lane is None or lane.batch is None or lane.batch.id != inv.id:
            return
        self._judge(lane, inv, time.time())

    # -- lanes ------------------------------------------------------------------------

    def _refresh(self) -> None:
        for function, trigger in self.triggers:
            try:
                info = self.streams.describe(trigger.stream)
            except LookupError:
                if trigger.stream not in self._missing:
                    self._missing.add(trigger.stream)
                    self.log(
                        f"stream trigger of {function}: stream {trigger.stream!r} does not "
                        "exist (yet); its records are read once it does"
                    )
                continue
            except StreamError as exc:
                self.log(f"stream trigger of {function}: {exc}")
                continue
            self._missing.discard(trigger.stream)
            for shard in info.shards:
                for slot in range(trigger.parallelization):
                    key = (
                        f"{LANE_PREFIX}{function}:{trigger.index}:{trigger.stream}:"
                        f"{shard.shard_id}:{slot}"
                    )
                    if key in self.lanes:
                        continue
                    lane = Lane(key, function, trigger, shard.shard_id, slot)
                    lane.load(self.state.get_meta(key))
                    self.lanes[key] = lane
                    if lane.batch is not None and lane.batch.id is not None:
                        self._recover(lane)

    def _recover(self, lane: Lane) -> None:
        """A batch in flight when the last dispatcher stopped: judge it if it ended,
        else wait for it."""
        assert lane.batch is not None and lane.batch.id is not None
        try:
            inv = self.state.invocation(lane.batch.id)
        except LookupError:  # its invocation was never written: invoke the batch again
            lane.batch.id = None
            return
        if inv.status in (SUCCEEDED, FAILED):
            self._judge(lane, inv, time.time())
        else:
            self.by_invocation[inv.id] = lane

    def _save(self, lane: Lane) -> None:
        self.state.set_meta(lane.key, lane.saved())

    # -- reading and invoking -----------------------------------------------------------

    def _begin(self, lane: Lane) -> int:
        t = lane.trigger
        position = Position(
            t.starting_position,  # type: ignore[arg-type]
            timestamp=t.starting_timestamp,
        )
        lane.checkpoint = self.streams.locate(t.stream, lane.shard_id, position)
        self._save(lane)  # LATEST means "now", once: a restart must not move it
        return lane.checkpoint

    def _records(self, lane: Lane, start: int, count: int) -> tuple[list[Record], int]:
        """Up to ``count`` of the lane's records from cursor ``start`` (its partition-key
        group's only), and the cursor after the last record read."""
        t = lane.trigger
        mine: list[Record] = []
        cursor = start
        while len(mine) < count:
            batch = self.streams.read(
                t.stream, lane.shard_id, cursor, limit=(count - len(mine)) * t.parallelization
            )
            for r in batch.records:
                if t.parallelization == 1 or _slot(r, t.parallelization) == lane.slot:
                    mine.append(r)
                    if len(mine) == count:
                        return mine, int(r.sequence_number) + 1
            if batch.next == cursor or not batch.records:
                return mine, batch.next
            cursor = batch.next
        return mine, cursor

    def _advance(self, lane: Lane, now: float) -> bool:
        t = lane.trigger
        if lane.batch is not None:  # a retry, or a batch whose invocation was not written
            return self._invoke(lane, now)
        start = lane.checkpoint if lane.checkpoint is not None else self._begin(lane)
        records, after = self._records(lane, start, t.batch_size)
        if t.tumbling_window_s:
            window = lane.window
            if window is None and records:
                window = math.floor(records[0].arrival / t.tumbling_window_s) * t.tumbling_window_s
            if window is not None:
                end = window + t.tumbling_window_s
                inside = [r for r in records if r.arrival < end]
                if not inside and lane.window is not None and (records or now >= end):
                    return self._close_window(lane, now)
                records = inside
        if not records:
            if after > start and t.parallelization > 1:  # only other groups' records
                lane.checkpoint = after
            # Caught up: look again after a poll interval, not on every turn of a busy loop.
            lane.not_before = now + POLL_S
            return False
        if self._expire(lane, records, now):
            return True
        if (
            len(records) < t.batch_size
            and t.batching_window_s
            and (lane.waiting_since is None or now < lane.waiting_since + t.batching_window_s)
        ):
            if lane.waiting_since is None:
                lane.waiting_since = now
            return False
        lane.waiting_since = None
        records = _fit(records)
        if t.tumbling_window_s and lane.window is None:
            lane.window = math.floor(records[0].arrival / t.tumbling_window_s) * t.tumbling_window_s
            lane.window_state = {}
        lane.batch = _batch_of(start, records, lane.window)
        return self._invoke(lane, now)

    def _expire(self, lane: Lane, records: list[Record], now: float) -> bool:
        """Discard, to the on-failure destination, the leading records older than the
        trigger's maximumRecordAgeInSeconds, never invoked (as AWS does); True if any."""
        age = lane.trigger.max_record_age_s
        n = next((i for i, r in enumerate(records) if now - r.arrival <= age), len(records))
        if age < 0 or n == 0:
            return False
        assert lane.checkpoint is not None
        lane.batch = _batch_of(lane.checkpoint, records[:n], lane.window)
        self._discard(lane, "RecordAgeExceeded", None)
        return True

    def _invoke(self, lane: Lane, now: float) -> bool:
        batch = lane.batch
        assert batch is not None
        t = lane.trigger
        arn = stream_arn(self.region, t.stream)
        if batch.final:
            records: list[Record] = []
        else:
            records, _ = self._records(lane, batch.start, batch.count)
            if not records:  # trimmed by retention meanwhile: nothing left to process
                self.log(f"{lane.function}: the records of a batch on {t.stream} expired")
                lane.checkpoint, lane.batch = batch.last + 1, None
                self._save(lane)
                return True
        body = kinesis_event(records, lane.shard_id, arn, self.region)
        if t.tumbling_window_s:
            assert batch.window is not None
            body |= {
                "window": {
                    "start": _iso(batch.window),
                    "end": _iso(batch.window + t.tumbling_window_s),
                },
                "state": lane.window_state,
                "shardId": lane.shard_id,
                "eventSourceARN": arn,
                "isFinalInvokeForWindow": batch.final,
                "isWindowTerminatedEarly": False,
            }
        batch.invocations += 1
        batch.id = str(uuid.uuid4())
        # The lane's state names this invocation, in the same transaction that makes it.
        _, request_id = self.state.append_invocation(
            NewEvent(
                "stream",
                json.dumps(body),
                source="aws:kinesis",
                detail_type="Kinesis Records",
                target=lane.function,
            ),
            lane.function,
            max_attempts=1,  # retries are the mapping's (it re-reads the batch)
            max_event_age_s=STREAM_EVENT_AGE_S,
            request_id=batch.id,
            meta={lane.key: lane.saved()},
        )
        self.by_invocation[request_id] = lane
        return True

    # -- judging ----------------------------------------------------------------------

    def _judge(self, lane: Lane, inv: Invocation, now: float) -> None:
        batch = lane.batch
        assert batch is not None
        t = lane.trigger
        failed_from = self._failure(lane, inv)
        if failed_from is None:  # all done
            lane.checkpoint, lane.batch = batch.last + 1, None
            if batch.final:
                lane.window, lane.window_state = None, {}
            self._save(lane)
            return
        records, _ = self._records(lane, batch.start, batch.count)
        if failed_from not in {int(r.sequence_number) for r in records}:
            failed_from = ALL_FAILED  # as on AWS: an identifier not in the batch fails it all
        done = [r for r in records if int(r.sequence_number) < failed_from]
        if done:  # a partial failure: what came before the first failed record is done
            lane.checkpoint = failed_from
            rest = records[len(done) :]
            lane.batch = _batch_of(failed_from, rest, batch.window) if rest else None
            if lane.batch is None:
                self._save(lane)
                return
            lane.batch.tries, lane.batch.invocations = batch.tries, batch.invocations
            batch = lane.batch
        batch.id = None
        if t.bisect and batch.count > 1 and not batch.final:
            half = records[len(done) :][: math.ceil(batch.count / 2)]
            self.log(
                f"{lane.function}: a batch of {batch.count} on {t.stream} {lane.shard_id} "
                f"failed; retrying its first {len(half)} (bisected)"
            )
            lane.batch = _batch_of(batch.start, half, batch.window)
            lane.batch.tries, lane.batch.invocations = batch.tries, batch.invocations
            batch = lane.batch
        else:
            batch.tries += 1
            if 0 <= t.max_retry_attempts < batch.tries:
                self._discard(lane, "RetryAttemptsExhausted", inv)
                return
            if 0 <= t.max_record_age_s < now - batch.first_arrival:
                self._discard(lane, "RecordAgeExceeded", inv)
                return
        lane.not_before = now + min(0.2 * 2 ** max(batch.tries - 1, 0), 10.0)
        self._save(lane)

    def _failure(self, lane: Lane, inv: Invocation) -> int | None:
        """None if the batch succeeded; else the cursor of its first failed record (a
        partial failure), or `ALL_FAILED`."""
        if inv.status != SUCCEEDED:
            return ALL_FAILED
        try:
            response = json.loads(inv.result) if inv.result else None
        except ValueError:
            response = None
        t = lane.trigger
        if t.tumbling_window_s:
            if not isinstance(response, dict) or not isinstance(response.get("state"), dict):
                self.log(f"{lane.function}: a tumbling-window handler must return a 'state'")
                return ALL_FAILED
            state = response["state"]
            if len(json.dumps(state)) > MAX_WINDOW_STATE:
                self.log(f"{lane.function}: window state over 1 MB; the window ends early")
                lane.window, lane.window_state = None, {}
            else:
                lane.window_state = state
        if not t.report_item_failures or not isinstance(response, dict):
            return None
        failures = response.get("batchItemFailures")
        if not failures:
            return None
        try:
            return min(int(f["itemIdentifier"]) for f in failures)
        except (TypeError, KeyError, ValueError):  # as on AWS: a bad report fails all of it
            return ALL_FAILED

    def _discard(self, lane: Lane, condition: str, inv: Invocation | None) -> None:
        batch = lane.batch
        assert batch is not None
        t = lane.trigger
        self.log(
            f"{lane.function}: discarded {batch.count} records of {t.stream} {lane.shard_id} "
            f"({condition})"
        )
        if t.on_failure is not None:
            record = {
                "requestContext": {
                    "requestId": inv.id if inv else None,
                    "functionArn": f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:"
                    f"{lane.function}",
                    "condition": condition,
                    "approximateInvokeCount": batch.invocations,
                },
                "responseContext": {
                    "statusCode": 200,
                    "executedVersion": "$LATEST",
                    "functionError": "Unhandled",
                },
                "version": "1.0",
                "timestamp": _iso(time.time()),
                "KinesisBatchInfo": {
                    "shardId": lane.shard_id,
                    "startSequenceNumber": batch.first_sequence,
                    "endSequenceNumber": batch.last_sequence,
                    "approximateArrivalOfFirstRecord": _iso(batch.first_arrival),
                    "approximateArrivalOfLastRecord": _iso(batch.last_arrival),
                    "batchSize": batch.count,
                    "streamArn": stream_arn(self.region, t.stream),
                },
            }
            # Once per discarded batch, however often a restart judges it again.
            key = f"{lane.key}:discard:{batch.start}:{batch.last}"
            self.state.append_once(key, self.emit(t.on_failure, record))
        lane.checkpoint, lane.batch = batch.last + 1, None
        self._save(lane)

    def _close_window(self, lane: Lane, now: float) -> bool:
        assert lane.window is not None and lane.checkpoint is not None
        lane.batch = Batch(
            start=lane.checkpoint,
            count=0,
            last=lane.checkpoint - 1,
            first_arrival=now,
            last_arrival=now,
            first_sequence="",
            last_sequence="",
            final=True,
            window=lane.window,
        )
        return self._invoke(lane, now)


def _slot(record: Record, groups: int) -> int:
    """The partition-key group of a record (parallelizationFactor): one key, one group."""
    return hash_key(PutRequest(record.partition_key, b"")) % groups


def _fit(records: list[Record]) -> list[Record]:
    """The leading records whose event fits Lambda's 6 MB payload (at least one)."""
    size = 0
    for i, r in enumerate(records):
        size += len(r.data) * 4 // 3 + len(r.partition_key) + 600
        if size > MAX_PAYLOAD and i:
            return records[:i]
    return records


def _batch_of(start: int, records: list[Record], window: float | None) -> Batch:
    return Batch(
        start=start,
        count=len(records),
        last=int(records[-1].sequence_number),
        first_arrival=records[0].arrival,
        last_arrival=records[-1].arrival,
        first_sequence=records[0].sequence_number,
        last_sequence=records[-1].sequence_number,
        window=window,
    )
