"""The Kinesis API, driven by boto3's kinesis client unchanged (``endpoint_url`` at a real
server on loopback, requests signed with an access key reelay issued), on each streams
backend: what works, and every broken form answered with Kinesis's exact error code
(as botocore raises it), never a 500."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import httpx
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from reelay.client import Client
from reelay.config import Settings
from reelay.keys import AccessKeys, SecretKey
from reelay.streams import Streams, open_streams
from reelay.streams.kinesis import ACCOUNT_ID, Kinesis
from reelay.web import Server, create_app, ensure_token

from .memory import MemoryStreams

MiB = 1 << 20


class Clock:
    """The time the Kinesis API issues and checks iterators at: now, plus ``ahead``."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@dataclass
class Kinesisd:
    """A server with the Kinesis API over a home, and an access key of it."""

    url: str
    client: Client
    keys: AccessKeys
    key_id: str
    secret: str
    clock: Clock
    streams: Streams

    def boto(self, key_id: str | None = None, secret: str | None = None, **config: Any) -> Any:
        """boto3's kinesis client, unchanged but for its endpoint (and no retries: a
        refusal is seen once)."""
        return boto3.client(
            "kinesis",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id or self.key_id,
            aws_secret_access_key=secret or self.secret,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
        )

    def refusals(self) -> list[dict[str, Any]]:
        events = self.client.state.events(source="reelay.web", limit=1000)
        return [json.loads(e.body)["detail"] for e in events]


def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Streams:
    """The streams a test's server serves: reelay's two backends, and the in-memory
    double (which can be told to refuse a record)."""
    if request.param == "memory":
        return MemoryStreams()
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return open_streams(url, tmp_path / "home")


@pytest.fixture(params=["embedded", "redis", "memory"])
def kinesisd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kinesisd]:
    errors: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            errors.append(record)

    loggers = [logging.getLogger("uvicorn.error"), logging.getLogger("reelay.streams.kinesis")]
    handler = Collect(logging.ERROR)
    for logger in loggers:
        logger.addHandler(handler)
    streams = backend(request, tmp_path)
    try:
        with Client(Settings.load(tmp_path / "home")) as client:
            secret_key = SecretKey.load(client.settings.home)
            keys = AccessKeys(client.state, secret_key)
            key, secret = keys.create("tests")
            clock = Clock()
            kinesis = Kinesis(streams, secret_key.token_keys("kinesis"), clock=clock)
            token, _ = ensure_token(client.settings.home)
            app = create_app(client, token, kinesis=kinesis, keys=keys)
            with Server(app, port=0) as server:
                yield Kinesisd(server.url, client, keys, key.id, secret, clock, streams)
    finally:
        streams.close()
        for logger in loggers:
            logger.removeHandler(handler)
    assert not errors, [r.getMessage() for r in errors]


def code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    """The error code botocore raised, once checked to be a client error (never a 5xx)."""
    response = exc.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] < 500, response
    return str(response["Error"]["Code"])


def read_shard(kinesis: Any, iterator: str, *, limit: int = 10000) -> tuple[list[Any], str]:
    """Every record from ``iterator`` to the shard's end, page by page; and the iterator
    to read on from."""
    records: list[Any] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=limit)
        records += page["Records"]
        iterator = page["NextShardIterator"]
        if not page["Records"] and page["MillisBehindLatest"] == 0:
            return records, iterator


# -- what works ------------------------------------------------------------------------------


