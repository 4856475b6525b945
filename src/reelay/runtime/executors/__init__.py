"""Executors: where handler attempts run, chosen by URL.

An `Executor` takes a `Task` and returns a ``concurrent.futures.Future`` that resolves
to a `TaskResult`. Everything a handler can do wrong (raise, time out, exit, crash its
process, return something that is not JSON) comes back as a result with ``ok=False``
and a Lambda-shaped error; the future holds an exception only when the executor itself
is broken or was closed under the task.

=======================  ==========================================================
URL                      executor
=======================  ==========================================================
``local``                `LocalExecutor`: a pool of worker processes, one per CPU
``local:N``              `LocalExecutor` with N workers
``ray:auto``             `RayExecutor` on the Ray cluster of this machine if one is
                         running (``ray start`` / ``RAY_ADDRESS``), else a new local one
``ray:local``            `RayExecutor` on a private Ray started in this process
``ray://host:port``      `RayExecutor` on a remote cluster through Ray Client
=======================  ==========================================================

Implementations are imported only when their scheme is used, so Ray is needed only by
those who ask for it (``pip install 'reelay[ray]'``).
"""

from __future__ import annotations

import importlib
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

from reelay.errors import ConfigError
from reelay.runtime._task import AppCode, StartCallback, Task, TaskResult

if TYPE_CHECKING:
    from reelay.runtime.executors._local import LocalExecutor
    from reelay.runtime.executors._ray import RayExecutor

__all__ = ["EXECUTOR_URLS", "Executor", "LocalExecutor", "RayExecutor", "open_executor"]

EXECUTOR_URLS = ("local", "local:N", "ray:auto", "ray:local", "ray://host:port")
"""The URL forms `open_executor` accepts, as shown in error messages."""


@runtime_checkable
class Executor(Protocol):
    """Runs handler attempts. A context manager; `close` leaves no process behind."""

    max_workers: int
    """How many tasks run at once; more are queued, and their timeout starts later."""

    def submit(self, task: Task, on_start: StartCallback | None = None) -> Future[TaskResult]:
        """Queue ``task``; the future resolves to its `TaskResult`.

        Waiting tasks start lowest `Task.priority` first, then in submission order.
        ``on_start`` is called at most once, from an executor thread, when a worker
        starts the task (never if it is cancelled before; an executor that cannot see
        starts, Ray, may also skip a task that ended quickly); it must be quick and must
        not raise.
        """
        ...

    def close(self) -> None:
        """Cancel queued tasks, kill running ones, stop every worker. Idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


# scheme -> (module, class); each class has ``from_url(url, max_workers=...)``.
_SCHEMES: dict[str, tuple[str, str]] = {
    "local": ("reelay.runtime.executors._local", "LocalExecutor"),
    "ray": ("reelay.runtime.executors._ray", "RayExecutor"),
}


def open_executor(
    url: str, *, max_workers: int | None = None, code: AppCode | None = None
) -> Executor:
    """Open the executor named by ``url`` (see the module docstring for the forms).

    ``max_workers`` overrides a count in the URL; by default it is the number of CPUs
    (of this machine, or of the Ray cluster). ``code``: the app's directory and
    packages, which an executor whose workers may be on other machines ships to them
    (Ray). Raises
    `ConfigError` for a URL it does not know or when Ray is not installed, and
    `ExecutorUnavailableError` when a Ray cluster cannot be reached.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"executor URL must be a non-empty string, got {url!r}; "
            f"valid forms: {', '.join(EXECUTOR_URLS)}"
        )
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ConfigError(f"max_workers must be a positive integer, got {max_workers!r}")
    scheme = url.strip().split(":", 1)[0].lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unknown executor URL scheme {scheme!r} in {url!r}; "
            f"valid forms: {', '.join(EXECUTOR_URLS)}"
        )
    module_name, class_name = _SCHEMES[scheme]
    cls = getattr(importlib.import_module(module_name), class_name)
    executor: Executor = cls.from_url(url.strip(), max_workers=max_workers, code=code)
    return executor


def __getattr__(name: str) -> object:
    # The implementations stay unimported until asked for (Ray is an optional extra).
    if name in ("LocalExecutor", "RayExecutor"):
        module_name, class_name = _SCHEMES["local" if name == "LocalExecutor" else "ray"]
        return getattr(importlib.import_module(module_name), class_name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
