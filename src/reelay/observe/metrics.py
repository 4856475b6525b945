"""Metrics of a reelay home, read from its state database when asked.

`Metrics.collect` yields Prometheus metric families (``/metrics``: counters end in
``_total``, durations are in seconds, histograms per function); `Metrics.snapshot` is
the live view the dashboard draws and the alert rules judge: rates, error ratio and
percentiles over the last minute, depths and ages now. Both aggregate in SQL, so a
scrape costs a few grouped queries, not a walk over every invocation.

Counting follows Lambda's metrics: every attempt is an invocation; its outcome is
``success``, ``error`` or ``timeout``; attempts after the first are retries.

Apps add their own (media: titles by state, encode throughput) through their
`reelay.plugins.Observer`: its metric families join the scrape, its figures the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from reelay.plugins import Observer, installed
from reelay.state import CLAIMED, FAILED, QUEUED, RUNNING, State

# Upper bounds (seconds) of the duration histogram: from a no-op to Lambda's 900 s cap.
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
WINDOW_S = 60.0
NODES_S = 86400.0  # dispatchers and workers are listed for this long after their last sign
LONGEST_ATTEMPT_S = 960.0  # Lambda's 900 s timeout cap, and the dispatcher's grace


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


class Metrics(Collector):
    """The metrics of one home's state. A Prometheus collector: register it, or call
    `collect` directly.

    ``observers``: the apps' (default: one per installed app that observes, made here;
    the API server passes those it shares with its own pages).
    """

    def __init__(self, state: State, observers: Sequence[Observer] | None = None) -> None:
        self.state = state
        self.observers = list(observe(state) if observers is None else observers)

    # -- the live snapshot ---------------------------------------------------------------

    def snapshot(self, now: float | None = None) -> dict[str, float]:
        """Rates over the last minute and depths now, by the names alert rules use."""
        now = time.time() if now is None else now
        since = now - WINDOW_S
        # Attempts that ended in the window started at most the longest timeout earlier:
        # the first bound lets the index on `started` skip the rest of the history.
        recent = self.state.attempts_ended_since(since, LONGEST_ATTEMPT_S)
        durations = sorted(ms / 1000 for ms, _ in recent)
        errors = sum(1 for _, ok in recent if not ok)
        counts = self.state.counts()
        queued, oldest_age = self._pending(now)
        snapshot = {
            "invocations_per_second": len(recent) / WINDOW_S,
            "error_rate": errors / len(recent) if recent else 0.0,
            "duration_p50_seconds": _percentile(durations, 0.5),
            "duration_p99_seconds": _percentile(durations, 0.99),
            "queue_depth": float(queued),
            "claimed": float(counts[CLAIMED]),
            "running": float(counts[RUNNING]),
            "dlq_depth": float(counts[FAILED]),
            "oldest_pending_age_seconds": oldest_age,
        }
        for observer in self.observers:
            snapshot |= observer.snapshot(now)
        return snapshot

    def _pending(self, now: float) -> tuple[int, float]:
        """How many invocations are queued, and the age of the oldest one's event."""
        count, oldest = self.state.pending()
        return count, max(now - oldest, 0.0) if oldest else 0.0

    def failures(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest failed attempts with their error messages."""
        fields = (
            "invocation_id",
            "attempt",
            "function",
            "started",
            "duration_ms",
            "error_type",
            "error_message",
            "worker",
        )
        return [
            {name: getattr(a, name) for name in fields}
            for a in self.state.attempts(ok=False, limit=limit)
        ]

    # -- Prometheus ----------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        invocations = CounterMetricFamily(
            "reelay_invocations",
            "Function invocations (attempts), by outcome: success, error or timeout.",
            labels=["function", "outcome"],
        )
        retries = CounterMetricFamily(
            "reelay_retries", "Attempts after an invocation's first.", labels=["function"]
        )
        timeouts = CounterMetricFamily(
            "reelay_timeouts", "Attempts stopped at the function's timeout.", labels=["function"]
        )
        cold = CounterMetricFamily(
            "reelay_cold_starts",
            "Attempts that were a function's first in a fresh worker process.",
            labels=["function"],
        )
        duration = HistogramMetricFamily(
            "reelay_invocation_duration_seconds",
            "How long attempts ran.",
            labels=["function"],
        )
        per_function: dict[str, list[float]] = {}
        timed_out: dict[str, int] = {}
        for t in self.state.attempt_totals(BUCKETS):
            invocations.add_metric([t.function, t.outcome], t.count)
            totals = per_function.setdefault(t.function, [0.0] * (len(BUCKETS) + 4))
            for i, value in enumerate((t.count, t.retries, t.cold_starts, t.seconds, *t.buckets)):
                totals[i] += value or 0
            timed_out[t.function] = timed_out.get(t.function, 0) + (
                t.count if t.outcome == "timeout" else 0
            )
        for fn, (n, n_retries, n_cold, seconds, *below) in per_function.items():
            retries.add_metric([fn], n_retries)
            timeouts.add_metric([fn], timed_out[fn])
            cold.add_metric([fn], n_cold)
            buckets = [(str(float(b)), v) for b, v in zip(BUCKETS, below, strict=True)]
            duration.add_metric([fn], [*buckets, ("+Inf", n)], seconds)
        yield from (invocations, retries, timeouts, cold, duration)

        throttles = CounterMetricFamily(
            "reelay_throttles",
            "Ready invocations held back by their function's reserved concurrency.",
            labels=["function"],
        )
        for fn, n in self.state.throttles().items():
            throttles.add_metric([fn], n)
        yield throttles

        seen = GaugeMetricFamily(
            "reelay_node_last_seen_timestamp_seconds",
            "When each dispatcher and worker that serves the state was last seen alive "
            f"(those seen in the last {NODES_S / 3600:g} h).",
            labels=["name", "kind", "host", "version"],
        )
        for node in self.state.nodes(seen_since=now - NODES_S):
            seen.add_metric([node.name, node.kind, node.host, node.version], node.seen)
        yield seen

        yield from self._depths(now)
        for observer in self.observers:
            yield from observer.collect()

    def _depths(self, now: float) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            "reelay_invocations_pending",
            "Invocations not yet finished: queued, claimed (waiting for a worker) or running.",
            labels=["function", "status"],
        )
        dlq = GaugeMetricFamily(
            "reelay_dlq_depth", "Failed invocations in the dead-letter queue.", labels=["function"]
        )
        for (fn, status), n in self.state.counts_by_function(
            (QUEUED, CLAIMED, RUNNING, FAILED)
        ).items():
            if status == FAILED:
                dlq.add_metric([fn], n)
            else:
                by_status.add_metric([fn, status], n)
        queued, oldest_age = self._pending(now)
        queue = GaugeMetricFamily("reelay_queue_depth", "Invocations queued to run.")
        queue.add_metric([], queued)
        age = GaugeMetricFamily(
            "reelay_oldest_pending_event_age_seconds",
            "Age of the oldest queued invocation's event (0 when none waits).",
        )
        age.add_metric([], oldest_age)
        events = CounterMetricFamily("reelay_events", "Events in the log.", labels=["kind"])
        for kind, n in self.state.event_counts().items():
            events.add_metric([kind], n)
        yield from (by_status, dlq, queue, age, events)


def observe(state: State) -> list[Observer]:
    """An observer of ``state`` for every installed app that observes."""
    return [p.observe(state) for p in installed().values() if p.observe is not None]
