#!/usr/bin/env python3
"""No-op invocation throughput and event-to-handler-start latency, side by side.

Runs in one process, on this machine:

- reelay's durable path: events appended to the SQLite log (committed before the
  producer hears "accepted"), routed by an EventBridge pattern, claimed, run by a
  no-op handler on the local process pool, outcomes recorded;
- with ``--postgres``: the same path on a PostgreSQL state, and procrastinate (a
  PostgreSQL task queue for Python) on the same server: a no-op task deferred in
  batches of 10, run by as many ``procrastinate worker`` processes as reelay has
  workers (one job at a time each, as each of reelay's worker processes runs one
  handler at a time; ``--procrastinate-concurrency`` raises that). Each gets a
  database of its own, created for the run and dropped after it;
- plain Ray tasks (``ray.remote`` no-op functions, a local Ray with as many CPUs);
- a plain ``concurrent.futures.ProcessPoolExecutor``.

Throughput: N no-ops submitted as fast as the producer can, until the last finishes.
Latency: one event (or task) at a time, from the moment the producer's call returns
to the moment the handler starts, p50 and p99 (reelay's from the event's time, taken
before its commit, so it includes the commit).

    .venv/bin/python benchmarks/runtime.py [--n 5000] [--latency-n 300] [--workers 2]
        [--postgres [postgresql://postgres@127.0.0.1:5432/postgres]]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
APP_YAML = """
service: bench
functions:
  noop:
    handler: noop_handler.handler
    events:
      - eventBridge: {pattern: {source: [bench]}}
