"""Streams on Redis Streams (``redis://host:port/db?prefix=NAME``), which many machines
can share. Needs redis-py: ``pip install 'reelay[redis]'``.

Keys, all under the prefix (``reelay`` unless the URL's ``?prefix=`` says otherwise)::

    {prefix}:streams                    a set of the stream names
    {prefix}:stream:{name}              a hash: shard count, retention hours, created
    {prefix}:stream:{name}:{shardId}    one Redis stream per shard; each entry holds
                                        ``k`` (the partition key) and ``d`` (the data)

A record's sequence number is its entry id ``ms-n`` read as the integer
``ms * 10**10 + n`` (a decimal string; a cursor turns back into an id the same way), and
its arrival is the id's milliseconds: Redis assigns both, in order, when it stores the
entry. A `put` is one script: it checks the shard count the records were routed by
(cached per stream; a stream made again with another count is routed again) and
``XADD``s them all; records are durable as the Redis server is configured to make them
(``appendfsync``). Retention trims with
``XTRIM MINID``; creating and deleting a stream are Lua scripts, so they are atomic.
Puts use ``XADD NOMKSTREAM``: a put racing a delete does not bring a shard back.

Errors: a server that cannot be reached raises `reelay.errors.StreamUnavailableError`
naming the URL (without its password); other Redis errors raise
`reelay.errors.StreamError`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from reelay.errors import (
    ConfigError,
    StreamError,
    StreamExistsError,
    StreamNotFoundError,
    StreamUnavailableError,
)
from reelay.streams import (
    DEFAULT_RETENTION_HOURS,
    HASH_SPACE,
    Batch,
    Position,
    Put,
    PutRequest,
    Record,
    Rejected,
    Shard,
    StreamInfo,
    check_retention,
    check_stream_name,
    hash_keys,
    shard_id,
    split_evenly,
)
from reelay.streams._common import (
    READ_BYTES,
    check_cursor,
    check_limit,
    check_position,
    millis,
    sequence_number,
)

try:
    import redis
except ImportError:  # pragma: no cover - an optional extra
    redis = None  # type: ignore[assignment]

__all__ = ["RedisStreams"]

_SEQ = 10**10  # sequence number = ms * _SEQ + n for the entry id ms-n
_MAX_MS = (1 << 64) - 1  # Redis ids are two unsigned 64-bit numbers
_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_SHARD = re.compile(r"shardId-(\d{12})")
_CHUNK = 1000  # entries per XRANGE when a read needs more

# KEYS: the stream's hash, the set of names, its shard streams. ARGV: name, shard count,
# retention hours, created (epoch seconds).
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('XGROUP', 'CREATE', KEYS[i], 'reelay-create', '$', 'MKSTREAM')
  redis.call('XGROUP', 'DESTROY', KEYS[i], 'reelay-create')
end
redis.call('HSET', KEYS[1], 'shards', ARGV[2], 'retention_hours', ARGV[3], 'created', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""
# KEYS: the stream's hash, the set of names. ARGV: name, the shard streams' key prefix.
_DELETE = """
local n = redis.call('HGET', KEYS[1], 'shards')
if not n then return 0 end
for i = 0, tonumber(n) - 1 do
  redis.call('DEL', ARGV[2] .. string.format('shardId-%012d', i))
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""
# KEYS: the stream's hash, then the shard streams written to. ARGV: the shard count the
# records were routed by, then per record: its shard stream's index in KEYS, its
# partition key, its data. Returns 0 when there is no such stream, the shard count when
# it is not the one routed by, else per record its entry id (nil when its shard stream
# is gone; an error when refused).
_PUT = """
local n = redis.call('HGET', KEYS[1], 'shards')
if not n then return 0 end
if n ~= ARGV[1] then return tonumber(n) end
local ids = {}
for i = 2, #ARGV, 3 do
  ids[#ids + 1] = redis.pcall(
    'XADD', KEYS[tonumber(ARGV[i])], 'NOMKSTREAM', '*', 'k', ARGV[i + 1], 'd', ARGV[i + 2])
end
return ids
"""
# KEYS: the stream's hash. ARGV: hours.
_RETAIN = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'retention_hours', ARGV[1])
return 1
"""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", url)


def _seq(entry_id: bytes) -> int:
    ms, _, n = entry_id.partition(b"-")
    return int(ms) * _SEQ + int(n)


def _entry_id(cursor: int) -> str:
    ms, n = divmod(cursor, _SEQ)
    return f"{ms}-{n}"


class RedisStreams:
    """Streams on a Redis server. Thread-safe and fork-aware (redis-py's pool)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.where = redacted(url)
        if redis is None:
            raise ConfigError(
                f"streams URL {self.where}: Redis needs redis-py; "
                "install reelay with the redis extra: pip install 'reelay[redis]'"
            )
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefixes = [v for k, v in query if k == "prefix"]
        self.prefix = prefixes[-1] if prefixes else "reelay"
        if not _PREFIX.fullmatch(self.prefix):
            raise ConfigError(
                f"streams URL {self.where}: prefix {self.prefix!r} must be 1 to 100 letters,"
                " digits, '_', '.', ':' or '-'"
            )
        server = urlunsplit(
            parts._replace(query=urlencode([(k, v) for k, v in query if k != "prefix"]))
        )
        try:
            self._r: Any = redis.Redis.from_url(
                server, socket_connect_timeout=10, socket_timeout=60, health_check_interval=30
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"streams URL {self.where}: {exc}") from None
        self._names = f"{self.prefix}:streams"
        self._create = self._r.register_script(_CREATE)
        self._delete = self._r.register_script(_DELETE)
        self._retain = self._r.register_script(_RETAIN)
        self._put = self._r.register_script(_PUT)
        self._counts: dict[str, int] = {}  # stream name -> shard count, as last seen

    def __enter__(self) -> RedisStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._r.close()

    def __repr__(self) -> str:
        return f"RedisStreams({self.where!r})"

    # -- keys and errors --------------------------------------------------------------------

    def _meta_key(self, name: str) -> str:
        return f"{self.prefix}:stream:{name}"

    def _shard_key(self, name: str, sid: str) -> str:
        return f"{self.prefix}:stream:{name}:{sid}"

    @contextlib.contextmanager
    def _talking(self, what: str) -> Iterator[None]:
        """Translate redis-py's errors, naming the server and what was being done."""
        try:
            yield
        except redis.AuthenticationError as exc:
            raise StreamError(
                f"Redis at {self.where} refused the credentials ({what}): {exc}"
            ) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StreamUnavailableError(
                f"Redis at {self.where} cannot be reached ({what}): {exc}"
            ) from None
        except redis.RedisError as exc:
            raise StreamError(f"Redis at {self.where}: {what} failed: {exc}") from None

    def _info(self, name: str, fields: dict[bytes, bytes] | None) -> StreamInfo:
        if not fields:
            raise StreamNotFoundError(f"stream {name!r} not found")
        created = float(fields[b"created"])
        first = str(round(created * 1000) * _SEQ)
        return StreamInfo(
            name,
            tuple(
                Shard(shard_id(i), lo, hi, first)
                for i, (lo, hi) in enumerate(split_evenly(int(fields[b"shards"])))
            ),
            int(fields[b"retention_hours"]),
            created,
        )

    def _shard_key_checked(self, name: str, sid: str, count: bytes | None) -> str:
        """The key of a shard the stream has (``count``: its shard count, None when the
        stream does not exist)."""
        if count is None:
            raise StreamNotFoundError(f"stream {name!r} not found")
        match = _SHARD.fullmatch(sid) if isinstance(sid, str) else None
        if match is None or int(match.group(1)) >= int(count):
            raise StreamNotFoundError(
                f"stream {name!r} has no shard {sid!r} (its shards: {shard_id(0)} to"
                f" {shard_id(int(count) - 1)})"
            )
        return self._shard_key(name, sid)

    # -- streams ----------------------------------------------------------------------------

    def create_stream(
        self, name: str, shards: int, *, retention_hours: int = DEFAULT_RETENTION_HOURS
    ) -> StreamInfo:
        check_stream_name(name)
        split_evenly(shards)
        check_retention(retention_hours)
        keys = [self._meta_key(name), self._names]
        keys += [self._shard_key(name, shard_id(i)) for i in range(shards)]
        created = round(time.time(), 3)
        with self._talking(f"creating stream {name!r}"):
            made = self._create(keys=keys, args=[name, shards, retention_hours, repr(created)])
        if not made:
            raise StreamExistsError(f"stream {name!r} already exists")
        return self.describe(name)

    def delete_stream(self, name: str) -> None:
        check_stream_name(name)
        with self._talking(f"deleting stream {name!r}"):
            done = self._delete(
                keys=[self._meta_key(name), self._names],
                args=[name, self._meta_key(name) + ":"],
            )
        if not done:
            raise StreamNotFoundError(f"stream {name!r} not found")

    def list_streams(self) -> list[str]:
        with self._talking("listing streams"):
            names = self._r.smembers(self._names)
        return sorted(n.decode() for n in names)

    def describe(self, name: str) -> StreamInfo:
        check_stream_name(name)
        with self._talking(f"describing stream {name!r}"):
            fields = self._r.hgetall(self._meta_key(name))
        return self._info(name, fields)

    def set_retention(self, name: str, hours: int) -> StreamInfo:
        check_stream_name(name)
        check_retention(hours)
        with self._talking(f"setting the retention of stream {name!r}"):
            done = self._retain(keys=[self._meta_key(name)], args=[hours])
        if not done:
            raise StreamNotFoundError(f"stream {name!r} not found")
        return self.describe(name)

    # -- records ----------------------------------------------------------------------------

    def put(self, name: str, records: Sequence[PutRequest]) -> list[Put | Rejected]:
        check_stream_name(name)
        keys = hash_keys(records)  # one bad record refuses the call, before anything is sent
        with self._talking(f"putting records into stream {name!r}"):
            count = self._counts.get(name)
            if count is None:
                count = self._shard_count(name)
            for _ in range(10):  # routed again while the stream is made again meanwhile
                sids, shard_keys, args = self._route(name, count, records, keys)
                replies = self._put(keys=[self._meta_key(name), *shard_keys], args=args)
                if isinstance(replies, list):
                    break
                self._counts.pop(name, None)
                if not replies:
                    raise StreamNotFoundError(f"stream {name!r} not found")
                count = int(replies)
            else:
                raise StreamError(f"stream {name!r} keeps changing its shards; put again")
            if len(self._counts) >= 10000:
                self._counts.clear()
            self._counts[name] = count
        results: list[Put | Rejected] = []
        for sid, reply in zip(sids, replies, strict=True):
            if isinstance(reply, bytes):
                results.append(Put(sid, str(_seq(reply))))
            elif reply is None:  # NOMKSTREAM: the shard's stream is gone
                results.append(
                    Rejected("InternalFailure", f"stream {name!r} shard {sid} no longer exists")
                )
            else:
                results.append(Rejected("InternalFailure", f"Redis at {self.where}: {reply}"))
        return results

    def _shard_count(self, name: str) -> int:
        count = self._r.hget(self._meta_key(name), "shards")
        if count is None:
            raise StreamNotFoundError(f"stream {name!r} not found")
        return int(count)

    def _route(
        self, name: str, count: int, records: Sequence[PutRequest], keys: list[int]
    ) -> tuple[list[str], list[str], list[Any]]:
        """The shard id of each record, the shard streams' keys, and `_PUT`'s ARGV."""
        step = HASH_SPACE // count
        where: dict[int, tuple[str, str]] = {}  # shard index -> its id, its index in KEYS
        sids: list[str] = []
        shard_keys: list[str] = []
        args: list[Any] = [count]
        for request, key in zip(records, keys, strict=True):
            i = min(key // step, count - 1)
            shard = where.get(i)
            if shard is None:
                shard_keys.append(self._shard_key(name, shard_id(i)))
                shard = where[i] = (shard_id(i), str(len(shard_keys) + 1))
            sids.append(shard[0])
            args += (shard[1], request.partition_key, request.data)
        return sids, shard_keys, args

    def locate(self, name: str, shard_id: str, position: Position) -> int:
        check_stream_name(name)
        check_position(position)
        with self._talking(f"locating {position.kind} in stream {name!r}"):
            count = self._r.hget(self._meta_key(name), "shards")
            key = self._shard_key_checked(name, shard_id, count)
            kind = position.kind
            if kind == "AT_SEQUENCE_NUMBER":
                return sequence_number(position.sequence_number)
            if kind == "AFTER_SEQUENCE_NUMBER":
                return sequence_number(position.sequence_number) + 1
            if kind == "TRIM_HORIZON":
                oldest = self._r.xrange(key, count=1)
                return _seq(oldest[0][0]) if oldest else 0
            last = self._r.xinfo_stream(key)["last-generated-id"]
            latest = _seq(last if isinstance(last, bytes) else str(last).encode()) + 1
            if kind == "LATEST":
                return latest
            # AT_TIMESTAMP (check_position made sure it has its timestamp): a time after
            # the newest record is LATEST, as on the segment log, whose cursors are counts.
            return min(millis(position.timestamp or 0.0) * _SEQ, latest)

    def read(self, name: str, shard_id: str, cursor: int, *, limit: int = 10000) -> Batch:
        check_stream_name(name)
        check_cursor(cursor)
        check_limit(limit)
        records: list[Record] = []
        budget = READ_BYTES
        with self._talking(f"reading stream {name!r} shard {shard_id!r}"):
            key = self._shard_key(name, shard_id)
            # A cursor past any id Redis can make reads nothing (and is no error).
            start = _entry_id(cursor) if cursor // _SEQ <= _MAX_MS else None
            pipe = self._r.pipeline(transaction=False)
            pipe.hget(self._meta_key(name), "shards")
            pipe.xrevrange(key, count=1)
            if start is not None:
                pipe.xrange(key, min=start, count=min(limit, _CHUNK))
            count, newest, *got = pipe.execute(raise_on_error=False)
            for reply in (count, newest, *got):
                if isinstance(reply, Exception):
                    raise reply
            self._shard_key_checked(name, shard_id, count)
            entries = got[0] if got else []
            while entries:
                for entry_id, fields in entries:
                    data = fields[b"d"]
                    key_bytes = fields[b"k"]
                    seq = _seq(entry_id)
                    records.append(Record(str(seq), key_bytes.decode(), data, (seq // _SEQ) / 1000))
                    budget -= len(data) + len(key_bytes)
                    if len(records) >= limit or budget <= 0:
                        break
                if len(records) >= limit or budget <= 0 or len(entries) < _CHUNK:
                    break
                nxt = _entry_id(int(records[-1].sequence_number) + 1)
                entries = self._r.xrange(key, min=nxt, count=min(limit - len(records), _CHUNK))
        if not records:
            return Batch([], cursor, 0)
        last = int(records[-1].sequence_number)
        newest_ms = _seq(newest[0][0]) // _SEQ if newest else 0
        return Batch(records, last + 1, max(0, newest_ms - last // _SEQ))

    def trim(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        gone = 0
        with self._talking("trimming streams"):
            names = sorted(n.decode() for n in self._r.smembers(self._names))
            pipe = self._r.pipeline(transaction=False)
            for name in names:
                pipe.hmget(self._meta_key(name), "shards", "retention_hours")
            metas = pipe.execute()
            pipe = self._r.pipeline(transaction=False)
            for name, (count, hours) in zip(names, metas, strict=True):
                if count is None:
                    continue  # deleted meanwhile
                cutoff = int((now - int(hours) * 3600) * 1000)
                if cutoff <= 0:
                    continue
                for i in range(int(count)):
                    pipe.execute_command(
                        "XTRIM", self._shard_key(name, shard_id(i)), "MINID", cutoff
                    )
            gone = sum(int(n) for n in pipe.execute())
        return gone
