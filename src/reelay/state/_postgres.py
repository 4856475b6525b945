"""The State on PostgreSQL (``postgresql://...``): for a home served from many machines.

psycopg 3 with a connection pool (the ``reelay[postgres]`` extra). What differs from
the embedded backend:

- Claims take their rows with ``FOR UPDATE SKIP LOCKED``: claimers never wait for each
  other nor take one invocation twice.
- Appends to the event log are serialised by a transaction-scoped advisory lock, so
  that sequence numbers commit in order (a reader that saw seq 11 never misses a 10
  committed after it); transactions that name a barrier, an idempotency key or a
  schedule take an advisory lock on that name.
- The doorbell is ``LISTEN``/``NOTIFY`` (sent in the transaction: delivered at commit).
- The dispatcher lock is a session advisory lock: it goes with its connection, so a
  dispatcher killed on another machine frees it within the server's notice of the
  dropped connection; a standby dispatcher takes over then.
- Times are ``double precision`` epoch seconds; event bodies, errors and results JSONB.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from reelay.errors import ConfigError, HomeBusyError, StateError
from reelay.state._model import parse_json
from reelay.state._sql import JsonPath, SQLState, translating

try:
    import psycopg
    import psycopg_pool
    from psycopg.types.string import TextLoader
except ImportError:  # pragma: no cover - reported when a postgresql:// state is opened
    psycopg = None  # type: ignore[assignment]

_LOG_LOCK = "reelay:events"  # serialises appends to the event log
_DISPATCHER_LOCK = "reelay:dispatcher"
_MIGRATION_LOCK = "reelay:schema"
# Lock keys and the doorbell's channel are the schema's: one database may hold several
# states, a schema each (``?options=-csearch_path%3Dname`` in the URL).
_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || %s, 0))"
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || %s, 0))"


@lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """A statement written with ``?`` placeholders, in psycopg's ``%s`` style."""
    return sql.replace("%", "%%").replace("?", "%s")


def _clean(value: Any) -> Any:
    # PostgreSQL text holds no NUL character, nor JSONB a \u0000 escape: a handler's
    # logs or result may (the embedded backend keeps them).
    if isinstance(value, str) and ("\x00" in value or "\\u0000" in value):
        return value.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
    return value


