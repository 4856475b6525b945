"""An app on a Ray cluster this process joins travels with the tasks (runtime_env's
working_dir): the workers import it from their own copy, not from the driver's path."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from reelay.config import Settings
from reelay.runtime import Runtime, load_app

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = """
service: shipped
functions:
  where:
    handler: fns/where.handler
"""
HANDLER = """
def handler(event, context):
    return __file__
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_app_is_shipped_to_a_cluster_and_needs_no_driver_path(tmp_path: Path) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    # A Ray of this test's own, found by ray:auto through it (a short path: Ray's
    # sockets live there, and a unix socket path is at most 107 bytes).
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    env = os.environ | {"RAY_TMPDIR": str(temp)}
    start = [ray, "start", "--head", "--num-cpus=1", "--include-dashboard=false"]
    start += [f"--port={free_port()}", f"--temp-dir={temp}", "--disable-usage-stats"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    app_dir = tmp_path / "app"
    (app_dir / "fns").mkdir(parents=True)
    (app_dir / "reelay.yaml").write_text(APP)
    (app_dir / "fns" / "where.py").write_text(HANDLER)
    try:
        os.environ["RAY_ADDRESS"] = "auto"
        os.environ["RAY_TMPDIR"] = str(temp)
        app = load_app(app_dir / "reelay.yaml")
        settings = Settings.load(tmp_path / "home")
        with Runtime(app, settings, executor="ray:auto", max_workers=1) as runtime:
            # Once joined, the app is uploaded: the driver's copy can go, as if the
            # workers were on machines that never had it.
            shutil.rmtree(app_dir)
            runtime.start()
            _, request_id = runtime.client.invoke_sync("where", {})
            done = runtime.wait_for(request_id, timeout=120)
        assert done.status == "succeeded", done.error
        ran_from = json.loads(done.result or "null")
        assert str(app_dir) not in ran_from, ran_from
        assert ran_from.endswith(os.path.join("fns", "where.py")), ran_from
    finally:
        os.environ.pop("RAY_ADDRESS", None)
        os.environ.pop("RAY_TMPDIR", None)
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
