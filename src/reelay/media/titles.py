"""Titles as operators see them: each upload's state and progress, and its task timeline.

Everything here is read from the event log (uploads to the ingest prefix, the
pipeline's state-change and outcome events), the invocations that ran for a title, and
its report in the store. Nothing here writes, so the dashboard and the API can show a
title while it is being made. A title exists from the moment its upload is accepted
(the upload's event is on the log before the upload returns): ``submitted`` until a
stage of it runs. `Titles` folds the log incrementally; a title's timeline reads only
the stretch of the log between its upload and its last event.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from reelay.client import Client
from reelay.errors import InvalidEventError, NoSuchKeyError
from reelay.events import encode_s3_key
from reelay.media.config import BUCKET, INGEST_PREFIX, SOURCE, Title
from reelay.media.progress import TitleProgress
from reelay.state import Event, EventFilter, State

STATE_CHANGE = "Media Title State Change"
OUTCOMES = {
    "Media Title Published": "published",
    "Media Title Held": "held",
    "Media Title Rejected": "rejected",
    "Media Title Failed": "failed",
}
STATES = ("submitted", "processing", *OUTCOMES.values())
_BATCH = 5000
_BUCKET_NAME = ("Records", 0, "s3", "bucket", "name")
_OBJECT_KEY = ("Records", 0, "s3", "object", "key")
_OBJECT_ETAG = ("Records", 0, "s3", "object", "eTag")
# What `Titles` folds: the pipeline's state changes and outcomes, and uploads to its
# ingest prefix (filtered here: most object events are the pipeline's own work files).
_FOLDED = (
    EventFilter(source=SOURCE, detail_types=(STATE_CHANGE, *OUTCOMES)),
    EventFilter(
        source="aws.s3",
        detail_types=("ObjectCreated:*",),
        equals=((_BUCKET_NAME, BUCKET),),
        prefixes=((_OBJECT_KEY, INGEST_PREFIX),),
    ),
)


@dataclass
class _Entry:
    """What the log has said about one title so far."""

    ref: dict[str, str]  # id, bucket, key, etag
    created: float  # its upload (or, without one on the log, its first state change)
    updated: float
    upload_seq: int | None = None  # the upload event that started it
    first_seq: int = 0  # its first and newest events
    last_seq: int = 0
    started: bool = False  # a stage of it has run
    progress: TitleProgress = field(default_factory=TitleProgress)
    now: dict[str, Any] = field(default_factory=dict)  # its newest state change's detail
    outcome: str | None = None  # its newest outcome's detail type

    @property
    def known(self) -> bool:
        """Uploaded, or seen by a stage (an outcome alone names no title of this home)."""
        return self.upload_seq is not None or self.started

    def state_change(self, detail: dict[str, Any], time: float) -> None:
        # A published, held or rejected title is done with; a failed one goes on when
        # a part of it is redriven (`TitleProgress`).
        if self.progress.fold(detail, resumable=self.outcome in (None, "Media Title Failed")):
            self.started = True
            self.now = detail
            self.updated = time

    def summary(self) -> dict[str, Any]:
        # The last state change folded says whether the title is settled (a failed
        # title that was redriven is processing again); the newest outcome says how.
        settled = self.progress.settled is not None and self.outcome is not None
        if settled and self.outcome:
            status = OUTCOMES[self.outcome]
        else:
            status = "processing" if self.started else "submitted"
        return {
            **self.ref,
            "status": status,
            "stage": self.progress.stage,
            "percent": self.progress.percent,
            "chunks_done": self.progress.chunks_done if self.progress.chunks_total else None,
            "chunks_total": self.progress.chunks_total,
            "error": self.now.get("error") if settled else None,
            "created": self.created,
            "updated": self.updated,
        }


class Titles:
    """The titles of one home, folded from its event log as the log grows.

    Each read first folds in only the events appended since the last one (the
    pipeline's events and uploads to its ingest prefix), so watching a home with
    thousands of titles costs what happened since the last look, not its history.
    Events that do not name a whole title are skipped: anyone may put events with
    the pipeline's source, and a malformed one must not hide or break the real ones.
    Thread-safe.
    """

    def __init__(self, state: State) -> None:
        self.state = state
        self._cursor = 0
        self._titles: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def all(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Every title uploaded, newest first, with its state and progress."""
        with self._lock:
            self._refresh()
            titles = [e.summary() for e in self._titles.values() if e.known]
        titles.sort(key=lambda t: t["created"], reverse=True)
        return [t for t in titles if status is None or t["status"] == status]

    def get(self, title_id: str) -> dict[str, Any]:
        """One title's summary; `LookupError` if no upload or event names it."""
        with self._lock:
            self._refresh()
            entry = self._titles.get(title_id)
            if entry is None or not entry.known:
                raise LookupError(f"no title {title_id!r}")
            return entry.summary()

    def _refresh(self) -> None:
        while events := self.state.events_after(self._cursor, _BATCH, where=_FOLDED):
            for event in events:
                self._fold(event)
            self._cursor = events[-1].seq

    def _fold(self, event: Event) -> None:
        body = json.loads(event.body)
        if event.kind == "s3":  # an upload makes a title (the same bytes again: the same)
            for record in body["Records"]:
                title = Title.from_s3_record(record)
                if title.id not in self._titles:
                    self._titles[title.id] = _Entry(
                        title.as_dict(),
                        created=event.time,
                        updated=event.time,
                        upload_seq=event.seq,
                        first_seq=event.seq,
                        last_seq=event.seq,
                    )
            return
        try:
            ref = Title.from_dict(body.get("detail", {}).get("title")).as_dict()
        except (InvalidEventError, AttributeError):
            return
        entry = self._titles.get(ref["id"])
        if entry is None:  # events of a title whose upload is not on this log
            entry = _Entry(ref, created=event.time, updated=event.time, first_seq=event.seq)
            self._titles[ref["id"]] = entry
        entry.last_seq = event.seq
        if event.detail_type == STATE_CHANGE:
            entry.state_change(body["detail"], event.time)
        elif event.detail_type in OUTCOMES:
            entry.outcome = event.detail_type

    def report(self, client: Client, title_id: str) -> dict[str, Any] | None:
        """The title's report, once it is settled (None before)."""
        title = Title.from_dict(self.get(title_id))
        try:
            value = json.loads(client.get_object(title.bucket, title.report_key))
        except NoSuchKeyError:
            return None
        return value if isinstance(value, dict) else None

    def timeline(self, title_id: str) -> list[dict[str, Any]]:
        """Every task that ran (or waits) for a title: when it was queued, each
        attempt's start, duration, worker and error, and what it worked on."""
        summary = self.get(title_id)
        with self._lock:
            entry = self._titles[title_id]
            low = entry.upload_seq or entry.first_seq
            # A settled title has no more events; one in progress may have any later.
            settled = summary["status"] not in ("submitted", "processing")
        high = entry.last_seq if settled else self.state.last_seq()
        return _timeline(self.state, summary, low, high)


_LABELS = ("chunk", "renditions", "rendition", "output")


def _timeline(state: State, title: dict[str, Any], low: int, high: int) -> list[dict[str, Any]]:
    key = encode_s3_key(title["key"])
    pairs = state.invocations_of(
        low,
        high,
        [
            EventFilter(equals=((("detail", "title", "id"), title["id"]),)),
            EventFilter(equals=((("requestPayload", "detail", "title", "id"), title["id"]),)),
            EventFilter(
                kind="s3",
                equals=(
                    (_OBJECT_KEY, key),
                    (("Records", 0, "s3", "object", "eTag"), title["etag"]),
                ),
            ),
        ],
    )
    attempts: dict[str, list[dict[str, Any]]] = {inv.id: [] for inv, _ in pairs}
    for a in state.attempts_of(list(attempts)):
        attempts[a.invocation_id].append(
            {
                "attempt": a.attempt,
                "started": a.started,
                "duration_s": round(a.duration_ms / 1000, 3),
                "ok": a.ok,
                "error": a.error_message and f"{a.error_type}: {a.error_message}",
                "worker": a.worker,
                "cold_start": a.cold_start,
            }
        )
    tasks = []
    for inv, event in pairs:
        detail = json.loads(event.body).get("detail") or {}
        label = " ".join(
            f"{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
            for k in _LABELS
            if (v := detail.get(k)) is not None
        )
        tasks.append(
            {
                "id": inv.id,
                "function": inv.function,
                "label": label,
                "status": inv.status,
                "queued": event.time,
                "started": inv.started,  # the current (or last) attempt's claim
                "finished": inv.finished,
                "redrives": inv.redrives,
                "worker": inv.worker,
                "attempts": attempts[inv.id],
            }
        )
    return tasks
