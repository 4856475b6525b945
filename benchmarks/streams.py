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

Then the end-to-end latency: one flow-log record at a time, put through the Kinesis API,
until a ``reelay query`` of the per-minute flow aggregate counts it (p50, p99), on both
backends.

    .venv/bin/python benchmarks/streams.py [--records 20000] [--latency-n 200]
        [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reelay.client import Client
from reelay.config import Settings
from reelay.streams import PutRequest

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


@contextlib.contextmanager
def reelay_kinesis(home: Path, streams_url: str) -> Iterator[tuple[Any, Client]]:
    """boto3's kinesis client on a reelay server over ``home`` (a key of its own)."""
    raise NotImplementedError  # filled in with the Kinesis API (see kinesis_endpoint)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20000)
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
        embedded = Client(Settings.load(root / f"embedded-{size}"))
        on_redis = Client(Settings.load(root / f"redis-{size}", streams_url=redis_url))
        raw, clean = redis_putter(args.redis, f"raw-{size}")
        try:
            runs: list[tuple[str, Putter, list[tuple[str, bytes]]]] = [
                ("reelay client -> embedded log", reelay_putter(embedded, f"s{size}"), records),
                ("reelay client -> Redis", reelay_putter(on_redis, f"s{size}"), records),
                ("redis-py pipelined XADD -> Redis", raw, records),
            ]
            for name, put, recs in runs:
                rate, mb = measure(put, recs)
                rows.append((name, size, rate, mb))
        finally:
            clean()
            for c in (embedded, on_redis):
                with contextlib.suppress(Exception):
                    c.streams.delete_stream(f"s{size}")
                c.close()
        with moto_kinesis() as kinesis:
            put = boto3_putter(kinesis, f"m{size}")
            few = records[: max(BATCH, args.records // 10)]  # moto is slow: a tenth
            rate, mb = measure(put, few)
            rows.append(("boto3 -> moto's Kinesis server", size, rate, mb))
    print(f"{'path':40} {'record':>7} {'records/s':>11} {'MB/s':>7}")
    for name, size, rate, mb in rows:
        print(f"{name:40} {size:>6}B {rate:11,.0f} {mb:7.1f}")
    for size in (100, 1024):
        by = {name: rate for name, s, rate, _ in rows if s == size}
        ratio = by["reelay client -> embedded log"] / by["redis-py pipelined XADD -> Redis"]
        print(f"{size} B: reelay client -> embedded / redis-py XADD: {ratio:.2f}x")
    print(f"work in {root}")
    del statistics


if __name__ == "__main__":
    main()
