"""What the media app adds to the observation of a home: its titles (an entity the API
and the dashboard follow), the ``reelay_titles`` gauge, encode throughput, and the
live figures alert rules watch (``titles_in_progress``, ``titles_held``,
``titles_failed``). Registered by `reelay.media._plugin`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from reelay.media.titles import STATES, Titles
from reelay.observe.metrics import LONGEST_ATTEMPT_S, WINDOW_S

if TYPE_CHECKING:
    from reelay.client import Client
    from reelay.state import State


# What encode tasks return: frames written and media seconds covered.
_THROUGHPUT = (("throughput", "frames"), ("throughput", "media_seconds"))


class TitleEntities:
    """Media titles as a `reelay.plugins.Entities`: ``titles`` in the live stream,
    ``?title=ID`` on ``/api/live`` and ``/api/invocations``."""

    name = "titles"
    param = "title"
    about = "a media title's id"

    def __init__(self, titles: Titles) -> None:
        self.titles = titles

    def all(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.titles.all(status=status)

    def detail(self, entity_id: str, client: Client) -> dict[str, Any]:
        return {
            "title": self.titles.get(entity_id),
            "report": self.titles.report(client, entity_id),
            "tasks": self.titles.timeline(entity_id),
        }

    def invocation_ids(self, entity_id: str) -> list[str]:
        return [task["id"] for task in reversed(self.titles.timeline(entity_id))]


class MediaObserver:
    """The media app's `reelay.plugins.Observer` of one home."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.titles = Titles(state)
        self.entities = (TitleEntities(self.titles),)

    def snapshot(self, now: float) -> dict[str, float]:
        states = [t["status"] for t in self.titles.all()]
        return {
            # Submitted titles wait for their first stage: in progress to their publisher.
            "titles_in_progress": float(states.count("submitted") + states.count("processing")),
            "titles_held": float(states.count("held")),
            "titles_failed": float(states.count("failed")),
        }

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        titles = GaugeMetricFamily("reelay_titles", "Media titles by state.", labels=["state"])
        states = [t["status"] for t in self.titles.all()]
        for name in STATES:
            titles.add_metric([name], states.count(name))
        frames = CounterMetricFamily(
            "reelay_encoded_frames", "Video frames written by encode tasks.", labels=["function"]
        )
        media = CounterMetricFamily(
            "reelay_encoded_media_seconds",
            "Seconds of media time covered by encode tasks.",
            labels=["function"],
        )
        busy = CounterMetricFamily(
            "reelay_encode_busy_seconds", "Seconds encode tasks ran.", labels=["function"]
        )
        fps = GaugeMetricFamily(
            "reelay_encode_frames_per_second",
            f"Frames written per second of encode task time, over the last {WINDOW_S:g} s.",
            labels=["function"],
        )
        realtime = GaugeMetricFamily(
            "reelay_encode_realtime_factor",
            f"Media seconds encoded per second of task time, over the last {WINDOW_S:g} s.",
            labels=["function"],
        )
        for t in self.state.result_totals(_THROUGHPUT, None, LONGEST_ATTEMPT_S):
            frames.add_metric([t.function], t.sums[0])
            media.add_metric([t.function], t.sums[1])
            busy.add_metric([t.function], t.seconds)
        for t in self.state.result_totals(_THROUGHPUT, now - WINDOW_S, LONGEST_ATTEMPT_S):
            if t.seconds:
                fps.add_metric([t.function], t.sums[0] / t.seconds)
                realtime.add_metric([t.function], t.sums[1] / t.seconds)
        yield from (titles, frames, media, busy, fps, realtime)
