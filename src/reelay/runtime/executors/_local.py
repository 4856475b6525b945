"""`LocalExecutor`: a pool of long-lived worker processes on this machine.

Why not ``concurrent.futures.ProcessPoolExecutor``: a Lambda timeout must kill exactly
the worker running that task (and whatever it started), and a worker that exits or
crashes must cost only the task it was running; a ``ProcessPoolExecutor`` can do
neither (it cannot kill one task, and one dead worker breaks the whole pool).

Each worker is a fresh interpreter (``python -c``, so nothing of the parent's threads
or locks is inherited, and the parent's ``__main__`` is not re-imported) started in its
own session, hence its own process group: killing the group at a timeout takes the
handler's subprocesses (an ``ffmpeg``, say) with it. Tasks and results travel over two
pipes with ``multiprocessing`` framing. A third file, the worker's capture file, is
shared with the parent, so the logs of a task killed at its timeout are not lost.

One dispatcher thread waits (``selectors``, no polling) on the result pipes, a pidfd
per worker (Linux; elsewhere the result pipe's end-of-file) and a wake-up pipe, with a
timeout equal to the nearest deadline. ``submit`` hands a task straight to an idle
worker from the caller's thread, so an idle pool starts a task within microseconds.
The most recently used idle worker is picked first, which keeps warm workers warm.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Self

from reelay.errors import ConfigError, ExecutorError
from reelay.runtime._task import AppCode, StartCallback, Task, TaskResult
from reelay.runtime._worker import exit_error_message, read_capture, task_error
from reelay.runtime.executors._queue import TaskQueue

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)

# A worker that dies this many times in a row before saying it is ready means the
# interpreter cannot start it at all (a broken install): stop respawning.
_MAX_BOOT_FAILURES = 3
_CLOSE_GRACE_S = 2.0

_BOOTSTRAP = (
    "import sys, json; "
    "sys.path[:0] = [p for p in json.loads(sys.argv[1]) if p not in sys.path]; "
    "from reelay.runtime._worker import serve; "
    "serve(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))"
)


@dataclass(eq=False)
class _Item:
    task: Task
    future: Future[TaskResult]
    on_start: StartCallback | None = None
    started_at: float = 0.0  # epoch seconds, when handed to a worker
    started: float = 0.0  # monotonic, idem
    running: bool = False  # the future has been marked running


@dataclass(eq=False)
class _Worker:
    proc: subprocess.Popen[bytes]
    tasks: Connection  # parent -> worker
    results: Connection  # worker -> parent
    capture_fd: int
    pidfd: int | None
    ready: bool = False
    item: _Item | None = None
    deadline: float = math.inf
    fds: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.proc.pid}@{socket.gethostname()}"


def _open_capture_file() -> int:
    fd, path = tempfile.mkstemp(prefix="reelay-logs-")
    os.unlink(path)
    return fd


def _kill_group(pid: int) -> None:
    # The worker leads its own process group (start_new_session), so this also takes
    # the handler's subprocesses; fall back to the process alone if the group is gone.
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class LocalExecutor:
    """Run tasks in a pool of ``max_workers`` worker processes on this machine.

    A task that outlives its ``timeout_s`` is killed with its worker's whole process
    group and reported as ``Sandbox.Timedout``; a worker that exits or dies reports
    ``Runtime.ExitError`` for its task. Either way a fresh worker takes its place. Tasks
    beyond ``max_workers`` wait in a queue; their timeout starts when they start.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ConfigError(f"max_workers must be a positive integer, got {max_workers!r}")
        self.max_workers = max_workers
        self._lock = threading.Lock()
        self._queue: TaskQueue[_Item] = TaskQueue()
        self._idle: list[_Worker] = []  # a stack: the most recently used on top
        self._workers: list[_Worker] = []
        self._closed = False
        self._broken: ExecutorError | None = None
        self._boot_failures = 0
        self._wake_at = math.inf  # when the dispatcher thread will wake by itself
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for _ in range(max_workers):
                self._spawn()
        except BaseException:
            self._teardown(list(self._workers))
            self._selector.close()
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise
        self._thread = threading.Thread(
            target=self._dispatch_loop, name="reelay-local-executor", daemon=True
        )
        self._thread.start()

    @classmethod
    def from_url(
        cls, url: str, *, max_workers: int | None = None, code: AppCode | None = None
    ) -> LocalExecutor:
        """Build from ``local`` or ``local:N``; ``max_workers`` overrides N. ``code``
        needs no shipping: the workers are processes of this machine."""
        _, _, count = url.partition(":")
        if count and max_workers is None:
            if not count.isdigit() or int(count) < 1:
                raise ConfigError(
                    f"executor URL {url!r}: the worker count must be a positive integer, "
                    f"got {count!r} (valid forms: local, local:N)"
                )
            max_workers = int(count)
        return cls(max_workers)

    # -- public API ------------------------------------------------------------------

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the current worker processes."""
        with self._lock:
            return [w.proc.pid for w in self._workers]

    def submit(self, task: Task, on_start: StartCallback | None = None) -> Future[TaskResult]:
        """Queue ``task``; it starts at once if a worker is idle (see `Executor.submit`)."""
        future: Future[TaskResult] = Future()
        item = _Item(task, future, on_start)
        with self._lock:
            if self._closed:
                raise ExecutorError("cannot submit to a closed LocalExecutor")
            if self._broken is not None:
                raise self._broken
            if self._queue or not self._idle:
                self._queue.push(item)
                return future
            self._start(self._idle.pop(), item)
        return future

    def close(self) -> None:
        """Cancel queued tasks, kill running ones and stop every worker process."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = self._queue.clear()
        self._wake()
        if self._thread is not threading.current_thread():
            self._thread.join()
        with self._lock:
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
        for item in queued:
            item.future.cancel()
        running = [w.item for w in workers if w.item is not None]
        self._teardown(workers)
        for running_item in running:
            self._settle_exception(
                running_item.future, ExecutorError("the executor was closed while the task ran")
            )
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- workers ---------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        """Start one worker process; it joins the idle stack once it says it is ready."""
        task_r, task_w = os.pipe()
        result_r, result_w = os.pipe()
        capture_fd = _open_capture_file()
        child_fds = (task_r, result_w, capture_fd)
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _BOOTSTRAP,
                    json.dumps([p for p in sys.path if isinstance(p, str)]),
                    *(str(fd) for fd in child_fds),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=child_fds,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            for fd in (task_r, task_w, result_r, result_w, capture_fd):
                os.close(fd)
            raise
        os.close(task_r)
        os.close(result_w)
        pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                pidfd = os.pidfd_open(proc.pid)
            except OSError:
                pidfd = None
        worker = _Worker(
            proc=proc,
            tasks=Connection(task_w, readable=False),
            results=Connection(result_r, writable=False),
            capture_fd=capture_fd,
            pidfd=pidfd,
        )
        self._selector.register(result_r, selectors.EVENT_READ, worker)
        if pidfd is not None:
            self._selector.register(pidfd, selectors.EVENT_READ, worker)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _start(self, worker: _Worker, item: _Item) -> bool:
        """Hand ``item`` to an idle ``worker``. Call with the lock held."""
        if not item.running:
            if not item.future.set_running_or_notify_cancel():
                self._idle.append(worker)  # cancelled while queued
                return False
            item.running = True
        item.started_at = time.time()
        item.started = time.monotonic()
        worker.item = item
        worker.deadline = item.started + item.task.timeout_s
        try:
            worker.tasks.send(item.task)
        except OSError:
            # The worker died while idle; the dispatcher thread will notice (pidfd or
            # end-of-file) and report the death. The task never started: requeue it.
            worker.item = None
            worker.deadline = math.inf
            self._queue.push_back(item)
            return False
        if item.on_start is not None:
            item.on_start(worker.name, item.started_at)
        if worker.deadline < self._wake_at:
            self._wake_at = worker.deadline
            self._wake()
        return True

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    # -- the dispatcher thread -------------------------------------------------------

    def _dispatch_loop(self) -> None:
        try:
            while self._dispatch_once():
                pass
        except BaseException as exc:  # a bug here must not leave futures hanging
            log.exception("LocalExecutor dispatcher failed")
            self._break(ExecutorError(f"the local executor's dispatcher failed: {exc!r}"))

    def _dispatch_once(self) -> bool:
        with self._lock:
            if self._closed:
                return False
            wake_at = min((w.deadline for w in self._workers), default=math.inf)
            self._wake_at = wake_at
        timeout = None if wake_at == math.inf else max(0.0, wake_at - time.monotonic())
        events = self._selector.select(timeout)

        settle: list[tuple[Future[TaskResult], TaskResult]] = []
        dead: list[_Worker] = []
        with self._lock:
            if self._closed:
                return False
            for key, _ in events:
                worker = key.data
                if worker is None:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    continue
                if worker in dead or worker not in self._workers:
                    continue
                if key.fd == worker.results.fileno():
                    if not self._receive(worker, settle):
                        dead.append(worker)
                elif not self._drain(worker, settle):
                    dead.append(worker)  # the pidfd says the process ended
            now = time.monotonic()
            timed_out = [
                w
                for w in self._workers
                if w.item is not None and w.deadline <= now and w not in dead
            ]
            for worker in timed_out:
                self._forget(worker)
            for worker in dead:
                self._forget(worker)
        for worker in timed_out:
            _kill_group(worker.proc.pid)
            settle.append(self._timed_out(worker))
            self._reap(worker)
        for worker in dead:
            _kill_group(worker.proc.pid)  # stray subprocesses of the dead worker
            self._reap(worker)
            exited = self._exited(worker)
            if exited is not None:
                settle.append(exited)
        for worker in timed_out + dead:
            self._close_worker_fds(worker)
        replacements = len(timed_out) + len(dead)
        with self._lock:
            closed = self._closed or self._broken is not None
        if not closed:
            for _ in range(replacements):
                self._spawn()
        with self._lock:
            self._assign_queued()
        for future, result in settle:
            self._settle(future, result)
        return True

    def _receive(
        self, worker: _Worker, settle: list[tuple[Future[TaskResult], TaskResult]]
    ) -> bool:
        """Read one message from ``worker``; False if the worker is gone."""
        try:
            message = worker.results.recv()
        except (EOFError, OSError):
            return False
        if message is None:  # the worker has started and waits for tasks
            worker.ready = True
            self._boot_failures = 0
            self._idle.append(worker)
            return True
        result, exiting = message
        item = worker.item
        worker.item = None
        worker.deadline = math.inf
        if item is not None:
            settle.append((item.future, result))
        if not exiting:  # a worker that reported a sys.exit is about to end
            self._idle.append(worker)
        return True

    def _drain(self, worker: _Worker, settle: list[tuple[Future[TaskResult], TaskResult]]) -> bool:
        """Take whatever a worker that ended had sent before dying; always False."""
        while worker.results.poll(0):
            if not self._receive(worker, settle):
                break
        return False

    def _forget(self, worker: _Worker) -> None:
        """Drop ``worker`` from the pool's bookkeeping. Call with the lock held."""
        if worker in self._workers:
            self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        for fd in (worker.results.fileno(), worker.pidfd):
            if fd is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(fd)
        if not worker.ready:
            self._boot_failures += 1
            if self._boot_failures >= _MAX_BOOT_FAILURES and self._broken is None:
                code = worker.proc.poll()
                self._broken = ExecutorError(
                    f"local worker processes fail to start ({exit_error_message(code)}); "
                    f"run {sys.executable} -c 'import reelay.runtime._worker' to see why"
                )

    def _reap(self, worker: _Worker) -> None:
        try:
            worker.proc.wait(timeout=_CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            _kill_group(worker.proc.pid)
            worker.proc.wait()

    def _timed_out(self, worker: _Worker) -> tuple[Future[TaskResult], TaskResult]:
        item = worker.item
        assert item is not None
        timeout = item.task.timeout_s
        logs, truncated = read_capture(worker.capture_fd)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        millis = int(time.time() * 1000) % 1000
        message = f"Task timed out after {timeout:.2f} seconds"
        # Lambda's platform adds this line to the function's log.
        line = f"{stamp}.{millis:03d}Z {item.task.request_id} {message}\n"
        if logs and not logs.endswith("\n"):
            logs += "\n"
        return item.future, TaskResult(
            request_id=item.task.request_id,
            ok=False,
            error=task_error(item.task.request_id, "Sandbox.Timedout", message),
            logs=logs + line,
            logs_truncated=truncated,
            started_at=item.started_at,
            duration_ms=(time.monotonic() - item.started) * 1000.0,
            worker=worker.name,
        )

    def _exited(self, worker: _Worker) -> tuple[Future[TaskResult], TaskResult] | None:
        item = worker.item
        if item is None:
            return None
        logs, truncated = read_capture(worker.capture_fd)
        message = exit_error_message(worker.proc.returncode)
        return item.future, TaskResult(
            request_id=item.task.request_id,
            ok=False,
            error=task_error(item.task.request_id, "Runtime.ExitError", message),
            logs=logs,
            logs_truncated=truncated,
            started_at=item.started_at,
            duration_ms=(time.monotonic() - item.started) * 1000.0,
            worker=worker.name,
        )

    def _assign_queued(self) -> None:
        """Give queued tasks to idle workers. Call with the lock held."""
        while self._queue and self._idle:
            self._start(self._idle.pop(), self._queue.pop())
        if self._broken is not None:
            for item in self._queue.clear():
                self._settle_exception(item.future, self._broken)

    def _break(self, error: ExecutorError) -> None:
        with self._lock:
            self._broken = error
            queued = self._queue.clear()
            running = [w.item for w in self._workers if w.item is not None]
        for item in queued + running:
            self._settle_exception(item.future, error)

    # -- teardown --------------------------------------------------------------------

    def _teardown(self, workers: list[_Worker]) -> None:
        """Stop ``workers``: idle ones by closing their task pipe, busy ones by SIGKILL."""
        for worker in workers:
            if worker.item is not None:
                _kill_group(worker.proc.pid)
            with contextlib.suppress(OSError):
                worker.tasks.close()
        deadline = time.monotonic() + _CLOSE_GRACE_S
        for worker in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            _kill_group(worker.proc.pid)
            worker.proc.wait()
            self._close_worker_fds(worker)

    @staticmethod
    def _close_worker_fds(worker: _Worker) -> None:
        for conn in (worker.tasks, worker.results):
            with contextlib.suppress(OSError):
                conn.close()
        for fd in (worker.capture_fd, worker.pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        worker.pidfd = None
        worker.capture_fd = -1

    @staticmethod
    def _settle(future: Future[TaskResult], result: TaskResult) -> None:
        with contextlib.suppress(Exception):  # cancelled or already settled
            future.set_result(result)

    @staticmethod
    def _settle_exception(future: Future[TaskResult], error: BaseException) -> None:
        if future.cancel():
            return
        with contextlib.suppress(Exception):
            future.set_exception(error)
