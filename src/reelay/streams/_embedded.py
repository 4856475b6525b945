"""The embedded stream backend: a segment log in the home, one machine, no server.

Layout, plain enough to inspect by hand::

    <root>/<stream>/stream.json                  name, shards (hash-key ranges, first
                                                 sequence number), retention, created
    <root>/<stream>/<shardId>/<first-seq>.seg    append-only segments of one shard,
                                                 named by the first sequence number
                                                 they hold (20 digits)
    <root>/.new-*, <root>/.gone-*                streams being made and deleted

(A stream whose name starts with '.' lives in ``%<name>``, so no name can reach the
root's own entries, nor ``..``.)

A segment is a run of frames, each ``length, sequence number, arrival (ms), key
length`` (little-endian, 22 bytes), the partition key, the data, and a CRC-32 of all
that. A shard appends to its newest segment and starts a new one when that one holds
``segment_bytes`` (64 MiB) or is older than a 24th of the retention, so trimming,
which deletes whole segments, keeps records at most that much longer than asked.

**Durable before acknowledged.** A `put` writes each shard's frames with one
``write`` and one ``fdatasync`` and returns only then; the shards one put touches are
written in turn and synced side by side (a few threads that do nothing else), so their
syncs overlap. A shard whose write or sync fails has its run cut off again and its
records `Rejected`; the others are put. Creating a stream or a segment also syncs the
directory that names it.

**Several processes.** Appends to a shard hold an exclusive ``flock`` on the shard's
directory (a put takes its shards' in shard order and lets them go once all are synced,
so two puts never wait for each other crosswise); the sequence number (per shard,
strictly increasing by one from the shard's first) and the arrival time (never earlier
than the shard's last) are assigned under it. Readers take no lock: they stop at the
first incomplete or damaged frame, so they never see a partial write. A writer that
finds such a tail (a process killed mid-write) truncates it before appending; what it
cut was never acknowledged. (A reader may see records between their write and their
sync, a moment before the put returns: a killed process loses none of them, a machine
that loses power might.)

**Reading without rescanning.** Each process keeps, per segment it has read, how far
the segment is known to be valid and a sparse index of (sequence number, offset,
arrival) every 64 KiB, so a read at a cursor seeks near it and a consumer that reads
on from ``next`` reads only what is new. Segment names give the first sequence number
of each; TRIM_HORIZON is the first of the oldest segment kept.

**Sequence numbers** start at the stream's creation time in milliseconds times 10^6,
so a stream deleted and made again under the same name numbers its records after the
old one's.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import fcntl
import itertools
import json
import os
import shutil
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from reelay.errors import StreamError, StreamExistsError, StreamNotFoundError
from reelay.streams import (
    DEFAULT_RETENTION_HOURS,
    MAX_RECORD_BYTES,
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

__all__ = ["SEGMENT_BYTES", "EmbeddedStreams"]

SEGMENT_BYTES = 64 << 20
_META = "stream.json"
_SUFFIX = ".seg"
_HEAD = struct.Struct("<IQqH")  # body length (key + data), sequence number, arrival ms, key length
_CRC = struct.Struct("<I")
_OVERHEAD = _HEAD.size + _CRC.size
_MARK_BYTES = 64 << 10  # one sparse-index entry per this much of a segment
_FIRST_READ = 256 << 10  # how much a scan reads at first; it doubles up to _MAX_READ
_MAX_READ = 4 << 20
_SEQ_BASE = 10**6  # sequence numbers start at the creation time in ms times this
_STALE_NEW_S = 3600  # a half-made stream (.new-*) this old was left by a crash
_O_DIR = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
_datasync = getattr(os, "fdatasync", os.fsync)
T = TypeVar("T")
_Visit = Callable[["_Segment", int, int], T]  # (segment, fd, size) -> a result


def _segment_name(first: int) -> str:
    return f"{first:020d}{_SUFFIX}"


@contextlib.contextmanager
def _doing(what: str, path: Path | str) -> Iterator[None]:
    """Translate an OS error into a `StreamError` naming the path and what was done."""
    try:
        yield
    except OSError as exc:
        raise StreamError(f"{what} {path}: {exc.strerror or exc}") from exc


def _frames(fd: int, offset: int, size: int) -> Iterator[tuple[int, int, int, int, bytes, int]]:
    """The valid frames of a segment from ``offset`` up to ``size``: ``(start, end,
    sequence number, arrival ms, buffer, where the frame starts in it)``. Stops at the
    end, at an incomplete frame or at a damaged one (bad length or CRC)."""
    want = _FIRST_READ
    while offset < size:
        buf = os.pread(fd, min(size - offset, want), offset)
        n = len(buf)
        pos = 0
        while n - pos >= _HEAD.size:
            length, seq, arrival, klen = _HEAD.unpack_from(buf, pos)
            if length > MAX_RECORD_BYTES or klen > length:
                return
            total = length + _OVERHEAD
            if n - pos < total:
                if pos == 0:  # a frame longer than the buffer: read it whole
                    if offset + total > size:
                        return
                    buf = os.pread(fd, total, offset)
                    n = len(buf)
                    if n < total:
                        return
                else:
                    break
            body = pos + total - _CRC.size
            if zlib.crc32(memoryview(buf)[pos:body]) != _CRC.unpack_from(buf, body)[0]:
                return
            yield offset + pos, offset + pos + total, seq, arrival, buf, pos
            pos += total
        if pos == 0:
            return  # not even a whole header left: an incomplete tail
        offset += pos
        want = min(want * 2, _MAX_READ)


class _Segment:
    """What this process knows of one segment: how far it is valid (``end``, and the
    sequence number after it), its arrival range, and the sparse index."""

    __slots__ = (
        "end",
        "first",
        "first_arrival",
        "ino",
        "last_arrival",
        "marks_arr",
        "marks_off",
        "marks_seq",
        "next_seq",
    )

    def __init__(self, first: int, ino: int) -> None:
        self.first = first
        self.ino = ino
        self.end = 0
        self.next_seq = first
        self.first_arrival: int | None = None
        self.last_arrival: int | None = None
        self.marks_seq: list[int] = []
        self.marks_off: list[int] = []
        self.marks_arr: list[int] = []

    def add(self, start: int, end: int, seq: int, arrival: int) -> None:
        if not self.marks_off or start - self.marks_off[-1] >= _MARK_BYTES:
            self.marks_seq.append(seq)
            self.marks_off.append(start)
            self.marks_arr.append(arrival)
        if self.first_arrival is None:
            self.first_arrival = arrival
        self.last_arrival = arrival
        self.end = end
        self.next_seq = seq + 1

    def extend(self, begin: int, parts: list[int], seq0: int, arrival: int) -> None:
        """`add` for a run of frames appended at ``begin`` (``parts``: the sizes of each
        frame's head, key and data, then of its CRC), numbered from ``seq0``, arrived
        together: what a run of `add` calls learns, in one pass of sums."""
        if not parts:
            return
        starts = list(itertools.accumulate(parts, initial=begin))[::2]  # a frame per two
        end = starts.pop()
        # The sparse index: the first frame at or past each _MARK_BYTES from the last mark.
        at = (
            0
            if not self.marks_off
            else bisect.bisect_left(starts, self.marks_off[-1] + _MARK_BYTES)
        )
        while at < len(starts):
            self.marks_seq.append(seq0 + at)
            self.marks_off.append(starts[at])
            self.marks_arr.append(arrival)
            at = bisect.bisect_left(starts, starts[at] + _MARK_BYTES, at + 1)
        if self.first_arrival is None:
            self.first_arrival = arrival
        self.last_arrival = arrival
        self.end = end
        self.next_seq = seq0 + len(starts)

    def offset_of(self, cursor: int) -> int:
        """Where to start reading for records at or after ``cursor``."""
        if cursor >= self.next_seq:
            return self.end
        i = bisect.bisect_right(self.marks_seq, cursor) - 1
        return self.marks_off[i] if i >= 0 else 0

    def walk(self, fd: int, size: int, offset: int) -> Iterator[tuple[int, int, int, bytes, int]]:
        """The frames from ``offset`` (a frame boundary): ``(end, sequence number, arrival,
        buffer, where)``, learning those past what is known as it goes."""
        for start, end, seq, arrival, buf, at in _frames(fd, offset, size):
            if start == self.end:
                if seq != self.next_seq:
                    return  # a valid frame out of sequence: damage, read no further
                self.add(start, end, seq, arrival)
            yield end, seq, arrival, buf, at

    def learn(self, fd: int, size: int) -> None:
        """Read on to the end of what is valid."""
        for _ in self.walk(fd, size, self.end):
            pass


class _Shard:
    """Per process and shard directory: the segments known and a lock that serializes
    this process's threads over them."""

    __slots__ = ("last_arrival", "lock", "segments")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.segments: dict[int, _Segment] = {}
        self.last_arrival = 0

    def segment(self, first: int, fd: int) -> tuple[_Segment, int]:
        """The segment open on ``fd`` and its current size (a replaced or shortened
        file is learned again)."""
        st = os.fstat(fd)
        seg = self.segments.get(first)
        if seg is None or seg.ino != st.st_ino or st.st_size < seg.end:
            seg = self.segments[first] = _Segment(first, st.st_ino)
        return seg, st.st_size

    def forget(self, keep: Sequence[int]) -> None:
        for first in set(self.segments) - set(keep):
            del self.segments[first]


class _Run:
    """A run of records written to the end of a shard's segment, not yet synced, under
    the shard's lock (held by ``dfd``, its directory: `close` lets it go). ``parts``: the
    sizes of each frame's head, key and data, then of its CRC."""

    __slots__ = ("arrival", "begin", "dfd", "fd", "parts", "seg", "seq0", "shard", "sid", "synced")

    def __init__(
        self,
        sid: str,
        shard: _Shard,
        seg: _Segment,
        dfd: int,
        fd: int,
        begin: int,
        seq0: int,
        parts: list[int],
        arrival: int,
    ) -> None:
        self.sid = sid
        self.shard = shard
        self.seg = seg
        self.dfd = dfd
        self.fd = fd
        self.begin = begin
        self.seq0 = seq0
        self.parts = parts
        self.arrival = arrival
        self.synced = False

    def learned(self) -> None:
        """What this process knows of the shard takes the run in (once it is synced)."""
        shard, seg = self.shard, self.seg
        with shard.lock:
            if seg.end == self.begin:  # else a reader of this process learned them already
                seg.extend(self.begin, self.parts, self.seq0, self.arrival)
            shard.last_arrival = max(shard.last_arrival, self.arrival)

    def undo(self) -> None:
        """Cut the run off again (it was never acknowledged): no half-written run stays."""
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, self.begin)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.dfd)  # and with it the lock


