"""Consuming an SQS queue into the event log, at least once and without duplicates.

For each message: read it (`read_message`), append each of its events once (the
append and the event's dedupe record are one transaction), then delete the message.
So a crash at any moment loses nothing and doubles nothing:

- before the append commits, the message is not deleted: it comes back after the
  queue's visibility timeout and is read again;
- between the commit and the delete, it comes back too, and its events' dedupe
  records make the second append a no-op; the message is deleted then;
- S3 itself may send one event twice (its delivery is at least once), in two messages:
  the dedupe record is the event's identity (bucket, key, sequencer), not the message's.

A message that is not an S3 event (an ``s3:TestEvent``, a body that cannot be read) is
recorded on the log (`reelay.sources` events) and deleted like any other: it will never
read better, and the record keeps what it said. A message that could not be handled
for a reason of reelay's own (the state unreachable, say) is left in the queue, to come
back after its visibility timeout (or, where the queue has a redrive policy, to go to
its dead-letter queue after maxReceiveCount tries).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import Any

from reelay.errors import ConfigError
from reelay.sources._messages import REJECTED, SKIPPED, Entry, read_message
from reelay.sources._spec import SQSSource
from reelay.state import State

__all__ = ["SQSConsumer", "Sources"]

Log = Callable[[str], None]
_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)  # waits after failed receives, in turn
_STOP_JOIN_S = 1.0  # how long stopping waits for a thread blocked in a long poll


class SQSConsumer:
    """One source's queue, consumed into ``state``'s log: `poll` once, or `run` until
    stopped. ``region`` is the default when the source and its queue URL name none."""

    def __init__(
        self,
        source: SQSSource,
        state: State,
        *,
        region: str,
        log: Log | None = None,
        verbose: bool = False,
        client: Any = None,
    ) -> None:
        self.source = source
        self.state = state
        self.region = source.region_or(region)
        self.log = log
        self.verbose = verbose
        self.client = client if client is not None else _sqs_client(source, self.region)
        self.lock = threading.Lock()  # held while a batch is handled; stopping waits for it
        self.appended = 0  # S3 events appended
        self.duplicates = 0  # events already on the log (a redelivery)
        self.noted = 0  # messages recorded as skipped or rejected

    def check(self) -> None:
        """Fail fast, naming the queue, when it cannot be reached (unknown queue, no
        credentials, endpoint down): raises `reelay.errors.ConfigError`."""
        try:
            self.client.get_queue_attributes(
                QueueUrl=self.source.queue, AttributeNames=["VisibilityTimeout"]
            )
        except Exception as exc:  # botocore's errors, translated at this boundary
            raise ConfigError(
                f"source {self.source.describe()}: the queue cannot be read: {_describe(exc)}"
            ) from None

    def receive(self) -> list[dict[str, Any]]:
        """One long poll (up to the source's ``waitTime``); the messages it returned."""
        response = self.client.receive_message(
            QueueUrl=self.source.queue,
            MaxNumberOfMessages=self.source.batch_size,
            WaitTimeSeconds=self.source.wait_time_s,
        )
        return list(response.get("Messages", []))

    def poll(self) -> int:
        """Receive once and handle what came; return how many messages were deleted."""
        return self.handle(self.receive())

    def handle(self, messages: Sequence[dict[str, Any]]) -> int:
        """Append the events of ``messages`` and delete those whose events all
        committed; return how many were deleted."""
        done = [m["ReceiptHandle"] for m in messages if self._handle(m)]
        self._delete(done)
        return len(done)

    def release(self, messages: Sequence[dict[str, Any]]) -> None:
        """Make messages received but not handled (the consumer is stopping) visible
        again at once, instead of after their visibility timeout. Best effort."""
        if not messages:
            return
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(messages)
        ]
        with contextlib.suppress(Exception):
            self.client.change_message_visibility_batch(QueueUrl=self.source.queue, Entries=entries)

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set. Never raises: a failed receive is logged and
        retried after a growing wait; a message that failed stays in the queue."""
        failures = 0
        while not stop.is_set():
            try:
                messages = self.receive()
            except Exception as exc:
                wait = _BACKOFF_S[min(failures, len(_BACKOFF_S) - 1)]
                failures += 1
                self._log(f"receive failed: {_describe(exc)}; trying again in {wait:g} s")
                stop.wait(wait)
                continue
            failures = 0
            with self.lock:
                if stop.is_set():
                    self.release(messages)
                    return
                try:
                    self.handle(messages)
                except Exception as exc:  # never seen; the messages come back if it happens
                    self._log(f"a batch failed: {type(exc).__name__}: {exc}")

    # -- one message ---------------------------------------------------------------------

    def _handle(self, message: dict[str, Any]) -> bool:
        """Append one message's events (each once); True when all are on the log."""
        message_id = str(message.get("MessageId", ""))
        try:
            entries = read_message(
                str(message.get("Body", "")), message_id, self.source, region=self.region
            )
        except Exception as exc:  # a bug of the reader is not the message's fault: keep it
            self._log(f"message {message_id}: not read ({type(exc).__name__}: {exc}); kept")
            return False
        for entry in entries:
            try:
                appended = bool(self.state.append_once(entry.dedupe, [entry.event]))
            except Exception as exc:  # the state: the message comes back later
                self._log(f"message {message_id}: not appended ({exc}); kept in the queue")
                return False
            self._count(entry, appended)
        return True

    def _count(self, entry: Entry, appended: bool) -> None:
        if not appended:
            self.duplicates += 1
            if self.verbose:
                self._log(f"{entry.line}: already on the log (a redelivery)")
        elif entry.event.detail_type in (SKIPPED, REJECTED) and entry.event.kind == "event":
            self.noted += 1
            self._log(entry.line)
        else:
            self.appended += 1
            if self.verbose:
                self._log(entry.line)

    def _delete(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), 10):  # DeleteMessageBatch takes 10 at most
            batch = receipts[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(batch)]
            try:
                response = self.client.delete_message_batch(
                    QueueUrl=self.source.queue, Entries=entries
                )
            except Exception as exc:  # the messages come back; their events are deduped
                self._log(f"delete failed: {_describe(exc)}; the messages will come back")
                continue
            for failed in response.get("Failed", []):
                self._log(
                    f"delete failed: {failed.get('Code')}: {failed.get('Message')}; "
                    "the message will come back"
                )

    def _log(self, line: str) -> None:
        if self.log is not None:
            self.log(f"source {self.source.name}: {line}")