class _Row:
    """A row by position or by column name; ``dict(row)`` gives every column."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: Mapping[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, key: Any) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> Any:
        return self._index.keys()


def _rows(cursor: Any) -> Any:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: _Row(values, index)


class _PipelinedCursor:
    """A cursor of a pipelined transaction: its row count waits for the server's answer
    (rows do so by themselves; a count read before it would be -1)."""

    def __init__(self, cursor: Any, pipeline: Any) -> None:
        self._cursor, self._pipeline = cursor, pipeline

    @property
    def rowcount(self) -> int:
        self._pipeline.sync()
        return int(self._cursor.rowcount)

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)


class _Connection:
    """A psycopg connection as the State asks for one (see `reelay.state._sql.Connection`)."""

    def __init__(self, conn: Any, pipeline: Any = None) -> None:
        self.conn = conn
        self.pipeline = pipeline

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        cursor = self.conn.execute(_pg(sql), [_clean(a) for a in args])
        return cursor if self.pipeline is None else _PipelinedCursor(cursor, self.pipeline)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_pg(sql), [[_clean(a) for a in row] for row in rows])


def _configure(conn: Any) -> None:
    conn.row_factory = _rows
    # JSONB columns read back as JSON text, as the embedded backend stores them.
    conn.adapters.register_loader("jsonb", TextLoader)


def _connect(url: str) -> Any:
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    _configure(conn)
    return conn


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)


class _NotifyListener:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def fileno(self) -> int:
        return int(self.conn.pgconn.socket)

    def drain(self) -> None:
        pgconn = self.conn.pgconn
        pgconn.consume_input()
        while pgconn.notifies() is not None:
            pass

    def close(self) -> None:
        self.conn.close()


@translating
class PostgresState(SQLState):
    """The State in a PostgreSQL database. Thread-safe and fork-aware: a pool per process."""

    shared = True
    row_order = "n"
    claim_lock = " FOR UPDATE OF i SKIP LOCKED"
    types: ClassVar[Mapping[str, str]] = {
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "bigint": "BIGINT",
        "real": "DOUBLE PRECISION",
        "json": "JSONB",
        "order_column": "n BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,",
    }

    def __init__(self, url: str, *, create: bool = True, pool_size: int = 10) -> None:
        self.url = url
        self.where = redacted(url)
        if psycopg is None:
            raise ConfigError(
                f"REELAY_STATE={self.where}: PostgreSQL needs psycopg; "
                "install reelay with the postgres extra: pip install 'reelay[postgres]'"
            )
        self.errors = (psycopg.Error,)
        self._pool_size = pool_size
        self._pool: Any = None
        self._pid = 0
        self._guard = threading.Lock()
        self._lock_conn: Any = None
        self._migrate(create)

    def _migrate(self, create: bool) -> None:
        """Create the schema, or bring an older one up to date, under a lock."""
        with _connect(self.url) as conn, conn.transaction():
            conn.execute(_XACT_LOCK, (_MIGRATION_LOCK,))
            schema, exists = conn.execute(
                "SELECT current_schema(), to_regclass('meta') IS NOT NULL"
            ).fetchone()
            if schema is None:
                raise StateError(f"state {self.where}: its search_path names no schema that exists")
            self._channel = f"reelay:{schema}"
            if not (exists or create):
                raise StateError(f"state {self.where}: there is none (no reelay schema there)")
            db = _Connection(conn)
            self._bring_up_to_date(db, self._schema_version(db) if exists else 0)

    # -- connections and transactions ------------------------------------------------

    def _connections(self) -> Any:
        pid = os.getpid()
        if self._pool is None or self._pid != pid:
            with self._guard:
                if self._pool is None or self._pid != pid:  # a forked child makes its own
                    self._pool = psycopg_pool.ConnectionPool(
                        self.url,
                        min_size=1,
                        max_size=self._pool_size,
                        kwargs={"autocommit": True, "connect_timeout": 10},
                        configure=_configure,
                        timeout=60,
                        name="reelay-state",
                        open=True,
                    )
                    self._pid = pid
        return self._pool

    @contextlib.contextmanager
    def _read(self) -> Iterator[_Connection]:
        with self._connections().connection() as conn:
            yield _Connection(conn)

    @contextlib.contextmanager
    def _write(self, *, lock: str | None = None, ring: bool = False) -> Iterator[_Connection]:
        # Pipelined: what is not read back (BEGIN, a lock, writes, the doorbell, COMMIT)
        # goes without waiting for each answer, so a transaction costs a round trip or
        # two instead of one per statement.
        with (
            self._connections().connection() as conn,
            conn.pipeline() as pipeline,
            conn.transaction(),
        ):
            if lock is not None:
                conn.execute(_XACT_LOCK, (lock,))
            yield _Connection(conn, pipeline)
            if ring:
                conn.execute("SELECT pg_notify(%s, '')", (self._channel,))

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[_Connection]:
        with self._connections().connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield _Connection(conn)

    def _insert_events(self, db: Any, events: Sequence[Any], now: float) -> list[Any]:
        if events:
            db.conn.execute(_XACT_LOCK, (_LOG_LOCK,))
        return super()._insert_events(db, events, now)

    def json_text(self, column: str, path: JsonPath) -> str:
        return f"({column} #>> '{{{','.join(map(str, path))}}}')"

    def json_number(self, column: str, path: JsonPath) -> str:
        return f"CAST({self.json_text(column, path)} AS DOUBLE PRECISION)"

    def json_value(self, text: str | None) -> str | None:
        # JSONB has no NaN nor Infinity, which Python writes: stored as the null readers
        # take them for (`parse_json`).
        if text is not None and ("NaN" in text or "Infinity" in text):
            try:
                return json.dumps(parse_json(text))
            except ValueError:
                return text
        return text

    def listen(self) -> _NotifyListener:
        conn = _connect(self.url)
        conn.execute('LISTEN "' + self._channel.replace('"', '""') + '"')
        return _NotifyListener(conn)

    @contextlib.contextmanager
    def dispatcher_lock(self, *, wait: bool = False) -> Iterator[None]:
        conn = self._take_dispatcher_lock(wait)
        try:
            yield
        finally:
            self._lock_conn = None
            conn.close()  # the session ends, and its advisory lock with it

    def _take_dispatcher_lock(self, wait: bool) -> Any:
        try:
            conn = _connect(self.url)
        except psycopg.Error as exc:
            raise StateError(f"state {self.where}: dispatcher lock failed: {exc}") from exc
        try:
            while not conn.execute(_TRY_LOCK, (_DISPATCHER_LOCK,)).fetchone()[0]:
                if not wait:
                    holder = self.get_meta("dispatcher") or "unknown"
                    raise HomeBusyError(
                        f"another dispatcher ({holder}) is already serving {self.where}"
                    )
                time.sleep(0.5)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise StateError(f"state {self.where}: dispatcher lock failed: {exc}") from exc
            raise
        self._lock_conn = conn
        self.set_meta("dispatcher", f"{socket.gethostname()} pid {os.getpid()}")
        return conn

    def beat(self, now: float) -> None:
        conn = self._lock_conn
        if conn is not None:  # a dispatcher whose lock went with its connection must stop
            try:
                conn.execute("SELECT 1")
            except psycopg.Error as exc:
                raise StateError(
                    f"state {self.where}: the dispatcher lock was lost with its connection "
                    f"({exc}); another dispatcher may take over"
                ) from exc
        super().beat(now)

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None and self._pid == os.getpid():
            pool.close()
