"""One contract, every executor: results, failures, timeouts, crashes, logs, context.

The ``executor`` fixture (conftest.py) runs each test against a `LocalExecutor` with two
workers and a `RayExecutor` on a real local Ray with two CPUs.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import socket
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import CancelledError
from pathlib import Path

import pytest

from reelay.errors import ConfigError, ExecutorError, ExecutorUnavailableError
from reelay.runtime._task import Task, TaskResult
from reelay.runtime.executors import EXECUTOR_URLS, Executor, LocalExecutor, open_executor

FNS = "reelay_testfns"
WAIT_S = 120.0  # a bound on waiting for a result, not a performance expectation

TaskFactory = Callable[..., Task]


def run(executor: Executor, task: Task) -> TaskResult:
    return executor.submit(task).result(timeout=WAIT_S)


def is_ray(executor: Executor) -> bool:
    return not isinstance(executor, LocalExecutor)


def gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def wait_gone(pid: int, within_s: float = 15.0) -> bool:
    deadline = time.monotonic() + within_s
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- the contract -----------------------------------------------------------------


def test_ok_result_carries_the_payload(executor: Executor, make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.echo", {"key": "videos/a.mp4"})

    result = run(executor, task)

    assert result.ok, result.error
    assert result.request_id == task.request_id
    assert json.loads(result.payload or "") == {
        "event": {"key": "videos/a.mp4"},
        "request_id": task.request_id,
    }
    assert result.error is None
    assert re.fullmatch(r"\d+@.+", result.worker)
    assert result.worker.split("@")[0] != str(os.getpid())  # it ran elsewhere
    assert result.started_at > 0
    assert result.max_memory_mb > 0


def test_handler_exception_is_a_result(executor: Executor, make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.boom", {"why": "corrupt header"})

    result = run(executor, task)

    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "ValueError"
    assert result.error["errorMessage"] == "boom: corrupt header"
    assert result.error["requestId"] == task.request_id
    assert any("in boom" in line for line in result.error["stackTrace"])
    assert "[ERROR] ValueError: boom: corrupt header" in result.logs


def test_timeout_kills_the_task_and_the_executor_carries_on(
    executor: Executor, make_task: TaskFactory
) -> None:
    result = run(executor, make_task(f"{FNS}.sleepy", {"seconds": 120}, timeout_s=1.0))

    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Sandbox.Timedout"
    assert result.error["errorMessage"] == "Task timed out after 1.00 seconds"
    assert run(executor, make_task(f"{FNS}.echo", {"after": "timeout"})).ok


def test_timeout_clock_starts_when_a_queued_task_starts(
    executor: Executor, make_task: TaskFactory
) -> None:
    busy = [
        executor.submit(make_task(f"{FNS}.sleepy", {"seconds": 1.5}, timeout_s=60))
        for _ in range(executor.max_workers)
    ]
    queued = executor.submit(make_task(f"{FNS}.echo", {"q": 1}, timeout_s=1.0))

    assert queued.result(timeout=WAIT_S).ok
    assert all(f.result(timeout=WAIT_S).ok for f in busy)


def test_sys_exit_is_an_exit_error(executor: Executor, make_task: TaskFactory) -> None:
    result = run(executor, make_task(f"{FNS}.exits", {"code": 3}))

    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"] == "Runtime exited with error: exit status 3"
    assert "about to exit" in result.logs
    assert run(executor, make_task(f"{FNS}.echo")).ok


def test_process_exit_is_an_exit_error(executor: Executor, make_task: TaskFactory) -> None:
    result = run(executor, make_task(f"{FNS}.hard_exit", {"code": 7}))

    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    if is_ray(executor):  # Ray does not report a dead worker's exit status
        assert result.error["errorMessage"].startswith("Runtime exited")
    else:
        assert result.error["errorMessage"] == "Runtime exited with error: exit status 7"
    assert run(executor, make_task(f"{FNS}.echo")).ok


def test_killed_worker_is_an_exit_error(executor: Executor, make_task: TaskFactory) -> None:
    result = run(executor, make_task(f"{FNS}.kill_self"))

    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    if not is_ray(executor):
        assert result.error["errorMessage"] == "Runtime exited with error: signal: killed"
    assert run(executor, make_task(f"{FNS}.echo")).ok


def test_unserializable_return_value(executor: Executor, make_task: TaskFactory) -> None:
    result = run(executor, make_task(f"{FNS}.unserializable"))

    assert result.error is not None
    assert result.error["errorType"] == "Runtime.MarshalError"
    assert result.error["errorMessage"].startswith("Unable to marshal response: ")


def test_megabytes_of_output_are_capped(executor: Executor, make_task: TaskFactory) -> None:
    result = run(executor, make_task(f"{FNS}.chatty", {"mb": 20}))

    assert result.ok, result.error
    assert result.payload == '"done"'
    assert result.logs_truncated > 19 * 1024 * 1024
    assert len(result.logs) < 300 * 1024
    assert result.logs.endswith("the last line\n")


def test_logs_include_logging_and_subprocess_output(
    executor: Executor, make_task: TaskFactory
) -> None:
    task = make_task(f"{FNS}.logs")

    result = run(executor, task)

    assert result.ok, result.error
    for line in (
        "hello from print",
        "hello from stderr",
        "hello from a subprocess",
        "hello from fd 1",
        f"\t{task.request_id}\ta root warning",
        f"\t{task.request_id}\ta library error",
    ):
        assert line in result.logs
    assert re.search(r"^\[WARNING\]\t\d{4}-\d\d-\d\dT[\d:.]+Z\t", result.logs, re.M)


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "reelay_testnothere.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'reelay_testnothere': No module named 'reelay_testnothere'",
        ),
        (
            "reelay_testimport_fails.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'reelay_testimport_fails': "
            "No module named 'reelay_no_such_dependency'",
        ),
        (
            f"{FNS}.nope",
            "Runtime.HandlerNotFound",
            "Handler 'nope' missing on module 'reelay_testfns'",
        ),
        ("reelay_testimport_raises.handler", "RuntimeError", "missing setting BUCKET"),
    ],
)
def test_import_errors(
    executor: Executor, make_task: TaskFactory, handler: str, error_type: str, message: str
) -> None:
    result = run(executor, make_task(handler))

    assert not result.ok
    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == (error_type, message)


def test_context_attributes(executor: Executor, make_task: TaskFactory) -> None:
    task = make_task(
        f"{FNS}.context_info", {"sleep": 0.1}, function_name="encode", memory_mb=2048, timeout_s=20
    )

    result = run(executor, task)

    assert result.ok, result.error
    info = json.loads(result.payload or "")
    assert info["aws_request_id"] == task.request_id
    assert info["function_name"] == "encode"
    assert info["function_version"] == "$LATEST"
    assert info["memory_limit_in_mb"] == "2048"
    assert info["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:encode"
    assert info["log_group_name"] == "/aws/lambda/encode"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", info["log_stream_name"])
    assert info["identity"] is None and info["client_context"] is None
    assert 0 < info["remaining_after"] < info["remaining_before"] <= 20_000


def test_environment_variables(executor: Executor, make_task: TaskFactory) -> None:
    keys = [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "BUCKET",
        "REELAY_TEST_LEAK",
    ]
    task = make_task(
        f"{FNS}.env",
        {"keys": keys},
        function_name="fanout",
        memory_mb=256,
        environment={"BUCKET": "renditions"},
    )

    env = json.loads(run(executor, task).payload or "")

    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "fanout"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fanout"
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"].startswith(time.strftime("%Y/%m/", time.gmtime()))
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["_HANDLER"] == f"{FNS}.env"
    assert env["LAMBDA_TASK_ROOT"] == str(Path(__file__).parent / "handlers")
    assert env["BUCKET"] == "renditions"
    # What one function's handler put in its environment, another function never sees.
    other = make_task(f"{FNS}.env", {"keys": keys}, function_name="another")
    for _ in range(2 * executor.max_workers):
        assert json.loads(run(executor, other).payload or "")["REELAY_TEST_LEAK"] is None
        run(executor, task)


def test_cold_start_then_warm_in_the_same_worker(
    executor: Executor, make_task: TaskFactory
) -> None:
    name = f"warmth-{uuid.uuid4().hex[:8]}"
    results = [run(executor, make_task(f"{FNS}.noop", function_name=name)) for _ in range(8)]

    by_worker: dict[str, list[bool]] = defaultdict(list)
    for result in results:
        assert result.ok, result.error
        by_worker[result.worker].append(result.cold_start)
    for colds in by_worker.values():
        assert colds[0] is True
        assert not any(colds[1:])
    assert any(len(colds) > 1 for colds in by_worker.values())


def test_many_concurrent_tasks_all_resolve(executor: Executor, make_task: TaskFactory) -> None:
    tasks = [make_task(f"{FNS}.echo", {"i": i}) for i in range(200)]
    futures = [executor.submit(task) for task in tasks]

    results = [f.result(timeout=WAIT_S) for f in futures]

    assert all(r.ok for r in results)
    assert [json.loads(r.payload or "")["event"]["i"] for r in results] == list(range(200))
    assert [r.request_id for r in results] == [t.request_id for t in tasks]


def test_close_cancels_queued_and_fails_running_tasks(
    executor: Executor, make_task: TaskFactory
) -> None:
    running = [
        executor.submit(make_task(f"{FNS}.sleepy", {"seconds": 120}, timeout_s=300))
        for _ in range(8 * executor.max_workers)
    ]
    time.sleep(0.5)  # let some of them start

    executor.close()

    for future in running:
        assert future.done()
        if not future.cancelled():
            with pytest.raises(ExecutorError):
                future.result(timeout=0)
    with pytest.raises(ExecutorError):
        executor.submit(make_task(f"{FNS}.noop"))
    executor.close()  # idempotent


# -- local-only guarantees --------------------------------------------------------


@pytest.fixture
def local() -> LocalExecutor:
    executor = open_executor("local:2")
    assert isinstance(executor, LocalExecutor)
    return executor


def test_timeout_kills_the_handlers_child_processes(
    local: LocalExecutor, make_task: TaskFactory, tmp_path: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    with local:
        result = run(
            local,
            make_task(f"{FNS}.sleepy_with_child", {"pid_file": str(pid_file)}, timeout_s=1.0),
        )
        assert result.error is not None
        assert result.error["errorType"] == "Sandbox.Timedout"
        child = int(pid_file.read_text())
        assert wait_gone(child)
        # What the handler printed before it was killed is kept.
        assert f"started child {child}" in result.logs
        assert "Task timed out after 1.00 seconds" in result.logs
        assert run(local, make_task(f"{FNS}.echo")).ok


def test_a_replaced_worker_is_a_new_process(local: LocalExecutor, make_task: TaskFactory) -> None:
    with local:
        first = run(local, make_task(f"{FNS}.pid"))
        pid = int(first.payload or "0")
        pool = set(local.worker_pids)
        result = run(local, make_task(f"{FNS}.exits", {"code": 1}))
        dead = int(result.worker.split("@")[0])
        assert wait_gone(dead)

        # The pool forgets the dead worker, reaps it, then spawns its replacement, all on
        # its own thread: wait for the whole of that, not only for the forgetting.
        def replaced() -> bool:
            pids = local.worker_pids
            return dead not in pids and len(pids) == local.max_workers

        deadline = time.monotonic() + 15
        while not replaced() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert dead not in local.worker_pids
        assert len(local.worker_pids) == local.max_workers
        assert pid in pool


def test_close_leaves_no_process_behind(local: LocalExecutor, make_task: TaskFactory) -> None:
    with local:
        assert run(local, make_task(f"{FNS}.echo")).ok
        busy = local.submit(make_task(f"{FNS}.sleepy", {"seconds": 120}, timeout_s=300))
        pids = local.worker_pids
    assert busy.done()
    assert pids and all(gone(pid) for pid in pids)
    assert multiprocessing.active_children() == []


def test_cancelled_queued_task_never_runs(local: LocalExecutor, make_task: TaskFactory) -> None:
    with local:
        blockers = [local.submit(make_task(f"{FNS}.sleepy", {"seconds": 0.5})) for _ in range(2)]
        queued = local.submit(make_task(f"{FNS}.boom"))
        assert queued.cancel()
        assert all(f.result(timeout=WAIT_S).ok for f in blockers)
        with pytest.raises(CancelledError):
            queued.result(timeout=0)


# -- opening executors ------------------------------------------------------------


def test_open_executor_local_counts() -> None:
    with open_executor("local:3") as ex:
        assert ex.max_workers == 3
    with open_executor("local:3", max_workers=1) as ex:
        assert ex.max_workers == 1
    with open_executor("local") as ex:
        assert ex.max_workers == (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("k8s://cluster", "unknown executor URL scheme 'k8s'"),
        ("", "non-empty"),
        ("local:zero", "'zero'"),
        ("local:0", "'0'"),
        ("ray:somewhere", "unknown Ray address 'somewhere'"),
    ],
)
def test_open_executor_rejects_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_executor(url)
    assert fragment in str(info.value)
    if "scheme" in fragment:
        assert all(form in str(info.value) for form in EXECUTOR_URLS)


def test_open_executor_rejects_bad_worker_counts() -> None:
    with pytest.raises(ConfigError, match="max_workers"):
        open_executor("local", max_workers=0)


def test_ray_url_without_ray_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes "import ray" fail
    with pytest.raises(ConfigError, match=r"pip install 'reelay\[ray\]'"):
        open_executor("ray:local")


@pytest.mark.ray
def test_unreachable_ray_cluster_fails_fast() -> None:
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"ray://127.0.0.1:{port}"  # nothing listens there any more
    with pytest.raises(ExecutorUnavailableError) as info:
        open_executor(address)
    assert address in str(info.value)


@pytest.mark.ray
def test_ray_executor_shares_a_ray_it_did_not_start(ray_cluster: object) -> None:
    import ray

    with open_executor("ray:local") as ex:
        assert ex.max_workers == 2
    assert ray.is_initialized()  # closing did not shut down the session's Ray


def test_waiting_tasks_start_lowest_priority_first_and_report_their_start(
    executor: Executor, make_task: TaskFactory
) -> None:
    # Enough blockers to fill the workers and whatever the executor hands on early
    # (Ray holds up to 4 per worker itself), so the tasks below all wait together.
    blockers = [
        executor.submit(make_task(f"{FNS}.sleepy", {"seconds": 0.5}, timeout_s=60))
        for _ in range(executor.max_workers * 4)
    ]
    started: list[tuple[float, str | None, float]] = []
    futures = {
        priority: executor.submit(
            make_task(f"{FNS}.echo", {"p": priority}, priority=priority),
            on_start=lambda worker, at, p=priority: started.append((p, worker, at)),
        )
        for priority in (3.0, 1.0, 2.0, -1.0)
    }
    results = {p: f.result(timeout=WAIT_S) for p, f in futures.items()}
    assert all(f.result(timeout=WAIT_S).ok for f in blockers)
    assert [p for p, _, _ in started] == [-1.0, 1.0, 2.0, 3.0]  # each told once, in order
    for priority, worker, _ in started:
        result = results[priority]
        assert result.ok
        # The local pool knows the worker; Ray does not say which worker runs a task.
        assert worker == (None if is_ray(executor) else result.worker)
