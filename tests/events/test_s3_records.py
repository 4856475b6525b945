"""S3 event-notification records, checked against AWS's documented message structure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import unquote_plus

import botocore.session
import pytest

from reelay.errors import InvalidEventError
from reelay.events._s3 import (
    S3_CONFIGURABLE_EVENTS,
    S3_EVENT_NAMES,
    encode_s3_key,
    next_sequencer,
    s3_event,
    s3_event_matches,
    s3_record,
)
from reelay.storage import ObjectInfo

WHEN = datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=UTC)


def info(key: str = "HappyFace.jpg", size: int = 1024, sequencer: str | None = None) -> ObjectInfo:
    return ObjectInfo(
        bucket="sourcebucket",
        key=key,
        size=size,
        etag="0123456789abcdef0123456789abcdef",
        last_modified=WHEN,
        sequencer=sequencer,
    )


def test_put_record_has_every_documented_field() -> None:
    # Modelled on the "Event message structure" example and Lambda's S3 Put test event.
    record = s3_record(
        "ObjectCreated:Put",
        info(sequencer="0A1B2C3D4E5F678901"),
        bucket="sourcebucket",
        key="HappyFace.jpg",
        region="us-east-1",
        request_id="EXAMPLE123456789",
        principal="EXAMPLE",
        source_ip="127.0.0.1",
        configuration_id="testConfigRule",
        now=WHEN,
    )
    x_amz_id_2 = record["responseElements"]["x-amz-id-2"]
    assert record == {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T12:30:45.123Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "EXAMPLE123456789",
            "x-amz-id-2": x_amz_id_2,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": "sourcebucket",
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": "arn:aws:s3:::sourcebucket",
            },
            "object": {
                "key": "HappyFace.jpg",
                "size": 1024,
                "eTag": "0123456789abcdef0123456789abcdef",
                "sequencer": "0A1B2C3D4E5F678901",
            },
        },
    }
    # x-amz-id-2 is an opaque base64 token, reproducible from the request id.
    assert isinstance(x_amz_id_2, str) and len(x_amz_id_2) > 20
    again = s3_record(
        "s3:ObjectCreated:Put", info(), bucket="b-1", key="k", request_id="EXAMPLE123456789"
    )
    assert again["responseElements"]["x-amz-id-2"] == x_amz_id_2
    assert again["eventName"] == "ObjectCreated:Put"  # the s3: prefix is dropped
    assert json.loads(json.dumps(record)) == record


def test_defaults() -> None:
    record = s3_record("ObjectCreated:Copy", info(), bucket="bkt", key="k")
    assert record["awsRegion"] == "us-east-1"
    assert record["userIdentity"] == {"principalId": "reelay"}
    assert record["requestParameters"] == {"sourceIPAddress": "127.0.0.1"}
    assert record["s3"]["configurationId"] == "reelay"
    request_id = record["responseElements"]["x-amz-request-id"]
    assert len(request_id) == 16 and request_id == request_id.upper()
    other = s3_record("ObjectCreated:Copy", info(), bucket="bkt", key="k")
    assert other["responseElements"]["x-amz-request-id"] != request_id
    sequencer = record["s3"]["object"]["sequencer"]
    assert len(sequencer) == 18
    int(sequencer, 16)
    when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=5)


def test_removal_records_have_no_size_or_etag() -> None:
    record = s3_record(
        "ObjectRemoved:Delete", None, bucket="bkt", key="gone.txt", now=WHEN, request_id="R"
    )
    obj = record["s3"]["object"]
    assert set(obj) == {"key", "sequencer"}
    assert obj["key"] == "gone.txt"
    # Info given for a removal is not used for size/eTag either.
    marker = s3_record(
        "ObjectRemoved:DeleteMarkerCreated",
        info(sequencer="00AA"),
        bucket="bkt",
        key="gone.txt",
        version_id="3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
    )
    assert marker["s3"]["object"] == {
        "key": "gone.txt",
        "versionId": "3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrHY",
        "sequencer": "00AA",
    }


def test_version_id_only_when_given() -> None:
    plain = s3_record("ObjectCreated:Put", info(), bucket="bkt", key="k")
    assert "versionId" not in plain["s3"]["object"]
    versioned = s3_record("ObjectCreated:Put", info(), bucket="bkt", key="k", version_id="v1")
    assert versioned["s3"]["object"]["versionId"] == "v1"


def test_lifecycle_expiration_matches_the_documented_example() -> None:
    record = s3_record(
        "LifecycleExpiration:Delete",
        None,
        bucket="amzn-s3-demo-bucket",
        key="expiration/delete",
        region="us-west-2",
        principal="s3.amazonaws.com",
        source_ip="s3.amazonaws.com",
        request_id="C3D13FE58DE4C810",
        configuration_id="testConfigRule",
        now=datetime(1970, 1, 1, tzinfo=UTC),
    )
    assert record["eventVersion"] == "2.3"
    assert record["eventTime"] == "1970-01-01T00:00:00.000Z"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::amzn-s3-demo-bucket"
    assert set(record["s3"]["object"]) == {"key", "sequencer"}


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("ObjectCreated:CompleteMultipartUpload", "2.1"),
        ("ObjectRestore:Completed", "2.1"),
        ("Replication:OperationFailedReplication", "2.2"),
        ("ObjectTagging:Put", "2.3"),
        ("ObjectAcl:Put", "2.3"),
        ("LifecycleTransition", "2.3"),
        ("IntelligentTiering", "2.3"),
        ("ObjectRestore:Delete", "2.3"),
    ],
)
def test_event_versions(name: str, version: str) -> None:
    record = s3_record(name, info(), bucket="bkt", key="k")
    assert record["eventVersion"] == version
    # Sequencers come only with writes and deletes.
    assert ("sequencer" in record["s3"]["object"]) == name.startswith("ObjectCreated:")
    assert record["s3"]["object"]["size"] == 1024


def test_non_removal_needs_object_info() -> None:
    with pytest.raises(InvalidEventError, match="needs the object's ObjectInfo"):
        s3_record("ObjectCreated:Put", None, bucket="bkt", key="k")


def test_unknown_event_name_lists_valid_ones() -> None:
    with pytest.raises(InvalidEventError) as caught:
        s3_record("ObjectCreated:Upload", info(), bucket="bkt", key="k")
    message = str(caught.value)
    assert "'ObjectCreated:Upload'" in message
    assert "ObjectCreated:Put" in message and "ObjectRemoved:Delete" in message
    with pytest.raises(InvalidEventError):
        s3_record("ObjectCreated:*", info(), bucket="bkt", key="k")  # a pattern, not an event


def test_event_time_formatting() -> None:
    plus_two = timezone(timedelta(hours=2))
    record = s3_record(
        "ObjectCreated:Put",
        info(),
        bucket="bkt",
        key="k",
        now=datetime(2024, 1, 1, 2, 0, 0, 999999, tzinfo=plus_two),
    )
    assert record["eventTime"] == "2024-01-01T00:00:00.999Z"
    with pytest.raises(InvalidEventError, match="no time zone"):
        s3_record("ObjectCreated:Put", info(), bucket="bkt", key="k", now=datetime(2024, 1, 1))


def test_arn_partition_follows_the_region() -> None:
    def arn(region: str) -> str:
        record = s3_record("ObjectCreated:Put", info(), bucket="bkt", key="k", region=region)
        assert record["awsRegion"] == region
        return str(record["s3"]["bucket"]["arn"])

    assert arn("eu-west-1") == "arn:aws:s3:::bkt"
    assert arn("cn-north-1") == "arn:aws-cn:s3:::bkt"
    assert arn("us-gov-west-1") == "arn:aws-us-gov:s3:::bkt"


# -- key encoding ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("HappyFace.jpg", "HappyFace.jpg"),
        ("red flower.jpg", "red+flower.jpg"),  # the example in AWS's documentation
        ("hello world.jpg", "hello+world.jpg"),
        ("images/2024/photo.jpg", "images/2024/photo.jpg"),  # '/' stays
        ("something/dt=2018-05-04/_SUCCESS", "something/dt%3D2018-05-04/_SUCCESS"),
        ("test/10:47:07.log", "test/10%3A47%3A07.log"),
        ("a+b", "a%2Bb"),  # a literal plus cannot be confused with a space
        ("100%", "100%25"),
        ("file (1).txt", "file+%281%29.txt"),
        ("é", "%C3%A9"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("a~b", "a%7Eb"),
        ("keep-_.*", "keep-_.*"),
    ],
)
def test_key_encoding(key: str, encoded: str) -> None:
    assert encode_s3_key(key) == encoded
    record = s3_record("ObjectCreated:Put", info(key), bucket="bkt", key=key)
    assert record["s3"]["object"]["key"] == encoded
    assert unquote_plus(encoded) == key


def test_every_printable_key_survives_unquote_plus() -> None:
    key = "".join(chr(c) for c in range(0x20, 0x7F)) + "/ü/€/😀"
    assert unquote_plus(encode_s3_key(key)) == key
    assert all(c.isalnum() or c in "+%-_.*/" for c in encode_s3_key(key))


# -- sequencers ------------------------------------------------------------------


def test_sequencers_increase_and_compare_as_strings() -> None:
    values = [next_sequencer() for _ in range(2000)]
    assert len(set(values)) == len(values)
    assert all(len(v) == 18 for v in values)
    assert values == sorted(values)
    assert [int(v, 16) for v in values] == sorted(int(v, 16) for v in values)


def test_sequencer_from_object_info_wins() -> None:
    record = s3_record(
        "ObjectCreated:Put", info(sequencer="0055AED6DCD90281E5"), bucket="b-1", key="k"
    )
    assert record["s3"]["object"]["sequencer"] == "0055AED6DCD90281E5"


# -- event names and matching ----------------------------------------------------


def test_event_names_are_the_s3_api_enumeration() -> None:
    model = botocore.session.get_session().get_service_model("s3")
    enum = set(model.shape_for("Event").enum)
    concrete = {name.removeprefix("s3:") for name in enum if not name.endswith("*")}
    assert concrete >= S3_EVENT_NAMES
    assert enum >= S3_CONFIGURABLE_EVENTS
    for name in (
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
    ):
        assert name in S3_EVENT_NAMES
    assert "s3:ObjectCreated:*" in S3_CONFIGURABLE_EVENTS
    assert "s3:ObjectRemoved:*" in S3_CONFIGURABLE_EVENTS


@pytest.mark.parametrize(
    ("configured", "event", "expected"),
    [
        ("s3:ObjectCreated:*", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload", True),
        ("s3:ObjectCreated:*", "ObjectRemoved:Delete", False),
        ("s3:ObjectCreated:Put", "ObjectCreated:Put", True),
        ("s3:ObjectCreated:Put", "ObjectCreated:Post", False),
        ("s3:ObjectRemoved:*", "ObjectRemoved:DeleteMarkerCreated", True),
        ("s3:ObjectRemoved:*", "LifecycleExpiration:Delete", False),
        ("s3:LifecycleExpiration:*", "LifecycleExpiration:Delete", True),
        ("s3:LifecycleTransition", "LifecycleTransition", True),
        ("s3:ObjectCreated:Put", "s3:ObjectCreated:Put", True),
    ],
)
def test_event_matching(configured: str, event: str, expected: bool) -> None:
    assert s3_event_matches(configured, event) is expected


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ("ObjectCreated:*", "did you mean 's3:ObjectCreated:*'"),
        ("s3:ObjectCreated", "valid types:"),
        ("s3:*", "valid types:"),
        ("s3:ObjectCreated:Upload", "s3:ObjectCreated:Put"),
    ],
)
def test_invalid_configured_event_types(configured: str, message: str) -> None:
    with pytest.raises(InvalidEventError) as caught:
        s3_event_matches(configured, "ObjectCreated:Put")
    assert message in str(caught.value)
    assert repr(configured) in str(caught.value)


def test_matching_validates_the_event_name() -> None:
    with pytest.raises(InvalidEventError, match="unknown S3 event name 'Nope'"):
        s3_event_matches("s3:ObjectCreated:*", "Nope")


def test_s3_event_wraps_records() -> None:
    records = [
        s3_record("ObjectCreated:Put", info(), bucket="bkt", key="a"),
        s3_record("ObjectRemoved:Delete", None, bucket="bkt", key="b"),
    ]
    event = s3_event(records)
    assert event == {"Records": records}
    assert event["Records"] is not records
    with pytest.raises(InvalidEventError):
        s3_event("not a list")  # type: ignore[arg-type]
