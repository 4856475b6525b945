"""The embedded State backend: one SQLite database in WAL mode (``<home>/state.db``).

Several processes of one machine may share it: SQLite serialises writers (every write
transaction is ``BEGIN IMMEDIATE``), and every writer that made work rings a datagram
socket in the home after it commits, so that a waiting dispatcher wakes at once
instead of polling (`SocketDoorbell`). The dispatcher lock is an ``flock`` on a file
in the home.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from reelay.errors import HomeBusyError, StateError
from reelay.state._sql import JsonPath, SQLState, translating

# Homes made before the schema had a version number may lack columns added since:
# (table, column, declaration, what fills it in for the rows already there). Opening
# such a home adds them in place, then stamps it version 1.
UNVERSIONED_COLUMNS = (
    ("events", "root", "REAL", None),
    ("invocations", "claimed", "REAL", None),
    ("invocations", "rank", "REAL", "UPDATE invocations SET rank = created"),
    ("invocations", "uncharged", "INTEGER NOT NULL DEFAULT 0", None),
)


class SocketDoorbell:
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

    def listen(self) -> _SocketListener | None:
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
        return _SocketListener(sock, self.path)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None


class _SocketListener:
    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock, self.path = sock, path

    def fileno(self) -> int:
        return self.sock.fileno()

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self.sock.recv(4096):
                pass

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@translating
class SQLiteState(SQLState):
    """The State in ``<home>/state.db``. Thread-safe; one connection per thread."""

    errors = (sqlite3.Error,)
    shared = False
    row_order = "rowid"
    claim_lock = ""  # BEGIN IMMEDIATE already holds the database's write lock
    types: ClassVar[Mapping[str, str]] = {
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "bigint": "INTEGER",
        "real": "REAL",
        "json": "TEXT",
        "order_column": "",  # SQLite's rowid
    }

    def __init__(self, home: Path, *, durability: str = "process", create: bool = True) -> None:
        self.home = home
        self.path = home / "state.db"
        self.url = f"sqlite://{self.path}"
        self.where = str(self.path)
        if not create and not self.path.exists():
            raise StateError(f"state {self.path}: there is none (no reelay home there)")
        home.mkdir(parents=True, exist_ok=True)
        self._synchronous = "FULL" if durability == "power" else "NORMAL"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.doorbell = SocketDoorbell(home)
        self._migrate()

    def _migrate(self) -> None:
        """Create the schema, or bring an older home's up to date (idempotent)."""
        with self._write() as db:
            version = 0
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                version = self._schema_version(db)
            if version == 0:  # new, or made before versions: add what it may lack
                for table, column, declaration, backfill in UNVERSIONED_COLUMNS:
                    names = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                    if names and column not in names:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
                        if backfill is not None:
                            db.execute(backfill)
            self._bring_up_to_date(db, version)

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
    def _read(self) -> Iterator[sqlite3.Connection]:
        yield self._db()

    @contextlib.contextmanager
    def _write(
        self, *, lock: str | None = None, ring: bool = False
    ) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # one writer at a time: ``lock`` needs nothing more
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if ring:
            self.doorbell.ring()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def json_text(self, column: str, path: JsonPath) -> str:
        steps = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
        return f"json_extract({column}, '${steps}')"

    def json_number(self, column: str, path: JsonPath) -> str:
        # What a handler returned may not be JSON that SQLite parses (NaN): skipped.
        return self.json_text(f"CASE WHEN json_valid({column}) THEN {column} END", path)

    def listen(self) -> _SocketListener | None:
        return self.doorbell.listen()

    @contextlib.contextmanager
    def dispatcher_lock(self, *, wait: bool = False) -> Iterator[None]:
        with open(self.home / "dispatcher.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise HomeBusyError(
                    f"another dispatcher (pid {holder}) is already serving "
                    f"{self.home}; stop it or use another --home"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            self._connections.clear()
        self._local = threading.local()
        self.doorbell.close()
