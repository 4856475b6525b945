"""Handlers used by the runtime tests; each exercises one behaviour of the worker."""

from __future__ import annotations

import asyncio
import decimal
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

CALLS = {"count": 0}


def noop(event: Any, context: Any) -> None:
    return None


def echo(event: Any, context: Any) -> Any:
    return {"event": event, "request_id": context.aws_request_id}


def count(event: Any, context: Any) -> int:
    # Module state survives between warm invocations in one worker, as in Lambda.
    CALLS["count"] += 1
    return CALLS["count"]


def boom(event: Any, context: Any) -> None:
    raise ValueError(f"boom: {event.get('why', 'no reason')}")


def sleepy(event: Any, context: Any) -> str:
    time.sleep(event["seconds"])
    return "slept"


def sleepy_with_child(event: Any, context: Any) -> None:
    child = subprocess.Popen(["sleep", "600"])
    with open(event["pid_file"], "w") as f:
        f.write(str(child.pid))
    print("started child", child.pid, flush=True)
    time.sleep(600)


def exits(event: Any, context: Any) -> None:
    print("about to exit")
    sys.exit(event.get("code", 3))


def hard_exit(event: Any, context: Any) -> None:
    os._exit(event.get("code", 7))


def kill_self(event: Any, context: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def unserializable(event: Any, context: Any) -> Any:
    return {"value": object()}


def decimals(event: Any, context: Any) -> Any:
    return {"whole": decimal.Decimal("3"), "part": decimal.Decimal("2.5")}


def chatty(event: Any, context: Any) -> str:
    line = "x" * 1023 + "\n"
    for _ in range(event["mb"] * 1024):
        sys.stdout.write(line)
    print("the last line")
    return "done"


def logs(event: Any, context: Any) -> str:
    print("hello from print")
    print("hello from stderr", file=sys.stderr)
    logging.getLogger().warning("a root warning")
    logging.getLogger("some.library").error("a library error")
    logging.getLogger().info("an info line Lambda drops at the default level")
    subprocess.run(["echo", "hello from a subprocess"], check=True)
    os.write(1, b"hello from fd 1\n")
    return "logged"


def context_info(event: Any, context: Any) -> dict[str, Any]:
    before = context.get_remaining_time_in_millis()
    time.sleep(event.get("sleep", 0.05))
    after = context.get_remaining_time_in_millis()
    names = [
        "aws_request_id",
        "function_name",
        "function_version",
        "memory_limit_in_mb",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "identity",
        "client_context",
    ]
    info: dict[str, Any] = {name: getattr(context, name) for name in names}
    info["remaining_before"] = before
    info["remaining_after"] = after
    return info


def env(event: Any, context: Any) -> dict[str, str | None]:
    result = {key: os.environ.get(key) for key in event["keys"]}
    os.environ["REELAY_TEST_LEAK"] = "leaked"
    return result


async def async_handler(event: Any, context: Any) -> str:
    await asyncio.sleep(0)
    return "from a coroutine"


def pid(event: Any, context: Any) -> int:
    return os.getpid()


async def async_boom(event: Any, context: Any) -> None:
    await asyncio.sleep(0)
    raise KeyError("missing")
