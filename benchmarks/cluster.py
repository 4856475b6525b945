"""The media pipeline on the local executor and on Ray, one node and two, same clip.

    .venv/bin/python benchmarks/cluster.py [--seconds 20] [--size 1280x720] [--workers 2]
        [--ladder bench] [--chunk-seconds 5] [--qc off] [--repeat 3] [--warmup 1]
        [--postgres [ADMIN_URL]] [--s3]

One generated clip (`make_clip`: moving test patterns and a tone, H.264) goes through
``reelay transcode SRC --json`` as a user runs it (a process of its own, a fresh home
each run, QC off unless ``--qc``), in turn:

1. by hand: ladder.py's one ffmpeg command (decode once, ``split``, both encoders, fMP4
   HLS), when the ladder is ladder.py's ``bench`` (the default);
2. ``--executor local``: the local process pool, ``--workers`` processes;
3. ``--executor ray:auto`` on a Ray cluster of one node: a head with ``--workers`` CPUs;
4. ``--executor ray:auto`` on a Ray cluster of two nodes on this machine: a head with no
   CPUs (it runs no task: the driver's machine only coordinates) and two worker nodes
   with half the CPUs each, so every task runs on a node other than the driver's, and
   a title's tasks are split between the two. Tasks find their inputs in the object
   store and the state, not in memory the driver shares.

Each Ray cluster is this run's own: every node a ``ray start --block`` in a process group
of its own, with its own ports and temp dir, stopped (the whole group) at the end,
whatever happens. The driver joins it through ``RAY_ADDRESS``. Both clusters are up for
the whole run, and the configurations run in rounds, one run of each per round, so that
a change in the machine's load falls on all of them alike; the CPU the idle clusters
take is measured and printed. The first round is a warm-up, not counted (the first run
on a new cluster starts Ray's worker processes and uploads the app). After each Ray run
the invocations' workers (``pid@host``) are matched with the nodes' logs, which name
their workers' pids: the table says how many tasks ran on each node.

State: SQLite in the home; ``--postgres [ADMIN_URL]`` puts it on PostgreSQL, a database
created for each run (a title this state has settled is answered by its earlier events)
and dropped after it. Store: ``file://`` in the home; ``--s3`` a moto server on loopback
(reset after each run). Every run must exit 0 with a published title: a failed run is
reported, with its error, and left out of the medians.

Columns (medians): ``wall s``, the command from start to exit, what a user waits for;
``inside s``, ``transcode()`` itself (without the interpreter's start and imports:
runtime start and executor connect, source upload, the pipeline, settling);
``tasks s``, from the first task's start to the publish (the pipeline's own time).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ladder import LADDER, by_hand
from object_writes import s3_url

from reelay.media.samples import make_clip
from runtime import DEFAULT_SERVER, scratch_database

BIN = Path(sys.executable).parent
# Waits until the cluster at argv[1] has argv[2] nodes alive; run as a process of its
# own (one Ray per process, and this one must not stay joined to the cluster).
NODES_UP = """
import sys, time, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
deadline = time.monotonic() + float(sys.argv[3])
while sum(n["Alive"] for n in ray.nodes()) < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit(f"{sum(n['Alive'] for n in ray.nodes())} of {sys.argv[2]} nodes up")
    time.sleep(0.2)
"""
# A Ray worker's log files end in its pid: python-core-worker-<id>_<pid>.log
WORKER_LOG = re.compile(r"python-core-worker-[0-9a-f]+_(\d+)\.log$")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    temp: Path

    def worker_pids(self) -> set[int]:
        """The pids of the Ray workers this node has started, from its logs."""
        logs = self.temp.glob("session_*/logs/python-core-worker-*.log")
        return {int(m.group(1)) for p in logs if (m := WORKER_LOG.search(p.name))}


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop each process and everything in its process group (each leads its own)."""
    for p in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in processes:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    time.sleep(1)
    for p in processes:  # what is left of a group (a worker that outlived its raylet) goes
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)


