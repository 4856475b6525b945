"""Streams: named, sharded, ordered logs of records with Kinesis semantics. A backend
plugs in here.

Chosen by URL (``REELAY_STREAMS`` / ``--streams``): empty (the default) is the embedded
segment log in the home (``<home>/streams``, one machine, every put on disk before it
returns); ``redis://host:port/db`` is Redis Streams, which many machines can share
(``reelay[redis]``; ``?prefix=NAME`` keeps one deployment's keys apart from another's).

What a stream is, as on Kinesis: a name, shards that split the 128-bit hash-key space
evenly, and a retention period (24 h unless set) after which records are trimmed. A
record is a data blob with a partition key; the key's MD5, read as a 128-bit number,
picks the shard whose range holds it (an explicit hash key overrides it). Each shard
numbers its records with strictly increasing sequence numbers: decimal strings of
integers, compared as numbers.

`Streams` is the contract; tests/streams/test_conformance.py holds every backend to it.
Errors of a backend reach callers as `reelay.errors.StreamError` and its subclasses.
The Kinesis API (`reelay.streams.kinesis`) and stream triggers sit on top of it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from reelay.errors import ConfigError, InvalidStreamArgumentError

__all__ = [
    "DEFAULT_RETENTION_HOURS",
    "HASH_SPACE",
    "MAX_PARTITION_KEY",
    "MAX_RECORD_BYTES",
    "MAX_RETENTION_HOURS",
    "MAX_SHARDS",
    "POSITIONS",
    "STREAMS_SCHEMES",
    "Batch",
    "Position",
    "Put",
    "PutRequest",
    "Record",
    "Rejected",
    "Shard",
    "StreamInfo",
    "Streams",
    "check_request",
    "check_retention",
    "check_stream_name",
    "check_streams_url",
    "hash_key",
    "hash_keys",
    "open_streams",
    "shard_for",
    "shard_id",
    "split_evenly",
]

MAX_RECORD_BYTES = 1 << 20  # data plus partition key, as Kinesis counts a record
MAX_PARTITION_KEY = 256  # characters
HASH_SPACE = 1 << 128
DEFAULT_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760  # 365 days, Kinesis's longest
MAX_SHARDS = 1024  # per stream here (Kinesis's default account limit is 500 or more)
STREAMS_SCHEMES = ("redis://", "rediss://")
POSITIONS = (
    "TRIM_HORIZON",
    "LATEST",
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "AT_TIMESTAMP",
)
_NAME = re.compile(r"[a-zA-Z0-9_.-]{1,128}")


@dataclass(frozen=True)
class Shard:
    """One shard: its id (``shardId-000000000000``), its inclusive hash-key range, and
    the sequence number range it holds (``ending`` is set once a shard is closed)."""

    shard_id: str
    starting_hash_key: int
    ending_hash_key: int
    starting_sequence_number: str
    ending_sequence_number: str | None = None
    parent_shard_id: str | None = None
    adjacent_parent_shard_id: str | None = None


@dataclass(frozen=True)
class StreamInfo:
    name: str
    shards: tuple[Shard, ...]
    retention_hours: int
    created: float  # epoch seconds
    status: str = "ACTIVE"


@dataclass(frozen=True)
class PutRequest:
    """A record to put: ``data`` up to `MAX_RECORD_BYTES` with its partition key."""

    partition_key: str
    data: bytes
    explicit_hash_key: int | None = None


@dataclass(frozen=True)
class Put:
    """A record that was put: the shard and the sequence number it got."""

    shard_id: str
    sequence_number: str


@dataclass(frozen=True)
class Rejected:
    """A record that was not put (the others of the same call may have been): a Kinesis
    error code (``InternalFailure``, ``ProvisionedThroughputExceededException``) and why."""

    code: str
    message: str


@dataclass(frozen=True)
class Record:
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds, millisecond precision: when the backend stored it


@dataclass(frozen=True)
class Position:
    """Where to start reading a shard, as a Kinesis shard iterator type names it.

    ``sequence_number`` goes with ``AT_``/``AFTER_SEQUENCE_NUMBER``, ``timestamp`` (epoch
    seconds) with ``AT_TIMESTAMP``."""

    kind: Literal[
        "TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "AT_TIMESTAMP"
    ]
    sequence_number: str | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class Batch:
    """Records read from one shard, in order; ``next`` is the cursor to read on from;
    ``millis_behind`` is how far the last record returned (or the cursor, when none was)
    is behind the shard's newest record, 0 when caught up."""

    records: list[Record]
    next: int
    millis_behind: int


