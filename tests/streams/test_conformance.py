"""The Streams contract, on every backend (the embedded segment log, with its default
64 MiB segments and with tiny ones so that records span many; Redis Streams): Kinesis's
routing, sequence numbers, positions, limits and retention; several processes putting at
once; and, for the segment log, what survives a kill -9 and a torn tail."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.errors import (
    ConfigError,
    InvalidStreamArgumentError,
    StreamError,
    StreamExistsError,
    StreamNotFoundError,
    StreamUnavailableError,
)
from reelay.streams import (
    DEFAULT_RETENTION_HOURS,
    MAX_RECORD_BYTES,
    Position,
    Put,
    PutRequest,
    Record,
    Rejected,
    Streams,
    open_streams,
)
from reelay.streams._embedded import EmbeddedStreams
from reelay.streams._redis import RedisStreams

SMALL_SEGMENTS = 4096  # bytes: a few records each, so reads and trims cross segments
BACKENDS = ["embedded", "embedded-segments", "redis"]


def open_backend(spec: tuple[str, str]) -> Streams:
    """A backend from a picklable spec, the same in the test and in its child processes."""
    kind, where = spec
    if kind == "redis":
        return RedisStreams(where)
    if kind == "embedded-segments":
        return EmbeddedStreams(Path(where), segment_bytes=SMALL_SEGMENTS)
    return EmbeddedStreams(Path(where))


@pytest.fixture(params=BACKENDS)
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "redis":
        return ("redis", str(request.getfixturevalue("redis_url")))
    return (request.param, str(tmp_path / "streams"))


@pytest.fixture
def streams(spec: tuple[str, str]) -> Iterator[Streams]:
    backend = open_backend(spec)
    try:
        yield backend
    finally:
        backend.close()


def records(n: int, prefix: str = "r", size: int = 100) -> list[PutRequest]:
    return [
        PutRequest(f"{prefix}{i}", f"{prefix}{i}:".encode().ljust(size, b".")) for i in range(n)
    ]


def read_all(
    streams: Streams, name: str, shard: str, cursor: int, limit: int = 10000
) -> list[Record]:
    out: list[Record] = []
    while True:
        batch = streams.read(name, shard, cursor, limit=limit)
        if not batch.records:
            assert batch.next == cursor and batch.millis_behind == 0
            return out
        out += batch.records
        cursor = batch.next


def everything(streams: Streams, name: str) -> dict[str, list[Record]]:
    return {
        s.shard_id: read_all(
            streams, name, s.shard_id, streams.locate(name, s.shard_id, Position("TRIM_HORIZON"))
        )
        for s in streams.describe(name).shards
    }


def increasing(numbers: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(numbers))


def kinesis_shard(partition_key: str, shards: int) -> int:
    """The shard Kinesis picks: the key's MD5 as a 128-bit number, in even ranges."""
    key = int(hashlib.md5(partition_key.encode()).hexdigest(), 16)
    return min(key // (2**128 // shards), shards - 1)


# -- streams ------------------------------------------------------------------------------


def test_create_describe_list_delete(streams: Streams) -> None:
    assert streams.list_streams() == []
    info = streams.create_stream("logs", 3)
    assert info.name == "logs" and len(info.shards) == 3
    assert info.retention_hours == DEFAULT_RETENTION_HOURS and info.status == "ACTIVE"
    assert abs(info.created - time.time()) < 60
    assert streams.describe("logs") == info
    streams.create_stream("audit.v2", 1, retention_hours=48)
    assert streams.list_streams() == ["audit.v2", "logs"]
    assert streams.describe("audit.v2").retention_hours == 48
    with pytest.raises(StreamExistsError, match="'logs'"):
        streams.create_stream("logs", 2)
    streams.delete_stream("logs")
    assert streams.list_streams() == ["audit.v2"]
    with pytest.raises(StreamNotFoundError, match="'logs'"):
        streams.describe("logs")
    with pytest.raises(StreamNotFoundError, match="'logs'"):
        streams.delete_stream("logs")
    # The name is free again, for a new stream that knows nothing of the old one.
    streams.put("audit.v2", records(3))
    again = streams.create_stream("logs", 2)
    assert len(again.shards) == 2
    assert everything(streams, "logs") == {s.shard_id: [] for s in again.shards}


def test_shards_split_the_hash_key_space_evenly(streams: Streams) -> None:
    info = streams.create_stream("s", 5)
    assert [s.shard_id for s in info.shards] == [f"shardId-{i:012d}" for i in range(5)]
    assert info.shards[0].starting_hash_key == 0
    assert info.shards[-1].ending_hash_key == 2**128 - 1
    for a, b in zip(info.shards, info.shards[1:], strict=False):
        assert b.starting_hash_key == a.ending_hash_key + 1
    widths = [s.ending_hash_key - s.starting_hash_key + 1 for s in info.shards]
    assert max(widths) - min(widths) < 5
    for s in info.shards:
        assert s.starting_sequence_number.isdigit() and s.ending_sequence_number is None


def test_partition_keys_route_by_md5_as_kinesis_does(streams: Streams) -> None:
    streams.create_stream("s", 4)
    # MD5s: alpha 2c17..., delta 63bc..., beta 987b..., "0" cfcd...: the top two bits.
    known = {"alpha": 0, "delta": 1, "beta": 2, "0": 3}
    keys = [*known, *(f"user-{i}" for i in range(200))]
    put = streams.put("s", [PutRequest(k, k.encode()) for k in keys])
    for key, result in zip(keys, put, strict=True):
        assert isinstance(result, Put)
        assert result.shard_id == f"shardId-{kinesis_shard(key, 4):012d}"
        if key in known:
            assert result.shard_id == f"shardId-{known[key]:012d}"
    for shard, got in everything(streams, "s").items():
        assert {r.partition_key for r in got} == {
            k for k, p in zip(keys, put, strict=True) if isinstance(p, Put) and p.shard_id == shard
        }
        assert all(r.data == r.partition_key.encode() for r in got)


def test_explicit_hash_key_overrides_the_partition_key(streams: Streams) -> None:
    info = streams.create_stream("s", 3)
    second = info.shards[1]
    cases = [
        (0, 0),
        (2**128 - 1, 2),
        (second.starting_hash_key, 1),
        (second.ending_hash_key, 1),
        (second.ending_hash_key + 1, 2),
    ]
    put = streams.put("s", [PutRequest("alpha", b"x", explicit_hash_key=key) for key, _ in cases])
    assert [p.shard_id for p in put if isinstance(p, Put)] == [
        f"shardId-{i:012d}" for _, i in cases
    ]
    for bad in (2**128, -1):
        with pytest.raises(InvalidStreamArgumentError, match="explicit hash key"):
            streams.put("s", [PutRequest("alpha", b"x", explicit_hash_key=bad)])


def test_repeated_partition_keys_route_as_each_alone(streams: Streams) -> None:
    """A put hashes each partition key once: a key's records go where the key goes, and
    an explicit hash key still overrides it for its own record only."""
    streams.create_stream("s", 4)
    last = 2**128 - 1
    batch = [
        PutRequest("alpha", b"1"),
        PutRequest("alpha", b"2", explicit_hash_key=last),
        PutRequest("delta", b"3"),
        PutRequest("alpha", b"4"),
        PutRequest("delta", b"5", explicit_hash_key=0),
        PutRequest("delta", b"6"),
    ]
    put = streams.put("s", batch)
    assert [p.shard_id[-1] for p in put if isinstance(p, Put)] == ["0", "3", "1", "0", "0", "1"]
    with pytest.raises(InvalidStreamArgumentError, match="partition key"):
        streams.put("s", [*batch, PutRequest("", b"no key")])  # the last refuses them all
    assert sum(len(got) for got in everything(streams, "s").values()) == len(batch)


def test_sequence_numbers_increase_strictly_per_shard(streams: Streams) -> None:
    streams.create_stream("s", 2)
    seen: dict[str, list[int]] = {}
    for batch in (records(1, "a"), records(37, "b"), records(1, "c"), records(120, "d")):
        for p in streams.put("s", batch):
            assert isinstance(p, Put) and p.sequence_number.isdigit()
            seen.setdefault(p.shard_id, []).append(int(p.sequence_number))
    assert len(seen) == 2
    for shard, seqs in seen.items():
        assert increasing(seqs), shard
        starting = next(s for s in streams.describe("s").shards if s.shard_id == shard)
        assert seqs[0] >= int(starting.starting_sequence_number)
    # What was read is what was put, in the order of the puts.
    for shard, got in everything(streams, "s").items():
        assert [int(r.sequence_number) for r in got] == seen[shard]


def test_two_handles_on_one_stream_share_its_sequence(spec: tuple[str, str]) -> None:
    # Two handles (as two processes have) appending in turn: each sees the other's records.
    with contextlib.closing(open_backend(spec)) as a, contextlib.closing(open_backend(spec)) as b:
        a.create_stream("s", 1)
        seqs = []
        for handle in (a, b, a, b, b, a):
            (p,) = handle.put("s", [PutRequest("k", b"x" * 50)])
            seqs.append(int(p.sequence_number))
        assert increasing(seqs)
        for handle in (a, b):
            got = read_all(handle, "s", "shardId-000000000000", 0)
            assert [int(r.sequence_number) for r in got] == seqs


def test_a_stream_made_again_elsewhere_is_put_to_as_it_is_now(spec: tuple[str, str]) -> None:
    """A handle that put into a stream before another made it again with other shards
    routes by the shards the stream has now, and says when it is gone."""
    with contextlib.closing(open_backend(spec)) as a, contextlib.closing(open_backend(spec)) as b:
        a.create_stream("s", 2)
        keys = [f"user-{i}" for i in range(40)]
        a.put("s", [PutRequest(k, b"x") for k in keys])
        b.delete_stream("s")
        with pytest.raises(StreamNotFoundError):
            a.put("s", [PutRequest("k", b"x")])
        b.create_stream("s", 5)
        a.put("s", [PutRequest("k", b"x")])
        b.delete_stream("s")
        b.create_stream("s", 3)
        put = a.put("s", [PutRequest(k, b"x") for k in keys])
        assert [p.shard_id for p in put if isinstance(p, Put)] == [
            f"shardId-{kinesis_shard(k, 3):012d}" for k in keys
        ]
        assert sum(len(got) for got in everything(b, "s").values()) == len(keys)


def test_every_position(streams: Streams) -> None:
    streams.create_stream("s", 1)
    sid = "shardId-000000000000"
    first = streams.put("s", records(3, "a"))
    time.sleep(0.02)  # later puts arrive at a later millisecond
    second = streams.put("s", records(3, "b"))
    seqs = [p.sequence_number for p in first + second if isinstance(p, Put)]
    got = read_all(streams, "s", sid, streams.locate("s", sid, Position("TRIM_HORIZON")))
    assert [r.sequence_number for r in got] == seqs
    assert [r.partition_key for r in got] == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert got[0].data == b"a0:".ljust(100, b".")
    assert all(abs(r.arrival - time.time()) < 60 for r in got)
    a_arrival, b_arrival = got[0].arrival, got[3].arrival
    assert got[2].arrival == a_arrival < b_arrival == got[5].arrival

    def keys_from(position: Position) -> list[str]:
        cursor = streams.locate("s", sid, position)
        return [r.partition_key for r in read_all(streams, "s", sid, cursor)]

    assert keys_from(Position("AT_SEQUENCE_NUMBER", seqs[1])) == ["a1", "a2", "b0", "b1", "b2"]
    assert keys_from(Position("AFTER_SEQUENCE_NUMBER", seqs[1])) == ["a2", "b0", "b1", "b2"]
    assert keys_from(Position("AFTER_SEQUENCE_NUMBER", seqs[-1])) == []
    assert keys_from(Position("AT_TIMESTAMP", timestamp=b_arrival)) == ["b0", "b1", "b2"]
    assert keys_from(Position("AT_TIMESTAMP", timestamp=a_arrival)) == [
        "a0",
        "a1",
        "a2",
        "b0",
        "b1",
        "b2",
    ]
    assert keys_from(Position("AT_TIMESTAMP", timestamp=a_arrival + 0.0005)) == ["b0", "b1", "b2"]
    assert keys_from(Position("AT_TIMESTAMP", timestamp=0)) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    assert keys_from(Position("AT_TIMESTAMP", timestamp=b_arrival + 0.001)) == []
    assert keys_from(Position("LATEST")) == []
    # A time after the newest record is LATEST: what comes next is read.
    future = streams.locate("s", sid, Position("AT_TIMESTAMP", timestamp=time.time() + 3600))
    streams.put("s", records(1, "c"))
    assert [r.partition_key for r in read_all(streams, "s", sid, future)] == ["c0"]


def test_at_timestamp_across_many_puts(streams: Streams) -> None:
    # Enough data that the small-segment log spreads it over many segments.
    streams.create_stream("s", 1)
    sid = "shardId-000000000000"
    for b in range(12):
        streams.put("s", records(10, f"b{b}-", size=200))
        time.sleep(0.003)
    got = read_all(streams, "s", sid, 0)
    for b, i in enumerate(range(0, 120, 10)):
        at = streams.locate("s", sid, Position("AT_TIMESTAMP", timestamp=got[i].arrival))
        assert read_all(streams, "s", sid, at) == got[i:], b
        between = got[i + 9].arrival + 0.0005  # after batch b, before the next one
        at = streams.locate("s", sid, Position("AT_TIMESTAMP", timestamp=between))
        assert read_all(streams, "s", sid, at) == got[i + 10 :], b


def test_latest_sees_only_what_comes_after(streams: Streams) -> None:
    streams.create_stream("s", 2)
    for sid in ("shardId-000000000000", "shardId-000000000001"):
        assert streams.read("s", sid, streams.locate("s", sid, Position("LATEST"))).records == []
    streams.put("s", records(50, "old"))
    cursors = {
        s.shard_id: streams.locate("s", s.shard_id, Position("LATEST"))
        for s in streams.describe("s").shards
    }
    later = streams.put("s", records(50, "new"))
    for sid, cursor in cursors.items():
        got = read_all(streams, "s", sid, cursor)
        assert [r.sequence_number for r in got] == [
            p.sequence_number for p in later if isinstance(p, Put) and p.shard_id == sid
        ]
        assert got and all(r.partition_key.startswith("new") for r in got)


def test_read_limits_and_next(streams: Streams) -> None:
    streams.create_stream("s", 1)
    sid = "shardId-000000000000"
    put: list[Put | Rejected] = []
    for start in range(0, 2500, 500):
        put += streams.put(
            "s", [PutRequest(f"k{i}", b"%d" % i * 20) for i in range(start, start + 500)]
        )
    cursor = streams.locate("s", sid, Position("TRIM_HORIZON"))
    got: list[Record] = []
    while True:
        batch = streams.read("s", sid, cursor, limit=7)
        assert len(batch.records) <= 7
        if not batch.records:
            break
        assert batch.next == int(batch.records[-1].sequence_number) + 1
        got += batch.records
        cursor = batch.next
    assert [r.sequence_number for r in got] == [
        p.sequence_number for p in put if isinstance(p, Put)
    ]
    assert [r.data for r in got] == [b"%d" % i * 20 for i in range(2500)]
    # Reading in the middle: a cursor between two records reads from the later one.
    middle = int(got[1234].sequence_number)
    assert streams.read("s", sid, middle, limit=2).records == got[1234:1236]
    assert streams.read("s", sid, middle + 1, limit=1).records[0] == got[1235]
    caught_up = streams.read("s", sid, cursor)
    assert caught_up.records == [] and caught_up.next == cursor and caught_up.millis_behind == 0
    for bad in (0, 10001, -1, "5"):
        with pytest.raises(InvalidStreamArgumentError, match="limit"):
            streams.read("s", sid, cursor, limit=bad)  # type: ignore[arg-type]
    for bad_cursor in (-1, "0", None):
        with pytest.raises(InvalidStreamArgumentError, match="cursor"):
            streams.read("s", sid, bad_cursor)  # type: ignore[arg-type]


def test_millis_behind_is_the_distance_to_the_newest_record(streams: Streams) -> None:
    streams.create_stream("s", 1)
    sid = "shardId-000000000000"
    streams.put("s", records(2, "a"))
    time.sleep(0.03)
    streams.put("s", records(2, "b"))
    cursor = streams.locate("s", sid, Position("TRIM_HORIZON"))
    first = streams.read("s", sid, cursor, limit=1)
    everything_ = read_all(streams, "s", sid, cursor)
    newest = everything_[-1].arrival
    assert first.millis_behind == round((newest - first.records[0].arrival) * 1000) > 0
    rest = streams.read("s", sid, first.next)
    assert rest.records == everything_[1:] and rest.millis_behind == 0


def test_retention_trims_old_records_and_moves_trim_horizon(
    streams: Streams, spec: tuple[str, str]
) -> None:
    info = streams.create_stream("s", 1, retention_hours=1)
    sid = "shardId-000000000000"
    old = streams.put("s", records(10, "old", size=1000))
    time.sleep(0.02)
    new = streams.put("s", records(3, "new"))
    got = read_all(streams, "s", sid, streams.locate("s", sid, Position("TRIM_HORIZON")))
    assert len(got) == 13
    old_last, new_first = got[9].arrival, got[10].arrival
    assert streams.trim(now=new_first + 3599) == 0  # nothing is an hour old yet
    assert len(read_all(streams, "s", sid, 0)) == 13

    # An hour after the old records (not yet after the new ones) the old ones go.
    now = (round(old_last * 1000) + 1.5) / 1000 + 3600
    dropped = streams.trim(now=now)
    horizon = streams.locate("s", sid, Position("TRIM_HORIZON"))
    kept = read_all(streams, "s", sid, horizon)
    assert [r.partition_key for r in kept[-3:]] == ["new0", "new1", "new2"]
    if spec[0] == "embedded":  # 64 MiB segments: trimmed whole, so all are kept still
        assert dropped == 0 and len(kept) == 13
    else:
        assert dropped == 10 and len(kept) == 3
        assert horizon == int(kept[0].sequence_number) == int(new[0].sequence_number)  # type: ignore[union-attr]
        assert horizon > int(old[-1].sequence_number)  # type: ignore[union-attr]
    # A cursor behind the trim horizon reads from the oldest record kept.
    assert read_all(streams, "s", sid, 0) == kept

    # Past everything's retention, everything goes; sequence numbers carry on after it.
    assert streams.trim(now=new_first + 7200) == 13 - dropped
    assert read_all(streams, "s", sid, streams.locate("s", sid, Position("TRIM_HORIZON"))) == []
    (after,) = streams.put("s", records(1, "after"))
    assert isinstance(after, Put) and int(after.sequence_number) > int(new[-1].sequence_number)  # type: ignore[union-attr]
    assert [r.partition_key for r in read_all(streams, "s", sid, 0)] == ["after0"]

    assert streams.set_retention("s", 48).retention_hours == 48
    assert streams.describe("s").retention_hours == 48
    assert streams.describe("s").shards == info.shards
    for bad in (0, 8761, "24", True, 1.5):
        with pytest.raises(InvalidStreamArgumentError, match="retention"):
            streams.set_retention("s", bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidStreamArgumentError, match="retention"):
            streams.create_stream("t", 1, retention_hours=bad)  # type: ignore[arg-type]
    with pytest.raises(StreamNotFoundError, match="'nope'"):
        streams.set_retention("nope", 24)


def test_records_up_to_one_mib(streams: Streams) -> None:
    streams.create_stream("s", 1)
    sid = "shardId-000000000000"
    key = "k" * 10
    at_limit = os.urandom(MAX_RECORD_BYTES - len(key))
    (p,) = streams.put("s", [PutRequest(key, at_limit)])
    assert isinstance(p, Put)
    with pytest.raises(InvalidStreamArgumentError, match="1048577 bytes"):
        streams.put("s", [PutRequest(key, at_limit + b"x")])
    # One bad record refuses the whole call: nothing of it is put.
    with pytest.raises(InvalidStreamArgumentError):
        streams.put("s", [PutRequest("fine", b"ok"), PutRequest(key, at_limit + b"x")])
    for bad_key in ("", "k" * 257):
        with pytest.raises(InvalidStreamArgumentError, match="partition key"):
            streams.put("s", [PutRequest(bad_key, b"x")])
    (q,) = streams.put("s", [PutRequest("ü" * 256, b"")])  # 256 characters, 512 bytes
    assert isinstance(q, Put)
    got = read_all(streams, "s", sid, 0)
    assert [(r.partition_key, r.data) for r in got] == [(key, at_limit), ("ü" * 256, b"")]
    assert streams.put("s", []) == []


@pytest.mark.parametrize("name", ["", "a b", "x" * 129, "ü", "a/b", "a\x00", None, 7])
def test_bad_stream_names_are_refused(streams: Streams, name: object) -> None:
    with pytest.raises(InvalidStreamArgumentError, match="stream name"):
        streams.create_stream(name, 1)  # type: ignore[arg-type]
    with pytest.raises(InvalidStreamArgumentError, match="stream name"):
        streams.describe(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidStreamArgumentError, match="stream name"):
        streams.put(name, records(1))  # type: ignore[arg-type]
    with pytest.raises(InvalidStreamArgumentError, match="stream name"):
        streams.read(name, "shardId-000000000000", 0)  # type: ignore[arg-type]
    assert streams.list_streams() == []


def test_names_and_shard_counts_at_the_limits(streams: Streams) -> None:
    long = "A-z_0.9" + "x" * 121
    # Every name Kinesis allows is a stream like any other, '.' and '..' too.
    names = sorted([long, ".", "..", ".hidden", "-", "_"])
    for name in names:
        assert streams.create_stream(name, 1).name == name
        streams.put(name, [PutRequest("k", name.encode())])
    assert streams.list_streams() == names
    for name in names:
        assert [r.data for r in read_all(streams, name, "shardId-000000000000", 0)] == [
            name.encode()
        ]
    streams.delete_stream("..")
    assert streams.list_streams() == [n for n in names if n != ".."]
    for count in (0, 1025, -1, "2"):
        with pytest.raises(InvalidStreamArgumentError, match="shard count"):
            streams.create_stream("t", count)  # type: ignore[arg-type]


def test_unknown_streams_shards_and_positions(streams: Streams) -> None:
    sid = "shardId-000000000000"
    for call in (
        lambda: streams.describe("nope"),
        lambda: streams.put("nope", records(1)),
        lambda: streams.locate("nope", sid, Position("LATEST")),
        lambda: streams.read("nope", sid, 0),
        lambda: streams.delete_stream("nope"),
    ):
        with pytest.raises(StreamNotFoundError, match="'nope'"):
            call()
    streams.create_stream("s", 2)
    for shard in ("shardId-000000000002", "nope", "shardId-1"):
        with pytest.raises(StreamNotFoundError, match=f"'{shard}'"):
            streams.read("s", shard, 0)
        with pytest.raises(StreamNotFoundError, match=f"'{shard}'"):
            streams.locate("s", shard, Position("TRIM_HORIZON"))
    for position, match in (
        (Position("AT_SEQUENCE_NUMBER"), "sequence number"),
        (Position("AFTER_SEQUENCE_NUMBER", "12a"), "sequence number"),
        (Position("AT_SEQUENCE_NUMBER", "-1"), "sequence number"),
        (Position("AT_TIMESTAMP"), "timestamp"),
        (Position("AT_TIMESTAMP", timestamp=float("nan")), "timestamp"),
        (Position("SOMEWHERE"), "TRIM_HORIZON"),  # type: ignore[arg-type]
    ):
        with pytest.raises(InvalidStreamArgumentError, match=match):
            streams.locate("s", sid, position)


def test_threads_put_into_one_handle(streams: Streams) -> None:
    streams.create_stream("s", 2)
    results: list[list[Put | Rejected]] = [[] for _ in range(4)]

    def produce(t: int) -> None:
        for n in range(20):
            results[t] += streams.put("s", records(10, f"t{t}-{n}-"))

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    put = [p for r in results for p in r]
    assert all(isinstance(p, Put) for p in put) and len(put) == 800
    assert len({(p.shard_id, p.sequence_number) for p in put}) == 800  # type: ignore[union-attr]
    got = everything(streams, "s")
    assert sum(len(v) for v in got.values()) == 800


# -- several processes --------------------------------------------------------------------


def produce(spec: tuple[str, str], producer: int, count: int) -> None:
    """A child: put ``count`` records in batches of varying size, data ``producer:n``."""
    streams = open_backend(spec)
    n = 0
    sizes = [1, 7, 50, 3, 120, 19]
    while n < count:
        size = min(sizes[n % len(sizes)], count - n)
        batch = [
            PutRequest(f"key-{(producer * 7 + i) % 13}", f"{producer}:{i}".encode())
            for i in range(n, n + size)
        ]
        for p in streams.put("s", batch):
            assert isinstance(p, Put)
        n += size
    streams.close()


def test_processes_putting_at_once(
    spec: tuple[str, str], streams: Streams, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children import this module by its name (pytest's, from its rootdir).
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[__name__.count(".")]))
    streams.create_stream("s", 3)
    ctx = multiprocessing.get_context("spawn")
    producers, count = 4, 400
    children = [ctx.Process(target=produce, args=(spec, p, count)) for p in range(producers)]
    for child in children:
        child.start()
    # Meanwhile a reader tails one shard: what it sees must be whole records, in order.
    tail: list[Record] = []
    cursor = streams.locate("s", "shardId-000000000000", Position("TRIM_HORIZON"))
    while True:
        alive = any(c.is_alive() for c in children)
        batch = streams.read("s", "shardId-000000000000", cursor, limit=37)
        tail += batch.records
        cursor = batch.next
        if not batch.records:
            if not alive:
                break
            time.sleep(0.005)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    got = everything(streams, "s")
    tail += read_all(streams, "s", "shardId-000000000000", cursor)
    assert tail == got["shardId-000000000000"]
    seen: list[tuple[int, int]] = []
    for records_ in got.values():
        seqs = [int(r.sequence_number) for r in records_]
        assert increasing(seqs)
        last: dict[int, int] = {}
        for r in records_:
            producer, n = map(int, r.data.split(b":"))
            assert n > last.get(producer, -1), "a producer's records out of order in a shard"
            last[producer] = n
            seen.append((producer, n))
    assert sorted(seen) == [(p, n) for p in range(producers) for n in range(count)]


_KILLED_PRODUCER = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from test_conformance import open_backend
from reelay.streams import PutRequest
streams = open_backend(json.loads(sys.argv[1]))
for n in range(1_000_000):
    batch = [PutRequest(f"k{n}-{i}", (b"%d:%d:" % (n, i)).ljust(3000, b"x")) for i in range(20)]
    put = streams.put("s", batch)
    print(json.dumps([[p.shard_id, p.sequence_number, n] for p in put]), flush=True)
"""


def test_acknowledged_puts_survive_sigkill(spec: tuple[str, str], streams: Streams) -> None:
    streams.create_stream("s", 2)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PRODUCER, json.dumps(spec), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    lines = [child.stdout.readline() for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    lines += child.stdout.read().splitlines()
    acknowledged = [tuple(p) for line in lines if line.strip() for p in json.loads(line)]
    assert len(acknowledged) >= 800
    got = everything(streams, "s")
    stored = {(shard, r.sequence_number): r.data for shard, rs in got.items() for r in rs}
    for shard, seq, n in acknowledged:
        data = stored[(shard, seq)]  # present, and intact
        assert data.startswith(b"%d:" % n) and len(data) == 3000
    # The stream takes puts after the kill, whatever the child left half-written.
    (p,) = streams.put("s", [PutRequest("after", b"after")])
    assert isinstance(p, Put)
    assert read_all(streams, "s", p.shard_id, int(p.sequence_number))[0].data == b"after"


# -- the segment log ----------------------------------------------------------------------


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedStreams]:
    with EmbeddedStreams(tmp_path / "streams") as streams:
        yield streams


def segments(root: Path, stream: str, shard: str = "shardId-000000000000") -> list[Path]:
    return sorted((root / stream / shard).glob("*.seg"))


@pytest.mark.parametrize(
    "garbage",
    [b"\xff" * 37, b"half", "frame"],
    ids=["noise", "short", "half-a-frame"],
)
def test_a_torn_tail_is_never_read_and_cut_before_the_next_put(
    embedded: EmbeddedStreams, tmp_path: Path, garbage: bytes | str
) -> None:
    embedded.create_stream("s", 1)
    sid = "shardId-000000000000"
    put = embedded.put("s", records(3))
    (segment,) = segments(embedded.root, "s")
    clean = segment.read_bytes()
    if garbage == "frame":  # a writer killed mid-write: the first part of a whole frame
        garbage = clean[: len(clean) // 3 + 30]
    assert isinstance(garbage, bytes)
    with open(segment, "ab") as f:
        f.write(garbage)
    # Readers in this process and in a fresh one stop before the tail.
    with EmbeddedStreams(embedded.root) as fresh:
        for handle in (embedded, fresh):
            assert [r.partition_key for r in read_all(handle, "s", sid, 0)] == ["r0", "r1", "r2"]
    (after,) = embedded.put("s", [PutRequest("after", b"after")])
    assert isinstance(after, Put)
    assert int(after.sequence_number) == int(put[-1].sequence_number) + 1  # type: ignore[union-attr]
    assert (
        segment.read_bytes().startswith(clean) and garbage not in segment.read_bytes()[len(clean) :]
    )
    with EmbeddedStreams(embedded.root) as fresh:
        for handle in (embedded, fresh):
            got = read_all(handle, "s", sid, 0)
            assert [r.partition_key for r in got] == ["r0", "r1", "r2", "after"]


def test_a_failed_shard_rejects_only_its_records(embedded: EmbeddedStreams) -> None:
    embedded.create_stream("s", 4)
    batch = [PutRequest(k, k.encode()) for k in ("alpha", "delta", "beta", "0")]  # shards 0-3
    embedded.put("s", batch)
    # Shard 2's segment becomes something that cannot be appended to.
    (segment,) = segments(embedded.root, "s", "shardId-000000000002")
    segment.unlink()
    segment.mkdir()
    put = embedded.put("s", batch)
    assert [type(p) for p in put] == [Put, Put, Rejected, Put]
    rejected = put[2]
    assert isinstance(rejected, Rejected) and rejected.code == "InternalFailure"
    assert "shardId-000000000002" in rejected.message and str(segment) in rejected.message
    assert len(read_all(embedded, "s", "shardId-000000000003", 0)) == 2


def test_a_shard_that_fails_to_sync_rejects_its_records_and_drops_them(
    embedded: EmbeddedStreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reelay.streams._embedded as module

    embedded.create_stream("s", 4)
    batch = [PutRequest(k, k.encode()) for k in ("alpha", "delta", "beta", "0")]  # shards 0-3
    initial = embedded.put("s", batch)
    (failing,) = segments(embedded.root, "s", "shardId-000000000001")
    real_sync = module._datasync

    def sync(fd: int) -> None:
        if os.fstat(fd).st_ino == failing.stat().st_ino:
            raise OSError(5, "Input/output error")
        real_sync(fd)

    monkeypatch.setattr(module, "_datasync", sync)
    put = embedded.put("s", batch)
    assert [type(p) for p in put] == [Put, Rejected, Put, Put]
    assert "shardId-000000000001" in put[1].message  # type: ignore[union-attr]
    assert "Input/output error" in put[1].message  # type: ignore[union-attr]
    monkeypatch.setattr(module, "_datasync", real_sync)
    # The rejected record was cut off again; the others are there, once each.
    with EmbeddedStreams(embedded.root) as fresh:
        for handle in (embedded, fresh):
            got = everything(handle, "s")
            assert [len(got[f"shardId-{i:012d}"]) for i in range(4)] == [2, 1, 2, 2]
    after = embedded.put("s", batch)  # the shard's lock was let go
    # Numbered on from what each shard kept: the record cut was never acknowledged.
    before = [put[0], initial[1], put[2], put[3]]
    assert [int(p.sequence_number) for p in after] == [  # type: ignore[union-attr]
        int(p.sequence_number) + 1
        for p in before  # type: ignore[union-attr]
    ]


def test_a_writer_knows_its_segments_as_a_reader_learns_them(embedded: EmbeddedStreams) -> None:
    """What a put tells its own handle of the records it wrote (ends, sequence numbers,
    arrivals, the sparse index every 64 KiB) is what a fresh handle learns by reading."""
    embedded.create_stream("s", 1)
    sid = "shardId-000000000000"
    exactly = 65536 - 26 - 4  # a frame of 64 KiB: its head (22), key (4), CRC (4)
    sizes = itertools.cycle([10, 3000, exactly, exactly, 70000, 500, exactly, 1])
    for n in (1, 7, 40, 3, 120):
        embedded.put("s", [PutRequest(f"k{i:03d}", b"x" * next(sizes)) for i in range(n)])
    with EmbeddedStreams(embedded.root) as fresh:
        fresh.read("s", sid, 0, limit=10000)  # a fresh handle learns the segment by reading

        def known(handle: EmbeddedStreams) -> list[tuple[object, ...]]:
            shard = handle._shards[str(handle.root / "s" / sid)]
            return [
                (
                    s.first,
                    s.end,
                    s.next_seq,
                    s.first_arrival,
                    s.last_arrival,
                    s.marks_seq,
                    s.marks_off,
                    s.marks_arr,
                )
                for s in shard.segments.values()
            ]

        assert known(embedded) == known(fresh)
        assert len(known(embedded)[0][5]) > 10  # the index has many marks


def test_reads_seek_near_the_cursor(
    embedded: EmbeddedStreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedded.create_stream("s", 1)
    sid = "shardId-000000000000"
    put = []
    for start in range(0, 20000, 500):  # about 2.3 MB in one segment
        put += embedded.put("s", records(500, f"{start}-"))
    read_bytes = 0
    real_pread = os.pread

    def counting_pread(fd: int, n: int, offset: int) -> bytes:
        nonlocal read_bytes
        data = real_pread(fd, n, offset)
        read_bytes += len(data)
        return data

    import reelay.streams._embedded as module

    monkeypatch.setattr(module.os, "pread", counting_pread)
    with EmbeddedStreams(embedded.root) as fresh:
        fresh.locate("s", sid, Position("LATEST"))  # a new process learns the segment once
        assert read_bytes > 2_000_000
        for i in (15000, 100, 19990, 7000):
            read_bytes = 0
            seq = put[i].sequence_number  # type: ignore[union-attr]
            batch = fresh.read("s", sid, int(seq), limit=5)
            assert batch.records[0].sequence_number == seq
            assert read_bytes < 300_000, read_bytes


class FakeTime:
    """The clock of the segment log, set by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_segments_roll_by_age_so_trimming_keeps_little_extra(
    embedded: EmbeddedStreams, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reelay.streams._embedded as module

    clock = FakeTime(time.time())
    monkeypatch.setattr(module, "time", clock)
    start = clock.now
    embedded.create_stream("s", 1)  # 24 h: a segment takes an hour of records
    sid = "shardId-000000000000"
    embedded.put("s", records(1, "a"))
    clock.now = start + 1800
    embedded.put("s", records(1, "b"))
    assert len(segments(embedded.root, "s")) == 1
    clock.now = start + 3660
    embedded.put("s", records(1, "c"))
    assert len(segments(embedded.root, "s")) == 2
    # A day after "b" (not yet after "c"): the first hour's segment goes, whole.
    assert embedded.trim(now=start + 1800 + 86400 + 1) == 2
    assert [r.partition_key for r in read_all(embedded, "s", sid, 0)] == ["c0"]


def test_os_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    streams = EmbeddedStreams(tmp_path / "file" / "streams")
    with pytest.raises(StreamError, match=re.escape(str(tmp_path / "file"))):
        streams.create_stream("s", 1)
    assert EmbeddedStreams(tmp_path / "missing").list_streams() == []
    assert not (tmp_path / "missing").exists()  # opening creates nothing


# -- choosing a backend -------------------------------------------------------------------


def test_open_streams_by_url(tmp_path: Path, redis_url: str) -> None:
    embedded = open_streams("", tmp_path)
    assert isinstance(embedded, EmbeddedStreams) and embedded.root == tmp_path / "streams"
    on_redis = open_streams(redis_url, tmp_path)
    assert isinstance(on_redis, RedisStreams)
    on_redis.close()
    with pytest.raises(ConfigError, match="redis://"):
        open_streams("kafka://localhost", tmp_path)
    with pytest.raises(ConfigError, match="prefix"):
        RedisStreams("redis://127.0.0.1:6379/0?prefix=a b")


def test_an_unreachable_redis_is_named_without_its_password() -> None:
    streams = RedisStreams("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(StreamUnavailableError, match=r"127\.0\.0\.1:1\b") as caught:
        streams.list_streams()
    assert "hunter2" not in str(caught.value)
    streams.close()
