"""Events from a real bucket: S3 notifications through SQS (moto's server on loopback).

moto's server delivers a bucket's notifications to an SQS queue as S3 does (the
``s3:TestEvent`` when the configuration is saved, then ``{"Records": [...]}`` for each
write), so the end-to-end tests upload with boto3 straight to the bucket. Its records
lack some fields S3 sends (``sequencer``, ``responseElements``...) and it does not send
EventBridge events to SQS, so the tests of those put S3's documented message bodies
into the queue themselves.
"""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reelay.config import Settings
from reelay.errors import AppError, ConfigError
from reelay.events import encode_s3_key
from reelay.runtime import Runtime
from reelay.runtime.app import parse_app
from reelay.sources import REJECTED, SKIPPED, SOURCE, Sources, SQSConsumer, SQSSource, read_message
from reelay.state import SUCCEEDED, Event, State, open_state

pytestmark = pytest.mark.s3

APP_DIR = Path(__file__).parent / "app"
REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials from the environment, as boto3 reads them (handlers' too)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def boto(s3_endpoint: str, aws: None) -> Callable[[str], Any]:
    import boto3

    return lambda service: boto3.client(service, endpoint_url=s3_endpoint, region_name=REGION)


@pytest.fixture
def prefix() -> str:
    """The store prefix of this test: the app's bucket ``uploads`` is S3's PREFIX-uploads."""
    return "q" + uuid.uuid4().hex[:10]


@pytest.fixture
def queue(boto: Callable[[str], Any], prefix: str) -> str:
    """A queue of the test's own, whose messages come back 1 s after a receive."""
    sqs = boto("sqs")
    url: str = sqs.create_queue(
        QueueName=f"{prefix}-events", Attributes={"VisibilityTimeout": "1"}
    )["QueueUrl"]
    return url


@pytest.fixture
def notifying_bucket(boto: Callable[[str], Any], prefix: str, queue: str) -> str:
    """S3's bucket PREFIX-uploads, its ObjectCreated events sent to ``queue``."""
    sqs, s3 = boto("sqs"), boto("s3")
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bucket = f"{prefix}-uploads"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    return bucket


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    settings = Settings.load(tmp_path / "home")
    st = open_state(settings.state_url, settings.home)
    yield st
    st.close()


def source_of(queue: str, endpoint: str, real: str = "acme-uploads-prod") -> SQSSource:
    return SQSSource(queue, "uploads", real, REGION, endpoint, wait_time_s=1, batch_size=10)


def s3_events(state: State) -> list[Event]:
    return [e for e in state.events(limit=1000, source="aws.s3")]


def noted(state: State, detail_type: str) -> list[dict[str, Any]]:
    events = state.events(limit=1000, source=SOURCE)
    return [json.loads(e.body)["detail"] for e in events if e.detail_type == detail_type]


def record_of(event: Event) -> dict[str, Any]:
    (record,) = json.loads(event.body)["Records"]
    return dict(record)


def direct(key: str, *, bucket: str = "acme-uploads-prod", sequencer: str = "0055AED6DCD90281E5"):
    """A notification in S3's documented shape (the User Guide's PUT example)."""
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": "us-west-2",
                    "eventTime": "1970-01-01T00:00:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {
                        "x-amz-request-id": "C3D13FE58DE4C810",
                        "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                    },
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "testConfigRule",
                        "bucket": {
                            "name": bucket,
                            "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                            "arn": f"arn:aws:s3:::{bucket}",
                        },
                        "object": {
                            "key": key,
                            "size": 1024,
                            "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                            "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                            "sequencer": sequencer,
                        },
                    },
                }
            ]
        }
    )