def _synced(fd: int) -> OSError | None:
    """``fdatasync`` a file; what failed, None when nothing did."""
    try:
        _datasync(fd)
    except OSError as exc:
        return exc
    return None


@dataclass(frozen=True)
class _Meta:
    info: StreamInfo
    firsts: dict[str, int]  # shard id -> its first sequence number
    starts: list[int]  # starting hash keys, in order, for routing by bisection
    ids: list[str]
    stat: tuple[int, int, int]  # of stream.json: inode, size, mtime


class EmbeddedStreams:
    """Streams as segment logs under ``root`` (``<home>/streams``). Thread-safe; any
    number of processes may share one root. Opening creates nothing: the root is made
    by the first `create_stream`."""

    def __init__(self, root: Path, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.root = Path(root)
        self.url = ""  # the default: what open_streams turns back into this backend
        self._segment_bytes = segment_bytes
        self._metas: dict[str, _Meta] = {}
        self._shards: dict[str, _Shard] = {}
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0

    def __enter__(self) -> EmbeddedStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._guard:
            executor, self._executor = self._executor, None
            self._metas.clear()
            self._shards.clear()
        if executor is not None and self._executor_pid == os.getpid():
            executor.shutdown()

    def __repr__(self) -> str:
        return f"EmbeddedStreams({str(self.root)!r})"

    # -- streams ----------------------------------------------------------------------------

    def create_stream(
        self, name: str, shards: int, *, retention_hours: int = DEFAULT_RETENTION_HOURS
    ) -> StreamInfo:
        check_stream_name(name)
        ranges = split_evenly(shards)
        check_retention(retention_hours)
        created_ms = int(time.time() * 1000)
        first = created_ms * _SEQ_BASE
        shard_list = [
            {"id": shard_id(i), "start": str(lo), "end": str(hi), "first": first}
            for i, (lo, hi) in enumerate(ranges)
        ]
        meta = {
            "format": 1,
            "name": name,
            "created": created_ms / 1000,
            "retention_hours": retention_hours,
            "shards": shard_list,
        }
        target = self._dir(name)
        if (target / _META).exists():
            raise StreamExistsError(f"stream {name!r} already exists")
        # Made aside and renamed into place, so no one sees half a stream.
        tmp = self.root / f".new-{uuid.uuid4().hex}"
        with _doing("cannot create the stream directory", tmp):
            tmp.mkdir(parents=True)
            try:
                for item in shard_list:
                    (tmp / str(item["id"])).mkdir()
                self._write_meta(tmp, meta)
                try:
                    os.rename(tmp, target)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        raise StreamExistsError(f"stream {name!r} already exists") from None
                    raise
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._sync_dir(self.root)
        return self.describe(name)

    def delete_stream(self, name: str) -> None:
        meta = self._meta(name)
        gone = self.root / f".gone-{uuid.uuid4().hex}"
        with _doing("cannot delete the stream at", self._dir(name)):
            try:
                os.rename(self._dir(name), gone)
            except FileNotFoundError:
                raise StreamNotFoundError(f"stream {name!r} not found") from None
            self._sync_dir(self.root)
        shutil.rmtree(gone, ignore_errors=True)  # what stays is swept by the next trim
        with self._guard:
            self._metas.pop(name, None)
            for sid in meta.ids:
                self._shards.pop(str(self._dir(name) / sid), None)

    def list_streams(self) -> list[str]:
        with _doing("cannot list the streams in", self.root):
            try:
                entries = os.listdir(self.root)
            except FileNotFoundError:
                return []
        # A stream's directory never starts with '.': those are this backend's own.
        return sorted(
            e.removeprefix("%")
            for e in entries
            if not e.startswith(".") and (self.root / e / _META).exists()
        )

    def describe(self, name: str) -> StreamInfo:
        return self._meta(name).info

    def set_retention(self, name: str, hours: int) -> StreamInfo:
        check_retention(hours)
        self._meta(name)
        path = self._dir(name)
        with _doing("cannot change the retention of the stream at", path):
            try:
                dfd = os.open(path, _O_DIR)
            except FileNotFoundError:
                raise StreamNotFoundError(f"stream {name!r} not found") from None
            try:
                fcntl.flock(dfd, fcntl.LOCK_EX)  # against another change of the same file
                meta = json.loads((path / _META).read_text())
                meta["retention_hours"] = hours
                self._write_meta(path, meta)
            finally:
                os.close(dfd)
        return self.describe(name)

    # -- records ----------------------------------------------------------------------------

    def put(self, name: str, records: Sequence[PutRequest]) -> list[Put | Rejected]:
        meta = self._meta(name)
        # Every record is checked before any is written: one bad record refuses the call.
        keys = hash_keys(records)
        starts, ids = meta.starts, meta.ids
        by_shard: dict[int, list[int]] = {}
        if len(starts) == 1:
            by_shard[0] = list(range(len(records)))
        else:
            where, route = bisect.bisect_right, by_shard.setdefault
            for i, key in enumerate(keys):
                route(where(starts, key) - 1, []).append(i)
        # Each shard's run is written under the shard's lock, taken in the shards' order
        # (two puts never wait for each other crosswise); then the runs are synced side by
        # side (the pool's threads only sync: the Python work stays in this one) and only
        # then are the locks let go.
        outcomes: dict[int, _Run | Rejected] = {}
        written: list[_Run] = []  # each closed (its lock let go) whatever happens
        try:
            for s in sorted(by_shard):
                outcome = self._try_write(meta, ids[s], [records[i] for i in by_shard[s]])
                outcomes[s] = outcome
                if isinstance(outcome, _Run):
                    written.append(outcome)
            self._sync(meta, outcomes)
        except BaseException:
            for run in written:
                if not run.synced:
                    run.undo()
            raise
        finally:
            for run in written:
                run.close()
        results: list[Put | Rejected] = [Rejected("InternalFailure", "not put")] * len(records)
        for s, indexes in by_shard.items():
            outcome = outcomes[s]
            if isinstance(outcome, Rejected):
                for i in indexes:
                    results[i] = outcome
            else:
                sid, seq0 = ids[s], outcome.seq0
                for i, seq in zip(indexes, range(seq0, seq0 + len(indexes)), strict=True):
                    results[i] = Put(sid, str(seq))
        return results

    def _try_write(self, meta: _Meta, sid: str, records: list[PutRequest]) -> _Run | Rejected:
        """`_write`, with a failure of this shard's files as its records' `Rejected`."""
        try:
            return self._write(meta, sid, records)
        except FileNotFoundError:
            name = meta.info.name
            if not (self._dir(name) / _META).exists():
                raise StreamNotFoundError(f"stream {name!r} not found") from None
            return Rejected(
                "InternalFailure", f"stream {name!r} shard {sid}: its directory is missing"
            )
        except OSError as exc:
            return self._cannot_append(meta, sid, exc)

    def _cannot_append(self, meta: _Meta, sid: str, exc: OSError) -> Rejected:
        name = meta.info.name
        where = self._dir(name) / sid / str(exc.filename or "")
        return Rejected(
            "InternalFailure",
            f"stream {name!r} shard {sid}: cannot append to {where}: {exc.strerror or exc}",
        )

    def _sync(self, meta: _Meta, outcomes: dict[int, _Run | Rejected]) -> None:
        """Sync the runs written, side by side; a run that fails to is undone and its
        records are `Rejected`. Then what this process knows of the shards learns them."""
        runs = [(s, run) for s, run in outcomes.items() if isinstance(run, _Run)]
        if not runs:
            return
        pending = [self._pool().submit(_synced, run.fd) for _, run in runs[1:]]
        failures = [_synced(runs[0][1].fd), *(f.result() for f in pending)]
        for (s, run), failure in zip(runs, failures, strict=True):
            if failure is None:
                run.synced = True
                run.learned()
            else:
                run.undo()
                outcomes[s] = self._cannot_append(meta, run.sid, failure)

    def _pool(self) -> ThreadPoolExecutor:
        with self._guard:
            if self._executor is None or self._executor_pid != os.getpid():  # none after fork
                self._executor = ThreadPoolExecutor(8, thread_name_prefix="reelay-streams")
                self._executor_pid = os.getpid()
            return self._executor

    def _write(self, meta: _Meta, sid: str, records: list[PutRequest]) -> _Run:
        """Write a run of records to one shard, under its lock, unsynced (see `_Run`)."""
        sdir = self._dir(meta.info.name) / sid
        shard = self._shard(sdir)
        dfd = os.open(sdir, _O_DIR)
        fd = -1
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)
            with shard.lock:
                firsts = self._firsts(dfd)
                if firsts:
                    first = firsts[-1]
                    fd = os.open(_segment_name(first), os.O_RDWR | os.O_APPEND, dir_fd=dfd)
                else:  # a shard never written to
                    first = meta.firsts[sid]
                    fd = self._new_segment(dfd, first)
                seg, size = shard.segment(first, fd)
                seg.learn(fd, size)
                if seg.end < size:  # a torn tail: a writer died mid-write, unacknowledged
                    os.ftruncate(fd, seg.end)
                now = int(time.time() * 1000)
                # Arrivals never go back, even if the clock does: AT_TIMESTAMP bisects them.
                arrival = max(now, seg.last_arrival or 0, shard.last_arrival)
                if seg.end and (
                    seg.end >= self._segment_bytes
                    or now - (seg.first_arrival or now) >= meta.info.retention_hours * 150_000
                ):  # full, or older than a 24th of the retention: start the next one
                    new = self._new_segment(dfd, seg.next_seq)
                    os.close(fd)
                    fd = new
                    seg, _ = shard.segment(seg.next_seq, fd)
                begin, seq0 = seg.end, seg.next_seq
            # Frames for the whole run, then one write (and, by the caller, one sync).
            pack, crc_pack, crc32 = _HEAD.pack, _CRC.pack, zlib.crc32
            parts: list[bytes] = []
            add = parts.append
            seq = seq0
            for request in records:
                key = request.partition_key.encode()
                data = request.data
                frame = pack(len(key) + len(data), seq, arrival, len(key)) + key + data
                add(frame)
                add(crc_pack(crc32(frame)))
                seq += 1
            payload = b"".join(parts)
            try:
                view = memoryview(payload)
                done = 0
                while done < len(payload):
                    done += os.write(fd, view[done:])
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, begin)  # leave no half-written run behind
                raise
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.close(dfd)  # and with it the lock
            raise
        return _Run(sid, shard, seg, dfd, fd, begin, seq0, [len(part) for part in parts], arrival)

    def locate(self, name: str, shard_id: str, position: Position) -> int:
        check_position(position)
        meta = self._meta(name)
        first = self._shard_first(meta, shard_id)
        kind = position.kind
        if kind == "AT_SEQUENCE_NUMBER":
            return sequence_number(position.sequence_number)
        if kind == "AFTER_SEQUENCE_NUMBER":
            return sequence_number(position.sequence_number) + 1
        sdir = self._dir(name) / shard_id
        shard = self._shard(sdir)
        with shard.lock, _doing("cannot read the shard at", sdir):
            try:
                return self._locate(shard, sdir, first, position)
            except FileNotFoundError:  # a segment trimmed since it was listed: once more
                return self._locate(shard, sdir, first, position)

    def _locate(self, shard: _Shard, sdir: Path, first: int, position: Position) -> int:
        firsts = self._listed(sdir)
        if not firsts:
            return first
        if position.kind == "TRIM_HORIZON":
            return firsts[0]
        if position.kind == "LATEST":
            return self._open(shard, sdir, firsts, len(firsts) - 1, self._learned)
        # check_position made sure an AT_TIMESTAMP position has its timestamp
        return self._at_time(shard, sdir, firsts, millis(position.timestamp or 0.0))

    def read(self, name: str, shard_id: str, cursor: int, *, limit: int = 10000) -> Batch:
        check_cursor(cursor)
        check_limit(limit)
        meta = self._meta(name)
        self._shard_first(meta, shard_id)
        sdir = self._dir(name) / shard_id
        shard = self._shard(sdir)
        records: list[Record] = []
        last_ms = 0
        with shard.lock, _doing("cannot read the shard at", sdir):
            firsts = self._listed(sdir)
            if not firsts:
                return Batch([], cursor, 0)
            if len(shard.segments) > len(firsts):
                shard.forget(firsts)  # trimmed, here or by another process
            budget = READ_BYTES
            i = max(0, bisect.bisect_right(firsts, cursor) - 1)
            while i < len(firsts) and len(records) < limit and budget > 0:
                try:
                    fd = os.open(sdir / _segment_name(firsts[i]), os.O_RDONLY)
                except FileNotFoundError:  # trimmed since it was listed
                    i += 1
                    continue
                try:
                    seg, size = shard.segment(firsts[i], fd)
                    for _, seq, arrival, buf, at in seg.walk(fd, size, seg.offset_of(cursor)):
                        if seq < cursor:
                            continue
                        length, _, _, klen = _HEAD.unpack_from(buf, at)
                        k = at + _HEAD.size
                        data = buf[k + klen : k + length]
                        records.append(
                            Record(str(seq), buf[k : k + klen].decode(), data, arrival / 1000)
                        )
                        budget -= len(data) + klen
                        last_ms = arrival
                        if len(records) >= limit or budget <= 0:
                            break
                finally:
                    os.close(fd)
                i += 1
            if not records:
                return Batch([], cursor, 0)
            newest = self._newest_arrival(shard, sdir, firsts)
        behind = max(0, (newest or 0) - last_ms)
        return Batch(records, int(records[-1].sequence_number) + 1, behind)

    def trim(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        gone = 0
        for name in self.list_streams():
            try:
                meta = self._meta(name)
            except StreamNotFoundError:
                continue  # deleted meanwhile
            cutoff = int((now - meta.info.retention_hours * 3600) * 1000)
            for sid in meta.ids:
                sdir = self._dir(name) / sid
                with _doing("cannot trim the shard at", sdir):
                    try:
                        gone += self._trim_shard(sdir, cutoff)
                    except FileNotFoundError:
                        continue
        self._sweep()
        return gone

    def _trim_shard(self, sdir: Path, cutoff: int) -> int:
        """Delete the segments whose newest record arrived before ``cutoff`` (ms)."""
        shard = self._shard(sdir)
        gone = 0
        dfd = os.open(sdir, _O_DIR)
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)
            with shard.lock:
                firsts = self._firsts(dfd)
                for i, first in enumerate(firsts):
                    newest = i == len(firsts) - 1
                    fd = os.open(_segment_name(first), os.O_RDONLY, dir_fd=dfd)
                    try:
                        seg, size = shard.segment(first, fd)
                        seg.learn(fd, size)
                    finally:
                        os.close(fd)
                    if seg.last_arrival is not None and seg.last_arrival >= cutoff:
                        break  # arrivals only grow: the rest are newer still
                    if newest:
                        if seg.last_arrival is None:
                            break  # empty: it only holds the shard's next sequence number
                        # The next sequence number lives on in the name of an empty successor.
                        os.close(self._new_segment(dfd, seg.next_seq))
                        gone += seg.next_seq - first
                    else:
                        gone += firsts[i + 1] - first
                    os.unlink(_segment_name(first), dir_fd=dfd)
                shard.forget(self._firsts(dfd))
        finally:
            os.close(dfd)
        return gone

    # -- helpers ----------------------------------------------------------------------------

    def _dir(self, name: str) -> Path:
        """A stream's directory: its name, with '%' before a leading '.' (so that '..'
        is a stream like any other, and names of this backend's own never collide)."""
        return self.root / (f"%{name}" if name.startswith(".") else name)

    def _meta(self, name: str) -> _Meta:
        check_stream_name(name)
        path = self._dir(name) / _META
        with _doing("cannot read the stream description", path):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise StreamNotFoundError(f"stream {name!r} not found") from None
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._metas.get(name)
            if cached is not None and cached.stat == key:
                return cached
            try:
                raw: dict[str, Any] = json.loads(path.read_bytes())
            except FileNotFoundError:
                raise StreamNotFoundError(f"stream {name!r} not found") from None
            except ValueError as exc:
                raise StreamError(f"the stream description {path} is damaged: {exc}") from None
        shards = tuple(
            Shard(s["id"], int(s["start"]), int(s["end"]), str(s["first"])) for s in raw["shards"]
        )
        meta = _Meta(
            StreamInfo(name, shards, int(raw["retention_hours"]), float(raw["created"])),
            {s["id"]: int(s["first"]) for s in raw["shards"]},
            [s.starting_hash_key for s in shards],
            [s.shard_id for s in shards],
            key,
        )
        self._metas[name] = meta
        return meta

    def _shard_first(self, meta: _Meta, sid: str) -> int:
        try:
            return meta.firsts[sid]
        except (KeyError, TypeError):
            raise StreamNotFoundError(
                f"stream {meta.info.name!r} has no shard {sid!r}"
                f" (its shards: {meta.ids[0]} to {meta.ids[-1]})"
            ) from None

    def _shard(self, sdir: Path) -> _Shard:
        key = str(sdir)
        shard = self._shards.get(key)
        if shard is None:
            with self._guard:
                shard = self._shards.setdefault(key, _Shard())
        return shard

    @staticmethod
    def _firsts(dfd: int) -> list[int]:
        return sorted(int(n[: -len(_SUFFIX)]) for n in os.listdir(dfd) if n.endswith(_SUFFIX))

    def _listed(self, sdir: Path) -> list[int]:
        try:
            return sorted(int(n[: -len(_SUFFIX)]) for n in os.listdir(sdir) if n.endswith(_SUFFIX))
        except FileNotFoundError:
            raise StreamNotFoundError(
                f"stream {sdir.parent.name.removeprefix('%')!r} not found (it was deleted)"
            ) from None

    def _open(self, shard: _Shard, sdir: Path, firsts: list[int], i: int, do: _Visit[T]) -> T:
        """``do(segment, fd, size)`` on segment ``i`` of ``firsts``, open for reading."""
        fd = os.open(sdir / _segment_name(firsts[i]), os.O_RDONLY)
        try:
            seg, size = shard.segment(firsts[i], fd)
            return do(seg, fd, size)
        finally:
            os.close(fd)

    @staticmethod
    def _learned(seg: _Segment, fd: int, size: int) -> int:
        seg.learn(fd, size)
        return seg.next_seq

    def _newest_arrival(self, shard: _Shard, sdir: Path, firsts: list[int]) -> int | None:
        """The arrival of the shard's newest record (ms), None for an empty shard."""

        def last(seg: _Segment, fd: int, size: int) -> int | None:
            seg.learn(fd, size)
            return seg.last_arrival

        for i in reversed(range(len(firsts))):
            with contextlib.suppress(FileNotFoundError):
                arrival = self._open(shard, sdir, firsts, i, last)
                if arrival is not None:
                    return arrival
        return None

    def _at_time(self, shard: _Shard, sdir: Path, firsts: list[int], ms: int) -> int:
        """The cursor of the first record that arrived at or after ``ms``."""

        def first_arrival(seg: _Segment, fd: int, size: int) -> int | None:
            if seg.end == 0:
                for _ in seg.walk(fd, size, 0):
                    break
            return seg.first_arrival

        # The last segment that starts before ``ms`` holds it, or it is the next one's first.
        chosen = -1
        for i in range(len(firsts)):
            try:
                arrival = self._open(shard, sdir, firsts, i, first_arrival)
            except FileNotFoundError:
                continue
            if arrival is None or arrival >= ms:
                break
            chosen = i
        if chosen < 0:
            return firsts[0]

        def find(seg: _Segment, fd: int, size: int) -> int | None:
            seg.learn(fd, size)
            j = bisect.bisect_left(seg.marks_arr, ms) - 1
            for _, seq, arrival, _, _ in seg.walk(fd, size, seg.marks_off[max(j, 0)]):
                if arrival >= ms:
                    return seq
            return None

        try:
            found = self._open(shard, sdir, firsts, chosen, find)
        except FileNotFoundError:  # trimmed meanwhile: the oldest kept is the answer
            return self._listed(sdir)[0]
        if found is not None:
            return found
        if chosen + 1 < len(firsts):
            return firsts[chosen + 1]
        return self._open(shard, sdir, firsts, chosen, self._learned)

    @staticmethod
    def _new_segment(dfd: int, first: int) -> int:
        fd = os.open(
            _segment_name(first),
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL,
            0o644,
            dir_fd=dfd,
        )
        os.fsync(dfd)  # the new name survives a crash
        return fd

    @staticmethod
    def _sync_dir(path: Path) -> None:
        dfd = os.open(path, _O_DIR)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _write_meta(self, directory: Path, meta: dict[str, Any]) -> None:
        tmp = directory / f".{_META}.{uuid.uuid4().hex}"
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / _META)
        self._sync_dir(directory)

    def _sweep(self) -> None:
        """Remove what crashed creates and deletes left behind."""
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.root):
                if entry.name.startswith(".gone-") or (
                    entry.name.startswith(".new-")
                    and time.time() - entry.stat().st_mtime > _STALE_NEW_S
                ):
                    shutil.rmtree(entry.path, ignore_errors=True)
