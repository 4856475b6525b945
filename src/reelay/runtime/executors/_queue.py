"""`TaskQueue`: the tasks an executor holds until a worker is free, best first.

Both executors keep their waiting tasks here, so that a task of older work (a lower
`Task.priority`) starts before younger work submitted earlier; among equal priorities
the first submitted starts first.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, Protocol, TypeVar

from reelay.runtime._task import Task


class _HasTask(Protocol):
    task: Task


T = TypeVar("T", bound=_HasTask)


class TaskQueue(Generic[T]):
    """A priority queue of executor items, ordered by (task priority, submission)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._count = itertools.count(1)

    def push(self, item: T) -> None:
        """Queue ``item`` behind those of its priority already queued."""
        heapq.heappush(self._heap, (item.task.priority, next(self._count), item))

    def push_back(self, item: T) -> None:
        """Put back an item taken that could not start: ahead of its priority's others."""
        heapq.heappush(self._heap, (item.task.priority, -next(self._count), item))

    def pop(self) -> T:
        """Take the best item. Raises `IndexError` when empty."""
        return heapq.heappop(self._heap)[2]

    def clear(self) -> list[T]:
        """Empty the queue; return what it held, best first."""
        items = [entry[2] for entry in sorted(self._heap, key=lambda e: e[:2])]
        self._heap.clear()
        return items

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)