class Streams(Protocol):
    """The stream backend's contract. Thread-safe; several processes may share one.

    Reading is by *cursor*: an integer ``c`` that reads the shard's records whose
    sequence numbers are ``>= c`` (`locate` turns a `Position` into one, fixed at that
    moment: ``LATEST`` is "after the newest record now"). Records trimmed by retention
    are skipped: a cursor behind the trim horizon reads from the oldest record kept.
    """

    url: str

    def create_stream(
        self, name: str, shards: int, *, retention_hours: int = DEFAULT_RETENTION_HOURS
    ) -> StreamInfo: ...
    def delete_stream(self, name: str) -> None: ...
    def list_streams(self) -> list[str]: ...
    def describe(self, name: str) -> StreamInfo: ...
    def set_retention(self, name: str, hours: int) -> StreamInfo: ...
    def put(self, name: str, records: Sequence[PutRequest]) -> list[Put | Rejected]:
        """Put records (in the order given within each shard); every record `Put` is
        durable (as the backend is) when this returns."""
        ...

    def locate(self, name: str, shard_id: str, position: Position) -> int: ...
    def read(self, name: str, shard_id: str, cursor: int, *, limit: int = 10000) -> Batch: ...
    def trim(self, now: float | None = None) -> int:
        """Drop records older than their stream's retention; return how many went."""
        ...

    def close(self) -> None: ...


# -- shared rules -------------------------------------------------------------------------


def check_stream_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidStreamArgumentError(
            f"stream name {name!r} is not valid: 1 to 128 letters, digits, '_', '.' or '-'"
        )
    return name


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def split_evenly(count: int) -> list[tuple[int, int]]:
    """The inclusive hash-key ranges of ``count`` shards that split the space evenly."""
    if not isinstance(count, int) or not 1 <= count <= MAX_SHARDS:
        raise InvalidStreamArgumentError(f"shard count {count!r} must be 1 to {MAX_SHARDS}")
    step = HASH_SPACE // count
    return [
        (i * step, HASH_SPACE - 1 if i == count - 1 else (i + 1) * step - 1) for i in range(count)
    ]


def hash_key(request: PutRequest) -> int:
    """The 128-bit hash key of a record: its explicit hash key, or its partition key's MD5."""
    if request.explicit_hash_key is not None:
        return request.explicit_hash_key
    return int.from_bytes(hashlib.md5(request.partition_key.encode()).digest(), "big")


def hash_keys(requests: Sequence[PutRequest]) -> list[int]:
    """Every record checked (`check_request`: the first that breaks a rule is refused)
    and the hash keys of all (`hash_key`). A put's records often share partition keys,
    so each key's MD5 is taken once per call."""
    keys: list[int] = []
    add = keys.append
    seen: dict[str, int] = {}
    md5, from_bytes = hashlib.md5, int.from_bytes
    for request in requests:
        check_request(request)
        explicit = request.explicit_hash_key
        if explicit is not None:
            add(explicit)
            continue
        partition_key = request.partition_key
        key = seen.get(partition_key)
        if key is None:
            key = seen[partition_key] = from_bytes(md5(partition_key.encode()).digest(), "big")
        add(key)
    return keys


def shard_for(shards: Sequence[Shard], request: PutRequest) -> Shard:
    """The open shard whose hash-key range holds the record's hash key."""
    key = hash_key(request)
    for shard in shards:
        if shard.ending_sequence_number is None and (
            shard.starting_hash_key <= key <= shard.ending_hash_key
        ):
            return shard
    raise InvalidStreamArgumentError(f"no open shard holds hash key {key}")  # pragma: no cover


def check_request(request: PutRequest) -> None:
    """Refuse a record Kinesis would refuse, naming the rule it breaks."""
    key = request.partition_key
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_PARTITION_KEY:
        raise InvalidStreamArgumentError(
            f"partition key must be 1 to {MAX_PARTITION_KEY} characters, not {len(key)}"
        )
    size = len(request.data) + len(key.encode())
    if size > MAX_RECORD_BYTES:
        raise InvalidStreamArgumentError(
            f"record of {size} bytes (data and partition key) is over the {MAX_RECORD_BYTES}"
            " byte limit"
        )
    ehk = request.explicit_hash_key
    if ehk is not None and not 0 <= ehk < HASH_SPACE:
        raise InvalidStreamArgumentError(f"explicit hash key {ehk} is outside 0 to 2^128-1")


def check_retention(hours: object) -> int:
    if (
        not isinstance(hours, int)
        or isinstance(hours, bool)
        or not 1 <= hours <= MAX_RETENTION_HOURS
    ):
        raise InvalidStreamArgumentError(
            f"retention {hours!r} must be a whole number of hours, 1 to {MAX_RETENTION_HOURS}"
        )
    return hours


# -- choosing a backend -------------------------------------------------------------------


def check_streams_url(url: str | None) -> str:
    """The URL itself when it names a backend reelay has, else a `ConfigError` that
    lists the valid ones."""
    url = url or ""
    if url and not url.startswith(STREAMS_SCHEMES):
        raise ConfigError(
            f"streams URL {url!r}: unknown scheme; use nothing (the embedded log in the home)"
            " or redis://host:port/db"
        )
    return url


def open_streams(url: str | None, home: Path) -> Streams:
    """The backend a URL names (see the module's docstring)."""
    url = check_streams_url(url)
    if url.startswith(STREAMS_SCHEMES):
        from reelay.streams._redis import RedisStreams

        return RedisStreams(url)
    from reelay.streams._embedded import EmbeddedStreams

    return EmbeddedStreams(home / "streams")
