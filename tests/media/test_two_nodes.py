"""The media pipeline on two Ray nodes, where the node that runs every task is another
machine in all but hardware: another user (nobody), in a mount namespace of its own, on
another loopback address. It cannot see the driver's home, app directory or temp files;
it has reelay installed (the same Python, exposed read-only) and its own credentials.
State is on PostgreSQL, objects on an S3-protocol server: a worker needs nothing else.

Needs root (for ``unshare``, ``mount`` and becoming nobody), as CI has; elsewhere the
test is skipped, saying why.
"""

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import reelay
from reelay.media.samples import make_clip
from reelay.state import open_state

pytestmark = [pytest.mark.ray, pytest.mark.media, pytest.mark.s3, pytest.mark.slow]

NOBODY = 65534
HEAD_IP, NODE_IP = "127.0.0.1", "127.0.0.2"
READY = "Ray runtime started"
# Ray 2.60 turns token auth on in a head started where ~/.ray/auth_token exists (any
# local ray.init() of an earlier test writes one), and a node of another user, with
# another home, has no token: every Ray process of this test is told the mode.
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}

# Run as root inside `unshare --mount`: lay out what the node may see, then become nobody
# and start the Ray node. argv[1] is a JSON spec (see `_start_node`).
NODE = r"""
import json, os, subprocess, sys
from pathlib import Path

spec = json.loads(sys.argv[1])
hidden = Path(spec["hide"])
stashes = {}


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def readable(path):
    return path.stat().st_mode & 0o005 == 0o005


def expose(path):
    # Make `path` reachable for nobody without exposing what lies beside it: a directory
    # on the way that others may not enter is stashed (bind-mounted elsewhere, root
    # only) and covered with an empty tmpfs, into which its one child on the way is
    # bind-mounted back.
    for step in [*reversed(path.parents), path]:
        if not step.exists() and step.parent in stashes:
            step.mkdir()
            mount("--bind", str(stashes[step.parent] / step.name), str(step))
        if readable(step):
            continue
        if step == path:
            sys.exit(f"{path} is not readable by others: a node of another user cannot use it")
        stash = hidden / ".stash" / str(len(stashes))
        stash.mkdir(parents=True)
        mount("--bind", str(step), str(stash))
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(step))
        stashes[step] = stash


mount("--make-rprivate", "/")
mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(hidden))
(hidden / ".stash").mkdir(mode=0o700)
for name in spec["owned"]:  # the node's own: its Ray session, its user's home
    (hidden / name).mkdir()
    os.chown(hidden / name, spec["uid"], spec["uid"])
for name in spec["unreadable"]:  # exists at the driver's path, but not for this user
    (hidden / name).mkdir(mode=0o700)
for path in spec["expose"]:
    expose(Path(path))
os.setgroups([])
os.setgid(spec["uid"])
os.setuid(spec["uid"])
os.execve(spec["argv"][0], spec["argv"], spec["env"])
"""


