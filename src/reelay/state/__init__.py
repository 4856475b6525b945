"""The durable state of a home: the event log, invocations, attempts, the DLQ, barriers,
idempotency records, object-write intents and small metadata. A backend plugs in here.

Chosen by URL (``REELAY_STATE`` / ``--state``): empty (the default) is SQLite in the
home (``<home>/state.db``, one machine); ``postgresql://user@host/db`` is PostgreSQL,
which dispatchers and workers on many machines can share (``reelay[postgres]``).

`State` is the contract, split by job below; `SQLState` implements it once in SQL for
both backends, and tests/state/test_conformance.py holds every backend to it. Errors
of a backend reach callers as `reelay.errors.StateError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from reelay.errors import ConfigError
from reelay.state._model import (
    ACTIVE,
    AGING_S,
    CLAIMED,
    FAILED,
    QUEUED,
    RUNNING,
    SCHEDULING,
    STATUSES,
    SUCCEEDED,
    AccessKey,
    Arrival,
    Attempt,
    AttemptTotals,
    Event,
    FunctionStats,
    Intent,
    Invocation,
    NewEvent,
    NewInvocation,
    Node,
    Outcome,
    Scheduling,
    Start,
    lost_error,
    rank,
)
from reelay.state._sql import EventFilter, JsonPath, Listener, ResultTotals, SQLState

__all__ = [
    "ACTIVE",
    "AGING_S",
    "CLAIMED",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "SCHEDULING",
    "STATE_SCHEMES",
    "STATUSES",
    "SUCCEEDED",
    "AccessKey",
    "Arrival",
    "Attempt",
    "AttemptTotals",
    "Event",
    "EventFilter",
    "FunctionStats",
    "Intent",
    "Invocation",
    "JsonPath",
    "Listener",
    "NewEvent",
    "NewInvocation",
    "Node",
    "Outcome",
    "ResultTotals",
    "SQLState",
    "Scheduling",
    "Start",
    "State",
    "check_state_url",
    "lost_error",
    "open_state",
    "rank",
]

STATE_SCHEMES = ("postgresql://", "postgres://")


class EventLog(Protocol):
    """Append-only, ordered by ``seq``; appends are durable when they return."""

    def append(self, events: Sequence[NewEvent]) -> list[Event]: ...
    def append_once(self, key: str, events: Sequence[NewEvent]) -> list[Event]: ...
    def forget_once(self, before: float) -> int: ...
    def event(self, seq: int) -> Event: ...
    def events(
        self,
        *,
        limit: int = ...,
        source: str | None = ...,
        kind: str | None = ...,
        before: int | None = ...,
    ) -> list[Event]: ...
    def events_after(
        self, seq: int, limit: int = ..., *, where: Sequence[EventFilter] = ...
    ) -> list[Event]: ...
    def last_seq(self) -> int: ...
    def event_counts(self) -> dict[str, int]: ...


class Invocations(Protocol):
    """Routing, claiming, finishing and reading invocations and their attempts."""

    def route(self, invocations: Sequence[NewInvocation], cursor: int) -> list[str]: ...
    def route_cursor(self) -> int: ...
    def append_invocation(
        self,
        event: NewEvent,
        function: str,
        *,
        max_attempts: int,
        max_event_age_s: float,
        request_id: str | None = ...,
        meta: Mapping[str, str] | None = ...,
    ) -> tuple[Event, str]: ...
    def claim(
        self,
        now: float,
        limit: int,
        *,
        room: Mapping[str, int] | None = ...,
        only: Sequence[str] | None = ...,
    ) -> list[tuple[Invocation, Event]]: ...
    def start(self, starts: Sequence[Start]) -> None: ...
    def finish(self, outcomes: Sequence[Outcome], events: Sequence[NewEvent] = ...) -> None: ...
    def release(self, ids: Sequence[str] | None = ...) -> int: ...
    def redrive(self, *, ids: Sequence[str] = ..., function: str | None = ...) -> int: ...
    def expired(self, now: float) -> list[tuple[Invocation, Event]]: ...
    def next_due(self) -> float | None: ...
    def idle(self) -> bool: ...
    def invocation(self, request_id: str) -> Invocation: ...
    def invocations(
        self,
        *,
        function: str | None = ...,
        status: str | None = ...,
        event_seq: int | None = ...,
        limit: int = ...,
        before: str | None = ...,
    ) -> list[Invocation]: ...
    def invocations_of(
        self, low: int, high: int, where: Sequence[EventFilter]
    ) -> list[tuple[Invocation, Event]]: ...
    def attempts(
        self,
        *,
        function: str | None = ...,
        invocation_id: str | None = ...,
        ok: bool | None = ...,
        limit: int = ...,
    ) -> list[Attempt]: ...
    def attempts_of(self, ids: Sequence[str]) -> list[Attempt]: ...


class Observations(Protocol):
    """What metrics, the API and the dashboard aggregate, summed where it is stored."""

    def counts(self) -> dict[str, int]: ...
    def ready(self, functions: Sequence[str], now: float) -> dict[str, str]: ...
    def pending(self) -> tuple[int, float | None]: ...
    def counts_by_function(self, statuses: Sequence[str]) -> dict[tuple[str, str], int]: ...
    def attempts_ended_since(self, since: float, longest_s: float) -> list[tuple[float, bool]]: ...
    def attempt_totals(self, bounds: Sequence[float]) -> list[AttemptTotals]: ...
    def function_stats(self) -> dict[str, FunctionStats]: ...
    def result_totals(
        self, fields: Sequence[JsonPath], since: float | None, longest_s: float
    ) -> list[ResultTotals]: ...
    def throttles(self) -> dict[str, int]: ...


class Barriers(Protocol):
    """Fan-in: the arrival that completes a barrier appends its event, exactly once."""

    def arrive(self, name: str, part: str, parts: int, event: NewEvent) -> Arrival: ...
    def barrier(self, name: str) -> Arrival | None: ...


class Idempotency(Protocol):
    """Records that let `reelay.idempotency.once` run an effect once."""

    def idempotency_begin(self, key: str, owner: str, expires: float) -> tuple[str, str | None]: ...
    def idempotency_complete(self, key: str, owner: str, result: str) -> None: ...
    def idempotency_release(self, key: str, owner: str) -> None: ...


class Intents(Protocol):
    """Object writes begun and not yet settled with their event."""

    def begin_intent(
        self,
        bucket: str,
        key: str,
        operation: str,
        *,
        before_etag: str | None,
        before_modified: float | None,
        owner: str,
        root: float | None = ...,
    ) -> Intent: ...
    def commit_intent(
        self, intent_id: str, events: Sequence[NewEvent], *, if_pending: bool = ...
    ) -> list[Event]: ...
    def intents(self, older_than: float | None = ...) -> list[Intent]: ...


class Meta(Protocol):
    """Small keyed values: schedules' last fire times, throttle counts, liveness, the
    dispatchers and workers that serve the state, and apps' own small state (read by
    prefix, updated several at once, compare-and-set: analytics' partial aggregates)."""

    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def meta_items(self, prefix: str) -> dict[str, str]: ...
    def update_meta(
        self,
        values: Mapping[str, str],
        delete: Sequence[str] = ...,
        *,
        expect: Mapping[str, str | None] | None = ...,
    ) -> bool: ...
    def fire_schedule(self, key: str, fired_at: str, event: NewEvent) -> bool: ...
    def add_throttles(self, by_function: Mapping[str, int]) -> None: ...
    def beat(self, now: float) -> None: ...
    def node_seen(self, nodes: Sequence[Node]) -> None: ...
    def nodes(self, seen_since: float = ...) -> list[Node]: ...


