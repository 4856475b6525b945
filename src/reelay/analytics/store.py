"""Where aggregates live: partial aggregates and watermarks in the State's meta.

Keys (``NAME`` an aggregate, ``SHARD`` a shard of its source stream)::

    analytics:def:NAME                    what NAME is (for queries: its columns)
    analytics:shard:NAME:SHARD            the shard's ShardState: last sequence folded,
                                          newest event time (the watermark), windows kept
    analytics:win:NAME:START:SHARD        the shard's partial aggregates of one window

Why here, and not in the window state Lambda passes between tumbling-window invocations:
that state belongs to one lane of the event source mapping, is emptied when its
window ends, and no query can read it; the watermark must outlive windows and
restarts, and a query must see the windows still open. The State is durable, shared by
the workers of every machine (SQLite on one, PostgreSQL on many), and what the query
side already reads.

Exactly once in effect: a batch's partials, the shard's new state (``through``: the
last sequence number folded) and the deletions past the horizon are written in one
transaction, compare-and-set on the shard's state as it was read. A batch run again
(at-least-once delivery) finds its records at or before ``through`` and skips them, so
it counts nothing twice; a second writer at once (it should not happen: a shard's
batches run one at a time) makes one of the two fold again. (`reelay.idempotency` is
not needed: its record would be a second write beside this one, where one transaction
holding the effect and its bookkeeping together is exact.) Dead letters are put
before that transaction, so none is lost: a batch run again after a crash between the
two may put one twice (each names its shard and sequence number).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reelay.analytics.fold import (
    Folded,
    ShardState,
    SourceRecord,
    WindowPartial,
    finalize,
    fold,
    merge_states,
    new_states,
)
from reelay.analytics.spec import Aggregate, Metric, Where
from reelay.errors import StateError, StreamError, StreamExistsError, StreamNotFoundError
from reelay.state import State
from reelay.streams import Put, PutRequest, Streams

__all__ = ["PREFIX", "AggregateInfo", "Results", "WindowRow"]

PREFIX = "analytics:"
DEAD_LETTER_SHARDS = 1
_ATTEMPTS = 5
_DECODED = 1024  # partials kept decoded (a sketch's registers are kilobytes each)


def _def_key(name: str) -> str:
    return f"{PREFIX}def:{name}"


def _shard_key(name: str, shard: str) -> str:
    return f"{PREFIX}shard:{name}:{shard}"


def _window_prefix(name: str) -> str:
    return f"{PREFIX}win:{name}:"


def _window_key(name: str, start: int, shard: str) -> str:
    return f"{_window_prefix(name)}{start:012d}:{shard}"


@dataclass(frozen=True)
class AggregateInfo:
    """An aggregate as stored beside its results: its declaration (`Aggregate.plain`),
    its fingerprint, and the function that folds it."""

    name: str
    plain: dict[str, Any]
    fingerprint: str
    function: str | None

    @property
    def dimensions(self) -> list[str]:
        return list(self.plain["dimensions"])

    @property
    def metrics(self) -> list[Metric]:
        out = []
        for m in self.plain["metrics"]:
            where = None
            if m.get("where"):
                where = Where(
                    tuple(
                        (k, tuple(v["not"]), True) if isinstance(v, dict) else (k, tuple(v), False)
                        for k, v in m["where"].items()
                    )
                )
            out.append(
                Metric(
                    m["name"],
                    m["kind"],
                    m.get("field"),
                    where,
                    q=m.get("q"),
                    accuracy=m.get("accuracy", 0.01),
                    precision=m.get("precision", 12),
                )
            )
        return out

    @property
    def size(self) -> int:
        return int(self.plain["window"]["size"])

    @property
    def hop(self) -> int:
        return int(self.plain["window"]["hop"])


@dataclass(frozen=True)
class WindowRow:
    """One finalized row of an aggregate: a window, a group, the metrics' values."""

    start: int
    end: int
    group: tuple[Any, ...]
    values: list[Any]


