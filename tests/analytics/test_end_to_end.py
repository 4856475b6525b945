"""Netflix's example end to end through a real Runtime serving the built-in analytics
app: VPC flow logs put on a stream, enriched with the application owning each address,
aggregated per minute by source and destination application, and queried with SQL;
the numbers match a hand computation exactly. Once on the embedded streams, once on
Redis; reelay's own logs are aggregated too (the platform watching itself)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reelay.analytics.query import run_query
from reelay.analytics.store import Results
from reelay.config import Settings
from reelay.errors import QueryError
from reelay.runtime import Runtime, load_app
from reelay.streams import Position, Put, PutRequest

M = 1_699_999_980  # a minute (a multiple of 60, epoch seconds)


def flow(src: str, dst: str, packets: int, size: int, start: int, action: str = "ACCEPT") -> str:
    return (
        f"2 123456789010 eni-0a1b2c3d4e5f60718 {src} {dst} 49152 443 6 {packets} {size} "
        f"{start} {start + 10} {action} OK"
    )


# (partition key, line): the records that move the watermark, and the late one, share a
# key (one shard, in order); the others spread over both shards.
RECORDS = [
    ("eni-1", flow("10.0.0.10", "10.1.0.10", 10, 1000, M + 5)),  # edge-gateway -> playback
    ("eni-2", flow("10.0.0.11", "10.1.0.12", 5, 2500, M + 20)),
    ("eni-3", flow("10.0.0.11", "10.1.0.12", 1, 40, M + 30, "REJECT")),
    ("eni-4", flow("198.51.100.7", "10.10.0.5", 1, 60, M + 40, "REJECT")),  # internet -> datastore
    ("eni-5", f"2 123456789010 eni-5 - - - - - - - {M + 10} {M + 70} - NODATA"),
    ("eni-6", f"2 123456789010 eni-6 - - - - - - - {M + 10} {M + 70} - SKIPDATA"),
    ("eni-a", flow("10.3.0.9", "10.10.0.5", 12, 9000, M + 65)),  # recommendations -> datastore
    ("eni-a", flow("10.0.0.10", "10.1.0.10", 7, 777, M - 200)),  # late: its window closed
    ("eni-a", flow("10.1.0.3", "10.3.0.4", 3, 300, M + 50)),  # late, but within 30 s
]
# By hand: window start, source app, destination app, bytes, packets, flows, rejected.
EXPECTED = [
    ("2023-11-14T22:13:00", "edge-gateway", "playback", 3540, 16, 3, 1),
    ("2023-11-14T22:13:00", "internet", "datastore", 60, 1, 1, 1),
    ("2023-11-14T22:13:00", "playback", "recommendations", 300, 3, 1, 0),
    ("2023-11-14T22:14:00", "recommendations", "datastore", 9000, 12, 1, 0),
]
QUERY = (
    "SELECT window_start, src_app, dst_app, bytes, packets, flows, rejected FROM flows_by_app "
    "ORDER BY window_start, src_app, dst_app"
)


def wait_until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.fixture(params=["embedded", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    streams = "" if request.param == "embedded" else request.getfixturevalue("redis_url")
    return Settings.load(tmp_path / "home", streams_url=streams)


def test_flow_logs_aggregated_per_minute_by_application(settings: Settings) -> None:
    out = io.StringIO()
    with Runtime(load_app("analytics"), settings, max_workers=2, out=out) as runtime:
        client = runtime.client
        client.streams.create_stream("vpc-flows", 2)
        runtime.start()
        puts = client.streams.put(
            "vpc-flows", [PutRequest(k, line.encode()) for k, line in RECORDS]
        )
        assert all(isinstance(p, Put) for p in puts)
        assert len({p.shard_id for p in puts if isinstance(p, Put)}) == 2
        results = Results(client.state)

        def rows() -> list[tuple[Any, ...]]:
            if "flows_by_app" not in results.aggregates():
                return []
            found = [tuple(r) for r in run_query(results, QUERY).rows]
            return found if len(found) >= len(EXPECTED) and found[-1][3] else []

        assert wait_until(lambda: rows() == EXPECTED), rows()
        # The late record is in the dead-letter stream (once per aggregate it was late for)
        letters = wait_until(lambda: _read(client, "vpc-flows-late"))
        assert sorted(d["aggregate"] for d in letters) == ["flows_by_app", "talkers"]
        assert {d["reason"] for d in letters} == {"late"}
        assert {d["rows"][0]["bytes"] for d in letters} == {777}
        flows = results.shards("flows_by_app")
        assert sum(s.records for s in flows.values()) == len(RECORDS)
        assert sum(s.late for s in flows.values()) == 1

        # reelay's own logs: the flows function's invocations, from its REPORT lines
        def invocations() -> Any:
            try:
                return run_query(
                    results, "SELECT sum(invocations) AS n FROM functions WHERE function = 'flows'"
                ).rows[0][0]
            except QueryError:  # no table yet: the log stream's first batch is not folded
                return None

        invoked = wait_until(invocations)
        assert invoked and invoked >= 1
        assert run_query(results, "SELECT count(*) FROM talkers WHERE sources > 0").rows[0][0] >= 1
    assert "targets unknown function" not in out.getvalue()
    assert "Traceback" not in out.getvalue()


def _read(client: Any, stream: str) -> list[dict[str, Any]]:
    if stream not in client.streams.list_streams():
        return []
    out = []
    for shard in client.streams.describe(stream).shards:
        cursor = client.streams.locate(stream, shard.shard_id, Position("TRIM_HORIZON"))
        out += [
            json.loads(r.data) for r in client.streams.read(stream, shard.shard_id, cursor).records
        ]
    return out
