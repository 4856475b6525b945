"""Stream triggers as Lambda's event source mapping: batches in order per shard, retries
that hold the shard, bisection isolating a poison record, partial batch failures,
tumbling windows with state, LATEST, parallelization by partition key, the onFailure
destination, and a SIGKILL of `reelay up` mid-stream losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import AppError
from reelay.runtime import Runtime, load_app
from reelay.runtime.app import parse_app
from reelay.streams import Position, Put, PutRequest

APP = Path(__file__).parent / "apps" / "streams" / "reelay.yaml"
STREAMS = (
    "orders",
    "retried",
    "poisoned",
    "partial",
    "windowed",
    "latest",
    "effects",
    "gathered",
)


@pytest.fixture(params=["embedded", "redis"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A home whose streams are the embedded log, or Redis Streams (a prefix of its own)."""
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    return Settings.load(tmp_path / "home", retry_delays=(0.05, 0.1), streams_url=url)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    with Client(settings) as client:
        for name in STREAMS:
            client.streams.create_stream(name, 2 if name in ("orders", "latest") else 1)
    with Runtime(load_app(APP), settings, max_workers=2) as rt:
        rt.start()
        yield rt


def put(client: Client, stream: str, *data: str, key: str = "k") -> list[str]:
    """Put records of text; ``KEY=TEXT`` gives a record a partition key of its own."""
    requests = []
    for d in data:
        pk, _, text = d.partition("=") if "=" in d else (key, "", d)
        requests.append(PutRequest(pk, text.encode()))
    puts = client.streams.put(stream, requests)
    assert all(isinstance(p, Put) for p in puts), puts
    return [p.sequence_number for p in puts if isinstance(p, Put)]


def lines(settings: Settings, name: str) -> list[dict[str, Any]]:
    path = settings.home / "out" / f"{name}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def wait_until(predicate: Callable[[], object], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def processed(settings: Settings, name: str) -> list[str]:
    """The data of every record a function was given, batch by batch, in order."""
    return [d for line in lines(settings, name) for _, _, d in line["batch"]]


def test_batches_arrive_in_order_per_shard_as_lambda_gives_them(
    runtime: Runtime, settings: Settings
) -> None:
    client = runtime.client
    sent = {
        f"p{k}": put(client, "orders", *(f"p{k}-{i}" for i in range(25)), key=f"p{k}")
        for k in range(4)
    }
    assert wait_until(lambda: len(processed(settings, "plain")) >= 100)
    batches = lines(settings, "plain")
    assert all(len(b["batch"]) <= 10 for b in batches)
    by_shard: dict[str, list[str]] = defaultdict(list)
    for b in batches:
        shards = {shard for _, shard, _ in b["batch"]}
        assert len(shards) == 1  # a batch is one shard's
        by_shard[shards.pop()] += [seq for seq, _, _ in b["batch"]]
    for seqs in by_shard.values():  # each shard's records once each, in order
        assert [int(s) for s in seqs] == sorted(int(s) for s in seqs)
        assert len(seqs) == len(set(seqs))
    assert sorted(processed(settings, "plain")) == sorted(
        f"p{k}-{i}" for k in range(4) for i in range(25)
    )
    assert sorted(s for seqs in by_shard.values() for s in seqs) == sorted(
        s for v in sent.values() for s in v
    )
    # Lambda's event, exactly
    inv = runtime.client.state.invocations(function="plain")[0]
    body = json.loads(runtime.client.state.event(inv.event_seq).body)
    record = body["Records"][0]
    assert set(record) == {
        "kinesis", "eventSource", "eventVersion", "eventID", "eventName",
        "invokeIdentityArn", "awsRegion", "eventSourceARN",
    }  # fmt: skip
    assert record["eventSource"] == "aws:kinesis" and record["eventName"] == "aws:kinesis:record"
    assert record["eventSourceARN"] == "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    assert set(record["kinesis"]) == {
        "kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data",
        "approximateArrivalTimestamp",
    }  # fmt: skip
    assert (
        record["eventID"]
        == f"{record['eventID'].split(':')[0]}:{record['kinesis']['sequenceNumber']}"
    )


