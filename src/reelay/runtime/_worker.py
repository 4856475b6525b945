"""Run one `Task` the way AWS Lambda's Python runtime runs a handler.

`run_task` is the module-level, picklable function every executor calls inside a worker
process (a `LocalExecutor` worker, a Ray worker, or the current process in tests). It
resolves the handler string as Lambda does (``module.function``, the module part may
be a path: ``dir/module.function``), sets Lambda's environment variables, builds the
context, calls ``handler(event, context)``, marshals the return value to JSON and turns
every failure into Lambda's error shape. Error types and messages are Lambda's own
(those of ``awslambdaric``), so a caller that knows Lambda reads them unchanged.

Output is captured at the file-descriptor level: a temporary file is put over fds 1 and
2 for the duration of the call, so a ``print``, a ``logging`` record, a subprocess or
a C library writing to stdout all land in the invocation's logs. Only the head and tail
of a large output are kept (`LOG_CAP_BYTES`); the file is reused from call to call, so
a no-op invocation costs a few system calls, not a new file. In a `LocalExecutor`
worker (`serve`), which runs nothing else, fds 1 and 2 point at that file for good, and
the environment set up for a function stays in place while the same function keeps
coming, which keeps the per-call overhead to a few tens of microseconds.

`run_task` is not re-entrant: it swaps process-wide state (fds 1 and 2, ``sys.stdout``,
``os.environ``), so a process runs one task at a time, as a Lambda sandbox does.
"""

from __future__ import annotations

import contextlib
import decimal
import fcntl
import importlib
import io
import json
import logging
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

from reelay import __version__
from reelay._text import plural
from reelay.runtime._scratch import scratch_root, worker_scratch
from reelay.runtime._task import Task, TaskResult
from reelay.runtime.context import FUNCTION_VERSION, LambdaContext, log_stream_name

__all__ = [
    "LOG_CAP_BYTES",
    "exit_error_message",
    "read_capture",
    "run_task",
    "serve",
    "task_error",
    "worker_name",
]

LOG_CAP_BYTES = 256 * 1024
"""Most bytes of output kept per attempt: half from the head, half from the tail."""

_HERE = os.path.abspath(__file__)
# Frames of the runtime itself are left out of stack traces, as Lambda leaves out its
# bootstrap: this module, importlib (import-time errors) and asyncio (async handlers).
_RUNTIME_FRAMES = (
    os.path.join(os.path.dirname(os.path.abspath(os.__file__)), "asyncio", ""),
    os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep,
    "<frozen importlib",
)
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_MAXRSS_PER_MB = 1024 * 1024 if sys.platform == "darwin" else 1024

Handler = Callable[[Any, LambdaContext], Any]

# Per worker process: handlers already imported, keyed by (app_root, handler string),
# and the functions that have already run here (their next call is warm).
_handlers: dict[tuple[str, str], Handler] = {}
_warm: set[tuple[str, str, str]] = set()


class _Fault(Exception):
    """A runtime-level failure with a Lambda error type (``Runtime.*``)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class _Exit(Exception):
    """The handler called ``sys.exit``; the worker must report it and then exit."""

    def __init__(self, code: int, cold: bool) -> None:
        super().__init__(code)
        self.code = code
        self.cold = cold


# --- output capture ---------------------------------------------------------------


@dataclass
class _Capture:
    """The per-process capture file (opened ``O_APPEND``) and a text stream over it."""

    pid: int
    fd: int
    stream: TextIO


_capture: _Capture | None = None


def _open_capture_fd() -> int:
    fd, path = tempfile.mkstemp(prefix="reelay-logs-")
    os.unlink(path)
    _make_append(fd)
    return fd


def _make_append(fd: int) -> None:
    # O_APPEND makes every write land at the current end, so the handler, its
    # subprocesses and our own text stream never overwrite one another, and a
    # truncate to zero needs no seek.
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_APPEND)


def _capture_for_process() -> _Capture:
    global _capture
    pid = os.getpid()
    if _capture is None or _capture.pid != pid:
        _capture = _make_capture(_open_capture_fd(), pid)
    return _capture


def _make_capture(fd: int, pid: int) -> _Capture:
    raw = io.FileIO(fd, "w", closefd=False)
    stream = io.TextIOWrapper(
        io.BufferedWriter(raw), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    return _Capture(pid, fd, stream)


def read_capture(fd: int, cap: int = LOG_CAP_BYTES) -> tuple[str, int]:
    """Read a capture file: all of it, or its head and tail when it exceeds ``cap``.

    Returns the text and the number of bytes dropped from the middle. The executor uses
    this too, to recover what a killed worker had printed before its timeout.
    """
    size = os.fstat(fd).st_size
    if size <= cap:
        return (os.pread(fd, size, 0).decode("utf-8", "replace") if size else ""), 0
    half = cap // 2
    head = os.pread(fd, half, 0).decode("utf-8", "replace")
    tail = os.pread(fd, half, size - half).decode("utf-8", "replace")
    dropped = size - 2 * half
    return f"{head}\n[... {plural(dropped, 'byte')} of output truncated ...]\n{tail}", dropped


class _LambdaLogHandler(logging.Handler):
    """Formats root-logger records the way Lambda's Python runtime does (text format)."""

    def __init__(self) -> None:
        super().__init__()
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
        formatter.converter = time.gmtime
        self.setFormatter(formatter)
        self.request_id = ""
        self.stream: TextIO | None = None

    def emit(self, record: logging.LogRecord) -> None:
        stream = self.stream
        if stream is None:
            return
        try:
            record.aws_request_id = self.request_id
            stream.write(self.format(record))
            stream.flush()
        except Exception:
            self.handleError(record)


