#!/usr/bin/env python3
"""The cost of making an object and its event one outcome: small `put_object`s per second.

Side by side, in one process and one run, on each object store:

- ``two writes``: what `Client.put_object` did before intents: store the object, then
  append its S3 event (a crash between the two left an object no function would see);
- ``one outcome``: `Client.put_object` as it is: look at the object (head), record an
  intent in the State, store the object, append the event and drop the intent in one
  transaction.

Rounds of the two alternate, so that drift (caches, other load) falls on both alike.
``file://`` runs on a temporary directory; ``s3://`` on a moto S3 server on loopback
(a dev dependency; skipped if absent), which measures request counts more than S3.

    .venv/bin/python benchmarks/object_writes.py [--n 2000] [--size 1024] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reelay.client import Client
from reelay.config import Settings


def two_writes(client: Client, key: str, data: bytes) -> None:
    """The path before intents: the object, then its event, in two separate writes."""
    info = client.store.put("bench", key, data)
    event = client._s3_event("ObjectCreated:Put", info, "bench", key, root=None)
    client.state.append([event])


def one_outcome(client: Client, key: str, data: bytes) -> None:
    client.put_object("bench", key, data)


@contextmanager
def s3_url() -> Iterator[str | None]:
    """An s3:// store URL on a loopback moto server, or None without moto."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        yield None
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"s3://bench?endpoint=http://{host}:{port}"
    finally:
        server.stop()


def measure(store_url: str, n: int, size: int, rounds: int) -> dict[str, Any]:
    paths: dict[str, Callable[[Client, str, bytes], None]] = {
        "two writes": two_writes,
        "one outcome": one_outcome,
    }
    data = os.urandom(size)
    seconds = dict.fromkeys(paths, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        url = store_url.replace("TMP", tmp)
        settings = Settings.load(Path(tmp) / "home", store_url=url)
        with Client(settings) as client:
            for name, put in paths.items():  # warm up: connections, buckets, tables
                put(client, f"warm/{name}", data)
            per_round = n // rounds
            for r in range(rounds):
                for name, put in paths.items():
                    started = time.perf_counter()
                    for i in range(per_round):
                        put(client, f"{name}/{r}/{i}", data)  # a new key each time
                    seconds[name] += time.perf_counter() - started
    done = per_round * rounds
    rates = {name: done / s for name, s in seconds.items()}
    return {
        "store": store_url.split("://")[0],
        "n": done,
        "size": size,
        "per_s": {name: round(rate) for name, rate in rates.items()},
        "ratio": round(rates["one outcome"] / rates["two writes"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="puts per path and store")
    parser.add_argument("--s3-n", type=int, default=400, help="puts per path on s3://")
    parser.add_argument("--size", type=int, default=1024, help="object size in bytes")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    results = [measure("file://TMP/objects", args.n, args.size, args.rounds)]
    with s3_url() as url:
        if url is not None:
            results.append(measure(url, args.s3_n, args.size, args.rounds))
    print(f"{'store':6} {'n':>6} {'two writes/s':>13} {'one outcome/s':>14} {'ratio':>6}")
    for r in results:
        two, one = r["per_s"]["two writes"], r["per_s"]["one outcome"]
        print(f"{r['store']:6} {r['n']:>6} {two:>13,} {one:>14,} {r['ratio']:>6}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
