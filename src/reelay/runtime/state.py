"""The durable state of a reelay home: the event log, invocations, attempts, the DLQ.

The embedded backend is one SQLite database in WAL mode (``<home>/state.db``). An
event is committed before `State.append` returns, so a caller that heard "accepted"
can crash, and so can the dispatcher, without the event being lost. Several processes
may share a home: SQLite serialises writers, and every writer rings a datagram socket
in the home after it commits so that a waiting dispatcher wakes at once instead of
polling (see `Doorbell`).

Invocation life cycle::

    queued --claim--> claimed --a worker starts it--> running --ok--> succeeded
       ^                                                 |
       +--retry (delay)----------------------------------+--last attempt failed /
       |                                                     event too old--> failed (DLQ)
       +------------------------------- redrive -------------------------------+

``claimed``: the dispatcher took it and handed it to the executor, where it waits for a
free worker; ``running``: a worker started its handler (``started`` and ``worker`` say
when and where). Each event carries the time of its chain's root (the upload that
started a title, say): invocations are ranked by it, so that ready work of older chains
runs first (see `NewInvocation.rank`).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from reelay.errors import StateError

QUEUED = "queued"
CLAIMED = "claimed"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = (QUEUED, CLAIMED, RUNNING, SUCCEEDED, FAILED)
ACTIVE = (QUEUED, CLAIMED, RUNNING)
"""Statuses of invocations not yet finished."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    time REAL NOT NULL,
    kind TEXT NOT NULL,              -- s3 | event | invoke | schedule
    source TEXT NOT NULL DEFAULT '',
    detail_type TEXT NOT NULL DEFAULT '',
    target TEXT,                     -- a function name for direct invokes, else routed by rules
    body TEXT NOT NULL,              -- JSON text: the event as a handler receives it
    root REAL                        -- time of the event that began its chain (NULL: itself)
);
CREATE INDEX IF NOT EXISTS events_source ON events(source, detail_type);
CREATE TABLE IF NOT EXISTS invocations (
    id TEXT PRIMARY KEY,             -- the aws_request_id, stable across retries
    event_seq INTEGER NOT NULL REFERENCES events(seq),
    function TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,           -- created + maximumEventAge
    not_before REAL NOT NULL,
    started REAL,                    -- when the current (or last) attempt's handler started
    finished REAL,
    worker TEXT,
    condition TEXT,                  -- Success | RetriesExhausted | EventAgeExceeded
    error TEXT,                      -- JSON of the last error (Lambda's shape)
    result TEXT,                     -- JSON text of the return value
    redrives INTEGER NOT NULL DEFAULT 0,
    claimed REAL,                    -- when the current (or last) attempt was claimed
    rank REAL,                       -- claim order among ready invocations: lowest first
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
    started REAL NOT NULL,
    duration_ms REAL NOT NULL,
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
    fired REAL                       -- when its completion event was appended
);
CREATE TABLE IF NOT EXISTS barrier_parts (
    name TEXT NOT NULL,
    part TEXT NOT NULL,
    time REAL NOT NULL,
    PRIMARY KEY (name, part)
);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,            -- in_progress | completed
    owner TEXT NOT NULL,
    expires REAL NOT NULL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY,
    time REAL NOT NULL,              -- when the write began
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    operation TEXT NOT NULL,         -- put | delete
    before_etag TEXT,                -- the object before the write (NULL: there was none)
    before_modified REAL,            -- its last-modified time, epoch seconds
    owner TEXT NOT NULL,             -- the writing process: host, pid, process token
    root REAL                        -- the chain root of the event the write appends
);
"""


# Columns added since a home's database may have been made: (table, column, declaration,
# what fills it in for the rows already there). Opening an older home adds them (and the
# indexes that use them) in place.
ADDED_COLUMNS = (
    ("events", "root", "REAL", None),
    ("invocations", "claimed", "REAL", None),
    ("invocations", "rank", "REAL", "UPDATE invocations SET rank = created"),
    ("invocations", "uncharged", "INTEGER NOT NULL DEFAULT 0", None),
)


Scheduling = Literal["oldest-first", "fifo"]
SCHEDULING: tuple[Scheduling, ...] = ("oldest-first", "fifo")
# How long an event chain keeps its precedence (see `rank`): longer than a batch of
# titles takes on a small machine, short enough that nothing waits for long.
AGING_S = 600.0


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``body`` is JSON text; ``root``: the time of the event that
    began its chain (None: it begins one)."""

    kind: str
    body: str
    source: str = ""
    detail_type: str = ""
    target: str | None = None
    id: str = ""
    root: float | None = None


