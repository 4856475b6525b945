"""Folding a shard's records into partial aggregates per (window, group).

Event time, windows and the watermark, per shard (the order a shard's records come in
is the order they are folded in):

- each row's event time puts it in the windows that hold it (one when tumbling,
  size/hop when hopping);
- the shard's watermark is the newest event time folded so far, less the allowed
  lateness; it only moves forward. A window ``[start, end)`` is open while its end is
  after the watermark;
- a row whose windows are all closed is *late*: it is not counted, and its record goes
  to the aggregate's dead-letter stream with the late rows (a row still in time for one
  of its hopping windows counts there, as Flink does). A record that cannot be read, or
  a row with no event time, goes there too; nothing is dropped silently;
- windows older than the horizon (the newest event time less ``horizon``) are deleted.

A partial aggregate holds, for each group (the values of the ``groupBy`` fields), one
state per metric: a count, a sum, a min, a max, a `HyperLogLog` or a `DDSketch`. States
of the same window and group merge (across batches and shards) into what one pass over
all their rows would have made; `finalize` turns them into the numbers a query shows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from reelay.analytics.formats import UnreadableRecord, field_value, parser
from reelay.analytics.sketches import DDSketch, HyperLogLog
from reelay.analytics.spec import Aggregate, Metric

__all__ = [
    "Dead",
    "Folded",
    "ShardState",
    "SourceRecord",
    "WindowPartial",
    "finalize",
    "fold",
    "merge_states",
    "new_states",
]

Row = dict[str, Any]
GroupKey = tuple[Any, ...]


@dataclass(frozen=True)
class SourceRecord:
    """A record of the source stream, as the Kinesis event gives it."""

    sequence: int
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds


@dataclass
class ShardState:
    """What an aggregate keeps per source shard: the last sequence number folded
    (``through``), the newest event time (the watermark is it less the lateness), the
    starts of the windows stored, and counters."""

    through: int = -1
    max_event: float | None = None
    windows: list[int] = field(default_factory=list)
    records: int = 0  # records folded (each record once)
    rows: int = 0  # rows counted in windows
    late: int = 0  # rows too late for every window of theirs
    unreadable: int = 0  # records (or rows) that could not be read, or had no event time
    updated: float = 0.0

    def watermark(self, lateness: float) -> float | None:
        return None if self.max_event is None else self.max_event - lateness

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> ShardState:
        return cls(**json.loads(text)) if text else cls()


# -- metric states ----------------------------------------------------------------------------


def new_states(metrics: Sequence[Metric]) -> list[Any]:
    out: list[Any] = []
    for m in metrics:
        if m.kind in ("count", "sum"):
            out.append(0)
        elif m.kind == "distinct":
            out.append(HyperLogLog(m.precision))
        elif m.kind == "quantile":
            out.append(DDSketch(m.accuracy))
        else:
            out.append(None)
    return out


def _number(value: Any) -> int | float | None:
    """A value as a number (numeric text too), or None: what sum, min, max and quantile skip."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                return None
            return number if math.isfinite(number) else None
    return None


def _add_row(metrics: Sequence[Metric], states: list[Any], row: Row) -> None:
    for i, m in enumerate(metrics):
        if m.where is not None and not m.where.matches(row):
            continue
        if m.kind == "count":
            if m.field is None or field_value(row, m.field) is not None:
                states[i] += 1
            continue
        assert m.field is not None
        value = field_value(row, m.field)
        if m.kind == "distinct":
            if value is not None:
                states[i].add(value if isinstance(value, str) else json.dumps(value))
            continue
        number = _number(value)
        if number is None:
            continue
        if m.kind == "sum":
            states[i] += number
        elif m.kind == "min":
            states[i] = number if states[i] is None else min(states[i], number)
        elif m.kind == "max":
            states[i] = number if states[i] is None else max(states[i], number)
        else:  # quantile
            states[i].add(float(number))


def merge_states(metrics: Sequence[Metric], into: list[Any], other: list[Any]) -> None:
    """Fold ``other``'s states into ``into``'s (same metrics)."""
    for i, m in enumerate(metrics):
        if m.kind in ("count", "sum"):
            into[i] += other[i]
        elif m.kind in ("min", "max"):
            if other[i] is not None:
                pick = min if m.kind == "min" else max
                into[i] = other[i] if into[i] is None else pick(into[i], other[i])
        else:
            into[i].merge(other[i])


def finalize(metrics: Sequence[Metric], states: list[Any]) -> list[Any]:
    """The numbers a query shows for one group of one window."""
    out: list[Any] = []
    for m, s in zip(metrics, states, strict=True):
        if m.kind == "distinct":
            out.append(s.estimate())
        elif m.kind == "quantile":
            assert m.q is not None
            out.append(s.quantile(m.q))
        else:
            out.append(s)
    return out


def _dump_state(metric: Metric, state: Any) -> Any:
    if metric.kind in ("distinct", "quantile"):
        return state.dumps()
    return state


def _load_state(metric: Metric, data: Any) -> Any:
    if metric.kind == "distinct":
        return HyperLogLog.loads(data)
    if metric.kind == "quantile":
        return DDSketch.loads(data)
    return data


