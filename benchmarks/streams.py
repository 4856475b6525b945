#!/usr/bin/env python3
"""Streams: put throughput and put-to-query latency, side by side with what users run.

In one process and one run, on this machine, putting records of 100 bytes and of 1 KiB
in batches of 500 (PutRecords' most):

- reelay's Python client (`Client.streams.put`) into the embedded log and into Redis;
- raw Redis Streams: redis-py, one pipelined ``XADD`` per record, 500 per round trip,
  into the same local Redis (what a user of Redis would write);
- boto3's kinesis client (``put_records``) against reelay's Kinesis API (`reelay up`'s
  server, SigV4-signed with a key reelay issued), on the embedded log and on Redis;
- boto3's kinesis client against moto's Kinesis server (what LocalStack users run).

Then the end-to-end latency, on both backends: a `reelay up` serves one stream-triggered
function (`reelay.analytics.handler.aggregate`) folding the stream ``probe`` into an
aggregate (a count per record id, per minute of arrival); one record at a time is put
with boto3 through the Kinesis API, and the analytics query route (``POST
/api/analytics/query``, the SQL ``reelay query`` runs) is asked every 2 ms until it
counts the record. Latency is from the put's return to that answer (p50, p99).

    .venv/bin/python benchmarks/streams.py [--records 20000] [--latency-n 200]
        [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reelay.client import Client
from reelay.config import Settings
from reelay.streams import PutRequest
from reelay.web import ensure_token

BATCH = 500
Putter = Callable[[list[tuple[str, bytes]]], None]


def payloads(count: int, size: int) -> list[tuple[str, bytes]]:
    body = os.urandom(size // 2).hex().encode()[:size]
    return [(f"key-{i % 64}", body) for i in range(count)]


def measure(put: Putter, records: list[tuple[str, bytes]]) -> tuple[float, float]:
    """Records/s and MB/s of putting ``records`` in batches of `BATCH`."""
    started = time.perf_counter()
    for i in range(0, len(records), BATCH):
        put(records[i : i + BATCH])
    took = time.perf_counter() - started
    size = sum(len(k) + len(d) for k, d in records)
    return len(records) / took, size / took / 1e6


# -- the putters ----------------------------------------------------------------------------


def reelay_putter(client: Client, stream: str) -> Putter:
    client.streams.create_stream(stream, 4)

    def put(batch: list[tuple[str, bytes]]) -> None:
        client.streams.put(stream, [PutRequest(k, d) for k, d in batch])

    return put


def redis_putter(url: str, stream: str) -> tuple[Putter, Callable[[], None]]:
    import redis

    r = redis.Redis.from_url(url.split("?")[0])
    key = f"bench-{uuid.uuid4().hex[:8]}:{stream}"

    def put(batch: list[tuple[str, bytes]]) -> None:
        pipe = r.pipeline(transaction=False)
        for k, d in batch:
            pipe.xadd(key, {"k": k, "d": d})
        pipe.execute()

    def clean() -> None:
        r.delete(key)
        r.close()

    return put, clean


def boto3_putter(kinesis: Any, stream: str) -> Putter:
    kinesis.create_stream(StreamName=stream, ShardCount=4)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})

    def put(batch: list[tuple[str, bytes]]) -> None:
        out = kinesis.put_records(
            StreamName=stream, Records=[{"PartitionKey": k, "Data": d} for k, d in batch]
        )
        assert out["FailedRecordCount"] == 0, out

    return put


@contextlib.contextmanager
def moto_kinesis() -> Iterator[Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client(
            "kinesis",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        server.stop()


NOOP_APP = "functions:\n  noop:\n    handler: noop.handler\n"
PROBE_APP = """\
service: probe
functions:
  probe:
    handler: reelay.analytics.handler.aggregate
    environment:
      REELAY_ANALYTICS: |
        aggregates:
          probe:
            stream: probe
            format: json
            time: arrival
            window: 1m
            groupBy: [id]
            metrics: {n: count}
    events:
      - stream: {stream: probe, batchSize: 100, startingPosition: TRIM_HORIZON}