@dataclass(frozen=True)
class Arrival:
    """Where a barrier stands after an arrival. ``fired``: this arrival completed it
    (from `State.arrive`), or it is complete (from `State.barrier`)."""

    name: str
    arrived: int
    parts: int
    fired: bool


@dataclass(frozen=True)
class Event:
    seq: int
    id: str
    time: float
    kind: str
    source: str
    detail_type: str
    target: str | None
    body: str
    root: float | None = None

    @property
    def chain_start(self) -> float:
        """When the chain this event belongs to began (its own time for a root)."""
        return self.time if self.root is None else self.root

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "time": self.time,
            "root": self.chain_start,
            "kind": self.kind,
            "source": self.source,
            "detail_type": self.detail_type,
            "target": self.target,
            "event": _json(self.body),
        }


@dataclass(frozen=True)
class Intent:
    """An object write begun and not yet settled (see `State.begin_intent`).

    ``before_etag`` and ``before_modified`` describe the object as it was before the
    write (None: there was none), which is how reconciliation tells whether the write
    happened; ``owner`` names the writing process (host, pid, process token).
    """

    id: str
    time: float
    bucket: str
    key: str
    operation: str
    before_etag: str | None
    before_modified: float | None
    owner: str
    root: float | None


@dataclass(frozen=True)
class NewInvocation:
    """An invocation to create. ``rank`` orders ready invocations (lowest claimed
    first; default: the event's time, first in first out)."""

    event_seq: int
    event_time: float
    function: str
    max_attempts: int
    max_event_age_s: float
    rank: float | None = None


@dataclass(frozen=True)
class Invocation:
    id: str
    event_seq: int
    function: str
    status: str
    attempts: int
    max_attempts: int
    created: float
    expires: float
    not_before: float
    started: float | None
    finished: float | None
    worker: str | None
    condition: str | None
    error: dict[str, Any] | None
    result: str | None
    redrives: int
    claimed: float | None = None
    rank: float | None = None
    uncharged: int = 0

    @property
    def charged_attempts(self) -> int:
        """Attempts that count against ``max_attempts``: not those lost with their
        worker (a dispatcher killed under them: not the handler's failures), nor those
        made before the last redrive (a redrive gives a fresh budget)."""
        return max(self.attempts - self.uncharged, 0)

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["result"] = _json(self.result) if self.result is not None else None
        out["charged_attempts"] = self.charged_attempts  # of max_attempts, this round
        return out


@dataclass(frozen=True)
class Attempt:
    invocation_id: str
    attempt: int
    function: str
    started: float
    duration_ms: float
    ok: bool
    error_type: str | None
    error_message: str | None
    worker: str | None
    cold_start: bool
    max_memory_mb: int
    logs: str
    logs_truncated: int


@dataclass(frozen=True)
class AttemptTotals:
    """The attempts of one function with one outcome (``success``, ``error``,
    ``timeout``), summed over the whole history: what counters and histograms need."""

    function: str
    outcome: str
    count: int
    retries: int  # attempts after an invocation's first
    cold_starts: int
    seconds: float
    buckets: tuple[int, ...]  # attempts no longer than each bound asked for


@dataclass(frozen=True)
class FunctionStats:
    """One function's attempts over the whole history."""

    attempts: int
    errors: int
    avg_ms: float | None
    max_ms: float | None
    last_started: float | None


@dataclass(frozen=True)
class Start:
    """A worker started an attempt's handler: at ``started`` (epoch seconds), on
    ``worker`` (None when the executor cannot tell)."""

    invocation_id: str
    attempt: int
    started: float
    worker: str | None


@dataclass(frozen=True)
class Outcome:
    """What the dispatcher decided after an attempt (or instead of one)."""

    invocation_id: str
    status: str  # QUEUED (retry later), SUCCEEDED or FAILED
    not_before: float = 0.0
    condition: str | None = None
    error: dict[str, Any] | None = None
    result: str | None = None
    attempt: Attempt | None = None


def _json(text: str) -> Any:
    """Parse stored JSON for readers; NaN and Infinity, which a handler's result may
    hold (Python writes them) but JSON has not, read as null."""
    return json.loads(text, parse_constant=lambda _: None)


