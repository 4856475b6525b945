"""Handlers for the runtime tests: each leaves evidence under $REELAY_HOME/out."""

import json
import os
import time
from pathlib import Path

from reelay.idempotency import once


def _out(name):
    path = Path(os.environ["REELAY_HOME"]) / "out" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def echo(event, context):
    print(f"echo {context.function_name} {context.aws_request_id}")
    with _out(f"{context.function_name}.jsonl").open("a") as f:
        f.write(json.dumps({"event": event, "request_id": context.aws_request_id}) + "\n")
    return {"seen": event.get("detail-type") or "records"}


def flaky(event, context):
    marker = _out(f"flaky-{context.aws_request_id}")
    count = int(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text(str(count))
    if count < 3:
        raise RuntimeError(f"flaky failure {count}")
    return {"attempts": count}


def broken(event, context):
    raise ValueError("always broken")


def slow(event, context):
    time.sleep(30)


def exclusive(event, context):
    with _out("exclusive.log").open("a") as f:
        f.write(f"start {time.time()}\n")
    time.sleep(0.05)
    with _out("exclusive.log").open("a") as f:
        f.write(f"end {time.time()}\n")


def effect(event, context):
    def act():
        with _out("effects.log").open("a") as f:
            f.write(event["detail"]["key"] + "\n")
        return event["detail"]["key"]

    return once(f"effect:{event['detail']['key']}", act)


def nap(event, context):
    time.sleep((event.get("detail") or {}).get("seconds", 0.3))  # direct invokes: no detail
    return context.aws_request_id


def spawn(event, context):
    """First call: start a child process, fill a temporary directory, then hang until
    killed with the dispatcher; a later call (the re-run) returns at once."""
    import subprocess
    import tempfile

    marker = _out("spawn.json")
    if marker.exists():
        return "re-run"
    scratch = tempfile.mkdtemp(prefix="spawn-")
    Path(scratch, "partial.bin").write_bytes(b"\0" * 4096)
    child = subprocess.Popen(["sleep", "120"])
    marker.write_text(json.dumps({"child": child.pid, "scratch": scratch}))
    time.sleep(120)


def chain(event, context):
    """Step N of chain NAME: log it, put step N+1 (three steps in all), and work on a
    little, so that step N+1 is ready before this worker is free (what is ready when a
    worker frees is what the ordering chooses from)."""
    from reelay.client import default_client

    name, step = event["detail"]["name"], event["detail"]["step"]
    with _out("chain.log").open("a") as f:
        f.write(f"{name}{step}\n")
    if step < 3:
        detail = {"name": name, "step": step + 1}
        default_client().put_events(
            [{"Source": "test.app", "DetailType": "chain", "Detail": detail}]
        )
        time.sleep(0.3)