def eventbridge(
    key: str,
    detail_type: str = "Object Created",
    *,
    sequencer: str = "617f08299329d189",
    **detail: Any,
) -> str:
    """An EventBridge event in S3's documented shape (the User Guide's examples)."""
    obj: dict[str, Any] = {"key": key, "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"}
    obj["sequencer"] = sequencer
    if detail_type == "Object Created":
        obj |= {"size": 5, "etag": "b1946ac92492d2347c6235b4d2611184"}
    return json.dumps(
        {
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": detail_type,
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": ["arn:aws:s3:::acme-uploads-prod"],
            "detail": {
                "version": "0",
                "bucket": {"name": "acme-uploads-prod"},
                "object": obj,
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject",
                **detail,
            },
        }
    )


def drain(consumer: SQSConsumer, rounds: int = 3) -> None:
    """Poll until the queue gives nothing ``rounds`` times in a row."""
    empty = 0
    while empty < rounds:
        empty = empty + 1 if not consumer.poll() else 0


def queue_depth(boto: Callable[[str], Any], queue: str) -> int:
    attributes = boto("sqs").get_queue_attributes(
        QueueUrl=queue,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


# -- reading a message (no queue) ------------------------------------------------------------


def test_keys_are_decoded_as_s3_encodes_them_and_the_bucket_is_the_apps() -> None:
    source = source_of("https://sqs.us-east-1.amazonaws.com/1/q", "http://x")
    raw = "in/my film (é) ü+1.mp4"
    (entry,) = read_message(
        direct("in/my+film+%28%C3%A9%29+%C3%BC%2B1.mp4"), "m1", source, region=REGION
    )
    record = record_of(_event(entry.event))
    assert record["s3"]["object"]["key"] == encode_s3_key(raw)
    assert record["s3"]["bucket"]["name"] == "uploads"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::uploads"
    # the rest is what S3 said
    assert record["eventTime"] == "1970-01-01T00:00:00.000Z" and record["awsRegion"] == "us-west-2"
    assert record["s3"]["object"]["sequencer"] == "0055AED6DCD90281E5"
    assert record["s3"]["object"]["versionId"] == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert record["responseElements"]["x-amz-request-id"] == "C3D13FE58DE4C810"
    assert record["userIdentity"] == {"principalId": "AIDAJDPLRKLG7UEXAMPLE"}
    # moto's encoding (quote_plus, '/' as %2F) reads the same
    (same,) = read_message(
        direct("in%2Fmy+film+%28%C3%A9%29+%C3%BC%2B1.mp4"), "m2", source, region=REGION
    )
    assert record_of(_event(same.event))["s3"]["object"]["key"] == encode_s3_key(raw)
    assert same.dedupe == entry.dedupe  # one S3 event, however it was spelt


def test_eventbridge_events_become_the_same_records() -> None:
    source = source_of("https://sqs.us-east-1.amazonaws.com/1/q", "http://x")
    (created,) = read_message(eventbridge("in/a+b.mp4"), "m1", source, region=REGION)
    record = record_of(_event(created.event))
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"] == {
        "key": "in/a+b.mp4",
        "size": 5,
        "eTag": "b1946ac92492d2347c6235b4d2611184",
        "versionId": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "sequencer": "617f08299329d189",
    }
    assert record["awsRegion"] == "ca-central-1" and record["eventTime"].startswith("2021-11-12")
    assert created.event.detail_type == "ObjectCreated:Put"
    # the same write notified directly has the same identity
    (again,) = read_message(
        direct("in/a+b.mp4", sequencer="617f08299329d189"), "m2", source, region=REGION
    )
    assert again.dedupe == created.dedupe
    marker = eventbridge(
        "in/a+b.mp4",
        "Object Deleted",
        sequencer="617f0837b476e463",
        reason="DeleteObject",
        **{"deletion-type": "Delete Marker Created"},
    )
    (deleted,) = read_message(marker, "m3", source, region=REGION)
    assert record_of(_event(deleted.event))["eventName"] == "ObjectRemoved:DeleteMarkerCreated"
    assert "size" not in record_of(_event(deleted.event))["s3"]["object"]
    lifecycle = eventbridge(
        "in/a+b.mp4", "Object Deleted", sequencer="617b398000000000", reason="Lifecycle Expiration"
    )
    (expired,) = read_message(lifecycle, "m4", source, region=REGION)
    assert record_of(_event(expired.event))["eventName"] == "LifecycleExpiration:Delete"