@dataclass
class WindowPartial:
    """One window's partial aggregates on one shard: each group's metric states."""

    start: int
    fingerprint: str
    groups: dict[GroupKey, list[Any]] = field(default_factory=dict)

    def dumps(self, metrics: Sequence[Metric]) -> str:
        groups = [
            [list(key), [_dump_state(m, s) for m, s in zip(metrics, states, strict=True)]]
            for key, states in self.groups.items()
        ]
        return json.dumps(
            {"f": self.fingerprint, "s": self.start, "g": groups}, separators=(",", ":")
        )

    @classmethod
    def loads(cls, text: str, metrics: Sequence[Metric]) -> WindowPartial:
        data = json.loads(text)
        groups = {
            tuple(key): [_load_state(m, s) for m, s in zip(metrics, states, strict=True)]
            for key, states in data["g"]
        }
        return cls(int(data["s"]), str(data["f"]), groups)

    @staticmethod
    def peek(text: str) -> tuple[int, str]:
        """A stored partial's window start and fingerprint, without decoding its groups."""
        head = json.loads(text)
        return int(head["s"]), str(head["f"])


# -- folding ----------------------------------------------------------------------------------


@dataclass
class Dead:
    """A record for the dead-letter stream: why (``late`` or ``unreadable``), and the
    rows concerned (the late ones; none when the record could not be read)."""

    record: SourceRecord
    reason: str
    detail: str
    rows: list[Row]
    watermark: float | None


@dataclass
class Folded:
    """What folding a batch made: the shard's new state, the windows it changed (to
    store), the stored windows past the horizon (to delete), the dead letters."""

    shard: ShardState
    windows: dict[int, WindowPartial]
    delete: list[int]
    dead: list[Dead]
    skipped: int = 0  # records folded before (a batch processed again)


def _key_part(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fold(
    aggregate: Aggregate,
    shard: ShardState,
    records: Sequence[SourceRecord],
    load: Callable[[int], WindowPartial | None],
    *,
    now: float = 0.0,
) -> Folded:
    """Fold ``records`` (one shard's, in order) into the aggregate's windows.

    ``shard`` is the shard's state before them (left as it is); ``load(start)`` gives a
    stored window's partial (None when there is none). Records at or before
    ``shard.through`` were folded before and are skipped.
    """
    parse = parser(aggregate.format)
    window, lateness, fp = aggregate.window, aggregate.lateness, aggregate.fingerprint
    metrics, dimensions = aggregate.metrics, aggregate.dimensions
    new = ShardState(**{**asdict(shard), "windows": list(shard.windows)})
    touched: dict[int, WindowPartial] = {}
    dead: list[Dead] = []
    skipped = 0

    def partial(start: int) -> WindowPartial:
        found = touched.get(start)
        if found is None:
            found = load(start) if start in shard.windows else None
            if found is None or found.fingerprint != fp:  # a changed aggregate starts afresh
                found = WindowPartial(start, fp)
            touched[start] = found
        return found

    for record in records:
        if record.sequence <= shard.through:
            skipped += 1
            continue
        new.records += 1
        new.through = record.sequence
        try:
            rows = parse(record.data)
        except UnreadableRecord as exc:
            new.unreadable += 1
            dead.append(Dead(record, "unreadable", str(exc), [], new.watermark(lateness)))
            continue
        late: list[Row] = []
        timeless: list[Row] = []
        for row in rows:
            for enrichment in aggregate.enrich:
                enrichment.apply(row)
            if aggregate.where is not None and not aggregate.where.matches(row):
                continue
            t = aggregate.time.of(row, record.arrival)
            if t is None:
                timeless.append(row)
                continue
            starts = window.starts(t)
            mark = new.watermark(lateness)
            open_ = [s for s in starts if mark is None or s + window.size > mark]
            if not open_:
                late.append(row)
                continue
            key = tuple(_key_part(field_value(row, d)) for d in dimensions)
            for start in open_:
                groups = partial(start).groups
                states = groups.get(key)
                if states is None:
                    states = groups[key] = new_states(metrics)
                _add_row(metrics, states, row)
            new.rows += 1
            if new.max_event is None or t > new.max_event:
                new.max_event = t
        if late:
            new.late += len(late)
            dead.append(
                Dead(
                    record,
                    "late",
                    f"{len(late)} of {len(rows)} rows after the watermark closed their windows",
                    late,
                    new.watermark(lateness),
                )
            )
        if timeless:
            new.unreadable += len(timeless)
            dead.append(
                Dead(
                    record,
                    "unreadable",
                    f"{len(timeless)} rows with no event time in {aggregate.time.describe()}",
                    timeless,
                    new.watermark(lateness),
                )
            )
    delete: list[int] = []
    if new.max_event is not None:
        cutoff = new.max_event - aggregate.horizon
        known = set(shard.windows) | set(touched)
        kept = sorted(s for s in known if s + window.size > cutoff)
        delete = sorted(s for s in shard.windows if s not in kept)
        touched = {s: p for s, p in touched.items() if s in kept}
        new.windows = kept
    if new.records != shard.records:
        new.updated = now
    return Folded(new, touched, delete, dead, skipped)