def rank(event: Event, scheduling: Scheduling = "oldest-first") -> float:
    """Where invocations of ``event`` stand among ready ones: lowest claimed first.

    ``oldest-first``: the time the event's chain began, so older work finishes first;
    aged, so that an invocation made `AGING_S` after its chain began ranks as if the
    chain began `AGING_S` before it (young work waits behind old for about that long at
    most). ``fifo``: the event's own time.
    """
    if scheduling == "fifo":
        return event.time
    return max(event.chain_start, event.time - AGING_S)


def _lost_error(worker: str | None) -> dict[str, Any]:
    """Lambda's error for an attempt whose sandbox died, saying how it was lost."""
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": (
            f"the worker {worker or '(unknown)'} was lost: its dispatcher stopped (killed, "
            "crashed, or stopped without waiting for it) before the attempt finished; it "
            "ran at least the duration recorded, and the invocation runs again"
        ),
        "stackTrace": [],
    }


def _invocation(row: sqlite3.Row) -> Invocation:
    data = dict(row)
    data["error"] = json.loads(data["error"]) if data["error"] else None
    return Invocation(**data)


class Doorbell:
    """A unix datagram socket in the home that wakes the dispatcher after a commit.

    Ringing is best-effort and never blocks: the dispatcher also re-reads the log on a
    slow timer, so a lost ring delays work, it never loses it.
    """

    def __init__(self, home: Path) -> None:
        self.path = str(home / "wake.sock")
        self._sender: socket.socket | None = None

    def ring(self) -> None:
        try:
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sender.setblocking(False)
            self._sender.sendto(b"!", self.path)
        except OSError:
            pass  # nobody listening, socket buffer full, or path too long: the timer covers it

    def listen(self) -> socket.socket | None:
        """Bind the listening end (the dispatcher's); None if the path cannot be bound."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            return None
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """``method``, with SQLite's errors turned into `StateError` naming the database."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            where = getattr(args[0], "path", "(not opened)")
            doing = "open" if method.__name__ == "__init__" else method.__name__
            raise StateError(f"state database {where}: {doing} failed: {exc}") from exc

    return call


def _translating(cls: type[T]) -> type[T]:
    """Translate the errors of every public method of ``cls`` (and its constructor):
    no sqlite3 exception reaches a handler, the API or the CLI."""
    for name, member in list(vars(cls).items()):
        if inspect.isfunction(member) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, _translated(member))
    return cls


