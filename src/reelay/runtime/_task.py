"""The small records that cross the executor seam.

A `Task` says which handler to run on which event; a `TaskResult` says what happened.
Both are plain, picklable dataclasses carrying JSON text, never live objects, so a
task can run in another process or on another machine (Ray).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reelay import __version__

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"


@dataclass(frozen=True)
class Task:
    """One attempt of one invocation."""

    request_id: str  # the invocation's aws_request_id (stable across retries)
    function_name: str
    handler: str  # "module.function" or "dir/module.function", resolved against app_root
    app_root: str  # directory put on sys.path before importing the handler module (relative:
    # to the worker's working directory, where an executor shipped the app)
    event: str  # the event as JSON text
    timeout_s: float
    memory_mb: int = 128
    attempt: int = 1
    environment: dict[str, str] = field(default_factory=dict)
    region: str = REGION
    priority: float = 0.0  # among tasks waiting for a worker, the lowest starts first
    reelay_version: str = __version__  # the dispatcher's; a worker on another refuses it
    python_path: tuple[str, ...] = ()  # directories put on sys.path after app_root (where
    # the app's package.modules are; none where an executor shipped them)

    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True)
class AppCode:
    """An app's code as executors see it: the directory its handlers resolve in, and
    the package directories they import besides (``package.modules``). An executor
    whose workers may be on other machines ships both (Ray's ``runtime_env``)."""

    root: str
    modules: tuple[str, ...] = ()

    @property
    def python_path(self) -> tuple[str, ...]:
        """Where a worker of this machine finds the modules: their parent directories."""
        return tuple(dict.fromkeys(os.path.dirname(m) for m in self.modules))


StartCallback = Callable[[str | None, float], None]
"""Told when a worker starts a task: the worker's name ("pid@host"; None when the
executor cannot tell) and the start time in epoch seconds."""


@dataclass(frozen=True)
class TaskResult:
    """The outcome of one attempt. Failures of the handler are results, not exceptions.

    ``error`` follows Lambda's error shape: ``errorType``, ``errorMessage``,
    ``stackTrace`` (list of str). Runtime-level failures use Lambda's types:
    ``Sandbox.Timedout`` (killed at the timeout), ``Runtime.ExitError`` (the worker
    process died), ``Runtime.MarshalError`` (the return value is not JSON),
    ``Runtime.ImportModuleError`` / ``Runtime.HandlerNotFound`` (bad handler path).
    """

    request_id: str
    ok: bool
    payload: str | None = None  # JSON text of the return value when ok
    error: dict[str, Any] | None = None
    logs: str = ""  # what the handler printed or logged, capped (see logs_truncated)
    logs_truncated: int = 0  # bytes dropped from the middle of the logs
    started_at: float = 0.0  # epoch seconds
    duration_ms: float = 0.0
    max_memory_mb: int = 0
    worker: str = ""  # "pid@host" of the process that ran it
    cold_start: bool = False  # first invocation of this function in that worker