_log_handler = _LambdaLogHandler()


# --- handler resolution -----------------------------------------------------------


def _ensure_on_path(app_root: str, extra: tuple[str, ...] = ()) -> None:
    """Put ``app_root`` first on ``sys.path``, then the ``extra`` directories (where an
    app's ``package.modules`` are)."""
    path = sys.path
    wanted = [app_root, *extra]
    if path[: len(wanted)] == wanted:
        return
    for entry in wanted:
        while entry in path:
            path.remove(entry)
    path[:0] = wanted


def _within(path: str, root: str) -> bool:
    return os.path.abspath(path).startswith(os.path.join(os.path.abspath(root), ""))


def _evict_shadowing_module(import_name: str, app_root: str) -> None:
    """Forget a same-named module imported from another app root.

    Two apps may both have a ``handler.py``; a worker that imported one must not hand
    out the other's functions. Standard-library and installed modules are only evicted
    when the app root really has a file of that name.
    """
    top = import_name.split(".", 1)[0]
    existing = sys.modules.get(top)
    origin = getattr(existing, "__file__", None) if existing is not None else None
    if not origin or _within(origin, app_root):
        return
    candidate = os.path.join(app_root, top)
    if not (os.path.exists(candidate + ".py") or os.path.isdir(candidate)):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def _root(task: Task) -> str:
    """The handler's directory: ``app_root``, relative to the working directory where an
    executor shipped the app there (Ray's ``working_dir``)."""
    return os.path.abspath(task.app_root or os.curdir)


def _load_handler(task: Task) -> Handler:
    key = (task.app_root, task.handler)
    cached = _handlers.get(key)
    if cached is not None:
        return cached
    try:
        modname, fname = task.handler.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault(
            "Runtime.MalformedHandlerName", f"Bad handler '{task.handler}': {exc}"
        ) from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    import_name = modname.replace("/", ".")
    _evict_shadowing_module(import_name, _root(task))
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(import_name)
    except ImportError as exc:
        raise _Fault(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    try:
        function: Handler = getattr(module, fname)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        ) from None
    _handlers[key] = function
    return function


# --- results ----------------------------------------------------------------------


def task_error(
    request_id: str, error_type: str, message: str, trace: list[str] | None = None
) -> dict[str, Any]:
    """An error record in Lambda's shape."""
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": trace or [],
    }


def exit_error_message(returncode: int | None) -> str:
    """Lambda's ``Runtime.ExitError`` message for a worker that ended with ``returncode``.

    ``returncode`` follows ``subprocess``: negative for a signal; ``None`` when unknown.
    """
    if returncode is None or returncode == 0:
        return "Runtime exited without providing a reason"
    if returncode > 0:
        return f"Runtime exited with error: exit status {returncode}"
    try:
        name = signal.strsignal(-returncode)
    except ValueError:
        name = None
    return f"Runtime exited with error: signal: {(name or f'signal {-returncode}').lower()}"