class Results:
    """The stored results of every aggregate of one home (see the module's docstring)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._declared: set[tuple[str, str]] = set()  # declarations this process wrote
        self._decoded: dict[str, tuple[str, WindowPartial]] = {}  # key -> (raw, partial)

    # -- writing ----------------------------------------------------------------------

    def apply(
        self,
        aggregate: Aggregate,
        shard_id: str,
        records: Sequence[SourceRecord],
        streams: Streams,
        *,
        stream: str | None = None,
        function: str | None = None,
    ) -> Folded:
        """Fold one batch of a shard's records into ``aggregate``'s results, once."""
        name = aggregate.name
        key = _shard_key(name, shard_id)
        metrics = aggregate.metrics
        declaration = json.dumps(
            {
                "plain": aggregate.plain(),
                "fingerprint": aggregate.fingerprint,
                "function": function,
            },
            sort_keys=True,
        )
        for _ in range(_ATTEMPTS):
            raw = self.state.get_meta(key)
            shard = ShardState.loads(raw)

            def load(start: int) -> WindowPartial | None:
                text = self.state.get_meta(_window_key(name, start, shard_id))
                if not text or WindowPartial.peek(text)[1] != aggregate.fingerprint:
                    return None  # none, or made by the aggregate before it changed
                return WindowPartial.loads(text, metrics)

            folded = fold(aggregate, shard, records, load, now=time.time())
            if folded.shard.records == shard.records:
                return folded  # every record was folded before
            if folded.dead:
                self._dead_letter(streams, aggregate, stream or aggregate.stream, shard_id, folded)
            values = {
                _window_key(name, start, shard_id): partial.dumps(metrics)
                for start, partial in folded.windows.items()
            }
            values[key] = folded.shard.dumps()
            if (name, declaration) not in self._declared:
                values[_def_key(name)] = declaration
            delete = [_window_key(name, start, shard_id) for start in folded.delete]
            if self.state.update_meta(values, delete, expect={key: raw}):
                self._declared.add((name, declaration))
                return folded
        raise StateError(
            f"the results of aggregate {name!r} on {shard_id} changed under every one of "
            f"{_ATTEMPTS} tries to fold a batch: is another function aggregating the same "
            "stream with it? (parallelizationFactor must be 1)"
        )

    def _dead_letter(
        self, streams: Streams, aggregate: Aggregate, stream: str, shard_id: str, folded: Folded
    ) -> None:
        requests = []
        for d in folded.dead:
            letter: dict[str, Any] = {
                "aggregate": aggregate.name,
                "reason": d.reason,
                "detail": d.detail,
                "stream": stream,
                "shardId": shard_id,
                "sequenceNumber": str(d.record.sequence),
                "partitionKey": d.record.partition_key,
                "approximateArrivalTimestamp": round(d.record.arrival, 3),
                "watermark": d.watermark,
                "rows": d.rows,
            }
            if d.reason == "unreadable" and not d.rows:
                letter["data"] = base64.b64encode(d.record.data).decode()
            body = json.dumps(letter, default=str).encode()
            requests.append(PutRequest(d.record.partition_key, body))
        target = aggregate.dead_letter
        try:
            puts = streams.put(target, requests)
        except StreamNotFoundError:
            with contextlib.suppress(StreamExistsError):  # made meanwhile by another shard
                streams.create_stream(target, DEAD_LETTER_SHARDS)
            puts = streams.put(target, requests)
        failed = [p for p in puts if not isinstance(p, Put)]
        if failed:  # never dropped: the batch fails, and is tried again
            raise StreamError(
                f"{len(failed)} of {len(requests)} dead letters of aggregate "
                f"{aggregate.name!r} were not put on {target}: {failed[0]}"
            )

    # -- reading ----------------------------------------------------------------------

    def aggregates(self) -> dict[str, AggregateInfo]:
        """Every aggregate that has results here, by name."""
        out = {}
        for key, text in sorted(self.state.meta_items(f"{PREFIX}def:").items()):
            data = json.loads(text)
            name = key[len(f"{PREFIX}def:") :]
            out[name] = AggregateInfo(name, data["plain"], data["fingerprint"], data["function"])
        return out

    def shards(self, name: str) -> dict[str, ShardState]:
        prefix = f"{PREFIX}shard:{name}:"
        return {
            key[len(prefix) :]: ShardState.loads(text)
            for key, text in sorted(self.state.meta_items(prefix).items())
        }

    def rows(
        self,
        info: AggregateInfo,
        *,
        shards: dict[str, ShardState] | None = None,
        latest: int | None = None,
    ) -> list[WindowRow]:
        """The aggregate's finalized rows (every shard's partials merged), oldest window
        first, within its horizon; ``latest``: only the newest that many windows."""
        shards = self.shards(info.name) if shards is None else shards
        newest = max(
            (s.max_event for s in shards.values() if s.max_event is not None), default=None
        )
        if newest is None:
            return []
        cutoff = newest - float(info.plain["horizon"])
        if latest is None:
            texts = self.state.meta_items(_window_prefix(info.name))
        else:  # the newest windows only: read those keys alone
            starts = sorted({w for s in shards.values() for w in s.windows})[-latest:]
            texts = {}
            for shard_id, shard in shards.items():
                for start in set(shard.windows) & set(starts):
                    key = _window_key(info.name, start, shard_id)
                    text = self.state.get_meta(key)
                    if text is not None:
                        texts[key] = text
        metrics = info.metrics
        merged: dict[int, dict[tuple[Any, ...], list[Any]]] = {}
        for key, text in texts.items():
            start, fingerprint = WindowPartial.peek(text)
            if fingerprint != info.fingerprint or start + info.size <= cutoff:
                continue
            partial = self._partial(key, text, metrics)
            groups = merged.setdefault(start, {})
            for group, states in partial.groups.items():
                into = groups.get(group)
                if into is None:
                    # A copy: the decoded partial is kept for the next read, unmerged.
                    groups[group] = _copy_states(metrics, states)
                else:
                    merge_states(metrics, into, states)
        return [
            WindowRow(start, start + info.size, group, finalize(metrics, states))
            for start in sorted(merged)
            for group, states in sorted(merged[start].items(), key=lambda kv: _order(kv[0]))
        ]

    def _partial(self, key: str, text: str, metrics: list[Metric]) -> WindowPartial:
        """A stored partial, decoded once for as long as it does not change (a closed
        window's never does)."""
        cached = self._decoded.get(key)
        if cached is not None and cached[0] == text:
            return cached[1]
        partial = WindowPartial.loads(text, metrics)
        if len(self._decoded) >= _DECODED:
            self._decoded.clear()
        self._decoded[key] = (text, partial)
        return partial


def _copy_states(metrics: list[Metric], states: list[Any]) -> list[Any]:
    fresh = new_states(metrics)
    merge_states(metrics, fresh, states)
    return fresh


def _order(group: tuple[Any, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if v is None else (1, str(v)) for v in group)
