"""What the analytics app adds to the observation of a home: its aggregates (an entity
the live stream sends each second, with each one's newest windows, which the
dashboard's page draws), Prometheus metrics per aggregate, and the live figures alert
rules can watch (``analytics_late_records``, ``analytics_unreadable_records``).
Registered by `reelay.analytics._plugin`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from reelay.analytics.fold import ShardState
from reelay.analytics.store import AggregateInfo, Results

if TYPE_CHECKING:
    from reelay.client import Client
    from reelay.state import State

LIVE_WINDOWS = 30  # the newest windows of each aggregate the live stream sends
DETAIL_WINDOWS = 120
TOP_GROUPS = 8  # the groups drawn per metric (the chart's colours)
LATEST_ROWS = 25  # the rows of the newest window listed


def _label(group: list[Any]) -> str:
    return " → ".join("none" if v is None else str(v) for v in group) or "all"


def summary(results: Results, info: AggregateInfo, windows: int = LIVE_WINDOWS) -> dict[str, Any]:
    """An aggregate as the dashboard shows it: what it is, its shards' progress, and its
    newest windows (per metric, the top groups' values window by window)."""
    shards = results.shards(info.name)
    rows = results.rows(info, shards=shards, latest=windows)
    metrics = info.metrics
    plain = info.plain
    lateness = float(plain["lateness"])
    marks = [s.watermark(lateness) for s in shards.values()]
    starts = sorted({r.start for r in rows})
    index = {s: i for i, s in enumerate(starts)}
    series: dict[str, list[dict[str, Any]]] = {}
    for i, m in enumerate(metrics):
        by_group: dict[str, list[Any]] = {}
        for r in rows:
            values = by_group.setdefault(_label(list(r.group)), [None] * len(starts))
            values[index[r.start]] = r.values[i]
        ranked = sorted(
            by_group.items(), key=lambda kv: -sum(v for v in kv[1] if isinstance(v, int | float))
        )
        series[m.name] = [{"group": g, "values": v} for g, v in ranked[:TOP_GROUPS]]
    newest = [r for r in rows if starts and r.start == starts[-1]]
    newest.sort(key=lambda r: -(r.values[0] or 0) if metrics else 0)
    return {
        "name": info.name,
        "description": plain.get("description", ""),
        "stream": plain["stream"],
        "format": plain["format"],
        "window": plain["window"],
        "lateness": lateness,
        "deadLetter": plain["deadLetter"],
        "dimensions": info.dimensions,
        "metrics": [{"name": m.name, "kind": m.kind, "field": m.field, "q": m.q} for m in metrics],
        "function": info.function,
        "shards": len(shards),
        "watermark": min((m for m in marks if m is not None), default=None),
        "newest": max((s.max_event for s in shards.values() if s.max_event), default=None),
        "updated": max((s.updated for s in shards.values()), default=None),
        **_totals(shards),
        "windows": starts,
        "series": series,
        "latest": [{"group": list(r.group), "values": r.values} for r in newest[:LATEST_ROWS]],
    }


def _totals(shards: dict[str, ShardState]) -> dict[str, int]:
    return {
        "records": sum(s.records for s in shards.values()),
        "rows": sum(s.rows for s in shards.values()),
        "late": sum(s.late for s in shards.values()),
        "unreadable": sum(s.unreadable for s in shards.values()),
    }


class AggregateEntities:
    """Aggregates as a `reelay.plugins.Entities`: ``aggregates`` in the live stream,
    ``?aggregate=NAME`` on ``/api/live`` and ``/api/invocations``."""

    name = "aggregates"
    param = "aggregate"
    about = "an analytics aggregate's name"

    def __init__(self, results: Results) -> None:
        self.results = results

    def all(self, status: str | None = None) -> list[dict[str, Any]]:
        return [summary(self.results, info) for info in self.results.aggregates().values()]

    def _info(self, entity_id: str) -> AggregateInfo:
        found = self.results.aggregates().get(entity_id)
        if found is None:
            raise LookupError(f"no aggregate {entity_id!r} has results in this home")
        return found

    def detail(self, entity_id: str, client: Client) -> dict[str, Any]:
        return summary(self.results, self._info(entity_id), DETAIL_WINDOWS)

    def invocation_ids(self, entity_id: str) -> list[str]:
        info = self._info(entity_id)
        if info.function is None:
            return []
        return [i.id for i in self.results.state.invocations(function=info.function, limit=1000)]


class AnalyticsObserver:
    """The analytics app's `reelay.plugins.Observer` of one home."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.results = Results(state)
        self.entities = (AggregateEntities(self.results),)

    def snapshot(self, now: float) -> dict[str, float]:
        late = unreadable = 0
        for name in self.results.aggregates():
            totals = _totals(self.results.shards(name))
            late += totals["late"]
            unreadable += totals["unreadable"]
        return {
            "analytics_late_records": float(late),
            "analytics_unreadable_records": float(unreadable),
        }

    def collect(self) -> Iterator[Metric]:
        labels = ["aggregate"]
        families = {
            "records": CounterMetricFamily(
                "reelay_analytics_records",
                "Stream records folded into an aggregate.",
                labels=labels,
            ),
            "rows": CounterMetricFamily(
                "reelay_analytics_rows", "Rows counted in an aggregate's windows.", labels=labels
            ),
            "late": CounterMetricFamily(
                "reelay_analytics_late_rows",
                "Rows too late for their windows (sent to the dead-letter stream).",
                labels=labels,
            ),
            "unreadable": CounterMetricFamily(
                "reelay_analytics_unreadable",
                "Records or rows that could not be read (sent to the dead-letter stream).",
                labels=labels,
            ),
        }
        watermark = GaugeMetricFamily(
            "reelay_analytics_watermark_seconds",
            "An aggregate's watermark (the least of its shards'), epoch seconds.",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "reelay_analytics_watermark_lag_seconds",
            "How far an aggregate's watermark is behind the clock.",
            labels=labels,
        )
        now = time.time()
        for name, info in self.results.aggregates().items():
            shards = self.results.shards(name)
            for key, total in _totals(shards).items():
                families[key].add_metric([name], total)
            marks = [s.watermark(float(info.plain["lateness"])) for s in shards.values()]
            known = [m for m in marks if m is not None]
            if known:
                watermark.add_metric([name], min(known))
                lag.add_metric([name], max(0.0, now - min(known)))
        yield from (*families.values(), watermark, lag)
