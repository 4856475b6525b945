"""What the state holds: events, invocations and their attempts, barriers, intents.

These records are the same on every backend (`reelay.state.State`).

Invocation life cycle::

    queued --claim--> claimed --a worker starts it--> running --ok--> succeeded
       ^                                                 |
       +--retry (delay)----------------------------------+--last attempt failed /
       |                                                     event too old--> failed (DLQ)
       +------------------------------- redrive -------------------------------+

``claimed``: the dispatcher took it and handed it to the executor, where it waits for a
free worker; ``running``: a worker started its handler (``started`` and ``worker`` say
when and where). Each event carries the time of its chain's root (the upload that
started a title, say): invocations are ranked by it, so that ready work of older chains
runs first (see `rank`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

QUEUED = "queued"
CLAIMED = "claimed"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = (QUEUED, CLAIMED, RUNNING, SUCCEEDED, FAILED)
ACTIVE = (QUEUED, CLAIMED, RUNNING)
"""Statuses of invocations not yet finished."""

Scheduling = Literal["oldest-first", "fifo"]
SCHEDULING: tuple[Scheduling, ...] = ("oldest-first", "fifo")
# How long an event chain keeps its precedence (see `rank`): longer than a batch of
# titles takes on a small machine, short enough that nothing waits for long.
AGING_S = 600.0


@dataclass(frozen=True)
class NewEvent:
    """An event to append. ``body`` is JSON text; ``root``: the time of the event that
    began its chain (None: it begins one)."""

    kind: str
    body: str
    source: str = ""
    detail_type: str = ""
    target: str | None = None
    id: str = ""
    root: float | None = None


@dataclass(frozen=True)
class Arrival:
    """Where a barrier stands after an arrival. ``fired``: this arrival completed it
    (from `State.arrive`), or it is complete (from `State.barrier`)."""

    name: str
    arrived: int
    parts: int
    fired: bool


@dataclass(frozen=True)
class Event:
    seq: int
    id: str
    time: float
    kind: str
    source: str
    detail_type: str
    target: str | None
    body: str
    root: float | None = None

    @property
    def chain_start(self) -> float:
        """When the chain this event belongs to began (its own time for a root)."""
        return self.time if self.root is None else self.root

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": self.id,
            "time": self.time,
            "root": self.chain_start,
            "kind": self.kind,
            "source": self.source,
            "detail_type": self.detail_type,
            "target": self.target,
            "event": parse_json(self.body),
        }


@dataclass(frozen=True)
class Intent:
    """An object write begun and not yet settled (see `State.begin_intent`).

    ``before_etag`` and ``before_modified`` describe the object as it was before the
    write (None: there was none), which is how reconciliation tells whether the write
    happened; ``owner`` names the writing process (host, pid, process token).
    """

    id: str
    time: float
    bucket: str
    key: str
    operation: str
    before_etag: str | None
    before_modified: float | None
    owner: str
    root: float | None


@dataclass(frozen=True)
class NewInvocation:
    """An invocation to create. ``rank`` orders ready invocations (lowest claimed
    first; default: the event's time, first in first out)."""

    event_seq: int
    event_time: float
    function: str
    max_attempts: int
    max_event_age_s: float
    rank: float | None = None


@dataclass(frozen=True)
class Invocation:
    id: str
    event_seq: int
    function: str
    status: str
    attempts: int
    max_attempts: int
    created: float
    expires: float
    not_before: float
    started: float | None
    finished: float | None
    worker: str | None
    condition: str | None
    error: dict[str, Any] | None
    result: str | None
    redrives: int
    claimed: float | None = None
    rank: float | None = None
    uncharged: int = 0

    @property
    def charged_attempts(self) -> int:
        """Attempts that count against ``max_attempts``: not those lost with their
        worker (a dispatcher killed under them: not the handler's failures), nor those
        made before the last redrive (a redrive gives a fresh budget)."""
        return max(self.attempts - self.uncharged, 0)

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["result"] = parse_json(self.result) if self.result is not None else None
        out["charged_attempts"] = self.charged_attempts  # of max_attempts, this round
        return out


@dataclass(frozen=True)
class Attempt:
    invocation_id: str
    attempt: int
    function: str
    started: float
    duration_ms: float
    ok: bool
    error_type: str | None
    error_message: str | None
    worker: str | None
    cold_start: bool
    max_memory_mb: int
    logs: str
    logs_truncated: int


@dataclass(frozen=True)
class AttemptTotals:
    """The attempts of one function with one outcome (``success``, ``error``,
    ``timeout``), summed over the whole history: what counters and histograms need."""

    function: str
    outcome: str
    count: int
    retries: int  # attempts after an invocation's first
    cold_starts: int
    seconds: float
    buckets: tuple[int, ...]  # attempts no longer than each bound asked for


@dataclass(frozen=True)
class FunctionStats:
    """One function's attempts over the whole history."""

    attempts: int
    errors: int
    avg_ms: float | None
    max_ms: float | None
    last_started: float | None


@dataclass(frozen=True)
class Node:
    """A dispatcher or a worker that serves a state, and its last sign of life."""

    name: str  # "dispatcher pid@host", or a worker's "pid@host"
    kind: str  # dispatcher | worker
    host: str
    pid: int | None
    version: str  # the reelay it runs
    started: float
    seen: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AccessKey:
    """An access key reelay issued (see `reelay.keys`). ``secret`` is the secret
    encrypted under the deployment's secret key (empty once revoked), never the secret."""

    id: str
    name: str
    secret: str
    created: float
    last_used: float | None = None
    revoked: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """What may be shown of it: everything but the (encrypted) secret."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "secret"}


@dataclass(frozen=True)
class Start:
    """A worker started an attempt's handler: at ``started`` (epoch seconds), on
    ``worker`` (None when the executor cannot tell)."""

    invocation_id: str
    attempt: int
    started: float
    worker: str | None


@dataclass(frozen=True)
class Outcome:
    """What the dispatcher decided after an attempt (or instead of one)."""

    invocation_id: str
    status: str  # QUEUED (retry later), SUCCEEDED or FAILED
    not_before: float = 0.0
    condition: str | None = None
    error: dict[str, Any] | None = None
    result: str | None = None
    attempt: Attempt | None = None


def parse_json(text: str) -> Any:
    """Parse stored JSON for readers; NaN and Infinity, which a handler's result may
    hold (Python writes them) but JSON has not, read as null."""
    return json.loads(text, parse_constant=lambda _: None)


def rank(event: Event, scheduling: Scheduling = "oldest-first") -> float:
    """Where invocations of ``event`` stand among ready ones: lowest claimed first.

    ``oldest-first``: the time the event's chain began, so older work finishes first;
    aged, so that an invocation made `AGING_S` after its chain began ranks as if the
    chain began `AGING_S` before it (young work waits behind old for about that long at
    most). ``fifo``: the event's own time.
    """
    if scheduling == "fifo":
        return event.time
    return max(event.chain_start, event.time - AGING_S)


def lost_error(worker: str | None) -> dict[str, Any]:
    """Lambda's error for an attempt whose sandbox died, saying how it was lost."""
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": (
            f"the worker {worker or '(unknown)'} was lost: its dispatcher stopped (killed, "
            "crashed, or stopped without waiting for it) before the attempt finished; it "
            "ran at least the duration recorded, and the invocation runs again"
        ),
        "stackTrace": [],
    }