@dataclass
class Cluster:
    address: str
    temp: Path  # the driver's: hidden from the node, which has an empty tmpfs there
    node: subprocess.Popen[bytes]

    def home(self, name: str) -> Path:
        return self.temp / name

    def node_session(self) -> Path:
        """The node's Ray session directory, read through the node's /proc root (its
        ``session_latest`` link is absolute: it would resolve in this namespace)."""
        root = Path(f"/proc/{self.node.pid}/root")
        latest = root / self.temp.relative_to("/") / "ray" / "session_latest"
        return root / Path(os.readlink(latest)).relative_to("/")

    @staticmethod
    def worker_pids(session: Path) -> set[str]:
        """The pids of the Python workers a Ray session started (from their log names)."""
        logs = (session / "logs").glob("python-core-worker-*.log")
        return {log.stem.rpartition("_")[2] for log in logs}


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 90
    while READY not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the Ray {what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    time.sleep(1)
    with contextlib.suppress(ProcessLookupError):  # what is left of its group goes too
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _python_paths() -> list[str]:
    """What a node needs to run this reelay: the interpreter, the virtualenv, reelay's
    code, and the test run's PYTHONPATH."""
    paths = {sys.base_prefix, sys.prefix, str(Path(reelay.__file__).parents[1])}
    paths.update(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)
    return sorted(os.path.realpath(p) for p in paths)


def _start_node(temp: Path, head: str, log: Path) -> subprocess.Popen[bytes]:
    ports = [_free_port(NODE_IP) for _ in range(3)]
    argv = [
        *(_ray(), "start", f"--address={head}", "--block", "--num-cpus=2"),
        *(f"--node-ip-address={NODE_IP}", "--disable-usage-stats"),
        f"--dashboard-agent-listen-port={ports[0]}",
        f"--dashboard-agent-grpc-port={ports[1]}",
        f"--runtime-env-agent-port={ports[2]}",
    ]
    env = RAY_ENV | {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(temp / "node-user"),
        "LANG": "C.UTF-8",
        # The node's own credentials: the driver's are never shipped.
        "AWS_ACCESS_KEY_ID": "node",
        "AWS_SECRET_ACCESS_KEY": "node",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    spec = {
        "hide": str(temp),
        "owned": ["ray", "node-user"],
        "unreadable": ["home-unreadable"],
        "expose": _python_paths(),
        "uid": NOBODY,
        "argv": argv,
        "env": env,
    }
    return subprocess.Popen(
        ["unshare", "--mount", sys.executable, "-c", NODE, json.dumps(spec)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to start a node as another user")
    temp = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))  # short: Ray's sockets live there
    port = _free_port()
    head_log, node_log = temp.with_suffix(".head.log"), temp.with_suffix(".node.log")
    head = subprocess.Popen(
        [
            *(_ray(), "start", "--head", "--block", "--num-cpus=0"),
            *(f"--node-ip-address={HEAD_IP}", f"--port={port}", f"--temp-dir={temp / 'ray'}"),
            *("--include-dashboard=false", "--disable-usage-stats"),
            f"--dashboard-agent-listen-port={_free_port()}",
        ],
        stdout=head_log.open("wb"),
        stderr=subprocess.STDOUT,
        env=os.environ | RAY_ENV,
        start_new_session=True,
    )
    node = None
    try:
        _wait_ready(head, head_log, "head")
        node = _start_node(temp, f"{HEAD_IP}:{port}", node_log)
        _wait_ready(node, node_log, "node")
        yield Cluster(f"{HEAD_IP}:{port}", temp, node)
    finally:
        for proc in (node, head):
            if proc is not None:
                _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
        head_log.unlink(missing_ok=True)
        node_log.unlink(missing_ok=True)


@pytest.mark.parametrize("home", ["home-missing", "home-unreadable"])
def test_a_title_publishes_on_a_node_that_shares_nothing_with_the_driver(
    cluster: Cluster, home: str, tmp_path: Path, s3_endpoint: str, postgres_url: str
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=4)
    prefix = "n" + os.urandom(5).hex()
    env = (
        os.environ
        | RAY_ENV
        | {
            "RAY_ADDRESS": cluster.address,
            "REELAY_STORE": f"s3://{prefix}?endpoint={s3_endpoint}",
            "AWS_ACCESS_KEY_ID": "driver",
            "AWS_SECRET_ACCESS_KEY": "driver",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "reelay.cli", "transcode", str(clip), "--json"),
            *("--executor", "ray:auto", "--home", str(cluster.home(home))),
            *("--state", postgres_url, "--ladder", "demo"),
            *("--chunk-seconds", "2", "--qc", "5"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    report = json.loads(run.stdout)
    assert report["status"] == "published", report
    videos = [r for r in report["renditions"] if r["kind"] == "video"]
    assert videos and all(r["frames"] == report["source"]["frames"] for r in videos), report
    # Every attempt ran on the node: each worker that ran one left its log in the node's
    # session, which lives in the node's own mount namespace (seen through its /proc
    # root); none is in the head's.
    with open_state(postgres_url, cluster.home(home), create=False) as state:
        workers = {a.worker for a in state.attempts(limit=10_000) if a.worker}
    assert workers
    pids = {w.split("@")[0] for w in workers}
    ran_on_node = cluster.worker_pids(cluster.node_session())
    assert pids <= ran_on_node, (workers, ran_on_node)
    assert not pids & cluster.worker_pids(cluster.temp / "ray" / "session_latest"), workers
    # The node's side of the driver's temp directory is its own: the home is missing or
    # unreadable there, and the node made nothing at the driver's paths.
    assert not (cluster.home(home) / "cache").exists()


def test_a_sqlite_state_the_node_cannot_reach_fails_the_title_saying_why(
    cluster: Cluster, tmp_path: Path, s3_endpoint: str
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", seconds=2)
    env = (
        os.environ
        | RAY_ENV
        | {
            "RAY_ADDRESS": cluster.address,
            "REELAY_STORE": f"s3://n{os.urandom(5).hex()}?endpoint={s3_endpoint}",
            "AWS_ACCESS_KEY_ID": "driver",
            "AWS_SECRET_ACCESS_KEY": "driver",
        }
    )
    env.pop("REELAY_STATE", None)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "reelay.cli", "transcode", str(clip), "--json"),
            *("--executor", "ray:auto", "--home", str(cluster.home("home-sqlite"))),
            *("--ladder", "demo", "--chunk-seconds", "2", "--qc", "5"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Not a wait of hours, nor a private state.db made on the node: the title fails,
    # saying why, as soon as nothing is left to run.
    assert run.returncode == 1, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["status"] == "failed"
    assert report["error"]["code"] == "STALLED"
    assert "cannot reach its dispatcher's state" in report["error"]["message"]
    assert "REELAY_STATE=postgresql://" in report["error"]["message"]