@contextlib.contextmanager
def ray_cluster(head_cpus: int, worker_cpus: list[int]) -> Iterator[tuple[str, list[Node]]]:
    """A Ray cluster of this run's own on this machine: a head with ``head_cpus`` CPUs
    and a worker node per entry of ``worker_cpus``. Yields its address and nodes."""
    temp = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))  # short: Ray's sockets live there
    port = free_port()
    address = f"127.0.0.1:{port}"
    nodes: list[Node] = []

    def start(name: str, cpus: int, *role: str) -> None:
        (temp / name).mkdir()
        ports = ["node-manager", "object-manager", "metrics-export", "runtime-env-agent"]
        ports += ["dashboard-agent-listen", "dashboard-agent-grpc"]
        command = [
            *(str(BIN / "ray"), "start", "--block", *role, f"--num-cpus={cpus}"),
            *("--disable-usage-stats", f"--temp-dir={temp / name}"),
            f"--object-store-memory={256 * 2**20}",
            *(f"--{p}-port={free_port()}" for p in ports),
        ]
        with (temp / f"{name}.out").open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        nodes.append(Node(name, process, temp / name))

    try:
        start("head", head_cpus, "--head", f"--port={port}", "--include-dashboard=false",
              f"--ray-client-server-port={free_port()}")  # fmt: skip
        deadline = time.monotonic() + 60
        while not listening(port):
            if time.monotonic() > deadline or nodes[0].process.poll() is not None:
                raise RuntimeError(f"no Ray head: {(temp / 'head.out').read_text()[-2000:]}")
            time.sleep(0.2)
        for i, cpus in enumerate(worker_cpus):
            start(f"node{i + 1}", cpus, f"--address={address}")
        up = subprocess.run(
            [sys.executable, "-c", NODES_UP, address, str(len(nodes)), "90"],
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            logs = "".join((temp / f"{n.name}.out").read_text()[-1000:] for n in nodes)
            raise RuntimeError(f"Ray nodes did not come up: {up.stderr[-2000:]}\n{logs}")
        yield address, nodes
    finally:
        stop([n.process for n in nodes])
        shutil.rmtree(temp, ignore_errors=True)


@dataclass
class Config:
    name: str
    executor: str
    ray: tuple[int, list[int]] | None = None  # head CPUs, worker nodes' CPUs
    address: str | None = None  # its cluster's, once up
    nodes: list[Node] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)  # the command, start to exit
    inside: list[float] = field(default_factory=list)  # transcode() itself (report's wall_s)
    tasks_s: list[float] = field(default_factory=list)  # first task's start to publish
    failures: list[str] = field(default_factory=list)
    tasks: Counter[str] = field(default_factory=Counter)  # tasks per node, timed runs