def test_a_failing_batch_holds_its_shard_and_is_retried_in_order(
    runtime: Runtime, settings: Settings
) -> None:
    put(runtime.client, "retried", "a", "b", "fail:2", "d", "e", "f", "g")
    assert wait_until(lambda: "g" in processed(settings, "retried"))
    batches = [[d for _, _, d in b["batch"]] for b in lines(settings, "retried")]
    # the first batch three times (two failures), then the rest: never a later record first
    assert batches == [["a", "b", "fail:2", "d", "e"]] * 3 + [["f", "g"]]


def test_bisection_isolates_a_poison_record_and_sends_it_to_on_failure(
    runtime: Runtime, settings: Settings
) -> None:
    seqs = put(
        runtime.client,
        "poisoned",
        *(f"r{i}" for i in range(3)),
        "poison",
        *(f"r{i}" for i in range(4, 8)),
    )
    assert wait_until(lambda: lines(settings, "sink") and "r7" in processed(settings, "bisect"))
    assert wait_until(lambda: runtime.wait_idle(5))
    (sunk,) = lines(settings, "sink")
    info = sunk["event"]["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == seqs[3]
    assert info["shardId"] == "shardId-000000000000"
    assert info["streamArn"] == "arn:aws:kinesis:us-east-1:000000000000:stream/poisoned"
    assert sunk["event"]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # the invocations of the batches it was in, halved down to it, then its retry
    assert sunk["event"]["requestContext"]["approximateInvokeCount"] >= 2
    done = [d for d in processed(settings, "bisect") if d != "poison"]
    # every good record processed, in order of first processing
    firsts = list(dict.fromkeys(done))
    assert firsts == [f"r{i}" for i in (0, 1, 2, 4, 5, 6, 7)]


def test_a_partial_failure_retries_from_the_first_failed_record(
    runtime: Runtime, settings: Settings
) -> None:
    put(runtime.client, "partial", "a", "b", "fail:1", "d")
    assert wait_until(lambda: len(lines(settings, "partial")) >= 2)
    first, second = (x["batch"] for x in lines(settings, "partial")[:2])
    assert [d for _, d in first] == ["a", "b", "fail:1", "d"]
    assert [d for _, d in second] == ["fail:1", "d"]  # a and b were not given again
    assert wait_until(lambda: runtime.wait_idle(5))
    assert len(lines(settings, "partial")) == 2


def test_tumbling_windows_carry_state_and_end_with_a_final_invocation(
    runtime: Runtime, settings: Settings
) -> None:
    put(runtime.client, "windowed", *(f"w{i}" for i in range(7)))
    assert wait_until(lambda: any(x["final"] for x in lines(settings, "window")), 15)
    calls = lines(settings, "window")
    finals = [c for c in calls if c["final"]]
    assert finals[0]["records"] == 0  # the final invocation carries the state, no records
    counted = sum(c["records"] for c in calls if not c["final"])
    # the records of the first window, counted in its state across its invocations
    window = finals[0]["window"]
    in_window = [c for c in calls if c["window"] == window and not c["final"]]
    assert finals[0]["state"]["count"] == sum(c["records"] for c in in_window)
    assert all(len(c["state"]["data"]) == c["state"]["count"] for c in calls)
    assert all(c["records"] <= 3 for c in calls)
    assert counted == 7 or wait_until(
        lambda: sum(c["records"] for c in lines(settings, "window") if not c["final"]) == 7
    )


def test_latest_skips_what_came_before_and_groups_keep_each_key_in_order(
    settings: Settings,
) -> None:
    with Client(settings) as client:
        for name in STREAMS:
            client.streams.create_stream(name, 2 if name in ("orders", "latest") else 1)
        put(client, "latest", "before-1", "before-2")
    with Runtime(load_app(APP), settings, max_workers=2) as rt:
        rt.start()
        assert wait_until(
            lambda: (
                rt.client.state.get_meta("stream-lane:latest:0:latest:shardId-000000000001:2")
                is not None
            )
        )
        data = [f"{k}={k}-{i}" for i in range(10) for k in ("a", "b", "c", "d", "e")]
        put(rt.client, "latest", *data)
        assert wait_until(lambda: len(processed(settings, "latest")) >= 50)
        seen = processed(settings, "latest")
    assert "before-1" not in seen and "before-2" not in seen
    assert sorted(seen) == sorted(d.split("=")[1] for d in data)
    for k in "abcde":  # one key's records in order, whatever group they went to
        assert [d for d in seen if d.startswith(f"{k}-")] == [f"{k}-{i}" for i in range(10)]


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("{stream: 'bad name!'}", "events[0].stream.stream: stream name 'bad name!' is not valid"),
        (
            "{stream: s, batchSize: 0}",
            "events[0].stream.batchSize: 0 is not valid: must be an integer from 1 to 10000",
        ),
        (
            "{stream: s, startingPosition: NOW}",
            "startingPosition: 'NOW' is not valid; valid choices: LATEST, TRIM_HORIZON, AT_TIMESTAMP",
        ),
        (
            "{stream: s, startingPosition: AT_TIMESTAMP}",
            "startingPositionTimestamp: give it (epoch seconds) with startingPosition AT_TIMESTAMP",
        ),
        ("{stream: s, parallelizationFactor: 11}", "parallelizationFactor: 11 is not valid"),
        ("{stream: s, maximumRetryAttempts: -2}", "maximumRetryAttempts: -2 is not valid"),
        (
            "{stream: s, maximumRecordAgeInSeconds: 30}",
            "maximumRecordAgeInSeconds: 30 is not valid: -1, or 60 to 604800",
        ),
        (
            "{stream: s, functionResponseTypes: [Everything]}",
            "functionResponseTypes: ['Everything'] is not valid",
        ),
        ("{stream: s, tumblingWindowInSeconds: 901}", "tumblingWindowInSeconds: 901 is not valid"),
        (
            "{stream: s, bisectBatchOnFunctionError: maybe}",
            "bisectBatchOnFunctionError: 'maybe' is not valid: true or false",
        ),
        (
            "{stream: s, destinations: {onFailure: nowhere}}",
            "events[0].stream.destinations.onFailure: 'nowhere' is not a function of this app",
        ),
        ("{stream: s, destinations: {onSuccess: f}}", "a stream trigger has only onFailure"),
        ("{stream: s, shards: 2}", "events[0].stream.shards: unknown key 'shards'"),
        ("{stream: s, type: dynamodb}", "type: 'dynamodb' is not valid: the one type is kinesis"),
        ("[s]", "events[0].stream: must be a stream name or a mapping"),
    ],
)
def test_broken_stream_triggers_are_named(tmp_path: Path, trigger: str, expected: str) -> None:
    import yaml

    (tmp_path / "handler.py").write_text("def main(event, context):\n    pass\n")
    doc = yaml.safe_load(
        f"functions: {{f: {{handler: handler.main, events: [{{stream: {trigger}}}]}}}}"
    )
    with pytest.raises(AppError) as err:
        parse_app(doc, root=tmp_path, source="reelay.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems


@pytest.mark.slow
def test_sigkill_of_reelay_up_mid_stream_loses_no_record_and_keeps_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.load(home)
    log = tmp_path / "up.log"
    client = Client(settings)
    for name in STREAMS:
        client.streams.create_stream(name, 1)

    def up() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP), "--home", str(home)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env=os.environ | {"REELAY_RETRY_DELAYS": "1,6"},
        )

    total = 600
    stop = threading.Event()

    def produce() -> None:
        for start in range(0, total, 20):
            put(client, "effects", *(f"e{i:04d}" for i in range(start, start + 20)))
            time.sleep(0.03)
        stop.set()

    first = up()
    producer = threading.Thread(target=produce)
    try:
        assert wait_until(lambda: "reelay up: app" in log.read_text(), 60), log.read_text()
        producer.start()
        assert wait_until(lambda: len(lines(settings, "effects")) >= 100, 60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        at_kill = len(lines(settings, "effects"))
        producer.join(60)
        second = up()
        try:
            assert wait_until(
                lambda: len({x["data"] for x in lines(settings, "effects")}) >= total, 120
            ), log.read_text()[-3000:]
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
        client.close()
    assert at_kill < total  # the second process did the rest
    effects = [x["data"] for x in lines(settings, "effects")]
    # every record's effect once (the idempotency helper), in the stream's order
    assert effects == [f"e{i:04d}" for i in range(total)]


def test_every_attempts_log_flows_into_the_log_stream_as_cloudwatch_sends_it(
    runtime: Runtime, settings: Settings
) -> None:
    put(runtime.client, "retried", "x", "fail:1")
    assert wait_until(lambda: "fail:1" in processed(settings, "retried") and runtime.wait_idle(2))
    assert wait_until(lambda: len(lines(settings, "watch")) >= 2)
    messages = [x["message"] for x in lines(settings, "watch")]
    assert {m["logGroup"] for m in messages} == {"/aws/lambda/retried"}  # not watch's own
    failed, ok = sorted(messages, key=lambda m: m["logEvents"][-1]["message"].count("Status"))[::-1]
    assert failed["messageType"] == "DATA_MESSAGE"
    assert failed["subscriptionFilters"] == ["reelay-logs"]
    text = [e["message"] for e in failed["logEvents"]]
    assert text[0].startswith("START RequestId: ") and text[-2].startswith("END RequestId: ")
    assert "ValueError" in "\n".join(text)  # the handler's traceback, as it logged it
    assert text[-1].startswith("REPORT RequestId: ") and "\tDuration: " in text[-1]
    assert "Max Memory Used: " in text[-1] and "Status: ValueError" in text[-1]
    assert "Status" not in ok["logEvents"][-1]["message"]


def test_the_dispatchers_sweep_trims_records_past_their_retention(
    runtime: Runtime, settings: Settings
) -> None:
    put(runtime.client, "orders", "old-1", "old-2")
    assert wait_until(lambda: len(processed(settings, "plain")) == 2)
    streams = runtime.client.streams
    assert runtime.dispatcher is not None
    runtime.dispatcher._trim_streams(time.time() + 25 * 3600)  # a day and an hour on
    for shard in streams.describe("orders").shards:
        cursor = streams.locate("orders", shard.shard_id, Position("TRIM_HORIZON"))
        assert streams.read("orders", shard.shard_id, cursor).records == []


def test_a_batching_window_gathers_records_put_apart_into_one_batch(
    runtime: Runtime, settings: Settings
) -> None:
    for data in ("a", "b", "c"):  # a tenth of a second apart: within the 1 s window
        put(runtime.client, "gathered", data)
        time.sleep(0.1)
    assert wait_until(lambda: processed(settings, "gathered") == ["a", "b", "c"])
    assert [len(x["batch"]) for x in lines(settings, "gathered")] == [3]


def test_records_older_than_the_maximum_age_are_discarded_uninvoked(tmp_path: Path) -> None:
    """Driven with a clock of its own: records two minutes old, a 60 s maximum age."""
    from reelay.runtime.mappings import StreamMappings

    (tmp_path / "h.py").write_text("def main(event, context):\n    pass\n")
    (tmp_path / "reelay.yaml").write_text(
        "functions:\n  f:\n    handler: h.main\n    events:\n      - stream: {stream: aged,"
        " maximumRecordAgeInSeconds: 60, destinations: {onFailure: event}}\n"
    )
    emitted: list[dict[str, Any]] = []
    with Client(Settings.load(tmp_path / "home")) as client:
        client.streams.create_stream("aged", 1)
        seqs = put(client, "aged", "old-1", "old-2")
        mappings = StreamMappings(
            load_app(tmp_path / "reelay.yaml"),
            client.state,
            client.streams,
            region="us-east-1",
            emit=lambda dest, record: emitted.append(record) or [],
            log=lambda line: None,
        )
        assert mappings.step(time.time() + 120)
        assert client.state.invocations(function="f") == []  # never invoked
        (record,) = emitted
        assert record["requestContext"]["condition"] == "RecordAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 0
        info = record["KinesisBatchInfo"]
        assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[0], seqs[1])
        assert info["batchSize"] == 2
        # the shard moved on: a young record is invoked as usual
        put(client, "aged", "young")
        assert mappings.step(time.time())
        (inv,) = client.state.invocations(function="f")
        body = json.loads(client.state.event(inv.event_seq).body)
        assert [r["kinesis"]["sequenceNumber"] for r in body["Records"]] != seqs
        assert len(body["Records"]) == 1
