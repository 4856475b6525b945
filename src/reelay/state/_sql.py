"""The State written once in SQL, for every backend (`SQLState`).

A backend (`reelay.state._sqlite`, `reelay.state._postgres`) supplies connections and
transactions, its schema, its doorbell and its dispatcher lock, and the few bits of
SQL that differ (JSON paths, row locks); everything the State does is here, so that
both backends keep one contract (tests/state/test_conformance.py).

Statements are written with ``?`` placeholders and portable SQL: ``INSERT ... ON
CONFLICT``, ``RETURNING``, ``CASE`` rather than boolean arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, ParamSpec, Protocol, TypeVar

from reelay.errors import StateError
from reelay.state._model import (
    ACTIVE,
    CLAIMED,
    FAILED,
    QUEUED,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    AccessKey,
    Arrival,
    Attempt,
    AttemptTotals,
    Event,
    FunctionStats,
    Intent,
    Invocation,
    NewEvent,
    NewInvocation,
    Node,
    Outcome,
    Start,
    lost_error,
    rank,
)

JsonPath = tuple[str | int, ...]
"""A place in a JSON document: object keys and array indexes, from the top."""

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class EventFilter:
    """Events that match every condition given: their ``source``, their ``kind``, a
    detail type among ``detail_types`` (a trailing ``*`` makes one a prefix), values
    of their body at JSON paths (``equals``) and string prefixes there (``prefixes``).
    """

    source: str | None = None
    kind: str | None = None
    detail_types: tuple[str, ...] = ()
    equals: tuple[tuple[JsonPath, str], ...] = ()
    prefixes: tuple[tuple[JsonPath, str], ...] = ()


@dataclass(frozen=True)
class ResultTotals:
    """What one function's succeeded invocations returned, summed (see
    `SQLState.result_totals`)."""

    function: str
    sums: tuple[float, ...]  # of each field asked for, over the results that have it
    seconds: float  # how long their final attempts ran


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the State asks of a backend's connection (sqlite3's shape): rows read by
    column name or position, ``dict(row)`` giving every column."""

    def execute(self, sql: str, args: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any: ...


class Listener(Protocol):
    """The dispatcher's end of a doorbell: select on `fileno`, then `drain`."""

    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """``method``, with the backend's errors turned into `StateError` naming the state."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except StateError:
            raise
        except Exception as exc:
            owner = args[0]
            if not isinstance(exc, getattr(owner, "errors", ())):
                raise
            where = getattr(owner, "where", "(not opened)")
            doing = "open" if method.__name__ == "__init__" else method.__name__
            raise StateError(f"state {where}: {doing} failed: {exc}") from exc

    return call


def translating(cls: type[T]) -> type[T]:
    """Translate the errors of every public method of ``cls`` (and its constructor):
    no sqlite3 or psycopg exception reaches a handler, the API or the CLI."""
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, _translated(member))
    return cls


def marks(n: int) -> str:
    """``n`` placeholders for an ``IN (...)`` list."""
    return ",".join("?" * n)


_ATTEMPT_COLUMNS = tuple(Attempt.__dataclass_fields__)
_INSERT_ATTEMPT = (
    f"INSERT INTO attempts ({', '.join(_ATTEMPT_COLUMNS)}) VALUES ({marks(len(_ATTEMPT_COLUMNS))}) "
    "ON CONFLICT (invocation_id, attempt) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ATTEMPT_COLUMNS[2:])
)
# Events per INSERT: 8 values each, well under SQLite's 32,766 variables.
_EVENTS_PER_INSERT = 500
_SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


SCHEMA_VERSION = 3
# The schema, written once; a backend names its types (`SQLState.types`): ``serial``
# (the log's sequence), ``bigint``, ``real`` (epoch seconds, durations), ``json`` and
# ``order_column`` (a column that orders invocations by insertion, where rows lack one).
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq {serial},
    id TEXT NOT NULL UNIQUE,
    time {real} NOT NULL,
    kind TEXT NOT NULL,              -- s3 | event | invoke | schedule
    source TEXT NOT NULL DEFAULT '',
    detail_type TEXT NOT NULL DEFAULT '',
    target TEXT,                     -- a function name for direct invokes, else routed by rules
    body {json} NOT NULL,            -- the event as a handler receives it
    root {real}                      -- time of the event that began its chain (NULL: itself)
);
CREATE INDEX IF NOT EXISTS events_source ON events(source, detail_type);
CREATE TABLE IF NOT EXISTS invocations ({order_column}
    id TEXT PRIMARY KEY,             -- the aws_request_id, stable across retries
    event_seq {bigint} NOT NULL REFERENCES events(seq),
    function TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created {real} NOT NULL,
    expires {real} NOT NULL,         -- created + maximumEventAge
    not_before {real} NOT NULL,
    started {real},                  -- when the current (or last) attempt's handler started
    finished {real},
    worker TEXT,
    condition TEXT,                  -- Success | RetriesExhausted | EventAgeExceeded
    error {json},                    -- the last error (Lambda's shape)
    result {json},                   -- the return value
    redrives INTEGER NOT NULL DEFAULT 0,
    claimed {real},                  -- when the current (or last) attempt was claimed
    rank {real},                     -- claim order among ready invocations: lowest first
    uncharged INTEGER NOT NULL DEFAULT 0  -- attempts not counted against the retry budget
);
CREATE INDEX IF NOT EXISTS invocations_ready ON invocations(status, not_before);
CREATE INDEX IF NOT EXISTS invocations_function ON invocations(function, created);
CREATE INDEX IF NOT EXISTS invocations_rank ON invocations(status, rank);
CREATE INDEX IF NOT EXISTS invocations_event ON invocations(event_seq);
CREATE TABLE IF NOT EXISTS attempts (
    invocation_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    function TEXT NOT NULL,
    started {real} NOT NULL,
    duration_ms {real} NOT NULL,
    ok INTEGER NOT NULL,
    error_type TEXT,
    error_message TEXT,
    worker TEXT,
    cold_start INTEGER NOT NULL,
    max_memory_mb INTEGER NOT NULL,
    logs TEXT NOT NULL,
    logs_truncated INTEGER NOT NULL,
    PRIMARY KEY (invocation_id, attempt)
);
CREATE INDEX IF NOT EXISTS attempts_function ON attempts(function, started);
CREATE INDEX IF NOT EXISTS attempts_started ON attempts(started);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS barriers (
    name TEXT PRIMARY KEY,
    parts INTEGER NOT NULL,          -- how many distinct parts complete it
    fired {real}                     -- when its completion event was appended
);
CREATE TABLE IF NOT EXISTS barrier_parts (
    name TEXT NOT NULL,
    part TEXT NOT NULL,
    time {real} NOT NULL,
    PRIMARY KEY (name, part)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,            -- in_progress | completed
    owner TEXT NOT NULL,
    expires {real} NOT NULL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY,
    time {real} NOT NULL,            -- when the write began
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    operation TEXT NOT NULL,         -- put | copy | delete
    before_etag TEXT,                -- the object before the write (NULL: there was none)
    before_modified {real},          -- its last-modified time, epoch seconds
    owner TEXT NOT NULL,             -- the writing process: host, pid, process token
    root {real}                      -- the chain root of the event the write appends
);
"""
# Each later version: the statements (in the same type words) that bring a state from
# the version before. Statements are split on ';', so none may hold one (nor its comments).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (  # the dispatchers and workers that serve the state, with their last sign of life
        """CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,           -- "dispatcher pid@host", or a worker's "pid@host"
    kind TEXT NOT NULL,              -- dispatcher | worker
    host TEXT NOT NULL,
    pid INTEGER,
    version TEXT NOT NULL,           -- the reelay it runs
    started {real} NOT NULL,
    seen {real} NOT NULL             -- its last sign of life
)""",
        """CREATE TABLE IF NOT EXISTS once (  -- keys of events appended once (append_once)
    key TEXT PRIMARY KEY,
    time {real} NOT NULL
)""",
    ),
    3: (  # access keys for the AWS-style APIs (reelay.keys)
        """CREATE TABLE IF NOT EXISTS access_keys (
    id TEXT PRIMARY KEY,             -- the access key id (AKIA...)
    name TEXT NOT NULL,
    secret TEXT NOT NULL,            -- the secret, encrypted (Fernet), or '' once revoked
    created {real} NOT NULL,
    last_used {real},                -- the last request signed with it (to a minute)
    revoked {real}
)""",
    ),
}


