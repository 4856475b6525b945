"""reelay's own logs as a stream: every attempt's log lines and its REPORT line, put on
the built-in stream ``reelay-logs`` as a CloudWatch Logs subscription puts them on
Kinesis, so stream-triggered functions and analytics watch the platform itself.

Each record is one attempt: the gzip-compressed JSON message CloudWatch Logs sends
(``messageType: DATA_MESSAGE``, ``logGroup: /aws/lambda/FUNCTION``, ``logEvents`` with
``id``, ``timestamp`` in ms and ``message``), partitioned by function. A consumer
decodes it as it would on AWS: ``gzip.decompress(base64.b64decode(data))``.

Records are put from a thread of their own, in batches, so the dispatcher never waits
for the stream (measured: putting from the loop cost up to a quarter of no-op
throughput). As with CloudWatch, delivery is best effort: the attempts finished in the
moment before a ``kill -9`` may be missing from the stream; every attempt's log stays
in the state (``reelay logs``).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from reelay._text import plural
from reelay.errors import StreamError, StreamExistsError
from reelay.state import Attempt
from reelay.streams import PutRequest, Streams

__all__ = ["LOG_STREAM", "LogStream", "attempt_lines", "log_record"]

LOG_STREAM = "reelay-logs"
LOG_SHARDS = 2
MAX_BATCH = 500  # records per put, as PutRecords takes
ACCOUNT = "000000000000"


def attempt_lines(a: Attempt) -> list[str]:
    """An attempt's log as Lambda writes it: START, what the handler printed, END, REPORT."""
    lines = [f"START RequestId: {a.invocation_id} Version: $LATEST"]
    if a.logs:
        lines += a.logs.rstrip("\n").split("\n")
    if a.logs_truncated:
        lines.append(f"[{plural(a.logs_truncated, 'byte')} of output dropped]")
    if not a.ok and a.error_message and a.error_message not in a.logs:
        # What the runtime knows of a failure the handler could not log: a worker lost
        # with its dispatcher, say (as Lambda's platform adds its own lines).
        lines.append(f"RequestId: {a.invocation_id} Error: {a.error_type}: {a.error_message}")
    lines.append(f"END RequestId: {a.invocation_id}")
    status = "" if a.ok else f"\tStatus: {a.error_type}"
    cold = "\tCold Start: true" if a.cold_start else ""
    lines.append(
        f"REPORT RequestId: {a.invocation_id}\tDuration: {a.duration_ms:.2f} ms\t"
        f"Max Memory Used: {a.max_memory_mb} MB\tAttempt: {a.attempt}{cold}{status}"
    )
    return lines


def log_record(a: Attempt) -> PutRequest:
    """The stream record of one attempt: CloudWatch Logs' subscription message, gzipped."""
    day = datetime.fromtimestamp(a.started, UTC).strftime("%Y/%m/%d")
    stamp = round(a.started * 1000)
    message = {
        "messageType": "DATA_MESSAGE",
        "owner": ACCOUNT,
        "logGroup": f"/aws/lambda/{a.function}",
        "logStream": f"{day}/[$LATEST]{a.worker or 'reelay'}",
        "subscriptionFilters": [LOG_STREAM],
        "logEvents": [
            {"id": f"{a.invocation_id}:{a.attempt}:{i}", "timestamp": stamp, "message": line}
            for i, line in enumerate(attempt_lines(a))
        ],
    }
    return PutRequest(a.function, gzip.compress(json.dumps(message).encode(), 1))


class LogStream:
    """Puts attempts on `LOG_STREAM` from a thread, making the stream when it is
    missing. A failing backend is reported once (``log``) and never stops the caller.
    A context manager: leaving puts what is queued, then stops the thread."""

    def __init__(self, streams: Streams, log: Callable[[str], None]) -> None:
        self.streams = streams
        self.log = log
        self._ready = False
        self._failing = False
        self._queue: queue.SimpleQueue[Attempt | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="reelay-log-stream", daemon=True)
        self._thread.start()

    def ensure(self) -> None:
        """Make the stream unless it exists (at start: stream triggers then see it)."""
        self._guarded(lambda: None)

    def publish(self, attempts: Sequence[Attempt]) -> None:
        for a in attempts:
            self._queue.put(a)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)

    def __enter__(self) -> LogStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get())
            attempts = [a for a in batch if a is not None]
            if attempts:
                self._guarded(functools.partial(self._put, attempts))
            if None in batch:
                return

    def _put(self, attempts: list[Attempt]) -> None:
        self.streams.put(LOG_STREAM, [log_record(a) for a in attempts])

    def _guarded(self, action: Callable[[], object]) -> None:
        try:
            if not self._ready:
                if LOG_STREAM not in self.streams.list_streams():
                    # made meanwhile by another process: as good
                    with contextlib.suppress(StreamExistsError):
                        self.streams.create_stream(LOG_STREAM, LOG_SHARDS)
                self._ready = True
            action()
            self._failing = False
        except StreamError as exc:
            self._ready = False  # deleted, say: look again next time
            if not self._failing:
                self.log(f"the log stream {LOG_STREAM} is failing: {exc}")
            self._failing = True
