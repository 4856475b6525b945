#!/usr/bin/env python3
"""No-op invocation throughput and event-to-handler-start latency, side by side.

Runs in one process, on this machine:

- reelay's durable path: events appended to the SQLite log (committed before the
  producer hears "accepted"), routed by an EventBridge pattern, claimed, run by a
  no-op handler on the local process pool, outcomes recorded;
- plain Ray tasks (``ray.remote`` no-op functions, a local Ray with as many CPUs);
- a plain ``concurrent.futures.ProcessPoolExecutor``.

Throughput: N no-ops submitted as fast as the producer can, until the last finishes.
Latency: one event (or task) at a time, from the moment the producer's call returns
to the moment the handler starts, p50 and p99.

    .venv/bin/python benchmarks/runtime.py [--n 5000] [--latency-n 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
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


def bench_reelay(n: int, latency_n: int, workers: int, executor: str) -> dict[str, Any]:
    from reelay.config import Settings
    from reelay.runtime import Runtime, load_app

    with tempfile.TemporaryDirectory(prefix="reelay-bench-") as tmp:
        root = Path(tmp)
        (root / "app").mkdir()
        (root / "app" / "reelay.yaml").write_text(APP_YAML)
        (root / "app" / "noop_handler.py").write_text(HANDLER)
        app = load_app(root / "app" / "reelay.yaml")
        settings = Settings.load(root / "home")
        with Runtime(app, settings, executor=executor, max_workers=workers) as rt:
            rt.start()
            client, state = rt.client, rt.client.state
            # Warm the workers (imports, cold starts) before measuring.
            client.put_events([{"Source": "bench", "DetailType": "warm", "Detail": "{}"}] * 20)
            assert rt.wait_idle(120)
            base = state.counts()["succeeded"]
            entry = {"Source": "bench", "DetailType": "noop", "Detail": "{}"}
            t0 = time.time()
            for _ in range(0, n, 10):  # PutEvents takes at most 10 entries per call
                client.put_events([entry] * 10)
            while state.counts()["succeeded"] < base + n:
                time.sleep(0.05)  # coarse: the end time comes from the log, not from here
            seconds = _last_finish(state) - t0
            # Latency: one event at a time, from its commit to its handler's start.
            first = state.last_seq()
            for _ in range(latency_n):
                client.put_events([{**entry, "DetailType": "latency"}])
                time.sleep(0.01)
            assert rt.wait_idle(60)
            rows = (
                state._db()
                .execute(
                    "SELECT a.started - e.time FROM events e "
                    "JOIN invocations i ON i.event_seq = e.seq "
                    "JOIN attempts a ON a.invocation_id = i.id WHERE e.seq > ?",
                    (first,),
                )
                .fetchall()
            )
            latencies = [r[0] * 1000 for r in rows]
    return summary(f"reelay durable ({executor}, {workers} workers)", n, seconds, latencies)


def _last_finish(state: Any) -> float:
    return float(state._db().execute("SELECT MAX(finished) FROM invocations").fetchone()[0])


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
    args = parser.parse_args()
    rows = [bench_reelay(args.n, args.latency_n, args.workers, "local")]
    if args.with_ray_executor:
        rows.append(bench_reelay(args.n, args.latency_n, args.workers, "ray:local"))
    rows.append(bench_ray(args.n, args.latency_n, args.workers))
    rows.append(bench_pool(args.n, args.latency_n, args.workers))
    ray_rate = next(r["per_second"] for r in rows if r["name"].startswith("plain Ray"))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'':48} {'per s':>9} {'vs Ray':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for r in rows:
        print(
            f"{r['name']:48} {r['per_second']:9.0f} {r['per_second'] / ray_rate:6.2f}x "
            f"{r['latency_p50_ms']:8.2f} {r['latency_p99_ms']:8.2f}"
        )
        r["vs_ray"] = round(r["per_second"] / ray_rate, 2)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "runtime.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