class Keys(Protocol):
    """The access keys reelay issues (`reelay.keys`): secrets are stored encrypted."""

    def add_access_key(self, key: AccessKey) -> None: ...
    def access_key(self, key_id: str) -> AccessKey | None: ...
    def access_keys(self) -> list[AccessKey]: ...
    def revoke_access_key(self, key_id: str, when: float) -> bool: ...
    def access_key_used(self, key_id: str, when: float) -> None: ...


class State(
    EventLog, Invocations, Observations, Barriers, Idempotency, Intents, Meta, Keys, Protocol
):
    """The whole contract, and what serves it: one dispatcher at a time (its lock), a
    doorbell that wakes it."""

    url: str
    shared: bool  # dispatchers of other machines may serve it (a standby takes over)

    def listen(self) -> Listener | None: ...
    def dispatcher_lock(self, *, wait: bool = ...) -> contextlib.AbstractContextManager[None]: ...
    def close(self) -> None: ...


def check_state_url(url: str) -> None:
    """Raise `ConfigError` unless ``url`` names a state backend ('' is the default)."""
    if url and not url.startswith(STATE_SCHEMES):
        raise ConfigError(
            f"{url!r} is not a state URL; use postgresql://user@host:port/database, "
            "or leave it empty for SQLite in the home"
        )


def open_state(url: str, home: Path, *, durability: str = "process", create: bool = True) -> State:
    """Open the state ``url`` names ('' : SQLite in ``home``). ``create=False``: refuse,
    with `StateError`, a state that does not exist yet instead of making one."""
    check_state_url(url)
    if url:
        from reelay.state._postgres import PostgresState

        return PostgresState(url, create=create)
    from reelay.state._sqlite import SQLiteState

    return SQLiteState(home, durability=durability, create=create)