def test_an_sns_envelope_is_opened() -> None:
    source = source_of("https://sqs.us-east-1.amazonaws.com/1/q", "http://x")
    body = json.dumps({"Type": "Notification", "MessageId": "x", "Message": direct("in/x")})
    (entry,) = read_message(body, "m1", source, region=REGION)
    assert (
        entry.event.kind == "s3"
        and record_of(_event(entry.event))["eventName"] == "ObjectCreated:Put"
    )


def test_what_is_not_an_s3_event_is_named() -> None:
    source = source_of("https://sqs.us-east-1.amazonaws.com/1/q", "http://x")

    def problems(body: str) -> list[str]:
        entries = read_message(body, "m", source, region=REGION)
        assert all(e.event.detail_type == REJECTED for e in entries)
        return [json.loads(e.event.body)["detail"]["problem"] for e in entries]

    assert "not JSON" in problems("{oops")[0]
    assert "not an object: list" in problems("[1]")[0]
    assert "non-empty list" in problems('{"Records": []}')[0]
    assert problems('{"hello": 1}')[0].startswith("not an S3 event notification")
    (problem,) = problems(direct("in/x", bucket="someone-else"))
    assert "bucket 'someone-else' is not the bucket of this source ('acme-uploads-prod')" in problem
    (problem,) = problems(direct("in/x").replace("ObjectCreated:Put", "ObjectCreated:Teleport"))
    assert problem == "record 0: unknown S3 eventName 'ObjectCreated:Teleport'"
    (problem,) = problems(direct("a/../b"))
    assert "object key 'a/../b' cannot be stored by reelay" in problem
    (problem,) = problems(eventbridge("in/x", "Object Teleported"))
    assert "unknown S3 EventBridge detail-type 'Object Teleported'" in problem
    (problem,) = problems('{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}')
    assert problem == "record 0: s3.bucket must be an object, got None"


def _event(event: Any) -> Event:
    return Event(1, "id", 0.0, event.kind, event.source, event.detail_type, None, event.body, None)


# -- consuming a queue -------------------------------------------------------------------------


def test_the_same_s3_event_delivered_twice_appends_one_event(
    boto: Callable[[str], Any], queue: str, s3_endpoint: str, state: State
) -> None:
    consumer = SQSConsumer(source_of(queue, s3_endpoint), state, region=REGION)
    sqs = boto("sqs")
    for _ in range(2):  # S3 delivers at least once: the same event in two messages
        sqs.send_message(QueueUrl=queue, MessageBody=direct("in/twice.bin"))
    drain(consumer)
    (event,) = s3_events(state)
    assert record_of(event)["s3"]["object"]["key"] == "in/twice.bin"
    assert (consumer.appended, consumer.duplicates) == (1, 1)
    assert queue_depth(boto, queue) == 0


def test_a_crash_between_commit_and_delete_appends_once(
    boto: Callable[[str], Any], queue: str, s3_endpoint: str, state: State
) -> None:
    class LostDelete:
        """The SQS client of a consumer that dies after its commit, before its delete."""

        def __init__(self, client: Any) -> None:
            self.client = client

        def __getattr__(self, name: str) -> Any:
            if name == "delete_message_batch":
                raise ConnectionError("killed before the delete")
            return getattr(self.client, name)

    source = source_of(queue, s3_endpoint)
    first = SQSConsumer(source, state, region=REGION)
    first.client = LostDelete(first.client)
    doc = json.loads(direct("in/crash.bin"))
    del doc["Records"][0]["s3"]["object"]["sequencer"]  # its identity: the S3 request
    boto("sqs").send_message(QueueUrl=queue, MessageBody=json.dumps(doc))
    assert first.poll() == 1  # committed; the delete raised, and was logged
    assert len(s3_events(state)) == 1
    second = SQSConsumer(source, state, region=REGION)
    deadline = time.monotonic() + 10
    while second.duplicates == 0 and time.monotonic() < deadline:  # back after 1 s
        second.poll()
    assert second.duplicates == 1 and second.appended == 0
    assert len(s3_events(state)) == 1
    assert queue_depth(boto, queue) == 0