@_translating
class State:
    """The SQLite-backed durable state of one home. Thread-safe; one connection per thread."""

    def __init__(self, home: Path, *, durability: str = "process") -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.path = home / "state.db"
        self._synchronous = "FULL" if durability == "power" else "NORMAL"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.doorbell = Doorbell(home)
        self._migrate()

    def _migrate(self) -> None:
        """Create the schema, or bring an older home's up to date (idempotent)."""
        with self._write() as db:
            for table, column, declaration, backfill in ADDED_COLUMNS:
                names = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                if names and column not in names:  # an older home; a new one gets SCHEMA's
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                    if backfill is not None:
                        db.execute(backfill)
        self._db().executescript(SCHEMA)  # idempotent; executescript manages its transaction

    # -- connections and transactions ------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA busy_timeout=60000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
        self._local = threading.local()
        self.doorbell.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the event log ---------------------------------------------------------------

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        """Append events durably, in one transaction, then ring the doorbell."""
        with self._write() as db:
            out = self._insert_events(db, events, time.time())
        self.doorbell.ring()
        return out

    @staticmethod
    def _insert_events(
        db: sqlite3.Connection, events: Sequence[NewEvent], now: float
    ) -> list[Event]:
        out = []
        for e in events:
            event_id = e.id or str(uuid.uuid4())
            cur = db.execute(
                "INSERT INTO events (id, time, kind, source, detail_type, target, body, root) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (event_id, now, e.kind, e.source, e.detail_type, e.target, e.body, e.root),
            )
            out.append(
                Event(
                    cur.lastrowid or 0,
                    event_id,
                    now,
                    e.kind,
                    e.source,
                    e.detail_type,
                    e.target,
                    e.body,
                    e.root,
                )
            )
        return out

    def events_after(self, seq: int, limit: int = 1000) -> list[Event]:
        rows = (
            self._db()
            .execute("SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
            .fetchall()
        )
        return [Event(**dict(r)) for r in rows]

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
        return [Event(**dict(r)) for r in rows]

    def _select(
        self,
        table: str,
        order: str,
        limit: int,
        page: tuple[str, tuple[Any, ...]] | None = None,
        **equal: str | int | None,
    ) -> list[sqlite3.Row]:
        """Rows of ``table`` whose columns equal the given values (None: any), past the
        ``page`` condition (keyset pagination: SQL and its arguments)."""
        given = {column: value for column, value in equal.items() if value is not None}
        where = [f"{column} = ?" for column in given]
        args: list[Any] = list(given.values())
        if page is not None:
            where.append(page[0])
            args += page[1]
        sql = f"SELECT * FROM {table} WHERE {' AND '.join(where) or '1=1'} ORDER BY {order} LIMIT ?"
        return self._db().execute(sql, (*args, limit)).fetchall()

    def event(self, seq: int) -> Event:
        row = self._db().execute("SELECT * FROM events WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise LookupError(f"no event with seq {seq}")
        return Event(**dict(row))

    def append_invocation(
        self, event: NewEvent, function: str, *, max_attempts: int, max_event_age_s: float
    ) -> tuple[Event, str]:
        """Append a targeted event together with its invocation (it needs no routing)."""
        with self._write() as db:
            (appended,) = self._insert_events(db, [event], time.time())
            request_id = str(uuid.uuid4())
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
        self.doorbell.ring()
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
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('route_cursor', ?)",
                (str(cursor),),
            )
        return ids

    @staticmethod
    def _insert_invocations(
        db: sqlite3.Connection, invocations: Sequence[NewInvocation], ids: Sequence[str]
    ) -> None:
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
        row = self._db().execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def route_cursor(self) -> int:
        return int(self.get_meta("route_cursor") or 0)

    def idle(self) -> bool:
        """Whether every logged event is routed and no invocation is active (queued,
        claimed or running).

        Read in one snapshot: read one by one, the counts could predate the routing of
        an event that the cursor, read a moment later, already counts as routed.
        """
        db = self._db()
        db.execute("BEGIN")
        try:
            busy = db.execute(
                "SELECT COUNT(*) FROM invocations WHERE status IN (?, ?, ?)", ACTIVE
            ).fetchone()[0]
            cursor = db.execute("SELECT value FROM meta WHERE key = 'route_cursor'").fetchone()
            last = db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        finally:
            db.execute("COMMIT")
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
        restricts the claim to these ids.
        """
        room = dict(room or {})
        skip = [fn for fn, left in room.items() if left <= 0]
        extra, args = "", []
        if skip:
            extra += f" AND i.function NOT IN ({','.join('?' * len(skip))})"
            args += skip
        if only is not None:
            extra += f" AND i.id IN ({','.join('?' * len(only))})"
            args += list(only)
        with self._write() as db:
            rows = db.execute(
                "SELECT i.*, e.id AS e_id, e.time AS e_time, e.kind AS e_kind, "
                "e.source AS e_source, e.detail_type AS e_detail_type, e.target AS e_target, "
                "e.body AS e_body, e.root AS e_root "
                "FROM invocations i JOIN events e ON e.seq = i.event_seq "
                f"WHERE i.status = ? AND i.not_before <= ?{extra} "
                "ORDER BY i.rank, i.event_seq LIMIT ?",
                (QUEUED, now, *args, limit + sum(max(v, 0) for v in room.values())),
            ).fetchall()
            out: list[tuple[Invocation, Event]] = []
            for r in rows:
                if len(out) >= limit:
                    break
                data = dict(r)
                if data["function"] in room:
                    if room[data["function"]] <= 0:
                        continue
                    room[data["function"]] -= 1
                event = Event(
                    data["event_seq"],
                    data.pop("e_id"),
                    data.pop("e_time"),
                    data.pop("e_kind"),
                    data.pop("e_source"),
                    data.pop("e_detail_type"),
                    data.pop("e_target"),
                    data.pop("e_body"),
                    data.pop("e_root"),
                )
                data.update(
                    status=CLAIMED,
                    attempts=data["attempts"] + 1,
                    claimed=now,
                    started=None,
                    worker=None,
                )
                data["error"] = json.loads(data["error"]) if data["error"] else None
                out.append((Invocation(**data), event))
            db.executemany(
                "UPDATE invocations SET status = ?, attempts = attempts + 1, claimed = ?, "
                "started = NULL, worker = NULL WHERE id = ?",
                [(CLAIMED, now, inv.id) for inv, _ in out],
            )
        return out

    def start(self, starts: Sequence[Start]) -> None:
        """Mark claimed invocations running: a worker started their handler.

        A start that comes after its attempt's outcome (or of an older attempt) is
        ignored, so a late notice never turns a finished invocation back to running.
        """
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
        with self._write() as db:
            self._insert_events(db, events, now)
            for o in outcomes:
                a = o.attempt
                if a is not None:
                    self._insert_attempt(db, a)
                # A finished invocation keeps its last attempt's worker and start; one
                # queued again has neither (the attempt's are in its history).
                settled = o.status in (SUCCEEDED, FAILED)
                db.execute(
                    "UPDATE invocations SET status = ?, not_before = ?, condition = ?, "
                    "error = ?, result = ?, finished = ?, "
                    "worker = CASE WHEN ? THEN COALESCE(?, worker) END, "
                    "started = CASE WHEN ? THEN COALESCE(?, started) END WHERE id = ?",
                    (
                        o.status,
                        o.not_before,
                        o.condition,
                        json.dumps(o.error) if o.error is not None else None,
                        o.result,
                        now if settled else None,
                        settled,
                        a.worker if a is not None else None,
                        settled,
                        a.started if a is not None else None,
                        o.invocation_id,
                    ),
                )

    @staticmethod
    def _insert_attempt(db: sqlite3.Connection, a: Attempt) -> None:
        db.execute(
            "INSERT OR REPLACE INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                a.invocation_id,
                a.attempt,
                a.function,
                a.started,
                a.duration_ms,
                int(a.ok),
                a.error_type,
                a.error_message,
                a.worker,
                int(a.cold_start),
                a.max_memory_mb,
                a.logs,
                a.logs_truncated,
            ),
        )

    def release(self, ids: Sequence[str] | None = None) -> int:
        """Give claimed invocations back to the queue; return how many.

        ``ids``: claims that never started (a dispatcher stopping gives back what its
        executor had not begun); such a claim is as if never made. None: everything a
        dispatcher that died left active (`Runtime` does this at start). An attempt
        that was running then died with its worker: it is recorded as a failed attempt
        (``Runtime.ExitError``, saying the worker was lost, with its start, its worker
        and how long it ran at least: until the dispatcher's last sign of life, see
        `beat`), as Lambda records a sandbox that died, but it is not charged against
        the retry budget (``uncharged``): delivery is at least once, and handlers guard
        effects with `reelay.idempotency`.
        """
        unstarted = (
            "UPDATE invocations SET status = ?, attempts = MAX(attempts - 1, 0), claimed = NULL "
            "WHERE status = ?"
        )
        with self._write() as db:
            if ids is not None:
                db.executemany(unstarted + " AND id = ?", [(QUEUED, CLAIMED, id_) for id_ in ids])
                return len(ids)
            count = db.execute(unstarted, (QUEUED, CLAIMED)).rowcount
            running = db.execute(
                "SELECT id, attempts, function, started, worker FROM invocations WHERE status = ?",
                (RUNNING,),
            ).fetchall()
            seen = db.execute("SELECT value FROM meta WHERE key = 'alive'").fetchone()
            alive = float(seen[0]) if seen else 0.0
            for r in running:
                error = _lost_error(r["worker"])
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
                    (QUEUED, json.dumps(error), r["id"]),
                )
        return count + len(running)

    def next_due(self) -> float | None:
        """When the earliest queued invocation becomes ready, if any."""
        row = (
            self._db()
            .execute("SELECT MIN(not_before) FROM invocations WHERE status = ?", (QUEUED,))
            .fetchone()
        )
        return float(row[0]) if row[0] is not None else None

    def expired(self, now: float) -> list[tuple[Invocation, Event]]:
        """Queued invocations whose event is older than their maximum event age."""
        rows = (
            self._db()
            .execute(
                "SELECT i.* FROM invocations i WHERE i.status = ? AND i.expires < ?", (QUEUED, now)
            )
            .fetchall()
        )
        return [(inv, self.event(inv.event_seq)) for inv in map(_invocation, rows)]

    # -- reading -------------------------------------------------------------------------

    def invocation(self, request_id: str) -> Invocation:
        row = self._db().execute("SELECT * FROM invocations WHERE id = ?", (request_id,)).fetchone()
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
        page = None
        if before is not None:
            page = (
                "(created, rowid) < (SELECT created, rowid FROM invocations WHERE id = ?)",
                (before,),
            )
        rows = self._select(
            "invocations",
            "created DESC, rowid DESC",
            limit,
            page,
            function=function,
            status=status,
            event_seq=event_seq,
        )
        return [_invocation(r) for r in rows]

    def ready(self, functions: Sequence[str], now: float) -> dict[str, str]:
        """Queued invocations of ``functions`` ready at ``now``: id -> function."""
        if not functions:
            return {}
        rows = self._db().execute(
            "SELECT id, function FROM invocations WHERE status = ? AND not_before <= ? "
            f"AND function IN ({','.join('?' * len(functions))})",
            (QUEUED, now, *functions),
        )
        return {r[0]: r[1] for r in rows}

    def pending(self) -> tuple[int, float | None]:
        """How many invocations are queued, and when the oldest one's event came."""
        count, oldest = (
            self._db()
            .execute("SELECT COUNT(*), MIN(created) FROM invocations WHERE status = ?", (QUEUED,))
            .fetchone()
        )
        return int(count), oldest

    def counts_by_function(self, statuses: Sequence[str]) -> dict[tuple[str, str], int]:
        """How many invocations each function has in each of ``statuses``:
        (function, status) -> count, for the pairs that have any."""
        rows = self._db().execute(
            "SELECT function, status, COUNT(*) FROM invocations "
            f"WHERE status IN ({','.join('?' * len(statuses))}) GROUP BY function, status",
            tuple(statuses),
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def event_counts(self) -> dict[str, int]:
        """Events in the log by kind (s3, event, invoke, invoke-async, schedule)."""
        rows = self._db().execute("SELECT kind, COUNT(*) FROM events GROUP BY kind")
        return {r[0]: r[1] for r in rows}

    def attempts_ended_since(self, since: float, longest_s: float) -> list[tuple[float, bool]]:
        """(duration in ms, ok) of the attempts that ended at ``since`` or later;
        ``longest_s`` bounds how long an attempt can run (so old ones are skipped by
        index, not read)."""
        rows = self._db().execute(
            "SELECT duration_ms, ok FROM attempts "
            "WHERE started >= ? AND started + duration_ms / 1000.0 >= ?",
            (since - longest_s, since),
        )
        return [(r[0], bool(r[1])) for r in rows]

    def attempt_totals(self, bounds: Sequence[float]) -> list[AttemptTotals]:
        """Every function's attempts by outcome, with how many took at most each of
        ``bounds`` (seconds): the whole history, summed where it is stored."""
        outcome = (
            "CASE WHEN ok THEN 'success' WHEN error_type = 'Sandbox.Timedout' THEN 'timeout' "
            "ELSE 'error' END"
        )
        sums = "".join(", SUM(duration_ms <= ?)" for _ in bounds)
        rows = self._db().execute(
            f"SELECT function, {outcome} AS outcome, COUNT(*), SUM(attempt > 1), "
            f"SUM(cold_start), SUM(duration_ms) / 1000.0{sums} "
            "FROM attempts GROUP BY function, outcome",
            tuple(b * 1000.0 for b in bounds),
        )
        return [AttemptTotals(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6:])) for r in rows]

    def function_stats(self) -> dict[str, FunctionStats]:
        """Each function's attempts, errors, average and longest duration, last start."""
        rows = self._db().execute(
            "SELECT function, COUNT(*), SUM(NOT ok), AVG(duration_ms), MAX(duration_ms), "
            "MAX(started) FROM attempts GROUP BY function"
        )
        return {r[0]: FunctionStats(r[1], r[2] or 0, r[3], r[4], r[5]) for r in rows}

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run one read-only query, for observers (metrics, title views) that aggregate
        in SQL rather than load every row."""
        return self._db().execute(sql, args).fetchall()

    def counts(self) -> dict[str, int]:
        rows = (
            self._db()
            .execute("SELECT status, COUNT(*) FROM invocations GROUP BY status")
            .fetchall()
        )
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
        out = []
        for r in rows:
            data = dict(r)
            data["ok"], data["cold_start"] = bool(data["ok"]), bool(data["cold_start"])
            out.append(Attempt(**data))
        return out

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
            sql += f" AND id IN ({','.join('?' * len(ids))})"
            args += list(ids)
        if function:
            sql += " AND function = ?"
            args.append(function)
        with self._write() as db:
            count = db.execute(sql, args).rowcount
        self.doorbell.ring()
        return count

    # -- small key-value state ---------------------------------------------------------

    def beat(self, now: float) -> None:
        """The dispatcher's sign of life while attempts run: what `release` takes as a
        lower bound of how long a lost attempt ran."""
        self.set_meta("alive", repr(now))

    def get_meta(self, key: str) -> str | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def add_throttles(self, by_function: Mapping[str, int]) -> None:
        """Count invocations held back by their function's reserved concurrency."""
        with self._write() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                [(f"throttles:{fn}", str(n)) for fn, n in by_function.items()],
            )

    def throttles(self) -> dict[str, int]:
        rows = self.read("SELECT key, value FROM meta WHERE key LIKE 'throttles:%'")
        return {r[0].partition(":")[2]: int(r[1]) for r in rows}

    def fire_schedule(self, key: str, fired_at: str, event: NewEvent) -> bool:
        """Append a scheduled event once per fire time; False if it was already fired."""
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] >= fired_at:
                return False
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, fired_at))
            self._insert_events(db, [event], time.time())
        return True

    # -- barriers ----------------------------------------------------------------------

    def arrive(self, name: str, part: str, parts: int, event: NewEvent) -> Arrival:
        """Record that ``part`` of barrier ``name`` is done; the arrival that completes
        it appends ``event``, in the same transaction, exactly once.

        Arriving twice with the same part counts once, so a retried or redelivered
        invocation cannot complete a barrier early nor fire it twice.
        """
        if not isinstance(parts, int) or isinstance(parts, bool) or parts < 1:
            raise ValueError(f"barrier {name!r}: parts must be a positive integer, got {parts!r}")
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO barriers (name, parts, fired) VALUES (?, ?, NULL)",
                (name, parts),
            )
            row = db.execute("SELECT parts, fired FROM barriers WHERE name = ?", (name,)).fetchone()
            if row["parts"] != parts:
                raise ValueError(
                    f"barrier {name!r} has {row['parts']} parts; an arrival said {parts}"
                )
            db.execute(
                "INSERT OR IGNORE INTO barrier_parts (name, part, time) VALUES (?, ?, ?)",
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
        if fired:
            self.doorbell.ring()
        return Arrival(name, arrived, parts, fired)

    def barrier(self, name: str) -> Arrival | None:
        """How far barrier ``name`` is (``fired`` tells whether it completed), or None."""
        db = self._db()
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
        with self._write() as db:
            row = db.execute(
                "SELECT status, owner, expires, result FROM idempotency WHERE key = ?", (key,)
            ).fetchone()
            if row is not None:
                if row["status"] == "completed":
                    return "done", row["result"]
                if row["expires"] > now and row["owner"] != owner:
                    return "busy", None
            db.execute(
                "INSERT OR REPLACE INTO idempotency (key, status, owner, expires, result) "
                "VALUES (?, 'in_progress', ?, ?, NULL)",
                (key, owner, expires),
            )
        return "run", None

    def idempotency_complete(self, key: str, owner: str, result: str) -> None:
        """Record the key's result; only its holder can (a taken-over holder cannot)."""
        with self._write() as db:
            db.execute(
                "UPDATE idempotency SET status = 'completed', result = ? "
                "WHERE key = ? AND owner = ?",
                (result, key, owner),
            )

    def idempotency_release(self, key: str, owner: str) -> None:
        """Give the key up after a failed effect; only its holder can."""
        with self._write() as db:
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
        """Record, durably, that ``operation`` (put or delete) of an object is about to
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
        with self._write() as db:
            cur = db.execute("DELETE FROM intents WHERE id = ?", (intent_id,))
            if if_pending and cur.rowcount == 0:
                return []
            out = self._insert_events(db, events, time.time())
        if out:
            self.doorbell.ring()
        return out

    def intents(self, older_than: float | None = None) -> list[Intent]:
        """The intents not yet settled, oldest first; only those begun before
        ``older_than`` (epoch seconds) if given."""
        db = self._db()
        if older_than is None:
            rows = db.execute("SELECT * FROM intents ORDER BY time").fetchall()
        else:
            sql = "SELECT * FROM intents WHERE time < ? ORDER BY time"
            rows = db.execute(sql, (older_than,)).fetchall()
        return [Intent(**dict(r)) for r in rows]