def group_cpu_s(pgids: set[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of these groups."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) in pgids:  # pgrp; utime and stime follow at 11 and 12
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@dataclass
class Bench:
    src: Path
    root: Path
    ladder: str
    args: argparse.Namespace
    store: str | None  # None: file:// in each home
    runs: int = 0

    @contextlib.contextmanager
    def state(self) -> Iterator[str | None]:
        """The state URL of one run: None (SQLite in its home) or a fresh database."""
        if not self.args.postgres:
            yield None
            return
        with scratch_database(self.args.postgres, "cluster") as url:
            yield url

    def transcode(self, cfg: Config, timed: bool) -> None:
        """One ``reelay transcode`` run of ``cfg``, timed from start to exit, checked."""
        self.runs += 1
        home = self.root / f"home-{self.runs}"
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env |= {"RAY_ADDRESS": cfg.address} if cfg.address else {}
        env |= {"REELAY_STORE": self.store} if self.store else {}
        a = self.args
        with self.state() as state:
            command = [
                *(str(BIN / "reelay"), "transcode", str(self.src), "--json"),
                *("--ladder", self.ladder, "--chunk-seconds", str(a.chunk_seconds)),
                *("--qc", a.qc, "--executor", cfg.executor),
                *("--workers", str(a.workers), "--home", str(home)),
                *(("--state", state) if state else ()),
            ]
            started = time.perf_counter()
            with subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a timed-out run goes with its workers
            ) as p:
                try:
                    out, err = p.communicate(timeout=a.timeout)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    out, err = p.communicate()
                    err += f"\n(killed after {a.timeout:g} s)"
            wall = time.perf_counter() - started
            tasks = self.tasks_per_node(home, state, env, cfg.nodes) if cfg.nodes else Counter()
        if self.store:
            self.reset_store()
        shutil.rmtree(home, ignore_errors=True)
        try:
            report = json.loads(out)
        except json.JSONDecodeError:
            report = {}
        label = "run" if timed else "warm-up"
        if p.returncode != 0 or report.get("status") != "published":
            error = report.get("error") or err.strip()[-1500:] or f"exit status {p.returncode}"
            cfg.failures.append(f"{label}: exit {p.returncode}, {report.get('status')}: {error}")
            print(f"  {cfg.name}: {label} FAILED after {wall:.2f} s: {cfg.failures[-1]}")
            return
        spread = ", ".join(f"{n} {c}" for n, c in sorted(tasks.items()))
        print(f"  {cfg.name}: {label} {wall:.2f} s" + (f" (tasks: {spread})" if spread else ""))
        if timed:
            cfg.walls.append(wall)
            cfg.inside.append(report["timings"]["wall_s"])
            cfg.tasks_s.append(report["timings"]["total"])
            cfg.tasks.update(tasks)

    @staticmethod
    def tasks_per_node(
        home: Path, state: str | None, env: dict[str, str], nodes: list[Node]
    ) -> Counter[str]:
        """How many of the run's invocations each node's workers ran."""
        listing = subprocess.run(
            [str(BIN / "reelay"), "invocations", "--json", "--limit", "100000"]
            + ["--home", str(home)]
            + (["--state", state] if state else []),
            capture_output=True,
            text=True,
            env=env,
        )
        if listing.returncode != 0:
            return Counter({"(unlisted)": 1})
        where = {pid: n.name for n in nodes for pid in n.worker_pids()}
        return Counter(
            where.get(int(inv["worker"].partition("@")[0]), "?")
            for inv in json.loads(listing.stdout)
            if inv.get("worker")
        )

    def reset_store(self) -> None:
        """Empty the moto server (it keeps every object in memory)."""
        assert self.store is not None
        endpoint = self.store.partition("endpoint=")[2]
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20, help="clip length")
    parser.add_argument("--size", default="1280x720", help="clip size")
    parser.add_argument(
        "--ladder", default="bench", help="bench (ladder.py's), a built-in ladder or a file"
    )
    parser.add_argument("--chunk-seconds", type=float, default=5)
    parser.add_argument("--qc", default="off")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per run")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_SERVER,
        default="",
        metavar="ADMIN_URL",
        help=f"state on PostgreSQL (default server: {DEFAULT_SERVER})",
    )
    parser.add_argument("--s3", action="store_true", help="store on a moto S3 server")
    args = parser.parse_args()
    if args.workers < 2:
        parser.error("--workers must be at least 2: the two-node cluster gets half each")
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be at least 1 and --warmup at least 0")
    # Ray 2.60 turns token auth on in a head started where ~/.ray/auth_token exists (any
    # local ray.init() writes one), and the nodes and drivers that join it do not follow
    # unless told: the mode is set for every Ray process of this run (theirs inherit it).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    root = Path(tempfile.mkdtemp(prefix="reelay-bench-"))
    try:
        src = make_clip(root / "clip.mp4", seconds=args.seconds, size=args.size)
        ladder = args.ladder
        if ladder == "bench":
            ladder = str(root / "bench.yaml")
            Path(ladder).write_text(LADDER)
        half = args.workers // 2
        configs = [
            Config(f"local executor, {args.workers} workers", "local"),
            Config(f"Ray, 1 node of {args.workers} CPUs", "ray:auto", (args.workers, [])),
            Config(
                f"Ray, 2 nodes of {half}+{args.workers - half} CPUs (head: 0)",
                "ray:auto",
                (0, [half, args.workers - half]),
            ),
        ]
        rate = src.stat().st_size * 8 / args.seconds / 1e6
        state = "PostgreSQL" if args.postgres else "SQLite"
        print(
            f"clip: {args.seconds:g} s {args.size} H.264 at {rate:.1f} Mbit/s; ladder "
            f"{args.ladder}, {args.chunk_seconds:g} s chunks, QC {args.qc}; "
            f"state {state}, store {'s3 (moto)' if args.s3 else 'file'}; "
            f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
        )
        hand: list[float] = []
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(s3_url()) if args.s3 else None
            if args.s3 and store is None:
                parser.error("--s3 needs moto (a dev dependency)")
            for cfg in configs:
                if cfg.ray is None:
                    continue
                try:
                    cfg.address, cfg.nodes = stack.enter_context(ray_cluster(*cfg.ray))
                except RuntimeError as exc:
                    cfg.failures.append(f"cluster: {exc}")
                    print(f"{cfg.name}: {exc}")
            pgids = {n.process.pid for cfg in configs for n in cfg.nodes}
            before = group_cpu_s(pgids)
            time.sleep(10)
            idle = (group_cpu_s(pgids) - before) / 10
            print(f"the Ray clusters, idle, use {idle * 100:.0f}% of a core")
            bench = Bench(src, root, ladder, args, store)
            # Rounds of every configuration in turn: a change in the machine's load
            # (other work runs on it) falls on all of them alike.
            for r in range(args.warmup + args.repeat):
                timed = r >= args.warmup
                print(f"round {r + 1}" + ("" if timed else " (warm-up, not counted)"))
                if args.ladder == "bench":
                    wall = by_hand(src, root / f"by-hand-{r}")
                    shutil.rmtree(root / f"by-hand-{r}")
                    print(f"  one ffmpeg command: {wall:.2f} s")
                    hand += [wall] if timed else []
                for cfg in configs:
                    if cfg.ray is None or cfg.nodes:
                        bench.transcode(cfg, timed)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        table(configs, hand)
        if any(c.failures for c in configs):
            sys.exit(1)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def table(configs: list[Config], hand: list[float]) -> None:
    local = statistics.median(configs[0].walls) if configs[0].walls else float("nan")
    print(
        f"\n{'configuration':40} {'ok':>5} {'wall s':>7} {'vs local':>8} "
        f"{'inside s':>8} {'tasks s':>7}  tasks per node"
    )
    if hand:
        h = statistics.median(hand)
        print(f"{'one ffmpeg command (by hand)':40} {len(hand):>2}/{len(hand):<2} {h:7.2f} "
              f"{h / local:8.2f}")  # fmt: skip
    results: list[dict[str, Any]] = []
    for c in configs:
        runs = len(c.walls) + len(c.failures)
        ok = f"{len(c.walls):>2}/{runs:<2}"
        if not c.walls:
            print(f"{c.name:40} {ok:>5} {'failed':>7}")
            continue
        wall, inside, tasks = (statistics.median(x) for x in (c.walls, c.inside, c.tasks_s))
        spread = ", ".join(f"{n} {k}" for n, k in sorted(c.tasks.items()))
        print(
            f"{c.name:40} {ok:>5} {wall:7.2f} {wall / local:8.2f} {inside:8.2f} {tasks:7.2f}  "
            + spread
        )
        results.append({"name": c.name, "walls": c.walls, "inside": c.inside, "tasks": c.tasks_s})
    for c in configs:
        for failure in c.failures:
            print(f"FAILED {c.name}: {failure}")
    print(json.dumps({"by_hand": hand, "configs": results}))


if __name__ == "__main__":
    main()