_worker_name: tuple[int, str] | None = None


def worker_name() -> str:
    """``pid@hostname`` of the current process."""
    global _worker_name
    pid = os.getpid()
    if _worker_name is None or _worker_name[0] != pid:
        _worker_name = (pid, f"{pid}@{socket.gethostname()}")
    return _worker_name[1]


def _max_memory_mb() -> int:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return -(-max(own, children) // _MAXRSS_PER_MB)


def _json_default(value: object) -> object:
    # Lambda's marshaller encodes Decimal (what DynamoDB hands out) as a number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _user_frames(tb: Any) -> list[str]:
    """Format a traceback the way Lambda does, without the runtime's own frames."""
    frames = traceback.extract_tb(tb)
    start = 0
    while start < len(frames) and (
        frames[start].filename == _HERE or frames[start].filename.startswith(_RUNTIME_FRAMES)
    ):
        start += 1
    return traceback.format_list(frames[start:] if start < len(frames) else frames)


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    # sys.exit("message") prints the message to stderr and exits with status 1.
    print(code, file=sys.stderr)
    return 1


def _log_error(stream: TextIO, error: dict[str, Any]) -> None:
    # Lambda's runtime writes the error to the function's log as well.
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    stream.write("\n".join(lines) + "\n")


# --- the call ---------------------------------------------------------------------


def _set_environment(task: Task) -> None:
    env = os.environ
    for key, value in task.environment.items():
        env[key] = value
    env["AWS_LAMBDA_FUNCTION_NAME"] = task.function_name
    env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(task.memory_mb)
    env["AWS_LAMBDA_FUNCTION_VERSION"] = FUNCTION_VERSION
    env["AWS_LAMBDA_LOG_GROUP_NAME"] = task.log_group_name
    env["AWS_LAMBDA_LOG_STREAM_NAME"] = log_stream_name()
    env["AWS_REGION"] = task.region
    env["AWS_DEFAULT_REGION"] = task.region
    env["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{sys.version_info[0]}.{sys.version_info[1]}"
    env["_HANDLER"] = task.handler
    env["LAMBDA_TASK_ROOT"] = task.app_root
    home = task.environment.get("REELAY_HOME")
    if home:
        # The handler's temporary files go to this worker's scratch, as a Lambda
        # handler's go to /tmp; it is swept once the worker is gone (see _scratch).
        try:
            scratch = str(worker_scratch(scratch_root(Path(home))))
        except OSError:
            return  # no room or no permission: the handler gets the usual temp dir
        env["TMPDIR"] = scratch
        tempfile.tempdir = scratch


def _environment_snapshot() -> dict[Any, Any]:
    # os.environ keeps its content in ``_data`` (bytes on POSIX); copying and comparing
    # that dict runs at C speed, which matters for the per-call overhead.
    data = getattr(os.environ, "_data", None)
    return dict(data) if isinstance(data, dict) else dict(os.environ)


def _restore_environment(saved: dict[Any, Any]) -> None:
    """Undo what the call (ours and the handler's) did to ``os.environ``."""
    current = _environment_snapshot()
    if current == saved:
        return

    def text(value: str | bytes) -> str:
        return os.fsdecode(value)

    env = os.environ
    for key in current.keys() - saved.keys():
        env.pop(text(key), None)
    for key, value in saved.items():
        if current.get(key) != value:
            env[text(key)] = text(value)


def _invoke(task: Task, deadline: float, stream: TextIO) -> tuple[bool, str | None, Any, bool]:
    """Import and call the handler. Returns (ok, payload, error, cold_start)."""
    warm_key = (task.function_name, task.app_root, task.handler)
    cold = warm_key not in _warm
    error: dict[str, Any]
    try:
        if task.reelay_version != __version__:
            raise _Fault(
                "Runtime.VersionMismatch",
                f"this worker ({worker_name()}) runs reelay {__version__}, its dispatcher "
                f"reelay {task.reelay_version}: install the same reelay on every node",
            )
        _ensure_on_path(_root(task), task.python_path)
        handler = _load_handler(task)
        _warm.add(warm_key)
        try:
            event = json.loads(task.event)
        except ValueError as exc:
            raise _Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}") from None
        context = LambdaContext(
            aws_request_id=task.request_id,
            function_name=task.function_name,
            memory_limit_in_mb=task.memory_mb,
            invoked_function_arn=task.function_arn,
            log_group_name=task.log_group_name,
            log_stream_name=log_stream_name(),
            deadline=deadline,
        )
        response = handler(event, context)
        if isinstance(response, Awaitable):
            import asyncio  # only async handlers pay for importing it

            response = asyncio.run(_await(response))
        try:
            payload = json.dumps(response, ensure_ascii=False, default=_json_default)
        except (TypeError, ValueError, RecursionError) as exc:
            raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
        return True, payload, None, cold
    except _Fault as fault:
        error = task_error(task.request_id, fault.error_type, fault.message, fault.trace)
    except SystemExit as exc:
        raise _Exit(_exit_code(exc), cold) from None
    except BaseException as exc:  # any failure of user code is a result
        error = task_error(
            task.request_id, type(exc).__name__, str(exc), _user_frames(exc.__traceback__)
        )
    _log_error(stream, error)
    return False, None, error, cold


async def _await(awaitable: Any) -> Any:
    return await awaitable


@dataclass
class _LeftEnvironment:
    """In a dedicated worker: the environment a call left behind, kept for the next."""

    key: tuple[Any, ...]  # what the environment was set up for
    baseline: dict[Any, Any]  # the environment before any call set it up
    after: dict[Any, Any]  # the environment as the call left it


_left_environment: _LeftEnvironment | None = None


def _prepare_environment(task: Task, dedicated: bool) -> dict[Any, Any]:
    """Set the call's environment; return the one to restore afterwards."""
    global _left_environment
    if not dedicated:
        baseline = _environment_snapshot()
        _set_environment(task)
        return baseline
    # A dedicated worker leaves a call's environment in place: when the next task is of
    # the same function, nothing needs setting again (and what the handler changed
    # stays, as in a warm Lambda sandbox); for another function, the baseline returns.
    key = (
        task.function_name,
        task.handler,
        task.app_root,
        task.memory_mb,
        tuple(task.environment.items()),
    )
    left = _left_environment
    if left is not None:
        if left.key == key and _environment_snapshot() == left.after:
            return left.baseline
        _restore_environment(left.baseline)
        _left_environment = None
        baseline = left.baseline
    else:
        baseline = _environment_snapshot()
    _set_environment(task)
    _left_environment = _LeftEnvironment(key, baseline, {})
    return baseline


def _run(task: Task, dedicated: bool = False) -> tuple[TaskResult, int | None]:
    """Run ``task``; also return the exit status when the handler called ``sys.exit``.

    ``dedicated`` is for `serve`: the process runs nothing but tasks, so fds 1 and 2
    and ``sys.stdout`` already point at the capture file and the environment may stay
    set up between calls; otherwise all of that is saved and restored around the call.
    """
    global _left_environment
    started_at = time.time()
    start = time.perf_counter()
    deadline = time.monotonic() + task.timeout_s
    capture = _capture_for_process()
    stream = capture.stream
    exit_code: int | None = None

    # Anything buffered before the call belongs to no invocation: flush it out first.
    saved_streams = (sys.stdout, sys.stderr)
    saved_tempdir = tempfile.tempdir
    _flush(saved_streams)
    os.ftruncate(capture.fd, 0)
    saved_fds = (-1, -1)
    if dedicated:
        sys.stdout = sys.stderr = stream  # in case a handler replaced them
    else:
        saved_fds = (os.dup(1), os.dup(2))
        os.dup2(capture.fd, 1)
        os.dup2(capture.fd, 2)
        sys.stdout = sys.stderr = stream
    _log_handler.request_id = task.request_id
    _log_handler.stream = stream
    root = logging.getLogger()
    root.addHandler(_log_handler)
    try:
        baseline = _prepare_environment(task, dedicated)
        try:
            ok, payload, error, cold = _invoke(task, deadline, stream)
        except _Exit as exc:
            exit_code = exc.code
            ok, payload, cold = False, None, exc.cold
            error = task_error(task.request_id, "Runtime.ExitError", exit_error_message(exc.code))
    finally:
        root.removeHandler(_log_handler)
        _log_handler.stream = None
        # Flush while fds 1 and 2 still point at the capture file, so output written
        # through a stale reference to the original streams is kept too.
        _flush((stream, *saved_streams))
        if dedicated:
            if _left_environment is not None:
                _left_environment.after = _environment_snapshot()
        else:
            sys.stdout, sys.stderr = saved_streams
            os.dup2(saved_fds[0], 1)
            os.dup2(saved_fds[1], 2)
            os.close(saved_fds[0])
            os.close(saved_fds[1])
            _restore_environment(baseline)
            tempfile.tempdir = saved_tempdir
    logs, truncated = read_capture(capture.fd)
    result = TaskResult(
        request_id=task.request_id,
        ok=ok,
        payload=payload,
        error=error,
        logs=logs,
        logs_truncated=truncated,
        started_at=started_at,
        duration_ms=(time.perf_counter() - start) * 1000.0,
        max_memory_mb=_max_memory_mb(),
        worker=worker_name(),
        cold_start=cold,
    )
    return result, exit_code


def _flush(streams: tuple[TextIO, ...]) -> None:
    for s in streams:
        with contextlib.suppress(Exception):  # a closed or broken stream: nothing to flush
            s.flush()


def run_task(task: Task) -> TaskResult:
    """Run one attempt of a handler in this process and describe what happened.

    Never raises for anything the handler does: exceptions, bad return values, import
    failures and ``sys.exit`` all come back as a `TaskResult` with ``ok=False`` and a
    Lambda-shaped ``error``. A ``sys.exit`` is reported as ``Runtime.ExitError``; the
    process itself keeps running (`serve` exits after reporting, as a sandbox would).
    """
    return _run(task)[0]


# --- the local worker process -----------------------------------------------------


class _OrphanWatchdog:
    """End the worker, and everything its handler started, when its parent dies.

    A parent that dies (a ``kill -9`` of ``reelay up``) can no longer record a result,
    and its next start runs the attempt again: a worker that went on (an ffmpeg encoding
    for a minute more under PID 1) would only compete with that run for the CPU. So the
    worker kills its whole process group (it leads one) as soon as the parent is gone:
    at once where a pidfd can watch the parent (Linux), else within `CHECK_S`. An
    effect cut in half is what a crash does anyway; handlers guard effects with
    `reelay.idempotency`.
    """

    CHECK_S = 0.5

    def __init__(self) -> None:
        self._parent = os.getppid()
        threading.Thread(target=self._watch, name="reelay-orphan-watchdog", daemon=True).start()

    def _watch(self) -> None:
        pidfd = None
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(self._parent)
        while os.getppid() == self._parent:
            if pidfd is not None:
                select.select([pidfd], [], [])  # readable when the parent has ended
            else:
                time.sleep(self.CHECK_S)
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)  # the worker leads its group
        os._exit(137)