class Sources:
    """Every source of an app, each consumed on a thread of its own while the context is
    open. Entering checks that each queue can be read (`ConfigError` naming it);
    leaving stops them: a batch being appended finishes and is deleted; messages a long
    poll returns afterwards are made visible again, not handled."""

    def __init__(
        self,
        sources: Sequence[SQSSource],
        state: State,
        *,
        region: str,
        log: Log | None = None,
        verbose: bool = False,
    ) -> None:
        self.consumers = [
            SQSConsumer(s, state, region=region, log=log, verbose=verbose) for s in sources
        ]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Sources:
        for consumer in self.consumers:
            consumer.check()
        for consumer in self.consumers:
            thread = threading.Thread(
                target=consumer.run,
                args=(self._stop,),
                name=f"reelay-source-{consumer.source.name}",
                daemon=True,  # a thread in a long poll must not hold the process
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for consumer in self.consumers:
            with consumer.lock:  # a batch being appended finishes (and is deleted) first
                pass
        for thread in self._threads:
            thread.join(_STOP_JOIN_S)
        self._threads.clear()


def _sqs_client(source: SQSSource, region: str) -> Any:
    try:
        import boto3
        import botocore.config
    except ImportError:  # pragma: no cover - exercised only without the s3 extra
        raise ConfigError(
            f"source {source.describe()} needs boto3: pip install 'reelay[s3]'"
        ) from None
    config = botocore.config.Config(
        connect_timeout=2,
        read_timeout=source.wait_time_s + 10,  # a long poll answers within waitTime
        retries={"max_attempts": 2, "mode": "standard"},
    )
    return boto3.session.Session().client(
        "sqs", region_name=region, endpoint_url=source.endpoint, config=config
    )


def _describe(exc: BaseException) -> str:
    """A botocore error in one line: the AWS error code and message, else its text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        error = response["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return f"no usable AWS credentials ({exc}); set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
    return f"{name}: {exc}"
