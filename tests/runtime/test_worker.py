"""run_task, called in this process: Lambda's handler contract, errors, logs, context."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from reelay.runtime._task import Task
from reelay.runtime._worker import (
    LOG_CAP_BYTES,
    exit_error_message,
    read_capture,
    run_task,
    worker_name,
)
from reelay.runtime.context import LambdaContext

FNS = "reelay_testfns"
HANDLERS_DIR = Path(__file__).parent / "handlers"

TaskFactory = Callable[..., Task]


def test_returns_the_payload_as_json(make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.echo", {"key": "photos/cat.jpg", "n": [1, 2]})
    before = time.time()

    result = run_task(task)

    assert result.ok
    assert result.error is None
    assert json.loads(result.payload or "") == {
        "event": {"key": "photos/cat.jpg", "n": [1, 2]},
        "request_id": task.request_id,
    }
    assert result.request_id == task.request_id
    assert result.worker == f"{os.getpid()}@{socket.gethostname()}" == worker_name()
    assert before <= result.started_at <= time.time()
    assert result.duration_ms >= 0
    assert result.max_memory_mb > 0


def test_none_and_non_ascii_values_marshal_like_lambda(make_task: TaskFactory) -> None:
    assert run_task(make_task(f"{FNS}.noop")).payload == "null"
    result = run_task(make_task(f"{FNS}.echo", {"title": "Café ☕"}))
    assert json.loads(result.payload or "")["event"]["title"] == "Café ☕"


def test_decimals_marshal_as_numbers(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.decimals"))
    assert json.loads(result.payload or "") == {"whole": 3, "part": 2.5}


def test_handler_exception_has_lambdas_error_shape(make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.boom", {"why": "bad input"})

    result = run_task(task)

    assert not result.ok
    assert result.payload is None
    error = result.error or {}
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom: bad input"
    assert error["requestId"] == task.request_id
    trace = error["stackTrace"]
    assert isinstance(trace, list) and all(isinstance(line, str) for line in trace)
    assert len(trace) == 1  # only the handler's frame: the runtime's own are left out
    assert "reelay_testfns.py" in trace[0] and "in boom" in trace[0]
    assert "[ERROR] ValueError: boom: bad input" in result.logs
    assert "Traceback (most recent call last):" in result.logs


def test_a_worker_of_another_reelay_version_refuses_the_task(make_task: TaskFactory) -> None:
    import reelay

    result = run_task(make_task("reelay_testfns.noop", reelay_version="0.0.1"))
    assert not result.ok and result.error is not None
    assert result.error["errorType"] == "Runtime.VersionMismatch"
    message = result.error["errorMessage"]
    assert f"runs reelay {reelay.__version__}, its dispatcher reelay 0.0.1" in message
    assert "install the same reelay on every node" in message
    assert run_task(make_task("reelay_testfns.noop")).ok  # the same version runs


def test_missing_module_is_an_import_module_error(make_task: TaskFactory) -> None:
    result = run_task(make_task("reelay_testnothere.handler"))
    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert result.error["errorMessage"] == (
        "Unable to import module 'reelay_testnothere': No module named 'reelay_testnothere'"
    )


def test_missing_dependency_of_the_module_is_an_import_module_error(
    make_task: TaskFactory,
) -> None:
    result = run_task(make_task("reelay_testimport_fails.handler"))
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ImportModuleError"
    assert result.error["errorMessage"] == (
        "Unable to import module 'reelay_testimport_fails': "
        "No module named 'reelay_no_such_dependency'"
    )


def test_missing_function_is_handler_not_found(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.nope"))
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.HandlerNotFound"
    assert result.error["errorMessage"] == "Handler 'nope' missing on module 'reelay_testfns'"


def test_handler_without_a_dot_is_malformed(make_task: TaskFactory) -> None:
    result = run_task(make_task("justaname"))
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.MalformedHandlerName"
    assert result.error["errorMessage"].startswith("Bad handler 'justaname': ")


def test_exception_while_importing_reports_that_exception(make_task: TaskFactory) -> None:
    # As in Lambda: an error raised by module code keeps its own type and message.
    result = run_task(make_task("reelay_testimport_raises.handler"))
    assert result.error is not None
    assert result.error["errorType"] == "RuntimeError"
    assert result.error["errorMessage"] == "missing setting BUCKET"
    assert "reelay_testimport_raises.py" in result.error["stackTrace"][0]
    # A later call tries the import again rather than caching the failure.
    again = run_task(make_task("reelay_testimport_raises.handler"))
    assert again.error is not None and again.error["errorType"] == "RuntimeError"


def test_syntax_error_in_module(make_task: TaskFactory, tmp_path: Path) -> None:
    name = f"reelay_testsyntax_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text("def handler(event, context:\n    return 1\n")
    result = run_task(make_task(f"{name}.handler", app_root=tmp_path))
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.UserCodeSyntaxError"
    assert result.error["errorMessage"].startswith(f"Syntax error in module '{name}': ")


def test_serverless_style_path_handler(make_task: TaskFactory) -> None:
    result = run_task(make_task("nested/reelay_testdeep.handler"))
    assert result.ok, result.error
    assert result.payload == '"deep"'


def test_same_module_name_in_two_apps_stays_apart(make_task: TaskFactory, tmp_path: Path) -> None:
    name = f"reelay_testsame_{uuid.uuid4().hex[:8]}"
    for app in ("one", "two"):
        (tmp_path / app).mkdir()
        (tmp_path / app / f"{name}.py").write_text(
            f"def handler(event, context):\n    return {app!r}\n"
        )
    first = run_task(make_task(f"{name}.handler", app_root=tmp_path / "one"))
    second = run_task(make_task(f"{name}.handler", app_root=tmp_path / "two"))
    assert (first.payload, second.payload) == ('"one"', '"two"')


def test_event_that_is_not_json_is_an_unmarshal_error(make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.echo")
    bad = type(task)(**{**task.__dict__, "event": "{not json"})
    result = run_task(bad)
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.UnmarshalError"
    assert result.error["errorMessage"].startswith("Unable to unmarshal input: ")


def test_unserializable_return_is_a_marshal_error(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.unserializable"))
    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.MarshalError"
    assert result.error["errorMessage"] == (
        "Unable to marshal response: Object of type object is not JSON serializable"
    )


def test_coroutine_handler_is_run(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.async_handler"))
    assert result.ok, result.error
    assert result.payload == '"from a coroutine"'


def test_coroutine_handler_exception_shows_only_user_frames(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.async_boom"))
    assert result.error is not None
    assert (result.error["errorType"], result.error["errorMessage"]) == ("KeyError", "'missing'")
    assert len(result.error["stackTrace"]) == 1
    assert "in async_boom" in result.error["stackTrace"][0]


def test_sys_exit_is_an_exit_error_and_this_process_survives(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.exits", {"code": 4}))
    assert not result.ok
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"] == "Runtime exited with error: exit status 4"
    assert "about to exit" in result.logs


def test_logs_capture_print_logging_and_subprocesses(make_task: TaskFactory) -> None:
    task = make_task(f"{FNS}.logs")
    stdout_before, stderr_before = sys.stdout, sys.stderr
    root_handlers = list(logging.getLogger().handlers)

    result = run_task(task)

    assert result.ok, result.error
    logs = result.logs
    assert "hello from print\n" in logs
    assert "hello from stderr\n" in logs
    assert "hello from a subprocess\n" in logs
    assert "hello from fd 1\n" in logs
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    rid = re.escape(task.request_id)
    assert re.search(rf"^\[WARNING\]\t{stamp}\t{rid}\ta root warning$", logs, re.M)
    assert re.search(rf"^\[ERROR\]\t{stamp}\t{rid}\ta library error$", logs, re.M)
    # Lambda's root logger stays at WARNING unless the function lowers it.
    assert "an info line" not in logs
    assert result.logs_truncated == 0
    # Everything swapped for the call is back.
    assert (sys.stdout, sys.stderr) == (stdout_before, stderr_before)
    assert logging.getLogger().handlers == root_handlers


def test_logs_of_one_call_do_not_leak_into_the_next(make_task: TaskFactory) -> None:
    run_task(make_task(f"{FNS}.logs"))
    assert run_task(make_task(f"{FNS}.noop")).logs == ""


def test_megabytes_of_output_are_capped_to_head_and_tail(make_task: TaskFactory) -> None:
    result = run_task(make_task(f"{FNS}.chatty", {"mb": 8}))
    assert result.ok, result.error
    assert result.payload == '"done"'
    total = 8 * 1024 * 1024 + len("the last line\n")
    assert result.logs_truncated == total - LOG_CAP_BYTES
    assert len(result.logs.encode()) < LOG_CAP_BYTES + 100
    assert result.logs.startswith("x" * 1023 + "\n")
    assert result.logs.endswith("the last line\n")
    assert f"[... {result.logs_truncated} bytes of output truncated ...]" in result.logs


def test_read_capture_keeps_head_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "capture"
    path.write_bytes(b"a" * 10 + b"b" * 10 + b"c" * 10)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_capture(fd, cap=100) == ("a" * 10 + "b" * 10 + "c" * 10, 0)
        text, dropped = read_capture(fd, cap=20)
        assert dropped == 10
        assert text.startswith("a" * 10) and text.endswith("c" * 10)
    finally:
        os.close(fd)


def test_context_has_every_lambda_attribute(make_task: TaskFactory) -> None:
    task = make_task(
        f"{FNS}.context_info",
        {"sleep": 0.05},
        function_name="thumbnails",
        memory_mb=512,
        timeout_s=9,
    )

    info = json.loads(run_task(task).payload or "")

    assert info["aws_request_id"] == task.request_id
    assert info["function_name"] == "thumbnails"
    assert info["function_version"] == "$LATEST"
    assert info["memory_limit_in_mb"] == "512"  # a string, as the Lambda runtime gives it
    assert info["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:thumbnails"
    )
    assert info["log_group_name"] == "/aws/lambda/thumbnails"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", info["log_stream_name"])
    assert info["identity"] is None
    assert info["client_context"] is None
    assert 0 < info["remaining_after"] < info["remaining_before"] <= 9000
    # One log stream per worker process, as Lambda has one per sandbox.
    again = json.loads(run_task(task).payload or "")
    assert again["log_stream_name"] == info["log_stream_name"]


def test_remaining_time_never_goes_negative() -> None:
    context = LambdaContext(
        aws_request_id="r",
        function_name="f",
        memory_limit_in_mb=128,
        invoked_function_arn="arn",
        log_group_name="g",
        log_stream_name="s",
        deadline=time.monotonic() - 5,
    )
    assert context.get_remaining_time_in_millis() == 0
    assert context.memory_limit_in_mb == "128"


def test_environment_is_set_for_the_call_and_restored(make_task: TaskFactory) -> None:
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
    ]
    task = make_task(
        f"{FNS}.env",
        {"keys": keys},
        function_name="resize",
        memory_mb=1024,
        environment={"BUCKET": "media"},
        region="eu-west-1",
    )
    environ_before = dict(os.environ)

    env = json.loads(run_task(task).payload or "")

    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "resize"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/resize"
    assert re.fullmatch(
        r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", env["AWS_LAMBDA_LOG_STREAM_NAME"]
    )
    # Lambda's reserved variables win over the function's own.
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == f"{FNS}.env"
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS_DIR)
    assert env["BUCKET"] == "media"
    # The handler set REELAY_TEST_LEAK; that, and everything above, is undone.
    assert dict(os.environ) == environ_before


def test_first_call_of_a_function_is_a_cold_start(make_task: TaskFactory) -> None:
    name = f"cold-{uuid.uuid4().hex[:8]}"
    first = run_task(make_task(f"{FNS}.noop", function_name=name))
    second = run_task(make_task(f"{FNS}.noop", function_name=name))
    assert (first.cold_start, second.cold_start) == (True, False)


def test_exit_error_messages_match_lambda() -> None:
    assert exit_error_message(2) == "Runtime exited with error: exit status 2"
    assert exit_error_message(-9) == "Runtime exited with error: signal: killed"
    assert exit_error_message(-11) == "Runtime exited with error: signal: segmentation fault"
    assert exit_error_message(None) == "Runtime exited without providing a reason"