def serve(task_fd: int, result_fd: int, capture_fd: int) -> None:
    """Main loop of a `LocalExecutor` worker process.

    Reads `Task` objects from ``task_fd`` and writes ``(TaskResult, exiting)`` pairs to
    ``result_fd`` (``multiprocessing`` connection framing; ``exiting`` is true after a
    ``sys.exit``, and the process ends right after). ``capture_fd`` is the capture file,
    which the parent also holds, so it can still read what a handler printed after
    killing it at its timeout. Sends ``None`` once ready. Ends when the parent closes
    the task pipe (or dies).
    """
    global _capture
    for fd in (task_fd, result_fd, capture_fd):
        # Children the handler starts must not hold these: a held result pipe would
        # hide this worker's death from the parent.
        os.set_inheritable(fd, False)
    _make_append(capture_fd)
    _capture = _make_capture(capture_fd, os.getpid())
    # This process runs nothing but handlers: point fds 1 and 2 and the Python streams
    # at the capture file once, rather than around every call.
    os.dup2(capture_fd, 1)
    os.dup2(capture_fd, 2)
    sys.stdout = sys.stderr = _capture.stream
    tasks = Connection(task_fd, writable=False)
    results = Connection(result_fd, readable=False)
    results.send(None)
    pid = os.getpid()
    _OrphanWatchdog()
    while True:
        try:
            task = tasks.recv()
        except (EOFError, OSError):
            return
        result, exit_code = _run(task, dedicated=True)
        if os.getpid() != pid:  # a child the handler forked returned from it: not ours
            os._exit(0)
        try:
            results.send((result, exit_code is not None))
        except OSError:  # the parent is gone
            return
        if exit_code is not None:
            os._exit(exit_code)