def _attempt_row(a: Attempt) -> list[Any]:
    values = [getattr(a, c) for c in _ATTEMPT_COLUMNS]
    return [int(v) if isinstance(v, bool) else v for v in values]


# A claim reads each invocation with its event, the event's columns prefixed ``e_``.
_EVENT_AS_E = ", ".join(f"e.{k} AS e_{k}" for k in Event.__dataclass_fields__ if k != "seq")


def _attempt(row: Any) -> Attempt:
    data = dict(row)
    data["ok"], data["cold_start"] = bool(data["ok"]), bool(data["cold_start"])
    return Attempt(**data)


def _invocation(row: Any) -> Invocation:
    data = {k: row[k] for k in Invocation.__dataclass_fields__}
    data["error"] = json.loads(data["error"]) if data["error"] else None
    return Invocation(**data)


def _access_key(row: Any) -> AccessKey:
    return AccessKey(**{k: row[k] for k in AccessKey.__dataclass_fields__})


def _event(row: Any) -> Event:
    return Event(**{k: row[k] for k in Event.__dataclass_fields__})


@translating
class SQLState:
    """The durable state, in SQL; a backend subclass supplies what is noted below.

    Thread-safe. Every write is one transaction; events are committed before a method
    that appends them returns, so a caller that heard "accepted" can crash, and so can
    the dispatcher, without the event being lost.
    """

    url: str
    where: str  # how messages name this state (a path, a URL without its password)
    errors: tuple[type[Exception], ...]  # the backend's own errors, translated
    shared: bool  # whether dispatchers on other machines may serve it (standby)
    row_order: str  # the column that orders rows of one table by insertion
    claim_lock: str  # what a claim's SELECT ends with to take its rows
    types: ClassVar[Mapping[str, str]]  # the schema's type words (see `SCHEMA`)

    # -- what a backend supplies -------------------------------------------------------

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        """A connection for reads (autocommit)."""
        raise NotImplementedError

    def _write(
        self, *, lock: str | None = None, ring: bool = False
    ) -> contextlib.AbstractContextManager[Connection]:
        """One write transaction. ``lock``: serialise with every other transaction that
        names it (a barrier, an idempotency key); ``ring``: wake the dispatcher once it
        commits."""
        raise NotImplementedError

    def _snapshot(self) -> contextlib.AbstractContextManager[Connection]:
        """A read-only transaction that sees one snapshot."""
        raise NotImplementedError

    def json_text(self, column: str, path: JsonPath) -> str:
        """SQL for the string (or number) at ``path`` of JSON ``column``."""
        raise NotImplementedError

    def json_number(self, column: str, path: JsonPath) -> str:
        """SQL for the number at ``path`` of JSON ``column``."""
        raise NotImplementedError

    def json_value(self, text: str | None) -> str | None:
        """JSON text as the backend stores it."""
        return text

    def listen(self) -> Listener | None:
        """The dispatcher's doorbell: readable when a write may have made work (None: the
        backend has none; the dispatcher polls)."""
        raise NotImplementedError

    def dispatcher_lock(self, *, wait: bool = False) -> contextlib.AbstractContextManager[None]:
        """Hold the state's dispatcher lock (one dispatcher serves a state). Raises
        `HomeBusyError` if another holds it, or with ``wait``, waits for it."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SQLState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _checked(path: JsonPath) -> JsonPath:
        for step in path:
            if not (isinstance(step, int) or _KEY.fullmatch(step)):
                raise ValueError(f"JSON path step {step!r} is not a plain key or an index")
        return path

    def _bring_up_to_date(self, db: Connection, version: int) -> None:
        """In the caller's transaction, create the schema (``version`` 0: there is none)
        or migrate it from ``version`` to `SCHEMA_VERSION`; a newer one is refused."""
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise StateError(
                f"state {self.where}: schema version {version} was made by a newer reelay "
                f"(this one knows up to {SCHEMA_VERSION}); upgrade reelay"
            )
        steps = [SCHEMA] if version == 0 else []
        steps += ["; ".join(MIGRATIONS[v]) for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1)]
        for step in steps:
            for statement in step.format(**self.types).split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(_SET_META, ("schema_version", str(SCHEMA_VERSION)))

    @staticmethod
    def _schema_version(db: Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    # -- the event log ---------------------------------------------------------------

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        """Append events durably, in one transaction, then ring the doorbell."""
        with self._write(ring=True) as db:
            return self._insert_events(db, events, time.time())

    def _insert_events(self, db: Connection, events: Sequence[NewEvent], now: float) -> list[Event]:
        # One statement for a batch (a round trip, not one per event); seqs are read back
        # by event id, since RETURNING promises no order.
        out = [
            Event(
                0,
                e.id or str(uuid.uuid4()),
                now,
                e.kind,
                e.source,
                e.detail_type,
                e.target,
                e.body,
                e.root,
            )
            for e in events
        ]
        for chunk in range(0, len(out), _EVENTS_PER_INSERT):
            batch = out[chunk : chunk + _EVENTS_PER_INSERT]
            values = ",".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * len(batch))
            args = [
                v
                for e in batch
                for v in (
                    e.id,
                    now,
                    e.kind,
                    e.source,
                    e.detail_type,
                    e.target,
                    self.json_value(e.body),
                    e.root,
                )
            ]
            seqs = dict(
                db.execute(
                    "INSERT INTO events (id, time, kind, source, detail_type, target, body, root) "
                    f"VALUES {values} RETURNING id, seq",
                    args,
                ).fetchall()
            )
            for i, e in enumerate(batch, chunk):
                out[i] = replace(e, seq=seqs[e.id])
        return out

    def events_after(
        self, seq: int, limit: int = 1000, *, where: Sequence[EventFilter] = ()
    ) -> list[Event]:
        """Events after ``seq``, oldest first; with ``where``, only those that match one
        of the filters."""
        condition, args = self._filters(where)
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM events WHERE seq > ?{condition} ORDER BY seq LIMIT ?",
                (seq, *args, limit),
            ).fetchall()
        return [_event(r) for r in rows]

    def append_once(self, key: str, events: Sequence[NewEvent]) -> list[Event]:
        """Append ``events`` unless events were appended under ``key`` before (then
        none: an empty list), in one transaction: how an event that may be delivered
        twice (an S3 notification, say) is logged once. Keys are kept until
        `forget_once` sweeps them."""
        with self._write(lock=f"once:{key}", ring=True) as db:
            seen = db.execute(
                "INSERT INTO once (key, time) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                (key, time.time()),
            ).rowcount
            if not seen:
                return []
            return self._insert_events(db, events, time.time())

    def forget_once(self, before: float) -> int:
        """Drop the `append_once` keys recorded before ``before``; how many."""
        with self._write() as db:
            return int(db.execute("DELETE FROM once WHERE time < ?", (before,)).rowcount)

    def _filters(self, where: Sequence[EventFilter], alias: str = "") -> tuple[str, list[Any]]:
        """`EventFilter`s as ``AND (... OR ...)`` for a WHERE clause, and its arguments."""
        if not where:
            return "", []
        alternatives: list[str] = []
        args: list[Any] = []
        for f in where:
            terms = []
            for column, value in (("source", f.source), ("kind", f.kind)):
                if value is not None:
                    terms.append(f"{alias}{column} = ?")
                    args.append(value)
            if f.detail_types:
                types = []
                for t in f.detail_types:
                    if t.endswith("*"):
                        types.append(f"substr({alias}detail_type, 1, ?) = ?")
                        args += [len(t) - 1, t[:-1]]
                    else:
                        types.append(f"{alias}detail_type = ?")
                        args.append(t)
                terms.append(f"({' OR '.join(types)})")
            for path, value in f.equals:
                terms.append(f"{self.json_text(alias + 'body', self._checked(path))} = ?")
                args.append(value)
            for path, prefix in f.prefixes:
                text = self.json_text(alias + "body", self._checked(path))
                terms.append(f"substr({text}, 1, ?) = ?")
                args += [len(prefix), prefix]
            alternatives.append(" AND ".join(terms) or "1=1")
        return f" AND (({') OR ('.join(alternatives)}))", args

    def events(
        self,
        *,
        limit: int = 50,
        source: str | None = None,
        kind: str | None = None,
        before: int | None = None,
    ) -> list[Event]:
        """The newest events first; ``before``: only those older than that seq (a page
        after the one that ended with it)."""
        after = ("seq < ?", (before,)) if before is not None else None
        rows = self._select("events", "seq DESC", limit, after, source=source, kind=kind)
        return [_event(r) for r in rows]

    def _select(
        self,
        table: str,
        order: str,
        limit: int,
        page: tuple[str, tuple[Any, ...]] | None = None,
        **equal: str | int | None,
    ) -> list[Any]:
        """Rows of ``table`` whose columns equal the given values (None: any), past the
        ``page`` condition (keyset pagination: SQL and its arguments)."""
        given = {column: value for column, value in equal.items() if value is not None}
        where = [f"{column} = ?" for column in given]
        args: list[Any] = list(given.values())
        if page is not None:
            where.append(page[0])
            args += page[1]
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where) or '1=1'} ORDER BY {order} LIMIT ?"
        with self._read() as db:
            return db.execute(sql, (*args, limit)).fetchall()

    def event(self, seq: int) -> Event:
        with self._read() as db:
            row = db.execute("SELECT * FROM events WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise LookupError(f"no event with seq {seq}")
        return _event(row)

    def append_invocation(
        self,
        event: NewEvent,
        function: str,
        *,
        max_attempts: int,
        max_event_age_s: float,
        request_id: str | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> tuple[Event, str]:
        """Append a targeted event together with its invocation (it needs no routing),
        and set ``meta`` values in the same transaction (a stream trigger's checkpoint
        that names the invocation of its batch)."""
        request_id = request_id or str(uuid.uuid4())
        with self._write(ring=True) as db:
            (appended,) = self._insert_events(db, [event], time.time())
            for key, value in (meta or {}).items():
                db.execute(_SET_META, (key, value))
            self._insert_invocations(
                db,
                [
                    NewInvocation(
                        appended.seq,
                        appended.time,
                        function,
                        max_attempts,
                        max_event_age_s,
                        rank(appended),
                    )
                ],
                [request_id],
            )
        return appended, request_id

    # -- routing -----------------------------------------------------------------------

    def route(self, invocations: Sequence[NewInvocation], cursor: int) -> list[str]:
        """Create invocations and advance the routing cursor in one transaction.

        Because both happen together, a crash between reading events and routing them
        neither loses an event nor routes it twice.
        """
        ids = [str(uuid.uuid4()) for _ in invocations]
        with self._write() as db:
            self._insert_invocations(db, invocations, ids)
            db.execute(_SET_META, ("route_cursor", str(cursor)))
        return ids

    @staticmethod
    def _insert_invocations(
        db: Connection, invocations: Sequence[NewInvocation], ids: Sequence[str]
    ) -> None:
        if not invocations:
            return
        db.executemany(
            "INSERT INTO invocations (id, event_seq, function, status, max_attempts, created, "
            "expires, not_before, rank) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    request_id,
                    inv.event_seq,
                    inv.function,
                    QUEUED,
                    inv.max_attempts,
                    inv.event_time,
                    inv.event_time + inv.max_event_age_s,
                    inv.event_time,
                    inv.event_time if inv.rank is None else inv.rank,
                )
                for request_id, inv in zip(ids, invocations, strict=True)
            ],
        )

    def last_seq(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def route_cursor(self) -> int:
        return int(self.get_meta("route_cursor") or 0)

    def idle(self) -> bool:
        """Whether every logged event is routed and no invocation is active (queued,
        claimed or running).

        Read in one snapshot: read one by one, the counts could predate the routing of
        an event that the cursor, read a moment later, already counts as routed.
        """
        with self._snapshot() as db:
            busy = db.execute(
                f"SELECT COUNT(*) FROM invocations WHERE status IN ({marks(len(ACTIVE))})", ACTIVE
            ).fetchone()[0]
            cursor = db.execute("SELECT value FROM meta WHERE key = 'route_cursor'").fetchone()
            last = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        return busy == 0 and int(cursor[0] if cursor else 0) >= int(last or 0)

    # -- claiming and finishing ------------------------------------------------------

    def claim(
        self,
        now: float,
        limit: int,
        *,
        room: Mapping[str, int] | None = None,
        only: Sequence[str] | None = None,
    ) -> list[tuple[Invocation, Event]]:
        """Mark up to ``limit`` ready invocations claimed; return them with their events.

        Candidates come lowest rank first (then oldest event). ``room`` caps how many
        more of a function may start (its reserved concurrency left); ``only``
        restricts the claim to these ids. Claims made at once (several dispatchers, or
        processes) never take one invocation twice.
        """
        room = dict(room or {})
        skip = [fn for fn, left in room.items() if left <= 0]
        extra, args = "", []
        if skip:
            extra += f" AND i.function NOT IN ({marks(len(skip))})"
            args += skip
        if only is not None:
            if not only:
                return []
            extra += f" AND i.id IN ({marks(len(only))})"
            args += list(only)
        with self._write() as db:
            rows = db.execute(
                f"SELECT i.*, {_EVENT_AS_E} "
                "FROM invocations i JOIN events e ON e.seq = i.event_seq "
                f"WHERE i.status = ? AND i.not_before <= ?{extra} "
                f"ORDER BY i.rank, i.event_seq LIMIT ?{self.claim_lock}",
                (QUEUED, now, *args, limit + sum(max(v, 0) for v in room.values())),
            ).fetchall()
            taken: list[Invocation] = []
            events: dict[int, Event] = {}
            for r in rows:
                if len(taken) >= limit:
                    break
                function = r["function"]
                if function in room:
                    if room[function] <= 0:
                        continue
                    room[function] -= 1
                inv = _invocation(r)
                events[inv.event_seq] = Event(
                    **{k: r[f"e_{k}"] for k in Event.__dataclass_fields__ if k != "seq"},
                    seq=inv.event_seq,
                )
                taken.append(
                    Invocation(
                        **{
                            **vars(inv),
                            "status": CLAIMED,
                            "attempts": inv.attempts + 1,
                            "claimed": now,
                            "started": None,
                            "worker": None,
                        }
                    )
                )
            if not taken:
                return []
            db.executemany(
                "UPDATE invocations SET status = ?, attempts = attempts + 1, claimed = ?, "
                "started = NULL, worker = NULL WHERE id = ?",
                [(CLAIMED, now, inv.id) for inv in taken],
            )
        return [(inv, events[inv.event_seq]) for inv in taken]

    def start(self, starts: Sequence[Start]) -> None:
        """Mark claimed invocations running: a worker started their handler.

        A start that comes after its attempt's outcome (or of an older attempt) is
        ignored, so a late notice never turns a finished invocation back to running.
        """
        if not starts:
            return
        with self._write() as db:
            db.executemany(
                "UPDATE invocations SET status = ?, started = ?, worker = ? "
                "WHERE id = ? AND status = ? AND attempts = ?",
                [
                    (RUNNING, s.started, s.worker, s.invocation_id, CLAIMED, s.attempt)
                    for s in starts
                ],
            )

    def finish(self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ()) -> None:
        """Record attempts, their outcomes and the events they cause in one transaction.

        Destination events are written with the outcome that causes them, so that a
        crash can neither lose them nor, on a retry, send them twice.
        """
        now = time.time()
        with self._write(ring=bool(events)) as db:
            self._insert_events(db, events, now)
            # Each statement once for the batch (executemany: one round trip on
            # PostgreSQL, whose driver pipelines it), not two per invocation.
            attempts = [_attempt_row(o.attempt) for o in outcomes if o.attempt is not None]
            if attempts:
                db.executemany(_INSERT_ATTEMPT, attempts)
            rows = []
            for o in outcomes:
                a = o.attempt
                # A finished invocation keeps its last attempt's worker and start; one
                # queued again has neither (the attempt's are in its history).
                settled = o.status in (SUCCEEDED, FAILED)
                rows.append(
                    (
                        o.status,
                        o.not_before,
                        o.condition,
                        self.json_value(json.dumps(o.error)) if o.error is not None else None,
                        self.json_value(o.result),
                        now if settled else None,
                        int(settled),
                        a.worker if a is not None else None,
                        int(settled),
                        a.started if a is not None else None,
                        o.invocation_id,
                    )
                )
            db.executemany(
                "UPDATE invocations SET status = ?, not_before = ?, condition = ?, "
                "error = ?, result = ?, finished = ?, "
                "worker = CASE WHEN ? = 1 THEN COALESCE(?, worker) END, "
                "started = CASE WHEN ? = 1 THEN COALESCE(?, started) END WHERE id = ?",
                rows,
            )

    @staticmethod
    def _insert_attempt(db: Connection, a: Attempt) -> None:
        db.execute(_INSERT_ATTEMPT, _attempt_row(a))

    def release(self, ids: Sequence[str] | None = None) -> int:
        """Give claimed invocations back to the queue; return how many.

        ``ids``: claims that never started (a dispatcher stopping gives back what its
        executor had not begun); such a claim is as if never made. None: everything a
        dispatcher that died left active (`Runtime` does this at start, holding the
        dispatcher lock). An attempt that was running then died with its worker: it is
        recorded as a failed attempt (``Runtime.ExitError``, saying the worker was lost,
        with its start, its worker and how long it ran at least: until the dispatcher's
        last sign of life, see `beat`), as Lambda records a sandbox that died, but it is
        not charged against the retry budget (``uncharged``): delivery is at least once,
        and handlers guard effects with `reelay.idempotency`.
        """
        unstarted = (
            "UPDATE invocations SET status = ?, "
            "attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, claimed = NULL "
            "WHERE status = ?"
        )
        with self._write() as db:
            if ids is not None:
                if ids:
                    db.executemany(
                        unstarted + " AND id = ?", [(QUEUED, CLAIMED, id_) for id_ in ids]
                    )
                return len(ids)
            count = db.execute(unstarted, (QUEUED, CLAIMED)).rowcount
            running = db.execute(
                "SELECT id, attempts, function, started, worker FROM invocations WHERE status = ?",
                (RUNNING,),
            ).fetchall()
            seen = db.execute("SELECT value FROM meta WHERE key = 'alive'").fetchone()
            alive = float(seen[0]) if seen else 0.0
            for r in running:
                error = lost_error(r["worker"])
                self._insert_attempt(
                    db,
                    Attempt(
                        invocation_id=r["id"],
                        attempt=r["attempts"],
                        function=r["function"],
                        started=r["started"],
                        duration_ms=max(alive - r["started"], 0.0) * 1000.0,
                        ok=False,
                        error_type=error["errorType"],
                        error_message=error["errorMessage"],
                        worker=r["worker"],
                        cold_start=False,
                        max_memory_mb=0,
                        logs="",
                        logs_truncated=0,
                    ),
                )
                db.execute(
                    "UPDATE invocations SET status = ?, uncharged = uncharged + 1, error = ?, "
                    "worker = NULL, started = NULL WHERE id = ?",
                    (QUEUED, self.json_value(json.dumps(error)), r["id"]),
                )
        return count + len(running)

    def next_due(self) -> float | None:
        """When the earliest queued invocation becomes ready, if any."""
        with self._read() as db:
            row = db.execute(
                "SELECT MIN(not_before) FROM invocations WHERE status = ?", (QUEUED,)
            ).fetchone()
        return float(row[0]) if row[0] is not None else None

    def expired(self, now: float) -> list[tuple[Invocation, Event]]:
        """Queued invocations whose event is older than their maximum event age."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM invocations WHERE status = ? AND expires < ?", (QUEUED, now)
            ).fetchall()
        return [(inv, self.event(inv.event_seq)) for inv in map(_invocation, rows)]

    # -- reading -------------------------------------------------------------------------

    def invocation(self, request_id: str) -> Invocation:
        with self._read() as db:
            row = db.execute("SELECT * FROM invocations WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise LookupError(f"no invocation {request_id!r}")
        return _invocation(row)

    def invocations(
        self,
        *,
        function: str | None = None,
        status: str | None = None,
        event_seq: int | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Invocation]:
        """The newest invocations first, optionally filtered; ``before``: only those after
        that invocation in this order (the next page)."""
        n = self.row_order
        page = None
        if before is not None:
            page = (
                f"(created, {n}) < (SELECT created, {n} FROM invocations WHERE id = ?)",
                (before,),
            )
        rows = self._select(
            "invocations",
            f"created DESC, {n} DESC",
            limit,
            page,
            function=function,
            status=status,
            event_seq=event_seq,
        )
        return [_invocation(r) for r in rows]

    def invocations_of(
        self, low: int, high: int, where: Sequence[EventFilter]
    ) -> list[tuple[Invocation, Event]]:
        """The invocations of the events from seq ``low`` to ``high`` that match one of
        the filters, with their events, in the order the events came."""
        condition, args = self._filters(where, "e.")
        with self._read() as db:
            rows = db.execute(
                "SELECT i.* FROM invocations i JOIN events e ON e.seq = i.event_seq "
                f"WHERE e.seq BETWEEN ? AND ?{condition} ORDER BY e.seq, i.{self.row_order}",
                (low, high, *args),
            ).fetchall()
            invocations = [_invocation(r) for r in rows]
            seqs = sorted({inv.event_seq for inv in invocations})
            events = (
                {
                    r["seq"]: _event(r)
                    for r in db.execute(
                        f"SELECT * FROM events WHERE seq IN ({marks(len(seqs))})", seqs
                    ).fetchall()
                }
                if seqs
                else {}
            )
        return [(inv, events[inv.event_seq]) for inv in invocations]

    def ready(self, functions: Sequence[str], now: float) -> dict[str, str]:
        """Queued invocations of ``functions`` ready at ``now``: id -> function."""
        if not functions:
            return {}
        with self._read() as db:
            rows = db.execute(
                "SELECT id, function FROM invocations WHERE status = ? AND not_before <= ? "
                f"AND function IN ({marks(len(functions))})",
                (QUEUED, now, *functions),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def pending(self) -> tuple[int, float | None]:
        """How many invocations are queued, and when the oldest one's event came."""
        with self._read() as db:
            count, oldest = db.execute(
                "SELECT COUNT(*), MIN(created) FROM invocations WHERE status = ?", (QUEUED,)
            ).fetchone()
        return int(count), oldest

    def counts_by_function(self, statuses: Sequence[str]) -> dict[tuple[str, str], int]:
        """How many invocations each function has in each of ``statuses``:
        (function, status) -> count, for the pairs that have any."""
        with self._read() as db:
            rows = db.execute(
                "SELECT function, status, COUNT(*) FROM invocations "
                f"WHERE status IN ({marks(len(statuses))}) GROUP BY function, status",
                tuple(statuses),
            ).fetchall()
        return {(r[0], r[1]): r[2] for r in rows}

    def event_counts(self) -> dict[str, int]:
        """Events in the log by kind (s3, event, invoke, invoke-async, schedule)."""
        with self._read() as db:
            rows = db.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall()
        return {r[0]: r[1] for r in rows}

    def attempts_ended_since(self, since: float, longest_s: float) -> list[tuple[float, bool]]:
        """(duration in ms, ok) of the attempts that ended at ``since`` or later;
        ``longest_s`` bounds how long an attempt can run (so old ones are skipped by
        index, not read)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT duration_ms, ok FROM attempts "
                "WHERE started >= ? AND started + duration_ms / 1000.0 >= ?",
                (since - longest_s, since),
            ).fetchall()
        return [(r[0], bool(r[1])) for r in rows]

    def attempt_totals(self, bounds: Sequence[float]) -> list[AttemptTotals]:
        """Every function's attempts by outcome, with how many took at most each of
        ``bounds`` (seconds): the whole history, summed where it is stored."""
        outcome = (
            "CASE WHEN ok = 1 THEN 'success' WHEN error_type = 'Sandbox.Timedout' "
            "THEN 'timeout' ELSE 'error' END"
        )
        sums = "".join(", SUM(CASE WHEN duration_ms <= ? THEN 1 ELSE 0 END)" for _ in bounds)
        with self._read() as db:
            rows = db.execute(
                f"SELECT function, {outcome} AS outcome, COUNT(*), "
                "SUM(CASE WHEN attempt > 1 THEN 1 ELSE 0 END), "
                f"SUM(cold_start), SUM(duration_ms) / 1000.0{sums} "
                f"FROM attempts GROUP BY function, {outcome}",
                tuple(b * 1000.0 for b in bounds),
            ).fetchall()
        return [
            AttemptTotals(r[0], r[1], r[2], int(r[3]), int(r[4]), r[5], tuple(map(int, r[6:])))
            for r in rows
        ]

    def function_stats(self) -> dict[str, FunctionStats]:
        """Each function's attempts, errors, average and longest duration, last start."""
        with self._read() as db:
            rows = db.execute(
                "SELECT function, COUNT(*), SUM(1 - ok), AVG(duration_ms), MAX(duration_ms), "
                "MAX(started) FROM attempts GROUP BY function"
            ).fetchall()
        return {r[0]: FunctionStats(r[1], int(r[2] or 0), r[3], r[4], r[5]) for r in rows}

    def result_totals(
        self, fields: Sequence[JsonPath], since: float | None, longest_s: float
    ) -> list[ResultTotals]:
        """Per function, the sums of numeric ``fields`` of what its succeeded invocations
        returned (those whose result has the first field), with how long their final
        attempts ran; ``since``: only attempts that ended then or later (``longest_s``
        bounds how long one can run)."""
        if not fields:
            raise ValueError("result_totals needs at least one field")
        sums = ", ".join(f"SUM({self.json_number('i.result', self._checked(f))})" for f in fields)
        window, args = "", []
        if since is not None:
            window = " AND a.started >= ? AND a.started + a.duration_ms / 1000.0 >= ?"
            args = [since - longest_s, since]
        with self._read() as db:
            rows = db.execute(
                f"SELECT i.function, {sums}, SUM(a.duration_ms) / 1000.0 "
                "FROM invocations i JOIN attempts a "
                "ON a.invocation_id = i.id AND a.attempt = i.attempts "
                f"WHERE i.status = ? AND {self.json_number('i.result', fields[0])} IS NOT NULL"
                f"{window} GROUP BY i.function",
                (SUCCEEDED, *args),
            ).fetchall()
        return [
            ResultTotals(r[0], tuple(float(v or 0) for v in r[1:-1]), float(r[-1] or 0))
            for r in rows
        ]

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM invocations GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | {r[0]: r[1] for r in rows}

    def attempts(
        self,
        *,
        function: str | None = None,
        invocation_id: str | None = None,
        ok: bool | None = None,
        limit: int = 20,
    ) -> list[Attempt]:
        """The newest attempts first, with their logs (``ok=False``: the failed ones)."""
        rows = self._select(
            "attempts",
            "started DESC",
            limit,
            function=function,
            invocation_id=invocation_id,
            ok=None if ok is None else int(ok),
        )
        return [_attempt(r) for r in rows]

    def attempts_of(self, ids: Sequence[str]) -> list[Attempt]:
        """Every attempt of these invocations, oldest first."""
        if not ids:
            return []
        with self._read() as db:
            rows = db.execute(
                f"SELECT * FROM attempts WHERE invocation_id IN ({marks(len(ids))}) "
                "ORDER BY started",
                tuple(ids),
            ).fetchall()
        return [_attempt(r) for r in rows]

    def redrive(self, *, ids: Sequence[str] = (), function: str | None = None) -> int:
        """Send failed invocations back to the queue with a fresh retry budget and age.

        The attempts made so far stay in the history (attempt numbers go on) but no
        longer count against the budget. With neither ``ids`` nor ``function`` every
        invocation in the DLQ is redriven.
        """
        now = time.time()
        sql = (
            "UPDATE invocations SET status = ?, uncharged = attempts, created = ?, "
            "expires = ? + (expires - created), not_before = ?, condition = NULL, "
            "finished = NULL, redrives = redrives + 1 WHERE status = ?"
        )
        args: list[Any] = [QUEUED, now, now, now, FAILED]
        if ids:
            sql += f" AND id IN ({marks(len(ids))})"
            args += list(ids)
        if function:
            sql += " AND function = ?"
            args.append(function)
        with self._write(ring=True) as db:
            return int(db.execute(sql, args).rowcount)

    # -- the machines that serve it -----------------------------------------------------

    def node_seen(self, nodes: Sequence[Node]) -> None:
        """Record that these dispatchers or workers are alive (``seen``: when)."""
        if not nodes:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO nodes (name, kind, host, pid, version, started, seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "seen = CASE WHEN excluded.seen > nodes.seen THEN excluded.seen "
                "ELSE nodes.seen END, version = excluded.version",
                [tuple(getattr(n, f) for f in Node.__dataclass_fields__) for n in nodes],
            )

    def nodes(self, seen_since: float = 0.0) -> list[Node]:
        """The dispatchers and workers seen at ``seen_since`` or later, newest first."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM nodes WHERE seen >= ? ORDER BY seen DESC, name", (seen_since,)
            ).fetchall()
        return [Node(**{k: r[k] for k in Node.__dataclass_fields__}) for r in rows]

    # -- small key-value state ---------------------------------------------------------

    def beat(self, now: float) -> None:
        """The dispatcher's sign of life while attempts run: what `release` takes as a
        lower bound of how long a lost attempt ran."""
        self.set_meta("alive", repr(now))

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute(_SET_META, (key, value))

    def meta_items(self, prefix: str) -> dict[str, str]:
        """Every value whose key starts with ``prefix``, by key."""
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def update_meta(
        self,
        values: Mapping[str, str],
        delete: Sequence[str] = (),
        *,
        expect: Mapping[str, str | None] | None = None,
    ) -> bool:
        """Set ``values`` and delete the keys in ``delete``, in one transaction. With
        ``expect`` (keys to the values they must hold now, None for none), only if they
        do: else nothing changes and the answer is False (a compare-and-set)."""
        lock = f"meta:{min(expect)}" if expect else None
        with self._write(lock=lock) as db:
            for key, wanted in (expect or {}).items():
                row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                if (str(row[0]) if row else None) != wanted:
                    return False
            for key in delete:
                db.execute("DELETE FROM meta WHERE key = ?", (key,))
            for key, value in values.items():
                db.execute(_SET_META, (key, value))
        return True

    def add_throttles(self, by_function: Mapping[str, int]) -> None:
        """Count invocations held back by their function's reserved concurrency."""
        if not by_function:
            return
        with self._write() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = CAST(CAST(meta.value AS INTEGER) + CAST(excluded.value AS INTEGER) "
                "AS TEXT)",
                [(f"throttles:{fn}", str(n)) for fn, n in by_function.items()],
            )

    def throttles(self) -> dict[str, int]:
        prefix = "throttles:"
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {r[0][len(prefix) :]: int(r[1]) for r in rows}

    def fire_schedule(self, key: str, fired_at: str, event: NewEvent) -> bool:
        """Append a scheduled event once per fire time; False if it was already fired."""
        with self._write(lock=f"schedule:{key}", ring=True) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] >= fired_at:
                return False
            db.execute(_SET_META, (key, fired_at))
            self._insert_events(db, [event], time.time())
        return True

    # -- access keys -------------------------------------------------------------------

    def add_access_key(self, key: AccessKey) -> None:
        """Record a new access key (its id must be new)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO access_keys (id, name, secret, created, last_used, revoked) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                tuple(getattr(key, f) for f in AccessKey.__dataclass_fields__),
            )

    def access_key(self, key_id: str) -> AccessKey | None:
        with self._read() as db:
            row = db.execute("SELECT * FROM access_keys WHERE id = ?", (key_id,)).fetchone()
        return None if row is None else _access_key(row)

    def access_keys(self) -> list[AccessKey]:
        """Every access key, revoked ones too, oldest first."""
        with self._read() as db:
            rows = db.execute("SELECT * FROM access_keys ORDER BY created, id").fetchall()
        return [_access_key(r) for r in rows]

    def revoke_access_key(self, key_id: str, when: float) -> bool:
        """Revoke a key and forget its secret; False if there is no such key or it was
        already revoked."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE access_keys SET revoked = ?, secret = '' WHERE id = ? AND revoked IS NULL",
                (when, key_id),
            )
            return int(cursor.rowcount) > 0

    def access_key_used(self, key_id: str, when: float) -> None:
        """Note that a request was signed with the key at ``when`` (kept if later)."""
        with self._write() as db:
            db.execute(
                "UPDATE access_keys SET last_used = ? WHERE id = ? "
                "AND (last_used IS NULL OR last_used < ?)",
                (when, key_id, when),
            )

    # -- barriers ----------------------------------------------------------------------

    def arrive(self, name: str, part: str, parts: int, event: NewEvent) -> Arrival:
        """Record that ``part`` of barrier ``name`` is done; the arrival that completes
        it appends ``event``, in the same transaction, exactly once.

        Arriving twice with the same part counts once, so a retried or redelivered
        invocation cannot complete a barrier early nor fire it twice. Arrivals at one
        barrier are serialised, wherever they come from.
        """
        if not isinstance(parts, int) or isinstance(parts, bool) or parts < 1:
            raise ValueError(f"barrier {name!r}: parts must be a positive integer, got {parts!r}")
        now = time.time()
        with self._write(lock=f"barrier:{name}", ring=True) as db:
            db.execute(
                "INSERT INTO barriers (name, parts, fired) VALUES (?, ?, NULL) "
                "ON CONFLICT (name) DO NOTHING",
                (name, parts),
            )
            row = db.execute("SELECT parts, fired FROM barriers WHERE name = ?", (name,)).fetchone()
            if row["parts"] != parts:
                raise ValueError(
                    f"barrier {name!r} has {row['parts']} parts; an arrival said {parts}"
                )
            db.execute(
                "INSERT INTO barrier_parts (name, part, time) VALUES (?, ?, ?) "
                "ON CONFLICT (name, part) DO NOTHING",
                (name, part, now),
            )
            arrived = db.execute(
                "SELECT COUNT(*) FROM barrier_parts WHERE name = ?", (name,)
            ).fetchone()[0]
            fired = False
            if arrived >= parts and row["fired"] is None:
                db.execute("UPDATE barriers SET fired = ? WHERE name = ?", (now, name))
                self._insert_events(db, [event], now)
                fired = True
        return Arrival(name, arrived, parts, fired)

    def barrier(self, name: str) -> Arrival | None:
        """How far barrier ``name`` is (``fired`` tells whether it completed), or None."""
        with self._snapshot() as db:
            row = db.execute("SELECT parts, fired FROM barriers WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            arrived = db.execute(
                "SELECT COUNT(*) FROM barrier_parts WHERE name = ?", (name,)
            ).fetchone()[0]
        return Arrival(name, arrived, row["parts"], row["fired"] is not None)

    # -- idempotency records -----------------------------------------------------------

    def idempotency_begin(
        self,
        key: str,
        owner: str,
        expires: float,
    ) -> tuple[str, str | None]:
        """Try to take the key. Returns ("run", None), ("done", result) or ("busy", None)."""
        now = time.time()
        with self._write(lock=f"idempotency:{key}") as db:
            row = db.execute(
                "SELECT status, owner, expires, result FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row["status"] == "completed":
                    return "done", row["result"]
                if row["expires"] > now and row["owner"] != owner:
                    return "busy", None
            db.execute(
                "INSERT INTO idempotency (key, status, owner, expires, result) "
                "VALUES (?, 'in_progress', ?, ?, NULL) ON CONFLICT (key) DO UPDATE SET "
                "status = excluded.status, owner = excluded.owner, expires = excluded.expires, "
                "result = NULL",
                (key, owner, expires),
            )
        return "run", None

    def idempotency_complete(self, key: str, owner: str, result: str) -> None:
        """Record the key's result; only its holder can (a taken-over holder cannot)."""
        with self._write(lock=f"idempotency:{key}") as db:
            db.execute(
                "UPDATE idempotency SET status = 'completed', result = ? "
                "WHERE key = ? AND owner = ?",
                (result, key, owner),
            )

    def idempotency_release(self, key: str, owner: str) -> None:
        """Give the key up after a failed effect; only its holder can."""
        with self._write(lock=f"idempotency:{key}") as db:
            db.execute(
                "DELETE FROM idempotency WHERE key = ? AND owner = ? AND status = 'in_progress'",
                (key, owner),
            )

    # -- object-write intents ----------------------------------------------------------

    def begin_intent(
        self,
        bucket: str,
        key: str,
        operation: str,
        *,
        before_etag: str | None,
        before_modified: float | None,
        owner: str,
        root: float | None = None,
    ) -> Intent:
        """Record, durably, that ``operation`` (put, copy or delete) of an object is about to
        happen; return the intent, whose id `commit_intent` takes.

        An intent left behind by a writer that died is settled by reconciliation
        (`reelay.client.Client.reconcile_objects`), which decides from the object's state
        before (``before_etag``, ``before_modified``) and now whether its event is due.
        """
        intent = Intent(
            str(uuid.uuid4()),
            time.time(),
            bucket,
            key,
            operation,
            before_etag,
            before_modified,
            owner,
            root,
        )
        with self._write() as db:
            db.execute(
                "INSERT INTO intents (id, time, bucket, key, operation, before_etag, "
                "before_modified, owner, root) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(getattr(intent, f) for f in Intent.__dataclass_fields__),
            )
        return intent

    def commit_intent(
        self, intent_id: str, events: Sequence[NewEvent], *, if_pending: bool = False
    ) -> list[Event]:
        """Settle an intent: append ``events`` (none: the write changed nothing) and drop
        the intent, in one transaction, so the event exists once or the intent remains.

        ``if_pending`` (reconciliation's): append only if the intent is still there, so
        that two reconcilers never append one write's event twice. The writer itself
        appends regardless: its write happened, whoever settled the intent meanwhile.
        """
        with self._write(ring=bool(events)) as db:
            cur = db.execute("DELETE FROM intents WHERE id = ?", (intent_id,))
            if if_pending and cur.rowcount == 0:
                return []
            return self._insert_events(db, events, time.time())

    def intents(self, older_than: float | None = None) -> list[Intent]:
        """The intents not yet settled, oldest first; only those begun before
        ``older_than`` (epoch seconds) if given."""
        with self._read() as db:
            if older_than is None:
                rows = db.execute("SELECT * FROM intents ORDER BY time").fetchall()
            else:
                sql = "SELECT * FROM intents WHERE time < ? ORDER BY time"
                rows = db.execute(sql, (older_than,)).fetchall()
        return [Intent(**{k: r[k] for k in Intent.__dataclass_fields__}) for r in rows]
