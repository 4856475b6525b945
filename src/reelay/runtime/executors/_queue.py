"""`TaskQueue`: the tasks an executor holds until a worker is free, best first.

Both executors keep their waiting tasks here, so that a task of older work (a lower
`Task.priority`) starts before younger work submitted earlier; among equal priorities
the first submitted starts first.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from reelay.runtime._task import Task


class _HasTask(Protocol):
    task: Task


T = TypeVar("T", bound=_HasTask)


class TaskQueue(Generic[T]):
    """A priority queue of executor items, ordered by (task priority, submission)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._order: dict[int, int] = {}  # id(item) -> its submission number
        self._count = itertools.count()

    def push(self, item: T) -> None:
        """Queue ``item``; one pushed back (it could not start) keeps its place."""
        order = self._order.setdefault(id(item), next(self._count))
        heapq.heappush(self._heap, (item.task.priority, order, item))

    def pop(self) -> T:
        """Take the best item. Raises `IndexError` when empty."""
        item = heapq.heappop(self._heap)[2]
        del self._order[id(item)]
        return item

    def clear(self) -> list[T]:
        """Empty the queue; return what it held, best first."""
        items = [entry[2] for entry in sorted(self._heap, key=lambda e: e[:2])]
        self._heap.clear()
        self._order.clear()
        return items

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __iter__(self) -> Iterator[T]:
        return (entry[2] for entry in self._heap)