"""
HANDLER = "import time\n\ndef handler(event, context):\n    return None\n"


def noop() -> None:
    return None


def started() -> float:
    return time.time()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(name: str, count: int, seconds: float, latencies_ms: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "n": count,
        "seconds": round(seconds, 3),
        "per_second": round(count / seconds, 1),
        "latency_p50_ms": round(statistics.median(latencies_ms), 2),
        "latency_p99_ms": round(percentile(latencies_ms, 99), 2),
    }


def bench_reelay(
    n: int, latency_n: int, workers: int, executor: str, state_url: str = ""
) -> dict[str, Any]:
    """``state_url``: '' is SQLite in a temporary home; else a PostgreSQL state."""
    from reelay.config import Settings
    from reelay.runtime import Runtime, load_app

    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        (root / "app").mkdir()
        (root / "app" / "reelay.yaml").write_text(APP_YAML)
        (root / "app" / "noop_handler.py").write_text(HANDLER)
        app = load_app(root / "app" / "reelay.yaml")
        settings = Settings.load(root / "home", state_url=state_url)
        with Runtime(app, settings, executor=executor, max_workers=workers) as rt:
            rt.start()
            client, state = rt.client, rt.client.state
            # Warm the workers (imports, cold starts) before measuring.
            client.put_events([{"Source": "bench", "DetailType": "warm", "Detail": "{}"}] * 20)
            assert rt.wait_idle(120)
            base = state.counts()["succeeded"]
            entry = {"Source": "bench", "DetailType": "noop", "Detail": "{}"}
            first = state.last_seq()
            t0 = time.time()
            for _ in range(0, n, 10):  # PutEvents takes at most 10 entries per call
                client.put_events([entry] * 10)
            while state.counts()["succeeded"] < base + n:
                time.sleep(0.05)  # coarse: the end time comes from the log, not from here
            done = state.invocations_of(first + 1, state.last_seq(), [])
            seconds = max(inv.finished or 0.0 for inv, _ in done) - t0
            # Latency: one event at a time, from its commit to its handler's start.
            first = state.last_seq()
            for _ in range(latency_n):
                client.put_events([{**entry, "DetailType": "latency"}])
                time.sleep(0.01)
            assert rt.wait_idle(60)
            latencies = [
                ((inv.started or 0.0) - event.time) * 1000
                for inv, event in state.invocations_of(first + 1, state.last_seq(), [])
            ]
    where = "PostgreSQL" if state_url else "SQLite"
    return summary(
        f"reelay durable ({where}, {executor}, {workers} workers)", n, seconds, latencies
    )


@contextlib.contextmanager
def scratch_database(server: str, purpose: str) -> Iterator[str]:
    """A database of this run's own on ``server`` (its URL), dropped after it: the
    benchmark never reads nor writes an existing database's data."""
    import psycopg
    from psycopg import sql

    name = f"bench_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server)._replace(path="/" + name))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def bench_procrastinate(
    n: int, latency_n: int, workers: int, concurrency: int, url: str
) -> dict[str, Any]:
    """procrastinate on database ``url``: ``workers`` worker processes, as a user runs them."""
    import procrastinate

    sys.path.insert(0, str(HERE))
    from _procrastinate_app import URL_VARIABLE, app, noop, started

    env = os.environ | {URL_VARIABLE: url, "PYTHONPATH": str(HERE)}
    command = [sys.executable, "-m", "procrastinate", "--app", "_procrastinate_app.app"]
    with (
        app.replace_connector(procrastinate.PsycopgConnector(conninfo=url)),
        app.open(),
        tempfile.TemporaryFile("w+") as log,
        contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as sock,
    ):
        app.schema_manager.apply_schema()
        procs = [
            subprocess.Popen(
                [*command, "worker", "--concurrency", str(concurrency)],
                env=env,
                cwd=HERE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for _ in range(workers)
        ]
        db = app.connector.get_sync_connector()

        def scalar(query: str) -> Any:
            return next(iter(db.execute_query_one(query).values()))

        try:
            deadline = time.time() + 60
            while scalar("SELECT count(*) AS c FROM procrastinate_workers") < workers:
                if time.time() > deadline or any(p.poll() is not None for p in procs):
                    log.seek(0)
                    raise RuntimeError(f"procrastinate workers did not start:\n{log.read()}")
                time.sleep(0.05)
            succeeded = "SELECT count(*) AS c FROM procrastinate_jobs WHERE status = 'succeeded'"
            # Warm the workers (imports, first jobs) before measuring, as reelay's.
            noop.batch_defer(*[{}] * 20)
            while scalar(succeeded) < 20:
                time.sleep(0.05)
            t0 = time.time()
            for _ in range(0, n, 10):  # batches of 10, as reelay's PutEvents
                noop.batch_defer(*[{}] * 10)
            while scalar(succeeded) < 20 + n:
                time.sleep(0.05)  # coarse: the end time comes from the jobs' events
            last = scalar(
                "SELECT extract(epoch FROM max(at)) AS t FROM procrastinate_events "
                "WHERE type = 'succeeded'"
            )
            seconds = float(last) - t0
            # Latency: one task at a time, from defer returning to the task's start.
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(30)
            port = sock.getsockname()[1]
            latencies = []
            for _ in range(latency_n):
                started.defer(port=port)
                deferred = time.time()
                (began,) = struct.unpack("!d", sock.recv(8))
                latencies.append((began - deferred) * 1000)
                time.sleep(0.01)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
    name = f"procrastinate {procrastinate.__version__} ({workers} workers x {concurrency})"
    return summary(name, n, seconds, latencies)


def bench_ray(n: int, latency_n: int, workers: int) -> dict[str, Any]:
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote_noop = ray.remote(noop)
        remote_started = ray.remote(started)
        ray.get([remote_noop.remote() for _ in range(200)])  # warm the worker pool
        t0 = time.perf_counter()
        ray.get([remote_noop.remote() for _ in range(n)])
        seconds = time.perf_counter() - t0
        latencies = []
        for _ in range(latency_n):
            ref = remote_started.remote()
            submitted = time.time()
            latencies.append((ray.get(ref) - submitted) * 1000)
    finally:
        ray.shutdown()
    return summary(f"plain Ray tasks ({workers} CPUs)", n, seconds, latencies)


def bench_pool(n: int, latency_n: int, workers: int) -> dict[str, Any]:
    with ProcessPoolExecutor(workers) as pool:
        wait([pool.submit(noop) for _ in range(200)])
        t0 = time.perf_counter()
        wait([pool.submit(noop) for _ in range(n)])
        seconds = time.perf_counter() - t0
        latencies = []
        for _ in range(latency_n):
            future = pool.submit(started)
            submitted = time.time()
            latencies.append((future.result() - submitted) * 1000)
    return summary(f"plain ProcessPoolExecutor ({workers} workers)", n, seconds, latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--with-ray-executor",
        action="store_true",
        help="Also run reelay's durable path on the Ray executor.",
    )
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_SERVER,
        metavar="URL",
        help="Also run reelay on a PostgreSQL state and procrastinate, on this server "
        f"(default {DEFAULT_SERVER}); each in a database created for the run and "
        "dropped after it.",
    )
    parser.add_argument(
        "--procrastinate-concurrency",
        type=int,
        default=1,
        metavar="N",
        help="Jobs each procrastinate worker process runs at once (default 1).",
    )
    args = parser.parse_args()
    rows = [bench_reelay(args.n, args.latency_n, args.workers, "local")]
    if args.with_ray_executor:
        rows.append(bench_reelay(args.n, args.latency_n, args.workers, "ray:local"))
    if args.postgres:
        with scratch_database(args.postgres, "reelay") as url:
            rows.append(bench_reelay(args.n, args.latency_n, args.workers, "local", url))
        with scratch_database(args.postgres, "procrastinate") as url:
            rows.append(
                bench_procrastinate(
                    args.n, args.latency_n, args.workers, args.procrastinate_concurrency, url
                )
            )
    rows.append(bench_ray(args.n, args.latency_n, args.workers))
    rows.append(bench_pool(args.n, args.latency_n, args.workers))
    ray_rate = next(r["per_second"] for r in rows if r["name"].startswith("plain Ray"))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'':56} {'per s':>9} {'vs Ray':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['name']:56} {r['per_second']:9.0f} {r['per_second'] / ray_rate:6.2f}x "
            f"{r['latency_p50_ms']:8.2f} {r['latency_p99_ms']:8.2f}"
        )
        r["vs_ray"] = round(r["per_second"] / ray_rate, 2)
    sqlite = rows[0]
    print(f"reelay on SQLite vs plain Ray tasks: {sqlite['vs_ray']:.2f}x throughput")
    if args.postgres:
        reelay_pg, other = (
            r for r in rows if "PostgreSQL" in r["name"] or "procrastinate" in r["name"]
        )
        ratio = reelay_pg["per_second"] / other["per_second"]
        reelay_pg["vs_procrastinate"] = round(ratio, 2)
        print(
            f"reelay on PostgreSQL vs procrastinate: {ratio:.2f}x throughput; "
            f"p99 {reelay_pg['latency_p99_ms']:.2f} ms vs {other['latency_p99_ms']:.2f} ms"
        )
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "runtime.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
