"""`RayExecutor`: run handler attempts as Ray tasks.

Each attempt is one ``ray.remote(run_task)`` call, so Ray's scheduler places it on any
node of the cluster and Ray's worker processes play the part of Lambda sandboxes (a
worker keeps the handler modules it imported: later calls are warm). The executor keeps
at most ``4 * max_workers`` tasks inside Ray when they fill the cluster (those beyond
``max_workers`` wait at Ray's end, which hides Ray's per-task latency: that measured best
on 2 cores), else ``max_workers``, and queues the rest itself.

Ray does not tell the driver when a task starts running, so the executor presumes that
the first ``max_workers`` tasks it handed over run and the others wait, in order; a
task's timeout clock starts when it is presumed to run, and allows ``start_grace_s``
more for scheduling and for starting a worker process (after a kill, Ray starts a fresh
one). A handler therefore always gets at least its full timeout. At the deadline,
``ray.cancel(ref, force=True)`` kills the worker process and the attempt is reported as
``Sandbox.Timedout``; a worker that dies on its own is reported as ``Runtime.ExitError``.

Handler code: a Ray this executor started (``ray:local``) reads the app where it is.
On a cluster it joined (``ray:auto``, ``ray://host:port``), whose nodes may be other
machines, the app's directory is shipped with Ray's ``runtime_env`` (``working_dir``:
Ray uploads it once and unpacks it as each worker's working directory) and so are the
packages it names in ``package.modules`` (``py_modules``: importable on every worker);
tasks name their handler's directory relative to the working directory, so no node
needs the driver's paths. Nodes
need ``reelay`` installed, the same version as the driver's: a worker of another
version refuses the task, saying both (``Runtime.VersionMismatch``).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import os
import queue
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from types import ModuleType, TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from reelay.errors import ConfigError, ExecutorError, ExecutorUnavailableError
from reelay.runtime._task import AppCode, StartCallback, Task, TaskResult
from reelay.runtime._worker import exit_error_message, run_task, task_error
from reelay.runtime.executors._queue import TaskQueue

__all__ = ["RayExecutor"]

log = logging.getLogger(__name__)

_CONNECT_TIMEOUT_S = 3.0
_PIPELINE = 4  # tasks inside Ray per worker slot
_INSTALL_HINT = "pip install 'reelay[ray]'"


def _import_ray(url: str) -> ModuleType:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"executor URL {url!r} needs Ray, which is not installed: {_INSTALL_HINT}"
        ) from None
    return ray


@dataclass(eq=False)
class _Item:
    task: Task
    future: Future[TaskResult]
    on_start: StartCallback | None = None
    ref: Any = None  # the ray.ObjectRef once submitted
    ray_future: Future[Any] | None = None  # ref.future(): settles when the ref does
    started_at: float = 0.0
    started: float = 0.0
    deadline: float = math.inf
    timed_out: bool = False
    running: bool = False


@dataclass(order=True)
class _Deadline:
    at: float
    seq: int
    item: _Item = field(compare=False)


class RayExecutor:
    """Run tasks on a Ray cluster: ``"local"`` (start one here), ``"auto"`` or ``ray://``.

    ``address`` is ``"local"`` (a private Ray started in this process, unless Ray is
    already initialized here), ``"auto"`` (the cluster of this machine if one runs,
    else a new local one) or a Ray Client URL ``ray://host:port``. ``max_workers``
    (default: the cluster's CPUs) is how many tasks run at once; each task reserves
    ``cluster CPUs / max_workers`` CPUs, capped at one. Ray is shut down on `close`
    only if this executor started it.
    """

    def __init__(
        self,
        address: str = "local",
        *,
        max_workers: int | None = None,
        start_grace_s: float = 2.0,
        code: AppCode | None = None,
    ) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ConfigError(f"max_workers must be a positive integer, got {max_workers!r}")
        if address not in ("local", "auto") and not address.startswith("ray://"):
            raise ConfigError(
                f"unknown Ray address {address!r}; valid: 'local', 'auto', 'ray://host:port'"
            )
        url = address if address.startswith("ray://") else f"ray:{address}"
        self._ray = ray = _import_ray(url)
        self._exc = ray.exceptions
        self.address = address
        self._owns_ray = False
        # What a cluster this executor joins gets shipped (see the module docstring).
        self.code = code if address != "local" else None
        self._connect(address, max_workers)
        try:
            cpus = float(ray.cluster_resources().get("CPU", 1.0)) or 1.0
            if max_workers is None:
                max_workers = max(1, int(cpus))
            self.max_workers = max_workers
            self.num_cpus = min(1.0, cpus / max_workers)
            self._remote = ray.remote(num_cpus=self.num_cpus, max_retries=0)(run_task)
        except BaseException:
            self._shutdown_ray()
            raise
        self.start_grace_s = start_grace_s
        # Tasks beyond max_workers wait inside Ray only when Ray itself holds them back,
        # that is when max_workers tasks take every CPU; otherwise they would run.
        self._depth = self.max_workers * (_PIPELINE if self.max_workers >= cpus else 1)
        self._lock = threading.Lock()
        self._queue: TaskQueue[_Item] = TaskQueue()
        self._in_flight: set[_Item] = set()  # handed to Ray
        self._clocked: set[_Item] = set()  # presumed running: their deadline counts
        self._unclocked: deque[_Item] = deque()  # presumed waiting inside Ray
        self._events: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._deadlines: list[_Deadline] = []
        self._seq = itertools.count()
        self._wake_at = math.inf
        self._closed = False
        self._thread = threading.Thread(
            target=self._manage, name="reelay-ray-executor", daemon=True
        )
        self._thread.start()

    @classmethod
    def from_url(
        cls, url: str, *, max_workers: int | None = None, code: AppCode | None = None
    ) -> RayExecutor:
        """Build from ``ray:auto``, ``ray:local`` or ``ray://host:port``."""
        if url.startswith("ray://"):
            return cls(url, max_workers=max_workers, code=code)
        mode = url.partition(":")[2]
        if mode not in ("auto", "local"):
            raise ConfigError(
                f"executor URL {url!r}: unknown Ray address {mode!r}; "
                "valid forms: ray:auto, ray:local, ray://host:port"
            )
        return cls(mode, max_workers=max_workers, code=code)

    # -- connecting --------------------------------------------------------------------

    def _connect(self, address: str, max_workers: int | None) -> None:
        ray = self._ray
        if address.startswith("ray://"):
            self._check_reachable(address)
        if ray.is_initialized():
            # One Ray per process: use whatever this process already joined.
            return
        options: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.WARNING,
        }
        shipped: dict[str, Any] = {}
        if self.code is not None:
            shipped["runtime_env"] = {
                "working_dir": self.code.root,
                "excludes": ["__pycache__/", ".git/", "node_modules/", ".venv/"],
            }
            if self.code.modules:
                shipped["runtime_env"]["py_modules"] = list(self.code.modules)
        if address.startswith("ray://"):
            try:
                # Ray Client passes other ray.init options on to the server's ray.init.
                ray.init(address=address, **shipped)
            except ImportError as exc:
                raise ConfigError(
                    f"executor URL {address!r} needs Ray Client ({exc}): pip install 'ray[client]'"
                ) from None
            except Exception as exc:
                raise ExecutorUnavailableError(
                    f"cannot connect to the Ray cluster at {address}: {exc}"
                ) from None
            self._owns_ray = True  # a client connection: ours to disconnect
            return
        if address == "auto":
            named = os.environ.get("RAY_ADDRESS", "").strip()
            if named and named not in ("auto", "local"):
                self._check_reachable(named, what=f"RAY_ADDRESS={named}")
            try:
                ray.init(address="auto", **options, **shipped)
                self._owns_ray = True  # our connection; the cluster stays up
                return
            except (ConnectionError, RuntimeError, ValueError) as exc:
                if named:  # a cluster was named: not joining it is an error, saying why
                    raise ExecutorUnavailableError(
                        f"cannot join the Ray cluster at RAY_ADDRESS={named}: "
                        f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}"
                    ) from None
                self.code = None  # no cluster on this machine: start one, here

        ray.init(num_cpus=max_workers or os.cpu_count() or 1, **options)
        self._owns_ray = True

    @staticmethod
    def _check_reachable(address: str, what: str | None = None) -> None:
        # Ray retries for minutes and logs each failure; a plain TCP connect says quickly
        # and quietly whether anything listens there. ``address``: ray://host:port, or
        # host:port (a RAY_ADDRESS).
        parts = urlsplit(address if "://" in address else f"//{address}")
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        where = what or address
        if not host or port is None:
            form = "host:port" if what else "ray://host:port"
            raise ConfigError(f"{where!r} must look like {form}")
        try:
            with socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT_S):
                pass
        except OSError as exc:
            raise ExecutorUnavailableError(
                f"cannot reach the Ray cluster at {where}: {exc.strerror or exc}"
            ) from None

    def _shutdown_ray(self) -> None:
        if self._owns_ray:
            self._owns_ray = False
            with contextlib.suppress(Exception):
                self._ray.shutdown()

    # -- public API --------------------------------------------------------------------

    def _shipped(self, task: Task) -> Task:
        """``task`` with its handler's directory relative to the shipped app (where the
        worker's working directory is), when it lies within it, and no driver paths for
        the modules (Ray makes them importable)."""
        if self.code is None or not task.app_root:
            return task
        relative = os.path.relpath(os.path.abspath(task.app_root), self.code.root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return task
        return replace(task, app_root="" if relative == os.curdir else relative, python_path=())

    def submit(self, task: Task, on_start: StartCallback | None = None) -> Future[TaskResult]:
        """Queue ``task``; it goes to Ray at once if fewer than ``max_workers`` run (see
        `Executor.submit`). Ray does not say when a task starts nor which worker runs
        it: ``on_start`` gets None for the worker, at the time the task is presumed to
        start, and is not called for a task that finished before it was presumed to.
        """
        future: Future[TaskResult] = Future()
        item = _Item(self._shipped(task), future, on_start)
        with self._lock:
            if self._closed:
                raise ExecutorError("cannot submit to a closed RayExecutor")
            if self._queue or len(self._in_flight) >= self._depth:
                self._queue.push(item)
                return future
            self._dispatch(item)
        return future

    def close(self) -> None:
        """Cancel queued tasks, kill running ones, and stop Ray if this executor started it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = self._queue.clear()
            running = list(self._in_flight)
            self._in_flight.clear()
            self._clocked.clear()
            self._unclocked.clear()
        self._events.put(None)
        if self._thread is not threading.current_thread():
            self._thread.join()
        for item in queued:
            item.future.cancel()
        for item in running:
            with contextlib.suppress(Exception):
                self._ray.cancel(item.ref, force=True)
            _settle_exception(
                item.future, ExecutorError("the executor was closed while the task ran")
            )
        self._shutdown_ray()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _dispatch(self, item: _Item) -> None:
        """Hand ``item`` to Ray. Call with the lock held."""
        if not item.running:
            if not item.future.set_running_or_notify_cancel():
                return
            item.running = True
        try:
            item.ref = self._remote.remote(item.task)
        except Exception as exc:
            _settle_exception(item.future, ExecutorError(f"Ray refused the task: {exc}"))
            return
        self._in_flight.add(item)
        events = self._events
        item.ray_future = item.ref.future()
        item.ray_future.add_done_callback(lambda _: events.put(item))
        if len(self._clocked) < self.max_workers:
            self._start_clock(item)
        else:
            self._unclocked.append(item)

    def _start_clock(self, item: _Item) -> None:
        """Start ``item``'s timeout clock. Call with the lock held."""
        self._clocked.add(item)
        item.started_at = time.time()
        item.started = time.monotonic()
        item.deadline = item.started + item.task.timeout_s + self.start_grace_s
        heapq.heappush(self._deadlines, _Deadline(item.deadline, next(self._seq), item))
        if item.on_start is not None:
            item.on_start(None, item.started_at)
        if item.deadline < self._wake_at:
            self._wake_at = item.deadline
            self._events.put(None)  # the manager must shorten its wait

    def _finished(self, item: _Item) -> None:
        """Forget a finished ``item``; the next waiting one is presumed to start."""
        self._in_flight.discard(item)
        if item in self._clocked:
            self._clocked.discard(item)
            if self._unclocked:
                self._start_clock(self._unclocked.popleft())
        else:
            with contextlib.suppress(ValueError):
                self._unclocked.remove(item)

    def _manage(self) -> None:
        try:
            while self._manage_once():
                pass
        except BaseException as exc:  # a bug here must not leave futures hanging
            log.exception("RayExecutor manager failed")
            with self._lock:
                self._closed = True
                items = self._queue.clear() + list(self._in_flight)
                self._in_flight.clear()
            for item in items:
                _settle_exception(item.future, ExecutorError(f"the Ray executor failed: {exc!r}"))

    def _manage_once(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            while self._deadlines and self._deadlines[0].item not in self._clocked:
                heapq.heappop(self._deadlines)
            wake_at = self._deadlines[0].at if self._deadlines else math.inf
            self._wake_at = wake_at
        timeout = None if wake_at == math.inf else max(0.0, wake_at - time.monotonic())
        done: list[_Item] = []
        try:
            event = self._events.get(timeout=timeout)
            if event is not None:
                done.append(event)
            while True:  # take everything already there in one go
                event = self._events.get_nowait()
                if event is not None:
                    done.append(event)
        except queue.Empty:
            pass
        settle: list[tuple[Future[TaskResult], TaskResult | BaseException]] = []
        with self._lock:
            if self._closed:
                return False
            for item in done:
                if item in self._in_flight:
                    self._finished(item)
                    settle.append((item.future, self._outcome(item)))
            now = time.monotonic()
            while self._deadlines and self._deadlines[0].at <= now:
                item = heapq.heappop(self._deadlines).item
                if item in self._clocked and not item.timed_out:
                    item.timed_out = True
                    # Kills the worker process; the ref then fails and comes back here.
                    with contextlib.suppress(Exception):
                        self._ray.cancel(item.ref, force=True)
            while self._queue and len(self._in_flight) < self._depth:
                self._dispatch(self._queue.pop())
        for future, outcome in settle:
            if isinstance(outcome, BaseException):
                _settle_exception(future, outcome)
            else:
                with contextlib.suppress(Exception):
                    future.set_result(outcome)
        return True

    def _outcome(self, item: _Item) -> TaskResult | BaseException:
        """Turn a finished ref into a result (or, if Ray itself failed, an exception)."""
        assert item.ray_future is not None
        try:
            value = item.ray_future.result(timeout=0)
        except BaseException as exc:  # every Ray failure is classified
            return self._classify(item, exc)
        if isinstance(value, TaskResult):
            return value
        return ExecutorError(f"a Ray worker returned {type(value).__name__}, not a TaskResult")

    def _classify(self, item: _Item, exc: BaseException) -> TaskResult | BaseException:
        exceptions = self._exc
        request_id = item.task.request_id
        if item.timed_out:
            message = f"Task timed out after {item.task.timeout_s:.2f} seconds"
            return self._failure(item, "Sandbox.Timedout", message)
        if isinstance(exc, exceptions.OutOfMemoryError):
            # Ray's memory monitor killed the worker, as Lambda kills an over-limit sandbox.
            return self._failure(item, "Runtime.OutOfMemory", exit_error_message(-9))
        if isinstance(exc, (exceptions.WorkerCrashedError, exceptions.NodeDiedError)):
            return self._failure(item, "Runtime.ExitError", exit_error_message(None))
        if isinstance(exc, exceptions.TaskCancelledError):
            return ExecutorError(f"the Ray task for {request_id} was cancelled")
        return ExecutorError(f"Ray failed to run the task for {request_id}: {exc}")

    @staticmethod
    def _failure(item: _Item, error_type: str, message: str) -> TaskResult:
        request_id = item.task.request_id
        return TaskResult(
            request_id=request_id,
            ok=False,
            error=task_error(request_id, error_type, message),
            started_at=item.started_at,
            duration_ms=(time.monotonic() - item.started) * 1000.0,
        )


def _settle_exception(future: Future[TaskResult], error: BaseException) -> None:
    if future.cancel():
        return
    with contextlib.suppress(Exception):
        future.set_exception(error)
