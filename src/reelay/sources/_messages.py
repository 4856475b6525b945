"""From an SQS message body to the events reelay appends: pure, no network.

A bucket's notifications reach a queue in one of three shapes, all read here:

- **S3 event notifications** (the bucket's notification configuration names the
  queue): ``{"Records": [...]}``, each record in AWS's "Event message structure"
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html).
  Right after a configuration is saved, S3 sends ``{"Service": "Amazon S3", "Event":
  "s3:TestEvent", "Time", "Bucket", "RequestId", "HostId"}``.
- **The same through SNS** (S3 -> SNS topic -> SQS without raw delivery): an SNS
  envelope ``{"Type": "Notification", "Message": "<the JSON above, as text>"}``.
- **EventBridge events** (the bucket sends its events to EventBridge, a rule targets the
  queue): ``{"version": "0", "id", "detail-type": "Object Created", "source": "aws.s3",
  "account", "time", "region", "resources", "detail": {"bucket": {"name"}, "object":
  {"key", "size", "etag", "version-id", "sequencer"}, "request-id", "requester",
  "source-ip-address", "reason"}}``
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html).

Each S3 event becomes one `NewEvent` of kind ``s3`` exactly as reelay appends for its
own writes (`reelay.events.s3_record`), with the real values (time, region, size, ETag,
sequencer, version, request id, requester, source IP) and two changes: the bucket is
the app's name for it (``bucket``, not ``realBucket``), and the key is decoded as S3
encodes it (``unquote_plus``: ``+`` is a space) and encoded again by reelay, so that
the log holds one spelling of each key. EventBridge keys are URL-encoded the same way.

Each entry carries the key of its dedupe record in the State: the real bucket, the key
and the ``sequencer`` (S3's identity of one write or delete of one key, the same in a
direct notification, its SNS copy and its EventBridge event); without a sequencer, the
EventBridge event id, else the S3 request id with the key and event name, else the
SQS message id and the record's place in it.

What is not an S3 event is recorded, not dropped: an ``s3:TestEvent`` becomes an
event ``S3 Test Event Skipped`` and anything unreadable (not JSON, an unknown shape,
a record of another bucket, an unknown event name, a key reelay cannot store) an event
``Source Message Rejected`` naming the problem, both from source ``reelay.sources``,
so that a rule (or an alert) can watch them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from reelay.errors import InvalidKeyError
from reelay.events import S3_EVENT_NAMES, bus_event, s3_event, s3_record
from reelay.sources._spec import SQSSource
from reelay.state import NewEvent
from reelay.storage import ObjectInfo, validate_key

__all__ = ["REJECTED", "SKIPPED", "SOURCE", "Entry", "read_message"]

SOURCE = "reelay.sources"
SKIPPED = "S3 Test Event Skipped"
REJECTED = "Source Message Rejected"
_BODY_EXCERPT = 2048  # characters of a rejected body kept on its event

# EventBridge's detail-type (and, for two of them, the detail's reason or deletion
# type) -> the record's eventName. The S3 User Guide's "Using EventBridge" lists them.
_CREATED_BY_REASON = {
    "PutObject": "ObjectCreated:Put",
    "POST Object": "ObjectCreated:Post",
    "CopyObject": "ObjectCreated:Copy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}
_ONE_TO_ONE = {
    "Object Restore Initiated": "ObjectRestore:Post",
    "Object Restore Completed": "ObjectRestore:Completed",
    "Object Restore Expired": "ObjectRestore:Delete",
    "Object Storage Class Changed": "LifecycleTransition",
    "Object Access Tier Changed": "IntelligentTiering",
    "Object ACL Updated": "ObjectAcl:Put",
    "Object Tags Added": "ObjectTagging:Put",
    "Object Tags Deleted": "ObjectTagging:Delete",
}
EVENTBRIDGE_TYPES = ("Object Created", "Object Deleted", *_ONE_TO_ONE)


class _Malformed(ValueError):
    """What makes one record (or a whole body) unusable, in words for its event."""


@dataclass(frozen=True)
class Entry:
    """One event to append once: ``dedupe`` is its record's key in the State."""

    dedupe: str
    event: NewEvent
    line: str  # what happened, for the log of `reelay up`


