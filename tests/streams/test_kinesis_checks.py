"""`Kinesis.call` on input no SDK sends (it checks it before sending) but a hand-made or
hostile client may: every one refused with Kinesis's code, never a crash; and the
limits of one answer (10 MiB of records in a GetRecords)."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from reelay.errors import KinesisApiError
from reelay.streams.kinesis import Kinesis

from .memory import MemoryStreams

MiB = 1 << 20


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kinesis() -> Kinesis:
    return Kinesis(MemoryStreams(), [b"k" * 32], clock=Clock())


def refused(kinesis: Kinesis, operation: str, params: dict[str, Any]) -> KinesisApiError:
    with pytest.raises(KinesisApiError) as caught:
        kinesis.call(operation, params)
    assert caught.value.status == 400
    return caught.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_of_the_wrong_type_is_a_serialization_error(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    for operation, params in (
        ("CreateStream", {"StreamName": 7}),
        ("CreateStream", {"StreamName": "t", "ShardCount": 1.5}),
        ("CreateStream", {"StreamName": "t", "ShardCount": True}),
        ("CreateStream", {"StreamName": "t", "StreamModeDetails": "ON_DEMAND"}),
        ("PutRecords", {"StreamName": "s", "Records": "abc"}),
        ("PutRecords", {"StreamName": "s", "Records": [["not", "a", "record"]]}),
        ("PutRecord", {"StreamName": "s", "Data": "not base64!", "PartitionKey": "k"}),
        ("PutRecord", {"StreamName": "s", "Data": 12, "PartitionKey": "k"}),
        (
            "GetShardIterator",
            {
                "StreamName": "s",
                "ShardId": "shardId-000000000000",
                "ShardIteratorType": "AT_TIMESTAMP",
                "Timestamp": "yesterday",
            },
        ),
    ):
        assert refused(kinesis, operation, params).code == "SerializationException", params


def test_nulls_and_missing_members_are_validation_errors(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    error = refused(kinesis, "PutRecords", {"StreamName": "s", "Records": [None]})
    assert error.code == "ValidationException"
    assert "Value null at 'records.1.member' failed" in str(error)
    error = refused(kinesis, "GetShardIterator", {"StreamName": "s"})
    assert str(error).startswith("2 validation errors detected: Value null at 'shardId'")
    error = refused(kinesis, "CreateStream", {"StreamName": "t", "StreamModeDetails": {}})
    assert "'streamModeDetails.streamMode'" in str(error)
    error = refused(kinesis, "ListStreams", {"ExclusiveStartStreamName": "x" * 300})
    assert "Member must have length less than or equal to 128" in str(error)
    assert "x" * 257 not in str(error)  # long values are cut short in messages


def test_a_stream_is_named_once_and_only_as_this_account_names_it(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s"})  # no count: on-demand's 4 shards
    summary = kinesis.call("DescribeStreamSummary", {"StreamName": "s"})
    assert summary is not None and summary["StreamDescriptionSummary"]["OpenShardCount"] == 4
    arn = summary["StreamDescriptionSummary"]["StreamARN"]
    assert refused(kinesis, "DescribeStream", {}).code == "InvalidArgumentException"
    both = {"StreamName": "other", "StreamARN": arn}
    assert refused(kinesis, "DescribeStream", both).code == "InvalidArgumentException"
    assert kinesis.call("DescribeStream", {"StreamName": "s", "StreamARN": arn}) is not None
    provisioned = {"StreamName": "p", "StreamModeDetails": {"StreamMode": "PROVISIONED"}}
    assert refused(kinesis, "CreateStream", provisioned).code == "InvalidArgumentException"


def test_get_records_limits(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    for _ in range(11):  # nearly 11 MiB: more than one answer carries
        kinesis.call(
            "PutRecord", {"StreamName": "s", "Data": b64(b"x" * (MiB - 1)), "PartitionKey": "k"}
        )
    iterator = kinesis.call(
        "GetShardIterator",
        {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"},
    )
    assert iterator is not None
    first = kinesis.call("GetRecords", {"ShardIterator": iterator["ShardIterator"]})
    assert first is not None and len(first["Records"]) == 10
    rest = kinesis.call("GetRecords", {"ShardIterator": first["NextShardIterator"]})
    assert rest is not None and len(rest["Records"]) == 1
    assert int(rest["Records"][0]["SequenceNumber"]) > int(first["Records"][-1]["SequenceNumber"])
    many = {"ShardIterator": iterator["ShardIterator"], "Limit": 10001}
    assert refused(kinesis, "GetRecords", many).code == "InvalidArgumentException"
    none = {"ShardIterator": iterator["ShardIterator"], "Limit": 0}
    assert refused(kinesis, "GetRecords", none).code == "ValidationException"


def test_next_tokens_expire_and_cannot_be_forged(kinesis: Kinesis) -> None:
    for name in ("a", "b"):
        kinesis.call("CreateStream", {"StreamName": name, "ShardCount": 2})
    page = kinesis.call("ListStreams", {"Limit": 1})
    assert page is not None and page["HasMoreStreams"]
    token = page["NextToken"]
    shards = kinesis.call("ListShards", {"StreamName": "a", "MaxResults": 1})
    assert shards is not None
    # A NextToken of one listing is no token of another, nor an iterator.
    for operation, params in (
        ("ListShards", {"NextToken": token}),
        ("ListStreams", {"NextToken": shards["NextToken"]}),
        ("GetRecords", {"ShardIterator": token}),
        ("ListStreams", {"NextToken": token[:-3] + "xyz"}),
    ):
        assert refused(kinesis, operation, params).code == "InvalidArgumentException", params
    assert kinesis.call("ListStreams", {"NextToken": token}) is not None
    kinesis.clock.now += 301  # type: ignore[attr-defined]
    for operation, params in (
        ("ListStreams", {"NextToken": token}),
        ("ListShards", {"NextToken": shards["NextToken"]}),
    ):
        assert refused(kinesis, operation, params).code == "ExpiredNextTokenException"


def test_iterators_of_another_secret_key_are_not_taken(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    params = {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}
    iterator = kinesis.call("GetShardIterator", params)
    assert iterator is not None
    other = Kinesis(kinesis.streams, [b"o" * 32], clock=kinesis.clock)
    rotated = Kinesis(kinesis.streams, [b"o" * 32, b"k" * 32], clock=kinesis.clock)
    error = refused(other, "GetRecords", {"ShardIterator": iterator["ShardIterator"]})
    assert error.code == "InvalidArgumentException"
    assert rotated.call("GetRecords", {"ShardIterator": iterator["ShardIterator"]}) is not None


def test_an_unknown_operation(kinesis: Kinesis) -> None:
    error = refused(kinesis, "SplitShard", {})
    assert error.code == "UnknownOperationException"
    assert "PutRecords" in str(error)  # it says which there are


def test_a_record_counts_its_partition_key_and_times_may_be_iso(kinesis: Kinesis) -> None:
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    over = {"StreamName": "s", "Data": b64(b"x" * MiB), "PartitionKey": "k"}
    error = refused(kinesis, "PutRecord", over)  # the data fits, with its key it does not
    assert error.code == "InvalidArgumentException" and "1048577 bytes" in str(error)
    kinesis.call("PutRecord", {"StreamName": "s", "Data": b64(b"x"), "PartitionKey": "k"})
    at = {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP"}
    for when in ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00", 946684800):
        iterator = kinesis.call("GetShardIterator", {**at, "Timestamp": when})
        assert iterator is not None
        records = kinesis.call("GetRecords", {"ShardIterator": iterator["ShardIterator"]})
        assert records is not None and len(records["Records"]) == 1, when


def test_an_iterator_of_the_longest_name_fits_kinesis_limit(kinesis: Kinesis) -> None:
    name = "n" * 128
    kinesis.call("CreateStream", {"StreamName": name, "ShardCount": 1})
    params = {"StreamName": name, "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}
    iterator = kinesis.call("GetShardIterator", params)
    assert iterator is not None and len(iterator["ShardIterator"]) <= 512
    # with the largest cursor a sequence number of Redis's ms * 10^10 + n can make
    largest = kinesis._iterator(name, "shardId-000000000000", ((1 << 64) - 1) * 10**10)
    assert len(largest) <= 512


def test_no_iterator_begins_with_a_dash(kinesis: Kinesis) -> None:
    """The AWS CLI reads an argument that begins with '-' as an option: an iterator
    that did (one in 64 did, before) could not be passed to `aws kinesis get-records`."""
    kinesis.call("CreateStream", {"StreamName": "s", "ShardCount": 1})
    params = {"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "LATEST"}
    for _ in range(500):  # each carries a fresh time, so a fresh tag
        iterator = kinesis.call("GetShardIterator", params)
        assert iterator is not None and iterator["ShardIterator"][0].isalnum()
        time.sleep(0.001)
