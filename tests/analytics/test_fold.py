"""Windows, the watermark and lateness, per shard, through the results' real store (a
State) and a real stream for the dead letters: tumbling and hopping windows, a late
record in the dead-letter stream (never dropped), a batch folded twice counted once,
the watermark kept across restarts and never run backwards, the horizon, shards merged."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay.analytics.fold import SourceRecord
from reelay.analytics.query import run_query
from reelay.analytics.spec import Aggregate, parse_aggregates
from reelay.analytics.store import Results
from reelay.client import Client
from reelay.config import Settings
from reelay.streams import Position

SHARD = "shardId-000000000000"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(Settings.load(tmp_path / "home")) as c:
        yield c


def aggregate(tmp_path: Path, **changes: Any) -> Aggregate:
    body = {
        "stream": "events",
        "format": "json",
        "time": "t",
        "window": {"size": 60},
        "watermark": {"lateness": 10},
        "deadLetter": "events-late",
        "groupBy": ["k"],
        "metrics": {"n": "count", "total": {"sum": "v"}},
        **changes,
    }
    found = parse_aggregates({"aggregates": {"agg": body}}, base=tmp_path)
    return found.aggregates["agg"]


def records(*times: float, start: int = 1, key: str = "a", **fields: Any) -> list[SourceRecord]:
    return [
        SourceRecord(
            start + i, "pk", json.dumps({"t": t, "k": key, "v": 1, **fields}).encode(), 1e9
        )
        for i, t in enumerate(times)
    ]


def table(
    results: Results, sql: str = "SELECT * FROM agg ORDER BY window_start, k"
) -> list[dict[str, Any]]:
    return run_query(results, sql).records()


def dead_letters(client: Client, stream: str = "events-late") -> list[dict[str, Any]]:
    if stream not in client.streams.list_streams():
        return []
    out = []
    for shard in client.streams.describe(stream).shards:
        cursor = client.streams.locate(stream, shard.shard_id, Position("TRIM_HORIZON"))
        out += [
            json.loads(r.data) for r in client.streams.read(stream, shard.shard_id, cursor).records
        ]
    return out


def test_tumbling_windows_lateness_and_a_late_record_in_the_dead_letter_stream(
    tmp_path: Path, client: Client
) -> None:
    agg = aggregate(tmp_path)
    results = Results(client.state)
    # 185 moves the watermark to 175: the window [60, 120) is closed, [120, 180) is not
    results.apply(agg, SHARD, records(100, 130, 185), client.streams)
    folded = results.apply(agg, SHARD, records(119, 170, start=4), client.streams)
    assert folded.shard.watermark(10) == 175
    assert [(r["window_start"], r["n"]) for r in table(results)] == [
        ("1970-01-01T00:01:00", 1),
        ("1970-01-01T00:02:00", 2),  # 130, and 170: late, but within the lateness
        ("1970-01-01T00:03:00", 1),
    ]
    (letter,) = dead_letters(client)
    assert letter["reason"] == "late" and letter["aggregate"] == "agg"
    assert letter["sequenceNumber"] == "4" and letter["shardId"] == SHARD
    assert letter["rows"] == [{"t": 119, "k": "a", "v": 1}] and letter["watermark"] == 175
    assert letter["stream"] == "events" and letter["partitionKey"] == "pk"
    shard = results.shards("agg")[SHARD]
    assert (shard.records, shard.rows, shard.late) == (5, 4, 1)


def test_hopping_windows_and_a_row_late_for_some_of_them(tmp_path: Path, client: Client) -> None:
    agg = aggregate(tmp_path, window={"size": 60, "hop": 20}, watermark={"lateness": 0})
    results = Results(client.state)
    results.apply(agg, SHARD, records(100), client.streams)  # in [60,120) [80,140) [100,160)
    starts = [r["window_start"][-5:] for r in table(results)]
    assert starts == ["01:00", "01:20", "01:40"]
    # watermark 100: 75 is in [20,80) (closed) [40,100) (closed) [60,120) (open): counted there
    results.apply(agg, SHARD, records(75, start=2), client.streams)
    assert [(r["window_start"][-5:], r["n"]) for r in table(results)] == [
        ("01:00", 2), ("01:20", 1), ("01:40", 1),
    ]  # fmt: skip
    assert dead_letters(client) == []  # in time for one of its windows: not late
    results.apply(agg, SHARD, records(30, start=3), client.streams)  # every window closed
    assert [d["reason"] for d in dead_letters(client)] == ["late"]


def test_a_batch_folded_again_counts_once(tmp_path: Path, client: Client) -> None:
    agg = aggregate(tmp_path)
    results = Results(client.state)
    batch = records(10, 20, 30)
    results.apply(agg, SHARD, batch, client.streams)
    again = results.apply(agg, SHARD, batch, client.streams)  # redelivered: nothing changes
    assert again.skipped == 3
    # a retried batch that overlaps (a partial failure's rest, say): only the new counts
    results.apply(agg, SHARD, batch[1:] + records(40, start=4), client.streams)
    assert [(r["n"], r["total"]) for r in table(results)] == [(4, 4)]
    assert results.shards("agg")[SHARD].through == 4


def test_the_watermark_survives_a_restart_and_never_runs_backwards(
    tmp_path: Path, client: Client
) -> None:
    agg = aggregate(tmp_path)
    Results(client.state).apply(agg, SHARD, records(500), client.streams)
    restarted = Results(client.state)  # a new worker: what it knows is in the State
    folded = restarted.apply(agg, SHARD, records(100, 200, start=2), client.streams)
    assert folded.shard.max_event == 500 and folded.shard.watermark(10) == 490
    assert len(dead_letters(client)) == 2
    assert [r["n"] for r in table(restarted)] == [1]


def test_unreadable_records_and_rows_without_a_time_are_dead_letters(
    tmp_path: Path, client: Client
) -> None:
    agg = aggregate(tmp_path)
    results = Results(client.state)
    bad = [
        SourceRecord(1, "pk", b"not json", 1e9),
        SourceRecord(2, "pk", json.dumps({"k": "a"}).encode(), 1e9),
        *records(50, start=3),
    ]
    results.apply(agg, SHARD, bad, client.streams)
    letters = dead_letters(client)
    assert [(d["reason"], d["sequenceNumber"]) for d in letters] == [
        ("unreadable", "1"),
        ("unreadable", "2"),
    ]
    assert base64.b64decode(letters[0]["data"]) == b"not json"
    assert letters[1]["rows"] == [{"k": "a"}] and "no event time in t" in letters[1]["detail"]
    assert results.shards("agg")[SHARD].unreadable == 2
    assert [r["n"] for r in table(results)] == [1]


def test_windows_past_the_horizon_are_deleted(tmp_path: Path, client: Client) -> None:
    agg = aggregate(tmp_path, horizon="2m")
    results = Results(client.state)
    results.apply(agg, SHARD, records(10, 70, 130), client.streams)
    assert len(table(results)) == 3
    results.apply(
        agg, SHARD, records(250, start=4), client.streams
    )  # keeps windows ending after 130
    assert [r["window_start"][-5:] for r in table(results)] == ["02:00", "04:00"]
    assert len(client.state.meta_items("analytics:win:agg:")) == 2
    assert results.shards("agg")[SHARD].windows == [120, 240]


def test_shards_merge_and_a_changed_aggregate_starts_afresh(tmp_path: Path, client: Client) -> None:
    agg = aggregate(tmp_path, metrics={"n": "count", "who": {"distinct": "u"}, "top": {"max": "v"}})
    results = Results(client.state)
    results.apply(agg, "shardId-000000000000", records(10, 20, u="x", v=3), client.streams)
    results.apply(agg, "shardId-000000000001", records(30, u="y", v=7), client.streams)
    assert [(r["n"], r["who"], r["top"]) for r in table(results)] == [(3, 2, 7)]
    changed = aggregate(tmp_path, metrics={"n": "count"})
    results.apply(changed, "shardId-000000000001", records(40, start=2), client.streams)
    assert [r["n"] for r in table(results)] == [1]  # the old partials no longer count
    assert [c for c in run_query(results, "DESCRIBE agg").records()] and list(table(results)[0]) == [
        "window_start", "window_end", "k", "n",
    ]  # fmt: skip