def read_message(body: str, message_id: str, source: SQSSource, *, region: str) -> list[Entry]:
    """The events one SQS message stands for (at least one: a message that holds no S3
    event is recorded as skipped or rejected). ``region`` is the default for records
    that do not name theirs."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return [_rejected(source, message_id, 0, f"the body is not JSON: {exc}", body, region)]
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
        try:  # an SNS envelope: the S3 notification is its Message, as text
            doc = json.loads(doc["Message"])
        except (TypeError, ValueError, RecursionError) as exc:
            problem = f"the SNS notification's Message is not JSON: {exc}"
            return [_rejected(source, message_id, 0, problem, body, region)]
    if not isinstance(doc, dict):
        problem = f"the body is JSON but not an object: {type(doc).__name__}"
        return [_rejected(source, message_id, 0, problem, body, region)]
    if doc.get("Event") == "s3:TestEvent":
        return [_skipped(source, message_id, doc, region)]
    if "Records" in doc:
        records = doc["Records"]
        if not isinstance(records, list) or not records:
            problem = "'Records' must be a non-empty list of S3 event records"
            return [_rejected(source, message_id, 0, problem, body, region)]
        out = []
        for index, record in enumerate(records):
            try:
                out.append(_from_record(record, source, message_id, index, region))
            except _Malformed as exc:
                problem = f"record {index}: {exc}"
                out.append(_rejected(source, message_id, index, problem, body, region))
        return out
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        try:
            return [_from_eventbridge(doc, source, message_id, region)]
        except _Malformed as exc:
            return [_rejected(source, message_id, 0, str(exc), body, region)]
    problem = (
        'not an S3 event notification ({"Records": [...]}), an S3 EventBridge event '
        "(source aws.s3) nor s3:TestEvent"
    )
    return [_rejected(source, message_id, 0, problem, body, region)]


# -- S3 events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _S3Event:
    """What an S3 event says, whichever shape it came in."""

    name: str
    bucket: str  # the real bucket
    key: str  # decoded
    size: int | None
    etag: str | None
    sequencer: str | None
    version_id: str | None
    region: str
    time: datetime | None
    request_id: str | None
    host_id: str | None
    principal: str | None
    source_ip: str | None
    configuration_id: str | None
    event_version: str | None
    event_id: str | None  # EventBridge's


def _from_record(record: Any, source: SQSSource, message_id: str, index: int, region: str) -> Entry:
    if not isinstance(record, dict):
        raise _Malformed(f"a record must be an object, not {type(record).__name__}")
    name = _event_name(record.get("eventName"))
    s3 = _mapping(record, "s3")
    bucket = _text(_mapping(s3, "bucket", "s3."), "name", "s3.bucket.")
    obj = _mapping(s3, "object", "s3.")
    response = _optional_mapping(record, "responseElements")
    event = _S3Event(
        name=name,
        bucket=bucket,
        key=_key(_text(obj, "key", "s3.object.")),
        size=_size(obj.get("size")),
        etag=_optional_text(obj.get("eTag")),
        sequencer=_optional_text(obj.get("sequencer")),
        version_id=_optional_text(obj.get("versionId")),
        region=_optional_text(record.get("awsRegion")) or region,
        time=_time(record.get("eventTime")),
        request_id=_optional_text(response.get("x-amz-request-id")),
        host_id=_optional_text(response.get("x-amz-id-2")),
        principal=_optional_text(_optional_mapping(record, "userIdentity").get("principalId")),
        source_ip=_optional_text(
            _optional_mapping(record, "requestParameters").get("sourceIPAddress")
        ),
        configuration_id=_optional_text(s3.get("configurationId")),
        event_version=_optional_text(record.get("eventVersion")),
        event_id=None,
    )
    return _entry(event, source, message_id, index)


def _from_eventbridge(
    doc: dict[str, Any], source: SQSSource, message_id: str, region: str
) -> Entry:
    detail = _mapping(doc, "detail")
    detail_type = doc.get("detail-type")
    name = _eventbridge_name(detail_type, detail)
    bucket = _text(_mapping(detail, "bucket", "detail."), "name", "detail.bucket.")
    obj = _mapping(detail, "object", "detail.")
    event = _S3Event(
        name=name,
        bucket=bucket,
        key=_key(_text(obj, "key", "detail.object.")),
        size=_size(obj.get("size")),
        etag=_optional_text(obj.get("etag", obj.get("eTag"))),
        sequencer=_optional_text(obj.get("sequencer")),
        version_id=_optional_text(obj.get("version-id")),
        region=_optional_text(doc.get("region")) or region,
        time=_time(doc.get("time")),
        request_id=_optional_text(detail.get("request-id")),
        host_id=None,
        principal=_optional_text(detail.get("requester")),
        source_ip=_optional_text(detail.get("source-ip-address")),
        configuration_id=None,
        event_version=None,
        event_id=_optional_text(doc.get("id")),
    )
    return _entry(event, source, message_id, 0)


def _eventbridge_name(detail_type: Any, detail: dict[str, Any]) -> str:
    if detail_type == "Object Created":
        # An unknown reason is still a creation: every s3:ObjectCreated:* trigger
        # matches it, as it would have matched the real one.
        return _CREATED_BY_REASON.get(str(detail.get("reason")), "ObjectCreated:Put")
    if detail_type == "Object Deleted":
        marker = detail.get("deletion-type") == "Delete Marker Created"
        if detail.get("reason") == "Lifecycle Expiration":
            return "LifecycleExpiration:" + ("DeleteMarkerCreated" if marker else "Delete")
        return "ObjectRemoved:" + ("DeleteMarkerCreated" if marker else "Delete")
    if isinstance(detail_type, str) and detail_type in _ONE_TO_ONE:
        return _ONE_TO_ONE[detail_type]
    raise _Malformed(
        f"unknown S3 EventBridge detail-type {detail_type!r}; known: {', '.join(EVENTBRIDGE_TYPES)}"
    )


def _entry(event: _S3Event, source: SQSSource, message_id: str, index: int) -> Entry:
    if event.bucket != source.real_bucket:
        raise _Malformed(
            f"bucket {event.bucket!r} is not the bucket of this source ({source.real_bucket!r}); "
            "give each bucket a queue of its own, or a source entry naming it as realBucket"
        )
    info = ObjectInfo(
        source.bucket,
        event.key,
        event.size or 0,
        event.etag or "",
        event.time or datetime.now(UTC),
        event.sequencer,
    )
    record = s3_record(
        event.name,
        info,
        bucket=source.bucket,
        key=event.key,
        region=event.region,
        request_id=event.request_id,
        principal=event.principal or "AWS",
        source_ip=event.source_ip or "0.0.0.0",
        configuration_id=event.configuration_id or source.name,
        now=event.time,
        version_id=event.version_id,
    )
    if event.event_version:
        record["eventVersion"] = event.event_version
    if event.host_id:
        record["responseElements"]["x-amz-id-2"] = event.host_id
    obj = record["s3"]["object"]
    if event.size is None:
        obj.pop("size", None)  # S3 said nothing of it (an ACL or tagging event, say)
    if event.etag is None:
        obj.pop("eTag", None)
    body = json.dumps(s3_event([record]))
    identity: tuple[str, ...]
    if event.sequencer:
        identity = ("sequencer", event.bucket, event.key, event.sequencer)
    elif event.event_id:
        identity = ("eventbridge", event.event_id)
    elif event.request_id:
        identity = ("request", event.bucket, event.key, event.name, event.request_id)
    else:
        identity = ("message", source.queue, message_id, str(index))
    where = f"s3://{source.bucket}/{event.key}"
    if source.bucket != event.bucket:
        where += f" (s3://{event.bucket})"
    return Entry(
        _dedupe(*identity),
        NewEvent("s3", body, source="aws.s3", detail_type=event.name),
        f"{event.name} {where}",
    )


def _event_name(value: Any) -> str:
    if not isinstance(value, str):
        raise _Malformed(f"eventName must be a string, got {value!r}")
    name = value[3:] if value.startswith("s3:") else value
    if name not in S3_EVENT_NAMES:
        raise _Malformed(f"unknown S3 eventName {value!r}")
    return name


def _key(encoded: str) -> str:
    key = unquote_plus(encoded)
    try:
        return validate_key(key)
    except InvalidKeyError as exc:
        raise _Malformed(f"object key {key!r} cannot be stored by reelay: {exc}") from None


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Malformed(f"object size must be a non-negative integer, got {value!r}")
    return value


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time with its zone (S3's and EventBridge's); None for anything else
    (the record then carries the time it was read)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _mapping(doc: dict[str, Any], field: str, path: str = "") -> dict[str, Any]:
    value = doc.get(field)
    if not isinstance(value, dict):
        raise _Malformed(f"{path}{field} must be an object, got {value!r}")
    return value


def _optional_mapping(doc: dict[str, Any], field: str) -> dict[str, Any]:
    value = doc.get(field)
    return value if isinstance(value, dict) else {}


def _text(doc: dict[str, Any], field: str, path: str = "") -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{path}{field} must be a non-empty string, got {value!r}")
    return value


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dedupe(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"source:{digest}"


# -- what is not an S3 event ---------------------------------------------------------------


def _skipped(source: SQSSource, message_id: str, doc: dict[str, Any], region: str) -> Entry:
    detail = {
        "queue": source.queue,
        "messageId": message_id,
        "bucket": source.bucket,
        "realBucket": doc.get("Bucket"),
        "event": "s3:TestEvent",
        "time": doc.get("Time"),
        "requestId": doc.get("RequestId"),
    }
    return _note(source, message_id, 0, SKIPPED, detail, region, "skipped s3:TestEvent")


def _rejected(
    source: SQSSource, message_id: str, index: int, problem: str, body: str, region: str
) -> Entry:
    excerpt = body if len(body) <= _BODY_EXCERPT else body[:_BODY_EXCERPT] + "..."
    detail = {
        "queue": source.queue,
        "messageId": message_id,
        "bucket": source.bucket,
        "problem": problem,
        "body": excerpt,
    }
    return _note(source, message_id, index, REJECTED, detail, region, f"rejected: {problem}")


def _note(
    source: SQSSource,
    message_id: str,
    index: int,
    detail_type: str,
    detail: dict[str, Any],
    region: str,
    line: str,
) -> Entry:
    body = bus_event(
        SOURCE, detail_type, detail, resources=[_queue_arn(source, region)], region=region
    )
    return Entry(
        _dedupe("message", source.queue, message_id, str(index)),
        NewEvent("event", json.dumps(body), source=SOURCE, detail_type=detail_type),
        f"message {message_id}: {line}",
    )


def _queue_arn(source: SQSSource, region: str) -> str:
    parts = source.queue.rstrip("/").split("/")
    account = parts[-2] if len(parts) >= 2 and parts[-2].isdigit() else "000000000000"
    return f"arn:aws:sqs:{region}:{account}:{source.name}"
