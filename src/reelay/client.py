"""`Client`: the one way in to a reelay home, for the CLI and for handlers alike.

Writes through the client emit events: every object put, copied or deleted appends an
S3 event-notification to the durable log (``ObjectCreated:Put``, ``ObjectCreated:Copy``,
``ObjectRemoved:Delete``, as S3 names them); `put_events` appends EventBridge events;
`invoke` appends a direct invocation. Inside a handler, ``Client.from_env()`` reaches
the home the handler runs for (the runtime passes it in the environment), so
handlers emit events instead of calling each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from reelay.config import Settings
from reelay.errors import InvalidEventError, NoSuchKeyError, StateError
from reelay.events import bus_event, parse_detail, parse_time, s3_event, s3_record
from reelay.state import Arrival, Event, Intent, NewEvent, State, open_state
from reelay.storage import ObjectInfo, ObjectStore, open_store
from reelay.streams import Streams, open_streams

INTENT_LEASE_S = 3600.0  # after this, an intent's writer counts as gone wherever it ran
_PROCESS_TOKEN = uuid.uuid4().hex  # tells this process from an earlier one with its pid
_PUT_EVENT_KEYS = ("Detail", "DetailType", "EventBusName", "Resources", "Source", "Time")
SYNC_MAX_AGE_S = 21600.0  # how long a synchronous invoke may wait for a dispatcher
_CREATED = {"put": "ObjectCreated:Put", "copy": "ObjectCreated:Copy"}  # write -> its event


class Client:
    """Objects, events and invocations of one reelay home. A context manager."""

    def __init__(self, settings: Settings | None = None, *, create: bool = True) -> None:
        """``create=False`` (a worker's client): use the state that is there, never make
        one, so a worker that cannot reach its driver's state fails saying so instead of
        writing to a state of its own that nothing reads."""
        self.settings = settings or Settings.load()
        self._create = create
        self._state: State | None = None
        self._store: ObjectStore | None = None
        self._streams: Streams | None = None

    @classmethod
    def from_env(cls) -> Client:
        """The client for the home named by the environment (``REELAY_HOME``...)."""
        return cls(Settings.load())

    @property
    def state(self) -> State:
        if self._state is None:
            s = self.settings
            try:
                self._state = open_state(
                    s.state_url, s.home, durability=s.durability, create=self._create
                )
            except StateError as exc:
                if self._create or s.state_url:
                    raise
                raise StateError(
                    f"{exc}. This worker cannot reach its dispatcher's state: the default "
                    "state is SQLite in the home, on the dispatcher's machine; workers on "
                    "other machines need a shared state (REELAY_STATE=postgresql://...)"
                ) from None
        return self._state

    @property
    def store(self) -> ObjectStore:
        if self._store is None:
            self._store = open_store(self.settings.store_url)
        return self._store

    @property
    def streams(self) -> Streams:
        """The home's streams (``REELAY_STREAMS``; see `reelay.streams`)."""
        if self._streams is None:
            self._streams = open_streams(self.settings.streams_url, self.settings.home)
        return self._streams

    # -- objects -------------------------------------------------------------------------

    def put_object(
        self, bucket: str, key: str, data: bytes | BinaryIO | os.PathLike[str] | Path
    ) -> ObjectInfo:
        """Store an object and append its ``ObjectCreated:Put`` event, as one outcome.

        An intent is recorded in the State first, so that a crash between the two
        writes leaves something to settle: `reconcile_objects` (run when a `Runtime`
        starts) appends the event of an object whose writer died before appending it.
        """
        return self._create_object("put", bucket, key, lambda: self.store.put(bucket, key, data))

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """Copy an object inside the store (`ObjectStore.copy`: the bytes stay there;
        ``if_match`` pins the source's version) and append the copy's
        ``ObjectCreated:Copy`` event, as one outcome, as `put_object` does."""
        return self._create_object(
            "copy",
            dst_bucket,
            dst_key,
            lambda: self.store.copy(src_bucket, src_key, dst_bucket, dst_key, if_match=if_match),
        )

    def _create_object(
        self, operation: str, bucket: str, key: str, write: Callable[[], ObjectInfo]
    ) -> ObjectInfo:
        """Record the intent, ``write`` the object, append its ``ObjectCreated`` event."""
        intent = self._begin(operation, bucket, key)
        _crash_point("intent")
        try:
            info = write()
        except Exception:
            self._settle_quietly(intent)  # the write may have happened all the same
            raise
        _crash_point("stored")
        event = self._s3_event(_CREATED[operation], info, bucket, key, root=intent.root)
        self.state.commit_intent(intent.id, [event])
        _crash_point("committed")
        return info

    def delete_object(self, bucket: str, key: str) -> bool:
        """Delete an object; if it existed, append its ``ObjectRemoved:Delete`` event.

        One outcome, as `put_object`'s: after a crash, the deletion and its event both
        exist or neither does.
        """
        intent = self._begin("delete", bucket, key)
        _crash_point("intent")
        try:
            existed = self.store.delete(bucket, key)
        except Exception:
            self._settle_quietly(intent)
            raise
        _crash_point("stored")
        events = []
        if existed:
            events.append(
                self._s3_event("ObjectRemoved:Delete", None, bucket, key, root=intent.root)
            )
        self.state.commit_intent(intent.id, events)
        _crash_point("committed")
        return existed

    def reconcile_objects(self, *, lease_s: float = INTENT_LEASE_S) -> int:
        """Settle the object writes that a crash left without their event; return how
        many events this appended.

        Each intent of a writer known to be gone (a process of this host that is no
        longer running), or older than ``lease_s`` (a writer elsewhere, whose life this
        host cannot see), is settled from the object as it is now: a put (a copy) whose
        object differs from the one before the write (etag or last-modified time) gets
        its ``ObjectCreated:Put`` (``ObjectCreated:Copy``) event, a delete whose object
        is gone gets its ``ObjectRemoved:Delete``, the exact records the write would have
        appended; a write that did not happen just loses its intent. Intents of live writers are
        left to them. A `Runtime` calls this when it starts.
        """
        appended = 0
        deadline = time.time() - lease_s
        for intent in self.state.intents():
            if intent.time > deadline and _writer_alive(intent.owner):
                continue
            appended += self._settle(intent)
        return appended

    def _begin(self, operation: str, bucket: str, key: str) -> Intent:
        """Record the intent of a write, with the object as it is before it."""
        try:
            before: ObjectInfo | None = self.store.head(bucket, key)
        except NoSuchKeyError:
            before = None
        return self.state.begin_intent(
            bucket,
            key,
            operation,
            before_etag=before.etag if before else None,
            before_modified=before.last_modified.timestamp() if before else None,
            owner=_owner(),
            root=_chain_root(),
        )

    def _settle(self, intent: Intent) -> int:
        """Append the event of ``intent``'s write if the write happened; drop the intent."""
        try:
            now: ObjectInfo | None = self.store.head(intent.bucket, intent.key)
        except NoSuchKeyError:
            now = None
        events = []
        if intent.operation in _CREATED and now is not None and not _unchanged(intent, now):
            name = _CREATED[intent.operation]
            events.append(self._s3_event(name, now, intent.bucket, intent.key, root=intent.root))
        elif intent.operation == "delete" and intent.before_etag is not None and now is None:
            name = "ObjectRemoved:Delete"
            events.append(self._s3_event(name, None, intent.bucket, intent.key, root=intent.root))
        return len(self.state.commit_intent(intent.id, events, if_pending=True))

    def _settle_quietly(self, intent: Intent) -> None:
        """Settle after a failed store write, if the store answers; else leave the
        intent to a later `reconcile_objects` (the caller raises the write's error)."""
        with contextlib.suppress(Exception):
            self._settle(intent)

    def get_object(self, bucket: str, key: str) -> bytes:
        return self.store.get(bucket, key)

    def download(self, bucket: str, key: str, path: str | os.PathLike[str]) -> ObjectInfo:
        return self.store.download(bucket, key, path)

    def head_object(self, bucket: str, key: str) -> ObjectInfo:
        return self.store.head(bucket, key)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.store.list(bucket, prefix)

    def _s3_event(
        self, name: str, info: ObjectInfo | None, bucket: str, key: str, *, root: float | None
    ) -> NewEvent:
        record = s3_record(name, info, bucket=bucket, key=key, region=self.settings.region)
        body = json.dumps(s3_event([record]))
        return NewEvent("s3", body, source="aws.s3", detail_type=name, root=root)

    # -- events and invocations ------------------------------------------------------

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> list[str]:
        """Append events given as EventBridge PutEvents entries; return their ids.

        Each entry has ``Source``, ``DetailType`` and ``Detail`` (a JSON object, as text
        or a mapping), and optionally ``Resources``. The whole batch is validated first
        and appended in one transaction, so it is accepted entirely or not at all.
        """
        if isinstance(entries, Mapping | str | bytes) or not isinstance(entries, Sequence):
            raise InvalidEventError("entries must be a list of PutEvents entries")
        events = [self._bus_event(i, entry) for i, entry in enumerate(entries)]
        appended = self.state.append(events)
        return [e.id for e in appended]

    def _bus_event(self, index: int, entry: Any) -> NewEvent:
        where = f"entry {index}"
        if not isinstance(entry, Mapping):
            raise InvalidEventError(f"{where}: must be an object with Source, DetailType, Detail")
        unknown = sorted(set(entry) - set(_PUT_EVENT_KEYS))
        if unknown:
            raise InvalidEventError(
                f"{where}: unknown field {unknown[0]!r}; valid fields: {', '.join(_PUT_EVENT_KEYS)}"
            )
        for field in ("Source", "DetailType"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                raise InvalidEventError(f"{where}: {field} must be a non-empty string")
        try:
            detail = parse_detail(entry.get("Detail", "{}"))
        except InvalidEventError as exc:
            raise InvalidEventError(f"{where}: {exc}") from None
        resources = entry.get("Resources", [])
        if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
            raise InvalidEventError(f"{where}: Resources must be a list of strings")
        when = entry.get("Time")
        if when is not None:
            try:
                when = parse_time(when)
            except InvalidEventError as exc:
                raise InvalidEventError(f"{where}: {exc}") from None
        event_id = str(uuid.uuid4())
        body = bus_event(
            entry["Source"],
            entry["DetailType"],
            detail,
            resources=resources,
            region=self.settings.region,
            time=when,
            event_id=event_id,
        )
        try:
            text = json.dumps(body, allow_nan=False)  # NaN is not JSON: SQLite refuses it
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"{where}: Detail is not JSON-serializable: {exc}") from None
        return NewEvent(
            "event",
            text,
            source=entry["Source"],
            detail_type=entry["DetailType"],
            id=event_id,
            root=_chain_root(),
        )

    def arrive(self, barrier: str, part: str, parts: int, then: Mapping[str, Any]) -> Arrival:
        """Mark ``part`` of ``barrier`` done; when all ``parts`` distinct parts are, put
        the event ``then`` (a PutEvents entry) exactly once, however often parts arrive.

        This is how fan-out joins: each of N parallel invocations arrives with its own
        part, and the one that completes the barrier emits the event that starts the
        next stage, in the same transaction as its arrival.
        """
        if not isinstance(barrier, str) or not barrier or not isinstance(part, str) or not part:
            raise InvalidEventError("a barrier and its part must be non-empty strings")
        return self.state.arrive(barrier, part, parts, self._bus_event(0, then))

    def invoke(self, function: str, payload: Any) -> Event:
        """Queue an asynchronous invocation (Lambda's Event type): the function's retries,
        destinations and maximum event age apply once a dispatcher routes it."""
        return self.state.append([self._invoke_event("invoke-async", function, payload)])[0]

    def invoke_sync(self, function: str, payload: Any) -> tuple[Event, str]:
        """Queue a synchronous invocation (Lambda's RequestResponse): one attempt, no
        destinations. Returns the event and the request id to wait for; the invocation
        is created with the event, so it needs no routing."""
        event = self._invoke_event("invoke", function, payload)
        return self.state.append_invocation(
            event, function, max_attempts=1, max_event_age_s=SYNC_MAX_AGE_S
        )

    @staticmethod
    def _invoke_event(kind: str, function: str, payload: Any) -> NewEvent:
        try:
            body = json.dumps(payload, allow_nan=False)  # NaN is not JSON: SQLite refuses it
        except (TypeError, ValueError) as exc:
            raise InvalidEventError(f"the payload is not JSON-serializable: {exc}") from None
        return NewEvent(
            kind,
            body,
            source="reelay.invoke",
            detail_type=function,
            target=function,
            root=_chain_root(),
        )

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
        if self._store is not None:
            self._store.close()
        if self._streams is not None:
            self._streams.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_defaults: dict[str | None, Client] = {}


def _crash_point(name: str) -> None:
    """A test-only seam: the crash tests replace it to kill the process at a named point
    of an object write (``intent``, ``stored``, ``committed``). Does nothing otherwise."""


def _owner() -> str:
    """Who writes: host, pid and this process's token (a pid may be reused)."""
    return f"{socket.gethostname()} {os.getpid()} {_PROCESS_TOKEN}"


def _writer_alive(owner: str) -> bool:
    """Whether the process that began an intent may still be writing. True for a
    process of another host: this one cannot tell (the lease decides)."""
    host, _, rest = owner.partition(" ")
    pid_text, _, token = rest.partition(" ")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return token == _PROCESS_TOKEN
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, run by another user
    return True


def _unchanged(intent: Intent, now: ObjectInfo) -> bool:
    """Whether the object is the one that was there before the intent's write."""
    return (
        intent.before_etag == now.etag and intent.before_modified == now.last_modified.timestamp()
    )


def _chain_root() -> float | None:
    """The time the event chain began, when called from a handler (the runtime says it
    in ``REELAY_ROOT``): events a handler causes belong to its event's chain, which is
    how the dispatcher finishes older work first. None elsewhere: a new chain."""
    text = os.environ.get("REELAY_ROOT")
    try:
        return float(text) if text else None
    except ValueError:
        return None


def default_client() -> Client:
    """A process-wide client for the home in the environment (reused across handler calls)."""
    home = os.environ.get("REELAY_HOME")
    if home not in _defaults:
        _defaults[home] = Client(Settings.load(), create=False)
    return _defaults[home]
