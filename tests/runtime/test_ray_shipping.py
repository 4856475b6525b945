"""An app on a Ray cluster reelay joins travels with the tasks (runtime_env's
working_dir, and py_modules for the packages it names in package.modules): the workers
import it from their own copy, not from the driver's paths."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

APP = """
service: shipped
package:
  modules: [../lib/shared_lib]
functions:
  where:
    handler: fns/where.handler
"""
HANDLER = """
import shared_lib

def handler(event, context):
    return [__file__, shared_lib.__file__]
"""
# The driver runs in a process of its own: one Ray per process, and this test's must be
# the cluster started below, not a Ray another test left in the test process.
DRIVER = """
import json, shutil, sys
from pathlib import Path
from reelay.config import Settings
from reelay.runtime import Runtime, load_app
app_dir, home = Path(sys.argv[1]), Path(sys.argv[2])
app = load_app(app_dir / "reelay.yaml")
with Runtime(app, Settings.load(home), executor="ray:auto", max_workers=1) as runtime:
    # Once joined, the app and its modules are uploaded: the driver's copies can go, as
    # if the workers were on machines that never had them.
    shutil.rmtree(app_dir)
    shutil.rmtree(app_dir.parent / "lib")
    runtime.start()
    _, request_id = runtime.client.invoke_sync("where", {})
    done = runtime.wait_for(request_id, timeout=120)
print(json.dumps({"status": done.status, "result": done.result, "error": done.error}))
"""


# Ray 2.60 turns token auth on in a head started where ~/.ray/auth_token exists (an
# earlier test's local ray.init() writes one): this test's Ray processes are told the mode.
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


def test_a_named_cluster_that_cannot_be_joined_is_an_error_saying_why(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    driver = subprocess.run(
        [sys.executable, "-c", UNREACHABLE],
        env=os.environ | RAY_ENV | {"RAY_ADDRESS": f"127.0.0.1:{port}"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert driver.returncode == 0, driver.stderr[-3000:]
    assert driver.stdout.startswith(
        f"cannot reach the Ray cluster at RAY_ADDRESS=127.0.0.1:{port}: Connection refused"
    ), driver.stdout


UNREACHABLE = """
from reelay.errors import ExecutorUnavailableError
from reelay.runtime.executors import open_executor
try:
    open_executor("ray:auto")
except ExecutorUnavailableError as exc:
    print(exc)
else:
    raise SystemExit("joined a cluster that is not there")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_app_is_shipped_to_a_cluster_and_needs_no_driver_path(tmp_path: Path) -> None:
    # A Ray head of this test's own, in a process group of its own (so that stopping it
    # stops nothing else), with a short temp dir (Ray's unix sockets live there).
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    port = free_port()
    head = subprocess.Popen(
        [
            *(str(Path(sys.executable).with_name("ray")), "start", "--head", "--block"),
            *("--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"),
            *(f"--port={port}", f"--temp-dir={temp}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | RAY_ENV,
        start_new_session=True,
    )
    app_dir = tmp_path / "app"
    (app_dir / "fns").mkdir(parents=True)
    (app_dir / "reelay.yaml").write_text(APP)
    (app_dir / "fns" / "where.py").write_text(HANDLER)
    (tmp_path / "lib" / "shared_lib").mkdir(parents=True)
    (tmp_path / "lib" / "shared_lib" / "__init__.py").write_text("")
    env = os.environ | RAY_ENV | {"RAY_ADDRESS": f"127.0.0.1:{port}"}
    try:
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and head.poll() is None, "no Ray head"
            time.sleep(0.2)
        driver = subprocess.run(
            [sys.executable, "-c", DRIVER, str(app_dir), str(tmp_path / "home")],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
        done = json.loads(driver.stdout.strip().splitlines()[-1])
        assert done["status"] == "succeeded", done["error"]
        ran_from, lib_from = json.loads(done["result"])
        assert str(tmp_path) not in ran_from, ran_from
        assert ran_from.endswith(os.path.join("fns", "where.py")), ran_from
        assert str(tmp_path) not in lib_from, lib_from
        assert lib_from.endswith(os.path.join("shared_lib", "__init__.py")), lib_from
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        time.sleep(1)
        with contextlib.suppress(ProcessLookupError):  # what is left of its group goes too
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
