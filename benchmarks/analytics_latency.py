"""Put to query: how long a record put on a stream takes to show in an analytics query.

One process run: a `Runtime` serves one stream-triggered function
(`reelay.analytics.handler.aggregate`) folding the stream ``probe`` into an aggregate
(count per record id, per minute of arrival); the benchmark puts one record at a time
and asks ``SELECT n FROM probe WHERE id = ...`` through DuckDB (`run_query`, what
``reelay query`` and the API run) every few milliseconds until it answers. Latency is
from the put's return to the first query that sees the record. The streams are the
embedded log, then Redis (``--redis URL``, skipped when it does not answer).

    python benchmarks/analytics_latency.py [--records 200] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from reelay.analytics.query import run_query
from reelay.analytics.store import Results
from reelay.config import Settings
from reelay.runtime import Runtime, load_app
from reelay.streams import PutRequest

APP = """\
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


def measure(settings: Settings, app_dir: Path, records: int, gap_s: float) -> list[float]:
    latencies = []
    with Runtime(load_app(app_dir / "reelay.yaml"), settings, max_workers=2) as runtime:
        streams = runtime.client.streams
        streams.create_stream("probe", 2)
        runtime.start()
        results = Results(runtime.client.state)
        for i in range(records + 5):  # the first five warm the workers up: not counted
            key = f"p{i}-{uuid.uuid4().hex[:6]}"
            streams.put("probe", [PutRequest(key, f'{{"id": "{key}"}}'.encode())])
            put = time.perf_counter()
            sql = f"SELECT n FROM probe WHERE id = '{key}'"
            while True:
                if "probe" in results.aggregates() and run_query(results, sql).rows:
                    break
                if time.perf_counter() - put > 30:
                    raise TimeoutError(f"record {key} not visible after 30 s")
                time.sleep(0.002)
            if i >= 5:
                latencies.append(time.perf_counter() - put)
            time.sleep(gap_s)
    return latencies


def report(name: str, latencies: list[float]) -> None:
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    print(
        f"{name:10s} put to query, {len(ordered)} records: p50 {p(0.5):6.0f} ms  "
        f"p90 {p(0.9):6.0f} ms  p99 {p(0.99):6.0f} ms  max {ordered[-1] * 1000:6.0f} ms  "
        f"mean {statistics.fmean(ordered) * 1000:6.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between records")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app_dir = Path(tmp) / "app"
        app_dir.mkdir()
        (app_dir / "reelay.yaml").write_text(APP)
        home = Path(tmp) / "embedded"
        report("embedded", measure(Settings.load(home), app_dir, args.records, args.gap))
        try:
            import redis

            server = redis.Redis.from_url(args.redis, socket_connect_timeout=2)
            server.ping()
        except Exception as exc:  # no Redis here: say so, and stop
            print(f"redis      skipped: {args.redis} does not answer ({exc})")
            return
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        url = f"{args.redis}{'&' if '?' in args.redis else '?'}prefix={prefix}"
        try:
            settings = Settings.load(Path(tmp) / "redis", streams_url=url)
            report("redis", measure(settings, app_dir, args.records, args.gap))
        finally:
            keys = list(server.scan_iter(match=f"{prefix}:*"))
            if keys:
                server.delete(*keys)
            server.close()


if __name__ == "__main__":
    main()