def test_a_malformed_message_is_recorded_and_the_good_ones_still_flow(
    boto: Callable[[str], Any], queue: str, s3_endpoint: str, state: State
) -> None:
    lines: list[str] = []
    consumer = SQSConsumer(source_of(queue, s3_endpoint), state, region=REGION, log=lines.append)
    sqs = boto("sqs")
    sqs.send_message(QueueUrl=queue, MessageBody="this is not JSON")
    sqs.send_message(QueueUrl=queue, MessageBody=direct("in/good.bin"))
    mixed = json.loads(direct("in/also-good.bin", sequencer="0055AED6DCD90281E6"))
    mixed["Records"].insert(0, {"eventName": "ObjectCreated:Put"})  # one bad record of two
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(mixed))
    drain(consumer)
    keys = sorted(record_of(e)["s3"]["object"]["key"] for e in s3_events(state))
    assert keys == ["in/also-good.bin", "in/good.bin"]
    rejected = noted(state, REJECTED)
    assert sorted(r["problem"][:22] for r in rejected) == [
        "record 0: s3 must be a",
        "the body is not JSON: ",
    ]
    assert {r["queue"] for r in rejected} == {queue} and all(r["messageId"] for r in rejected)
    assert any(r["body"] == "this is not JSON" for r in rejected)
    assert sum("rejected" in line for line in lines) == 2
    assert queue_depth(boto, queue) == 0  # recorded, then deleted: it will never read better


def test_a_message_the_state_cannot_take_stays_in_the_queue(
    boto: Callable[[str], Any], queue: str, s3_endpoint: str, tmp_path: Path
) -> None:
    settings = Settings.load(tmp_path / "home")
    st = open_state(settings.state_url, settings.home)
    consumer = SQSConsumer(source_of(queue, s3_endpoint), st, region=REGION)

    def broken(*args: Any, **kwargs: Any) -> list[Any]:
        raise OSError("disk full")

    st.append_once = broken  # type: ignore[method-assign]
    boto("sqs").send_message(QueueUrl=queue, MessageBody=direct("in/kept.bin"))
    assert consumer.poll() == 0
    assert queue_depth(boto, queue) == 1  # back after its visibility timeout
    st.close()