def test_a_stream_from_creation_to_deletion(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="logs", ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName="logs")
    summary = kinesis.describe_stream_summary(StreamName="logs")["StreamDescriptionSummary"]
    assert summary["StreamARN"] == f"arn:aws:kinesis:us-east-1:{ACCOUNT_ID}:stream/logs"
    assert (summary["StreamStatus"], summary["OpenShardCount"]) == ("ACTIVE", 3)
    assert summary["RetentionPeriodHours"] == 24
    assert isinstance(summary["StreamCreationTimestamp"], datetime)
    assert kinesis.list_streams()["StreamNames"] == ["logs"]

    one = kinesis.put_record(StreamName="logs", Data=b"first", PartitionKey="p-first")
    assert one["ShardId"].startswith("shardId-") and one["SequenceNumber"].isdigit()
    entries = [{"Data": f"record {i}".encode(), "PartitionKey": f"p-{i % 37}"} for i in range(500)]
    put = kinesis.put_records(StreamName="logs", Records=entries)
    assert put["FailedRecordCount"] == 0 and len(put["Records"]) == 500
    sent = {(one["ShardId"], one["SequenceNumber"]): b"first"} | {
        (r["ShardId"], r["SequenceNumber"]): e["Data"]
        for r, e in zip(put["Records"], entries, strict=True)
    }

    received: dict[tuple[str, str], bytes] = {}
    shards = kinesis.list_shards(StreamName="logs")["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(3)]
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName="logs", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records, _ = read_shard(kinesis, iterator, limit=50)
        numbers = [int(r["SequenceNumber"]) for r in records]
        assert numbers == sorted(set(numbers))  # in order, strictly increasing, per shard
        for r in records:
            assert isinstance(r["ApproximateArrivalTimestamp"], datetime)
            received[(shard["ShardId"], r["SequenceNumber"])] = r["Data"]
    assert received == sent  # every record, on the shard its put said, with its data

    kinesis.delete_stream(StreamName="logs")
    kinesis.get_waiter("stream_not_exists").wait(StreamName="logs")
    assert kinesis.list_streams()["StreamNames"] == []


def test_every_shard_iterator_type(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="s", ShardCount=1)
    puts = []
    for i in range(3):
        puts.append(kinesis.put_record(StreamName="s", Data=b"%d" % i, PartitionKey="k"))
        time.sleep(0.01)  # arrivals a few milliseconds apart, for AT_TIMESTAMP
    seqs = [p["SequenceNumber"] for p in puts]

    def iterator(kind: str, **extra: Any) -> str:
        answer = kinesis.get_shard_iterator(
            StreamName="s", ShardId="shardId-000000000000", ShardIteratorType=kind, **extra
        )
        return str(answer["ShardIterator"])

    def data(records: list[Any]) -> list[bytes]:
        return [r["Data"] for r in records]

    assert data(read_shard(kinesis, iterator("TRIM_HORIZON"))[0]) == [b"0", b"1", b"2"]
    at = iterator("AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
    assert data(read_shard(kinesis, at)[0]) == [b"1", b"2"]
    after = iterator("AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[1])
    assert data(read_shard(kinesis, after)[0]) == [b"2"]
    arrivals = [r["ApproximateArrivalTimestamp"] for r in read_shard(kinesis, at)[0]]
    assert data(read_shard(kinesis, iterator("AT_TIMESTAMP", Timestamp=arrivals[0]))[0]) == [
        b"1",
        b"2",
    ]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert read_shard(kinesis, iterator("AT_TIMESTAMP", Timestamp=future))[0] == []
    latest = iterator("LATEST")
    records, following = read_shard(kinesis, latest)
    assert records == []
    kinesis.put_record(StreamName="s", Data=b"3", PartitionKey="k")
    assert data(read_shard(kinesis, following)[0]) == [b"3"]  # NextShardIterator reads on


def test_listings_page_as_the_paginators_expect(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    for name in ("c", "a", "b"):
        kinesis.create_stream(StreamName=name, ShardCount=1 if name != "b" else 5)
    first = kinesis.list_streams(Limit=2)
    assert (first["StreamNames"], first["HasMoreStreams"]) == (["a", "b"], True)
    assert [s["StreamName"] for s in first["StreamSummaries"]] == ["a", "b"]
    rest = kinesis.list_streams(Limit=2, NextToken=first["NextToken"])
    assert (rest["StreamNames"], rest["HasMoreStreams"]) == (["c"], False)
    assert kinesis.list_streams(ExclusiveStartStreamName="a")["StreamNames"] == ["b", "c"]
    pages = kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1})
    assert [n for page in pages for n in page["StreamNames"]] == ["a", "b", "c"]

    # ListShards' NextToken names the stream by itself: sent with StreamName too (as
    # botocore's list_shards paginator does), Kinesis refuses it, and so does reelay.
    page = kinesis.list_shards(StreamName="b", MaxResults=2)
    shards = page["Shards"]
    while "NextToken" in page:
        page = kinesis.list_shards(NextToken=page["NextToken"], MaxResults=2)
        shards += page["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(5)]
    token = kinesis.list_shards(StreamName="b", MaxResults=2)["NextToken"]
    with pytest.raises(ClientError) as refused:
        kinesis.list_shards(StreamName="b", NextToken=token)
    assert code(refused) == "InvalidArgumentException"
    assert "NextToken and StreamName cannot be provided together" in str(refused.value)
    after = kinesis.list_shards(StreamName="b", ExclusiveStartShardId="shardId-000000000003")
    assert [s["ShardId"] for s in after["Shards"]] == ["shardId-000000000004"]
    described = kinesis.get_paginator("describe_stream").paginate(
        StreamName="b", PaginationConfig={"PageSize": 2}
    )
    assert sum(len(p["StreamDescription"]["Shards"]) for p in described) == 5
    ranges = kinesis.describe_stream(StreamName="b")["StreamDescription"]["Shards"]
    assert ranges[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert ranges[-1]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)


def test_streams_are_named_by_arn_too(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="by-arn", ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName="by-arn")["StreamDescriptionSummary"][
        "StreamARN"
    ]
    put = kinesis.put_record(StreamARN=arn, Data=b"x", PartitionKey="k")
    iterator = kinesis.get_shard_iterator(
        StreamARN=arn, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(StreamARN=arn, ShardIterator=iterator)["Records"][0]["Data"] == b"x"
    other = arn.replace(ACCOUNT_ID, "123456789012")
    with pytest.raises(ClientError) as refused:
        kinesis.describe_stream_summary(StreamARN=other)
    assert code(refused) == "ResourceNotFoundException"


def test_retention_is_raised_and_lowered(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="kept", ShardCount=1)
    kinesis.increase_stream_retention_period(StreamName="kept", RetentionPeriodHours=48)
    summary = kinesis.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48
    for call, hours in (
        (kinesis.increase_stream_retention_period, 30),  # lower than now: not an increase
        (kinesis.decrease_stream_retention_period, 72),
        (kinesis.decrease_stream_retention_period, 23),  # Kinesis keeps 24 hours at least
        (kinesis.increase_stream_retention_period, 8761),
    ):
        with pytest.raises(ClientError) as refused:
            call(StreamName="kept", RetentionPeriodHours=hours)
        assert code(refused) == "InvalidArgumentException"
    kinesis.decrease_stream_retention_period(StreamName="kept", RetentionPeriodHours=24)


def test_a_key_in_use_is_seen_used_and_its_secret_never_shown(kinesisd: Kinesisd) -> None:
    kinesisd.boto().list_streams()
    (key,) = kinesisd.keys.list()
    assert key.last_used is not None and key.last_used <= time.time()
    assert kinesisd.secret not in key.secret  # stored encrypted


# -- refusals: authentication ------------------------------------------------------------


def test_a_wrong_secret_is_an_invalid_signature_and_audited(kinesisd: Kinesisd) -> None:
    wrong = "x" * 40
    with pytest.raises(ClientError) as refused:
        kinesisd.boto(secret=wrong).list_streams()
    assert code(refused) == "InvalidSignatureException"
    assert "signature we calculated does not match" in str(refused.value)
    (refusal,) = kinesisd.refusals()
    assert refusal["method"] == "POST" and refusal["path"] == "/"
    assert refusal["reason"] == f"Kinesis API: wrong signature (key {kinesisd.key_id})"
    events = json.dumps([e.as_dict() for e in kinesisd.client.state.events(limit=1000)])
    assert kinesisd.secret not in events and wrong not in events


def test_an_unknown_or_revoked_key_is_unrecognized(kinesisd: Kinesisd) -> None:
    with pytest.raises(ClientError) as refused:
        kinesisd.boto(key_id="AKIAUNKNOWNKEY000000").list_streams()
    assert code(refused) == "UnrecognizedClientException"
    assert "security token included in the request is invalid" in str(refused.value)
    kinesis = kinesisd.boto()
    kinesis.list_streams()  # works until revoked
    kinesisd.keys.revoke(kinesisd.key_id)
    with pytest.raises(ClientError) as refused:
        kinesis.list_streams()
    assert code(refused) == "UnrecognizedClientException"
    reasons = [r["reason"] for r in kinesisd.refusals()]
    assert sorted(reasons) == [
        "Kinesis API: revoked access key " + kinesisd.key_id,
        "Kinesis API: unknown access key AKIAUNKNOWNKEY000000",
    ]


def test_an_unsigned_request_is_missing_its_token(kinesisd: Kinesisd) -> None:
    with pytest.raises(ClientError) as refused:
        kinesisd.boto(signature_version=UNSIGNED).list_streams()
    assert code(refused) == "MissingAuthenticationTokenException"
    assert [r["reason"] for r in kinesisd.refusals()] == ["Kinesis API: no signature"]


@pytest.mark.parametrize("minutes", [-20, 20])
def test_a_stale_or_future_date_is_refused(
    kinesisd: Kinesisd, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    # botocore signs with its clock's time: move the clock it reads, not the server's.
    skewed = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda **_: skewed)
    with pytest.raises(ClientError) as refused:
        kinesisd.boto().list_streams()
    assert code(refused) == "InvalidSignatureException"
    expected = "Signature expired" if minutes < 0 else "Signature not yet current"
    assert expected in str(refused.value)


def test_a_bearer_token_is_no_signature_for_kinesis(kinesisd: Kinesisd) -> None:
    """A Kinesis request that carries the API's token instead of a signature is refused as
    Kinesis refuses it (and the token is not repeated back); other requests to ``/``
    stay the API's and the dashboard's."""
    token = (kinesisd.client.settings.home / "api-token").read_text().strip()
    headers = {
        "X-Amz-Target": "Kinesis_20131202.ListStreams",
        "Content-Type": "application/x-amz-json-1.1",
        "Authorization": f"Bearer {token}",
    }
    answer = httpx.post(kinesisd.url, content=b"{}", headers=headers)
    assert answer.status_code == 400
    assert answer.json()["__type"] == "IncompleteSignatureException"
    assert token not in answer.text
    assert httpx.post(kinesisd.url, content=b"{}").status_code == 401  # the API's, as before
    api = httpx.get(f"{kinesisd.url}/api/events", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200


# -- refusals: the requests themselves -----------------------------------------------------


def test_an_unknown_stream_or_shard_is_not_found(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    for call, args in (
        (kinesis.describe_stream, {}),
        (kinesis.describe_stream_summary, {}),
        (kinesis.list_shards, {}),
        (kinesis.delete_stream, {}),
        (kinesis.put_record, {"Data": b"x", "PartitionKey": "k"}),
        (kinesis.put_records, {"Records": [{"Data": b"x", "PartitionKey": "k"}]}),
        (kinesis.get_shard_iterator, {"ShardId": "shardId-0", "ShardIteratorType": "LATEST"}),
    ):
        with pytest.raises(ClientError) as refused:
            call(StreamName="nowhere", **args)
        assert code(refused) == "ResourceNotFoundException", call
        assert "nowhere" in str(refused.value)
    kinesis.create_stream(StreamName="here", ShardCount=1)
    with pytest.raises(ClientError) as refused:
        kinesis.get_shard_iterator(
            StreamName="here", ShardId="shardId-000000000007", ShardIteratorType="LATEST"
        )
    assert code(refused) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as refused:
        kinesis.create_stream(StreamName="here", ShardCount=1)
    assert code(refused) == "ResourceInUseException"


def test_oversize_records_and_batches_are_refused(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="big", ShardCount=1)
    with pytest.raises(ClientError) as refused:
        kinesis.put_record(StreamName="big", Data=b"x" * (MiB + 1), PartitionKey="k")
    assert code(refused) == "ValidationException"
    assert "at 'data' failed to satisfy constraint" in str(refused.value)
    kinesis.put_record(StreamName="big", Data=b"x" * (MiB - 1), PartitionKey="k")  # fits

    too_many = [{"Data": b"x", "PartitionKey": "k"}] * 501
    with pytest.raises(ClientError) as refused:
        kinesis.put_records(StreamName="big", Records=too_many)
    assert code(refused) == "ValidationException"
    assert "less than or equal to 500" in str(refused.value)

    one_big = [{"Data": b"x", "PartitionKey": "k"}, {"Data": b"x" * (MiB + 1), "PartitionKey": "k"}]
    with pytest.raises(ClientError) as refused:
        kinesis.put_records(StreamName="big", Records=one_big)
    assert code(refused) == "ValidationException"
    assert "'records.2.member.data'" in str(refused.value)

    five_mib = [{"Data": b"x" * MiB, "PartitionKey": f"k{i}"} for i in range(5)]  # and keys
    with pytest.raises(ClientError) as refused:
        kinesis.put_records(StreamName="big", Records=five_mib)
    assert code(refused) == "InvalidArgumentException"
    assert "Records size exceeds 5 MB limit" in str(refused.value)

    iterator = kinesis.get_shard_iterator(
        StreamName="big", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    (record,) = kinesis.get_records(ShardIterator=iterator)["Records"]  # only the one that fit
    assert len(record["Data"]) == MiB - 1


def test_a_body_over_the_limit_is_refused_unread(kinesisd: Kinesisd) -> None:
    headers = {"X-Amz-Target": "Kinesis_20131202.PutRecords"}
    answer = httpx.post(kinesisd.url, content=b" " * (9 * MiB), headers=headers, timeout=60)
    assert answer.status_code == 413
    assert answer.json()["__type"] == "InvalidArgumentException"


def test_bad_fields_are_validation_errors(kinesisd: Kinesisd) -> None:
    # botocore checks some constraints itself; with that off, the server's checks answer.
    kinesis = kinesisd.boto(parameter_validation=False)
    cases: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
        (kinesis.create_stream, {"StreamName": "no spaces", "ShardCount": 1}, "streamName"),
        (kinesis.create_stream, {"StreamName": "s", "ShardCount": 0}, "shardCount"),
        (kinesis.put_record, {"StreamName": "s", "Data": b"x"}, "partitionKey"),
        (
            kinesis.put_record,
            {"StreamName": "s", "Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "-1"},
            "explicitHashKey",
        ),
        (
            kinesis.get_shard_iterator,
            {"StreamName": "s", "ShardId": "shardId-0", "ShardIteratorType": "OLDEST"},
            "shardIteratorType",
        ),
        (kinesis.list_streams, {"Limit": 0}, "limit"),
    ]
    for call, args, field in cases:
        with pytest.raises(ClientError) as refused:
            call(**args)
        assert code(refused) == "ValidationException", args
        assert f"at '{field}' failed to satisfy constraint" in str(refused.value), args
    with pytest.raises(ClientError) as refused:
        kinesis.create_stream(StreamName="s", ShardCount="two")
    assert code(refused) == "SerializationException"
    kinesis.create_stream(StreamName="s", ShardCount=1)
    with pytest.raises(ClientError) as refused:
        kinesis.put_record(StreamName="s", Data=b"x", PartitionKey="k", ExplicitHashKey=str(2**128))
    assert code(refused) == "InvalidArgumentException"
    with pytest.raises(ClientError) as refused:
        kinesis.get_shard_iterator(
            StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER"
        )
    assert code(refused) == "InvalidArgumentException"
    with pytest.raises(ClientError) as refused:
        kinesis.create_stream(StreamName="huge", ShardCount=100000)
    assert code(refused) == "LimitExceededException"


def test_iterators_expire_and_cannot_be_forged(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="s", ShardCount=1)
    kinesis.put_record(StreamName="s", Data=b"x", PartitionKey="k")
    iterator = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert len(iterator) <= 512
    # Altered anywhere (say, to start at another cursor or another stream): refused.
    lead, body = iterator[0], iterator[1:]  # a letter, then the tag and payload
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = raw[:16] + raw[16:].replace(b'"s"', b'"t"')
    for bad in (
        lead + base64.urlsafe_b64encode(forged).decode(),
        body,
        iterator[:-2] + ("AA" if iterator[-2:] != "AA" else "BB"),
        "not an iterator",
    ):
        with pytest.raises(ClientError) as refused:
            kinesis.get_records(ShardIterator=bad)
        assert code(refused) == "InvalidArgumentException"
        assert "Invalid ShardIterator" in str(refused.value)
    fresh = kinesis.get_records(ShardIterator=iterator)
    kinesisd.clock.ahead = 301.0  # past 5 minutes: both the first and the next expired
    for old in (iterator, fresh["NextShardIterator"]):
        with pytest.raises(ClientError) as refused:
            kinesis.get_records(ShardIterator=old)
        assert code(refused) == "ExpiredIteratorException"
    renewed = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    assert kinesis.get_records(ShardIterator=renewed)["Records"][0]["Data"] == b"x"


def test_a_body_that_is_not_json_is_a_serialization_error(kinesisd: Kinesisd) -> None:
    # The body is replaced before botocore signs it: the signature is right, the JSON not.
    for body in (b'{"Limit": ', b"[1, 2]", b"\xff\xfe", b""):
        kinesis = kinesisd.boto()

        def replace_body(request: Any, body: bytes = body, **_: Any) -> None:
            request.data = body

        kinesis.meta.events.register("before-sign.kinesis.ListStreams", replace_body)
        with pytest.raises(ClientError) as refused:
            kinesis.list_streams()
        assert code(refused) == "SerializationException", body
    assert kinesisd.refusals() == []  # well signed: nothing to audit


def test_put_records_bodies_read_as_the_standard_library_reads_them(kinesisd: Kinesisd) -> None:
    """PutRecords' body is read faster where orjson and pybase64 are installed, and to
    the same effect as Python's json and base64 (which read it where they are not): what
    those take and they do not is taken (NaN, padding past the end), and a number too
    large for 64 bits (orjson's float) makes no difference."""
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="s", ShardCount=1)

    def put_raw(body: str) -> dict[str, Any]:
        def replace_body(request: Any, **_: Any) -> None:
            request.data = body.encode()

        raw = kinesisd.boto()
        raw.meta.events.register("before-sign.kinesis.PutRecords", replace_body)
        answer: dict[str, Any] = raw.put_records(
            StreamName="s", Records=[{"Data": b"replaced", "PartitionKey": "k"}]
        )
        return answer

    huge = "123456789012345678901234567890"
    put = put_raw(
        '{"StreamName": "s", "Records": ['
        '{"Data": "AAAA=", "PartitionKey": "padded"}, '
        f'{{"Data": "eA==", "PartitionKey": "big", "Unknown": {huge}}}, '
        '{"Data": "eQ==", "PartitionKey": "nan", "Unknown": NaN}]}'
    )
    assert put["FailedRecordCount"] == 0 and len(put["Records"]) == 3
    for body, problem in (
        (f'{{"StreamName": {huge}, "Records": [{{"Data": "eA==", "PartitionKey": "k"}}]}}', ""),
        (f'{{"StreamName": "s", "Records": [{{"Data": {huge}, "PartitionKey": "k"}}]}}', "data"),
    ):
        with pytest.raises(ClientError) as refused:
            put_raw(body)
        assert code(refused) == "SerializationException"
        assert "not a number" in str(refused.value) and problem in str(refused.value)
    iterator = kinesis.get_shard_iterator(
        StreamName="s", ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records, _ = read_shard(kinesis, iterator)
    assert [(r["PartitionKey"], r["Data"]) for r in records] == [
        ("padded", b"\0\0\0"),
        ("big", b"x"),
        ("nan", b"y"),
    ]


def test_an_unknown_operation_is_named_so(kinesisd: Kinesisd) -> None:
    kinesis = kinesisd.boto()

    def retarget(request: Any, **_: Any) -> None:
        request.headers.replace_header("X-Amz-Target", "Kinesis_20131202.SplitTheAtom")

    kinesis.meta.events.register("before-sign.kinesis.ListStreams", retarget)
    with pytest.raises(ClientError) as refused:
        kinesis.list_streams()
    assert code(refused) == "UnknownOperationException"
    assert "SplitTheAtom" in str(refused.value)


@pytest.mark.parametrize("kinesisd", ["memory"], indirect=True)  # it can be told to refuse
def test_records_a_backend_refuses_are_reported_per_record(kinesisd: Kinesisd) -> None:
    assert isinstance(kinesisd.streams, MemoryStreams)
    kinesisd.streams.refuse.add("poison")
    kinesis = kinesisd.boto()
    kinesis.create_stream(StreamName="s", ShardCount=2)
    entries = [{"Data": b"a", "PartitionKey": "ok"}, {"Data": b"b", "PartitionKey": "poison"}]
    put = kinesis.put_records(StreamName="s", Records=entries)
    assert put["FailedRecordCount"] == 1
    assert "SequenceNumber" in put["Records"][0]
    assert put["Records"][1] == {
        "ErrorCode": "InternalFailure",
        "ErrorMessage": "Internal Service Failure",
    }
    with pytest.raises(ClientError) as refused:
        kinesis.put_record(StreamName="s", Data=b"b", PartitionKey="poison")
    assert refused.value.response["Error"]["Code"] == "InternalFailureException"


# -- the AWS CLI ------------------------------------------------------------------------------


def test_the_aws_cli_puts_and_gets_records(kinesisd: Kinesisd, tmp_path: Path) -> None:
    aws = Path(sys.executable).parent / "aws"
    assert aws.exists(), f"no AWS CLI at {aws}: install the dev extra (pip install -e '.[dev]')"
    empty = tmp_path / "aws-config"
    empty.write_text("")
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),  # no ~/.aws of the user's
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": kinesisd.key_id,
        "AWS_SECRET_ACCESS_KEY": kinesisd.secret,
        "AWS_MAX_ATTEMPTS": "1",
    }

    def run(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
        env = environment | ({"AWS_SECRET_ACCESS_KEY": secret} if secret else {})
        command = [str(aws), "kinesis", *args, "--endpoint-url", kinesisd.url, "--output", "json"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert run("create-stream", "--stream-name", "cli", "--shard-count", "1").returncode == 0
    assert run("wait", "stream-exists", "--stream-name", "cli").returncode == 0
    put = run("put-record", "--stream-name", "cli", "--partition-key", "k", "--data", "hello")
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout)["ShardId"] == "shardId-000000000000"
    iterator = run(
        "get-shard-iterator",
        "--stream-name",
        "cli",
        "--shard-id",
        "shardId-000000000000",
        "--shard-iterator-type",
        "TRIM_HORIZON",
    )
    assert iterator.returncode == 0, iterator.stderr
    got = run("get-records", "--shard-iterator", json.loads(iterator.stdout)["ShardIterator"])
    assert got.returncode == 0, got.stderr
    (record,) = json.loads(got.stdout)["Records"]
    assert base64.b64decode(record["Data"]) == b"hello"
    assert record["SequenceNumber"] == json.loads(put.stdout)["SequenceNumber"]

    wrong = run("list-streams", secret="x" * 40)
    assert wrong.returncode != 0
    assert "(InvalidSignatureException)" in wrong.stderr and "Traceback" not in wrong.stderr