"""


def app_file(root: Path, name: str, text: str) -> Path:
    app = root / name / "reelay.yaml"
    app.parent.mkdir(exist_ok=True)
    app.write_text(text)
    (app.parent / "noop.py").write_text("def handler(event, context):\n    pass\n")
    return app


@dataclass
class Up:
    kinesis: Any  # boto3's client
    url: str
    token: str  # the API's


@contextlib.contextmanager
def reelay_up(root: Path, name: str, streams_url: str, app: Path | None = None) -> Iterator[Up]:
    """A `reelay up` of its own (a home under ``root``), as a user runs it, and boto3's
    kinesis client on it with a key made by `reelay keys create`; stopped with Ctrl-C."""
    import boto3

    home = root / name
    app = app or app_file(root, "noop", NOOP_APP)
    env = os.environ | {"REELAY_STREAMS": streams_url}
    cli = [sys.executable, "-m", "reelay.cli"]
    key = json.loads(
        subprocess.check_output([*cli, "keys", "create", "--json", "--home", str(home)], env=env)
    )
    proc = subprocess.Popen(
        [*cli, "up", "--app", str(app), "--home", str(home), "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if line.startswith("Kinesis API: "):
                url = line.split()[2]
                break
        assert url, "reelay up did not start"
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep it flowing
        kinesis = boto3.client(
            "kinesis",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        yield Up(kinesis, url, ensure_token(home)[0])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def put_to_query(up: Up, records: int) -> list[float]:
    """Seconds from each record's put (boto3, the Kinesis API) to the first answer of the
    query route that counts it."""
    import httpx

    kinesis = up.kinesis
    kinesis.create_stream(StreamName="probe", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="probe", WaiterConfig={"Delay": 0.2})
    latencies = []
    with httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {up.token}"}) as http:
        for i in range(records + 5):  # the first five warm the workers up: not counted
            key = f"p{i}-{uuid.uuid4().hex[:6]}"
            kinesis.put_record(StreamName="probe", PartitionKey=key, Data=f'{{"id": "{key}"}}')
            put = time.perf_counter()
            sql = {"sql": f"SELECT n FROM probe WHERE id = '{key}'"}
            while not (
                (answer := http.post("/api/analytics/query", json=sql)).status_code == 200
                and answer.json()["rows"]
            ):
                if time.perf_counter() - put > 30:
                    raise TimeoutError(f"record {key} not counted after 30 s: {answer.text}")
                time.sleep(0.002)
            if i >= 5:
                latencies.append(time.perf_counter() - put)
            time.sleep(0.05)
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reelay-streams-bench-"))
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    redis_url = f"{args.redis}?prefix={prefix}"
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; batches of {BATCH}")
    rows: list[tuple[str, int, float, float]] = []
    for size in (100, 1024):
        records = payloads(args.records, size)
        with contextlib.ExitStack() as stack:
            embedded = stack.enter_context(Client(Settings.load(root / f"embedded-{size}")))
            on_redis = stack.enter_context(
                Client(Settings.load(root / f"redis-{size}", streams_url=redis_url))
            )
            raw, clean = redis_putter(args.redis, f"raw-{size}")
            stack.callback(clean)
            paths: list[tuple[str, Putter, list[tuple[str, bytes]]]] = [
                ("reelay client -> embedded log", reelay_putter(embedded, f"s{size}"), records),
                ("reelay client -> Redis", reelay_putter(on_redis, f"s{size}"), records),
                ("redis-py pipelined XADD -> Redis", raw, records),
            ]
            for name, url in (("embedded log", ""), ("Redis", redis_url)):
                up = stack.enter_context(reelay_up(root, f"up-{size}-{len(url)}", url))
                api = f"boto3 -> reelay's Kinesis API, {name}"
                paths.append((api, boto3_putter(up.kinesis, f"k{size}"), records))
            moto = boto3_putter(stack.enter_context(moto_kinesis()), f"m{size}")
            # moto is slow: a quarter of the records
            paths.append(("boto3 -> moto's Kinesis server", moto, records[: args.records // 4]))
            for _name, put, recs in paths:  # warm up: connections, first segments
                put(recs[:BATCH])
            # Rounds alternate the paths, so drift (caches, other load) falls on all alike.
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in paths}
            for _ in range(args.rounds):
                for name, put, recs in paths:
                    runs[name].append(measure(put, recs))
            for name, measured in runs.items():
                rate = statistics.median(r for r, _ in measured)
                mb = statistics.median(m for _, m in measured)
                rows.append((name, size, rate, mb))
        for c in (embedded, on_redis):  # the Redis keys (the homes are temporary)
            with contextlib.suppress(Exception), Client(c.settings) as again:
                again.streams.delete_stream(f"s{size}")
    print(f"{'path (median of the rounds)':46} {'record':>7} {'records/s':>11} {'MB/s':>7}")
    for name, size, rate, mb in rows:
        print(f"{name:46} {size:>6}B {rate:11,.0f} {mb:7.1f}")
    for size in (100, 1024):
        by = {name: rate for name, s, rate, _ in rows if s == size}
        moto = by["boto3 -> moto's Kinesis server"]
        api = {
            n: by[f"boto3 -> reelay's Kinesis API, {n}"] / moto for n in ("embedded log", "Redis")
        }
        raw = by["reelay client -> embedded log"] / by["redis-py pipelined XADD -> Redis"]
        print(
            f"{size} B: reelay client -> embedded / redis-py XADD: {raw:.2f}x; Kinesis API "
            f"/ moto: embedded {api['embedded log']:.1f}x, Redis {api['Redis']:.1f}x"
        )
    probe = app_file(root, "probe", PROBE_APP)
    for name, url in (("embedded log", ""), ("Redis", redis_url)):
        with reelay_up(root, f"latency-{len(url)}", url, probe) as up:
            took = put_to_query(up, args.latency_n)
            up.kinesis.delete_stream(StreamName="probe")
        print(
            f"put (boto3, Kinesis API) to query, {name}, {len(took)} records: "
            f"p50 {percentile(took, 50) * 1000:.0f} ms, p99 {percentile(took, 99) * 1000:.0f} ms,"
            f" max {max(took) * 1000:.0f} ms"
        )
    import redis

    server = redis.Redis.from_url(args.redis)  # every key of this run's prefix
    for key in list(server.scan_iter(match=f"{prefix}:*", count=1000)):
        server.delete(key)
    server.close()
    print(f"work in {root}")


if __name__ == "__main__":
    main()