def test_stopping_leaves_what_a_long_poll_brings_in_the_queue(
    boto: Callable[[str], Any], queue: str, s3_endpoint: str, state: State
) -> None:
    source = SQSSource(queue, "uploads", "acme-uploads-prod", REGION, s3_endpoint, 20, 10)
    sqs = boto("sqs")
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "60"})
    with Sources([source], state, region=REGION) as sources:
        sqs.send_message(QueueUrl=queue, MessageBody="garbage")  # recorded; the thread goes on
        sqs.send_message(QueueUrl=queue, MessageBody=direct("in/before.bin"))
        deadline = time.monotonic() + 10
        while not (s3_events(state) and noted(state, REJECTED)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(s3_events(state)) == 1 and len(noted(state, REJECTED)) == 1
        (consumer,) = sources.consumers
    # Stopped while its thread waits in a 20 s long poll: what that poll brings now is
    # given back to the queue, not handled.
    sqs.send_message(
        QueueUrl=queue, MessageBody=direct("in/after.bin", sequencer="0055AED6DCD9028200")
    )
    for thread in threading.enumerate():
        if thread.name == f"reelay-source-{source.name}":
            thread.join(30)
            assert not thread.is_alive()
    assert len(s3_events(state)) == 1 and consumer.appended == 1
    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
    assert "in/after.bin" in message["Body"]  # visible again at once, not after its timeout


def test_an_upload_straight_to_the_bucket_runs_a_function(
    boto: Callable[[str], Any],
    notifying_bucket: str,
    queue: str,
    prefix: str,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    app = parse_app(
        {
            "service": "sources",
            "functions": {
                "seen": {
                    "handler": "handlers.seen",
                    "events": [{"s3": {"bucket": "uploads", "rules": [{"prefix": "in/"}]}}],
                }
            },
            "sources": [
                {
                    "sqs": {
                        "queue": queue,
                        "bucket": "uploads",
                        "realBucket": notifying_bucket,  # PREFIX-uploads, the store's name
                        "endpoint": s3_endpoint,
                        "waitTime": 1,
                    }
                }
            ],
        },
        root=APP_DIR,
    )
    settings = Settings.load(tmp_path / "home", store_url=f"s3://{prefix}?endpoint={s3_endpoint}")
    key = "in/my film é.txt"
    with Runtime(app, settings, max_workers=1) as rt:
        rt.start()
        boto("s3").put_object(Bucket=notifying_bucket, Key=key, Body=b"straight to S3")
        state = rt.client.state
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [i for i in state.invocations(function="seen") if i.status == SUCCEEDED]
            if done:
                break
            time.sleep(0.1)
        assert done, "the upload ran no function"
        (event,) = s3_events(state)
        record = record_of(event)
        assert record["s3"]["bucket"]["name"] == "uploads"
        assert record["s3"]["object"]["key"] == encode_s3_key(key) == "in/my+film+%C3%A9.txt"
        (skipped,) = noted(state, SKIPPED)  # moto sends s3:TestEvent when configured
        assert skipped["realBucket"] == notifying_bucket and skipped["queue"] == queue
    out = (tmp_path / "home" / "out" / "seen.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in out] == [
        {"bucket": "uploads", "key": key, "data": "straight to S3"}
    ]
    assert queue_depth(boto, queue) == 0


@pytest.mark.parametrize("store", ["agrees", "other prefix", "file"])
def test_a_store_that_does_not_hold_the_real_bucket_is_warned_of(
    store: str, queue: str, prefix: str, s3_endpoint: str, tmp_path: Path
) -> None:
    app = parse_app(
        {
            "functions": {"seen": {"handler": "handlers.seen"}},
            "sources": [
                {
                    "sqs": {
                        "queue": queue,
                        "bucket": "uploads",
                        "realBucket": f"{prefix}-uploads",
                        "endpoint": s3_endpoint,
                        "waitTime": 1,
                    }
                }
            ],
        },
        root=APP_DIR,
    )
    urls = {
        "agrees": f"s3://{prefix}?endpoint={s3_endpoint}",
        "other prefix": f"s3://x{prefix}?endpoint={s3_endpoint}",
        "file": f"file://{tmp_path / 'objects'}",
    }
    out = io.StringIO()
    with Runtime(app, Settings.load(tmp_path / "home", store_url=urls[store]), out=out):
        pass
    warnings = [line for line in out.getvalue().splitlines() if line.startswith("warning:")]
    if store == "agrees":
        assert warnings == []
        return
    where = {
        "other prefix": f"s3://x{prefix}-uploads",
        "file": (tmp_path / "objects" / "uploads").as_uri(),
    }
    assert warnings == [
        f"warning: the events of s3://{prefix}-uploads name objects that handlers read from "
        f"{where[store]} (the store's bucket 'uploads'): they will not find them; make "
        "realBucket and REELAY_STORE agree"
    ]


def test_an_unreadable_queue_stops_the_runtime_with_its_name(
    aws: None, s3_endpoint: str, tmp_path: Path
) -> None:
    missing = f"{s3_endpoint}/123456789012/no-such-queue"
    app = parse_app(
        {
            "functions": {"seen": {"handler": "handlers.seen"}},
            "sources": [{"sqs": {"queue": missing, "bucket": "uploads", "endpoint": s3_endpoint}}],
        },
        root=APP_DIR,
    )
    with (
        pytest.raises(
            ConfigError, match=r"source sqs .*no-such-queue .*: the queue cannot be read"
        ),
        Runtime(app, Settings.load(tmp_path / "home")),
    ):
        pass


# -- declaring sources -------------------------------------------------------------------------


def test_bad_sources_are_refused_naming_key_and_value() -> None:
    doc = {
        "functions": {"seen": {"handler": "handlers.seen"}},
        "sources": [
            {"sqs": {"queue": "not a url", "bucket": "Media", "waitTime": 30, "colour": 1}},
            {"kinesis": {}},
            {
                "sqs": {
                    "queue": "https://sqs.eu-west-1.amazonaws.com/1/q",
                    "bucket": "media",
                    "region": "moon",
                    "realBucket": "x",
                }
            },
            {"sqs": {"queue": "https://sqs.eu-west-1.amazonaws.com/1/q", "bucket": "media"}},
            {"sqs": {"queue": "https://sqs.eu-west-1.amazonaws.com/1/q", "bucket": "media"}},
        ],
    }
    with pytest.raises(AppError) as caught:
        parse_app(doc, root=APP_DIR, source="app.yaml")
    problems = caught.value.problems
    expected = [
        "app.yaml: sources[0].sqs.colour: unknown key 'colour'; valid keys: batchSize, bucket",
        "app.yaml: sources[0].sqs.queue: 'not a url' is not valid: expected an SQS queue URL",
        "app.yaml: sources[0].sqs.bucket: 'Media' is not valid: bucket name 'Media' may contain only",
        "app.yaml: sources[0].sqs.waitTime: 30 is not valid: must be an integer from 1 to 20",
        "app.yaml: sources[1]: unknown source kind 'kinesis'; valid kinds: sqs",
        "app.yaml: sources[2].sqs.realBucket: 'x' is not valid: bucket name 'x' is 1 character long",
        "app.yaml: sources[2].sqs.region: 'moon' is not valid: expected an AWS region",
        "app.yaml: sources[4].sqs.queue: 'https://sqs.eu-west-1.amazonaws.com/1/q' is already the "
        "queue of sources[3]",
    ]
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), (problem, start)
    with pytest.raises(AppError, match="sources: must be a list"):
        parse_app({**doc, "sources": {"sqs": {}}}, root=APP_DIR, source="app.yaml")


def test_sources_defaults_and_regions() -> None:
    app = parse_app(
        {
            "functions": {"seen": {"handler": "handlers.seen"}},
            "sources": [
                {"sqs": {"queue": "https://sqs.eu-west-1.amazonaws.com/1/q", "bucket": "media"}}
            ],
        },
        root=APP_DIR,
    )
    (source,) = app.sources
    assert (source.real_bucket, source.wait_time_s, source.batch_size) == ("media", 20, 10)
    assert source.region_or("us-east-1") == "eu-west-1"
    assert SQSSource("http://127.0.0.1:5/1/q", "m", "m").region_or("us-east-2") == "us-east-2"


def test_reelay_validate_checks_sources(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from reelay.cli import main

    (tmp_path / "handlers.py").write_text((APP_DIR / "handlers.py").read_text())
    good = tmp_path / "reelay.yaml"
    good.write_text(
        "functions:\n  seen: {handler: handlers.seen}\n"
        "sources:\n  - sqs: {queue: 'https://sqs.eu-west-1.amazonaws.com/123456789012/ingest',"
        " bucket: media, realBucket: acme-uploads-prod}\n"
    )
    ok = CliRunner().invoke(main, ["validate", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "1 source: sqs https://sqs.eu-west-1.amazonaws.com/123456789012/ingest " in ok.output
    assert "(s3://acme-uploads-prod as media)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "functions:\n  seen: {handler: handlers.seen}\nsources:\n  - sqs: {bucket: media}\n"
    )
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"error: {bad}: sources[0].sqs.queue: None is not valid: expected an SQS queue URL" in (
        result.output
    )
