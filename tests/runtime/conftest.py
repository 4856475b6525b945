"""Fixtures for the runtime tests: handler tasks, a session-wide local Ray, executors."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay.runtime._task import Task
from reelay.runtime.executors import Executor, open_executor

HANDLERS_DIR = Path(__file__).parent / "handlers"

TaskFactory = Callable[..., Task]


@pytest.fixture
def make_task() -> TaskFactory:
    """Build a `Task` for a handler under tests/runtime/handlers (or another app_root)."""

    def make(
        handler: str,
        event: Any = None,
        *,
        timeout_s: float = 30.0,
        function_name: str = "test-fn",
        app_root: str | os.PathLike[str] = HANDLERS_DIR,
        request_id: str | None = None,
        **fields: Any,
    ) -> Task:
        return Task(
            request_id=request_id or str(uuid.uuid4()),
            function_name=function_name,
            handler=handler,
            app_root=str(app_root),
            event=json.dumps({} if event is None else event),
            timeout_s=timeout_s,
            **fields,
        )

    return make


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A real local Ray with two CPUs, started once per test session."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(params=["local", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """Each executor implementation, with two workers, closed after the test."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        ex = open_executor("ray:local", max_workers=2)
    else:
        ex = open_executor("local:2")
    with ex:
        yield ex
