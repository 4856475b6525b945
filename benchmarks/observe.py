"""What the dashboard and /metrics cost on a home with a long history.

Fills a fresh home with the events of N titles (as many state changes and requests
per title as a 10-chunk title makes, with one invocation and attempt per request),
then times, side by side in one process:

- a stateless read of the title list (a fresh `Titles`: folds the whole log), which
  is what a reader without an index pays on every look;
- the dashboard's read: the same `Titles` again after one more title's events
  (only what is new is folded);
- one title's timeline, the live snapshot and a Prometheus scrape.

    .venv/bin/python benchmarks/observe.py --titles 2000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from reelay.client import Client
from reelay.config import Settings
from reelay.media._observe import MediaObserver
from reelay.media.titles import STATE_CHANGE, Titles
from reelay.observe.metrics import Metrics
from reelay.state import SUCCEEDED, Attempt, NewEvent, NewInvocation, Outcome, State

CHUNKS = 10


def title_events(i: int) -> list[NewEvent]:
    ref = {"id": f"t{i}", "bucket": "media", "key": f"ingest/t{i}.mp4", "etag": "0" * 32}

    def event(detail_type: str, **detail: Any) -> NewEvent:
        body = {"source": "reelay.media", "detail-type": detail_type, "detail": detail}
        return NewEvent("event", json.dumps(body), "reelay.media", detail_type)

    out = [event(STATE_CHANGE, title=ref, status="PROGRESSING", stage="inspect", percent=0)]
    for c in range(CHUNKS):
        out.append(event("Media Chunk Encode Requested", title=ref, chunk=c, renditions=["a"]))
        out.append(event(STATE_CHANGE, title=ref, status="STATUS_UPDATE", stage="encode"))
    out.append(event("Media Title Published", title=ref, outputs={}))
    out.append(event(STATE_CHANGE, title=ref, status="COMPLETE", stage="publish", percent=100))
    return out


def add_title(state: State, i: int) -> None:
    """A title's events, and a finished invocation for each chunk request."""
    for event in state.append(title_events(i)):
        if event.detail_type == "Media Chunk Encode Requested":
            invocation = NewInvocation(event.seq, event.time, "encode", 1, 60)
            (request_id,) = state.route([invocation], state.route_cursor())
            state.claim(time.time(), 1, only=[request_id])
            attempt = Attempt(
                request_id, 1, "encode", time.time(), 5.0, True, None, None, "w", False, 1, "", 0
            )
            state.finish([Outcome(request_id, SUCCEEDED, result="null", attempt=attempt)])


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) if repeat < 3 else statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home, Client(Settings.load(Path(home))) as client:
        state = client.state
        print(f"filling a home with {args.titles} titles ...", flush=True)
        for i in range(args.titles):
            state.append(title_events(i))
        add_title(state, args.titles)  # the one whose timeline is read: real invocations
        print(f"{state.last_seq():,} events")

        stateless = best_of(3, lambda: Titles(state).all())
        observer = MediaObserver(state)
        titles = observer.titles
        titles.all()
        state.append(title_events(args.titles + 1))
        incremental = best_of(1, titles.all)
        metrics = Metrics(state, [observer])
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        timeline = titles.timeline(f"t{args.titles}")
        if len(timeline) != CHUNKS:
            raise SystemExit(f"the timeline has {len(timeline)} tasks, not {CHUNKS}")
        rows = [
            ("title list, stateless (fold the whole log)", stateless),
            ("title list, dashboard (fold what is new)", incremental),
            ("one title's timeline", best_of(5, lambda: titles.timeline(f"t{args.titles}"))),
            ("live snapshot (once a second)", best_of(5, metrics.snapshot)),
            ("Prometheus scrape", best_of(5, lambda: generate_latest(registry))),
        ]
        print(f"{'read':<45} {'ms':>9} {'vs stateless':>13}")
        for name, seconds in rows:
            print(f"{name:<45} {seconds * 1000:9.1f} {stateless / seconds:12.0f}x")


if __name__ == "__main__":
    main()
