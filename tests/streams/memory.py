"""`MemoryStreams`: a `Streams` held in memory, a test double for what sits on the seam
(the Kinesis API's own tests), never a backend. It keeps the contract's semantics:
shards by MD5 hash key, per-shard sequence numbers strictly increasing, cursors, the
five positions, retention and trimming, `Rejected` for a record it is told to refuse."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from reelay.errors import InvalidStreamArgumentError, StreamExistsError, StreamNotFoundError
from reelay.streams import (
    DEFAULT_RETENTION_HOURS,
    Batch,
    Position,
    Put,
    PutRequest,
    Record,
    Rejected,
    Shard,
    StreamInfo,
    check_request,
    check_retention,
    check_stream_name,
    shard_for,
    shard_id,
    split_evenly,
)

FIRST_SEQUENCE = 49_000_000_000_000_000_000  # big, as Kinesis's are: decimal strings


class MemoryStreams:
    url = "memory:"

    def __init__(self) -> None:
        self._streams: dict[str, StreamInfo] = {}
        self._records: dict[tuple[str, str], list[Record]] = {}
        self._next: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.refuse: set[str] = set()  # partition keys whose records are Rejected

    def create_stream(
        self, name: str, shards: int, *, retention_hours: int = DEFAULT_RETENTION_HOURS
    ) -> StreamInfo:
        check_stream_name(name)
        check_retention(retention_hours)
        with self._lock:
            if name in self._streams:
                raise StreamExistsError(f"stream {name!r} already exists")
            info = StreamInfo(
                name,
                tuple(
                    Shard(shard_id(i), low, high, str(FIRST_SEQUENCE))
                    for i, (low, high) in enumerate(split_evenly(shards))
                ),
                retention_hours,
                round(time.time(), 3),
            )
            self._streams[name] = info
            for shard in info.shards:
                self._records[(name, shard.shard_id)] = []
                self._next[(name, shard.shard_id)] = FIRST_SEQUENCE
            return info

    def delete_stream(self, name: str) -> None:
        with self._lock:
            info = self._info(name)
            del self._streams[name]
            for shard in info.shards:
                del self._records[(name, shard.shard_id)]

    def list_streams(self) -> list[str]:
        with self._lock:
            return sorted(self._streams)

    def describe(self, name: str) -> StreamInfo:
        with self._lock:
            return self._info(name)

    def set_retention(self, name: str, hours: int) -> StreamInfo:
        check_retention(hours)
        with self._lock:
            info = replace(self._info(name), retention_hours=hours)
            self._streams[name] = info
            return info

    def put(self, name: str, records: Sequence[PutRequest]) -> list[Put | Rejected]:
        for request in records:
            check_request(request)
        out: list[Put | Rejected] = []
        with self._lock:
            info = self._info(name)
            for request in records:
                if request.partition_key in self.refuse:
                    out.append(Rejected("InternalFailure", "Internal Service Failure"))
                    continue
                shard = shard_for(info.shards, request).shard_id
                sequence = self._next[(name, shard)]
                self._next[(name, shard)] = sequence + 1
                record = Record(
                    str(sequence), request.partition_key, request.data, round(time.time(), 3)
                )
                self._records[(name, shard)].append(record)
                out.append(Put(shard, str(sequence)))
        return out

    def locate(self, name: str, shard: str, position: Position) -> int:
        with self._lock:
            records = self._shard(name, shard)
            end = self._next[(name, shard)]
            if position.kind == "TRIM_HORIZON":
                return int(records[0].sequence_number) if records else end
            if position.kind == "LATEST":
                return end
            if position.kind == "AT_TIMESTAMP":
                assert position.timestamp is not None
                later = [r for r in records if r.arrival >= position.timestamp]
                return int(later[0].sequence_number) if later else end
            sequence = int(position.sequence_number or "0")
            if not FIRST_SEQUENCE <= sequence < end:
                raise InvalidStreamArgumentError(
                    f"sequence number {sequence} is not of shard {shard} of stream {name!r}"
                )
            return sequence if position.kind == "AT_SEQUENCE_NUMBER" else sequence + 1

    def read(self, name: str, shard: str, cursor: int, *, limit: int = 10000) -> Batch:
        with self._lock:
            records = [r for r in self._shard(name, shard) if int(r.sequence_number) >= cursor]
            page = records[:limit]
            if not page:
                return Batch([], max(cursor, 0), 0)
            newest = self._shard(name, shard)[-1]
            behind = round((newest.arrival - page[-1].arrival) * 1000)
            return Batch(page, int(page[-1].sequence_number) + 1, behind)

    def trim(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        gone = 0
        with self._lock:
            for (name, shard), records in self._records.items():
                cutoff = now - self._streams[name].retention_hours * 3600
                kept = [r for r in records if r.arrival >= cutoff]
                gone += len(records) - len(kept)
                self._records[(name, shard)] = kept
        return gone

    def close(self) -> None:
        pass

    def _info(self, name: str) -> StreamInfo:
        try:
            return self._streams[name]
        except KeyError:
            raise StreamNotFoundError(f"stream {name!r} does not exist") from None

    def _shard(self, name: str, shard: str) -> list[Record]:
        self._info(name)
        try:
            return self._records[(name, shard)]
        except KeyError:
            raise StreamNotFoundError(f"stream {name!r} has no shard {shard!r}") from None
