"""S3 event notifications, in the exact JSON that Amazon S3 sends to Lambda.

A handler written for S3-triggered Lambda reads ``event["Records"][0]["s3"]`` and
works unchanged. The record follows AWS's "Event message structure" (event version
2.1; see https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html)::

    {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2024-05-01T12:00:00.123Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "reelay"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "...", "x-amz-id-2": "..."},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "reelay",
               "bucket": {"name": "uploads", "ownerIdentity": {"principalId": "reelay"},
                          "arn": "arn:aws:s3:::uploads"},
               "object": {"key": "videos/my+film.mp4", "size": 1024,
                          "eTag": "0123456789abcdef0123456789abcdef",
                          "sequencer": "0017B2C5D6E7F80910"}}}]}

Details that code written against AWS depends on:

- ``eventName`` has no ``s3:`` prefix (``ObjectCreated:Put``), while notification
  configurations name events with it (``s3:ObjectCreated:*``); `s3_event_matches`
  bridges the two.
- The object key is URL-encoded as an HTML form value, as S3 does: a space becomes
  ``+``, ``/`` stays as it is, letters, digits and ``. - _ *`` stay, everything else
  becomes ``%XX`` of its UTF-8 bytes. ``urllib.parse.unquote_plus`` recovers the key.
- ``ObjectRemoved`` records carry no ``size`` or ``eTag`` (there is no object any
  more); ``versionId`` appears only for versioned objects; ``sequencer`` only for
  writes and deletes (``ObjectCreated``, ``ObjectRemoved``, ``LifecycleExpiration``).
- ``sequencer`` orders events for one key: compare two sequencers as hex numbers of
  equal length (`next_sequencer` makes them all 18 digits, so plain string
  comparison works).
- ``eventVersion`` is 2.1 except where AWS documents otherwise: 2.2 for replication
  events, 2.3 for lifecycle, Intelligent-Tiering, ACL, tagging and restore-delete
  events.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any

from reelay.errors import InvalidEventError
from reelay.storage import ObjectInfo

__all__ = [
    "S3_CONFIGURABLE_EVENTS",
    "S3_EVENT_NAMES",
    "encode_s3_key",
    "next_sequencer",
    "s3_event",
    "s3_event_matches",
    "s3_record",
]

#: Every concrete S3 event type, as it appears in a record's ``eventName``
#: (the enumeration of the S3 API's ``Event`` type, without the ``s3:`` prefix).
S3_EVENT_NAMES: frozenset[str] = frozenset(
    {
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "ObjectRestore:Post",
        "ObjectRestore:Completed",
        "ObjectRestore:Delete",
        "ReducedRedundancyLostObject",
        "Replication:OperationFailedReplication",
        "Replication:OperationNotTracked",
        "Replication:OperationMissedThreshold",
        "Replication:OperationReplicatedAfterThreshold",
        "LifecycleTransition",
        "LifecycleExpiration:Delete",
        "LifecycleExpiration:DeleteMarkerCreated",
        "IntelligentTiering",
        "ObjectAcl:Put",
        "ObjectTagging:Put",
        "ObjectTagging:Delete",
        "ObjectAnnotation:Put",
        "ObjectAnnotation:Delete",
        "ObjectRetention:Put",
    }
)

# The families S3 accepts a ``:*`` wildcard for (not every family with a colon).
_WILDCARD_FAMILIES = (
    "ObjectCreated",
    "ObjectRemoved",
    "ObjectRestore",
    "Replication",
    "LifecycleExpiration",
    "ObjectTagging",
    "ObjectAnnotation",
)

#: Every name a notification configuration accepts: ``s3:`` + a concrete name, or
#: ``s3:Family:*`` for a whole family (``s3:ObjectCreated:*``).
S3_CONFIGURABLE_EVENTS: frozenset[str] = frozenset(
    {f"s3:{name}" for name in S3_EVENT_NAMES} | {f"s3:{family}:*" for family in _WILDCARD_FAMILIES}
)

_VERSION_2_2 = ("Replication:",)
_VERSION_2_3 = (
    "LifecycleExpiration:",
    "LifecycleTransition",
    "IntelligentTiering",
    "ObjectAcl:",
    "ObjectTagging:",
    "ObjectRestore:Delete",
)
_WITH_SEQUENCER = ("ObjectCreated:", "ObjectRemoved:", "LifecycleExpiration:")
_WITHOUT_CONTENT = ("ObjectRemoved:", "LifecycleExpiration:")

# Characters an HTML form encoder leaves alone (java.net.URLEncoder's set), plus '/',
# which S3 keeps unescaped in event keys.
_KEY_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_*/")


def encode_s3_key(key: str) -> str:
    """URL-encode an object key the way S3 writes it into event records.

    ``"videos/my film (1).mp4"`` becomes ``"videos/my+film+%281%29.mp4"``.
    """
    out: list[str] = []
    for byte in key.encode("utf-8"):
        if byte in _KEY_SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


_sequencer_lock = threading.Lock()
_last_sequencer = 0


def next_sequencer() -> str:
    """Return a new S3-style sequencer, greater than every one returned before.

    18 uppercase hex digits built from the wall clock in nanoseconds, bumped when
    the clock has not moved (or went backwards) so values strictly increase within
    a process; across processes they follow the clock.
    """
    global _last_sequencer
    with _sequencer_lock:
        _last_sequencer = max(_last_sequencer + 1, time.time_ns())
        return f"{_last_sequencer:018X}"


def _strip_prefix(name: str, *, what: str) -> str:
    if not isinstance(name, str):
        raise InvalidEventError(f"{what} must be a str, got {type(name).__name__}: {name!r}")
    return name[3:] if name.startswith("s3:") else name


def _check_event_name(event_name: str) -> str:
    name = _strip_prefix(event_name, what="S3 event name")
    if name not in S3_EVENT_NAMES:
        raise InvalidEventError(
            f"unknown S3 event name {event_name!r}; valid names: "
            f"{', '.join(sorted(S3_EVENT_NAMES))}"
        )
    return name


def _event_version(name: str) -> str:
    if name.startswith(_VERSION_2_2):
        return "2.2"
    if name.startswith(_VERSION_2_3):
        return "2.3"
    return "2.1"


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _event_time(now: datetime | None) -> str:
    moment = datetime.now(UTC) if now is None else now
    if moment.tzinfo is None:
        raise InvalidEventError(
            f"event time {moment.isoformat()} has no time zone; pass an aware datetime"
        )
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _host_id(request_id: str) -> str:
    # S3's x-amz-id-2 is an opaque base64 token; derive one from the request id so
    # that a record is reproducible from its inputs.
    digest = hashlib.sha384(f"reelay/{request_id}".encode()).digest()
    return base64.b64encode(digest).decode("ascii")


def s3_record(
    event_name: str,
    info: ObjectInfo | None,
    *,
    bucket: str,
    key: str,
    region: str = "us-east-1",
    request_id: str | None = None,
    principal: str = "reelay",
    source_ip: str = "127.0.0.1",
    configuration_id: str = "reelay",
    now: datetime | None = None,
    version_id: str | None = None,
) -> dict[str, Any]:
    """Build one S3 event-notification record.

    ``event_name`` is a concrete event type, with or without the ``s3:`` prefix
    (``"ObjectCreated:Put"``). ``info`` describes the object (size, etag, sequencer);
    it is required for every event except removals, where it is ignored. ``key`` is
    the raw key and is URL-encoded here. ``now`` (aware) is the event time, default
    the current time; ``request_id`` defaults to a fresh random one; the sequencer is
    ``info.sequencer`` or a new `next_sequencer`.
    """
    name = _check_event_name(event_name)
    removal = name.startswith(_WITHOUT_CONTENT)
    if info is None and not removal:
        raise InvalidEventError(
            f"an {name} record needs the object's ObjectInfo (size and eTag); got None"
        )
    if not bucket or not key:
        raise InvalidEventError(f"an S3 record needs a bucket and a key; got {bucket!r}, {key!r}")
    request = request_id or secrets.token_hex(8).upper()
    obj: dict[str, Any] = {"key": encode_s3_key(key)}
    if info is not None and not removal:
        obj["size"] = info.size
        obj["eTag"] = info.etag
    if version_id is not None:
        obj["versionId"] = version_id
    if name.startswith(_WITH_SEQUENCER):
        obj["sequencer"] = (info.sequencer if info is not None else None) or next_sequencer()
    return {
        "eventVersion": _event_version(name),
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": _event_time(now),
        "eventName": name,
        "userIdentity": {"principalId": principal},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request, "x-amz-id-2": _host_id(request)},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": principal},
                "arn": f"arn:{_partition(region)}:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def s3_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Wrap records into the event a Lambda handler receives: ``{"Records": [...]}``."""
    if not isinstance(records, list):
        raise InvalidEventError(f"records must be a list, got {type(records).__name__}")
    return {"Records": list(records)}


def s3_event_matches(configured: str, event_name: str) -> bool:
    """Whether a configured event type selects an event, as S3 decides it.

    ``configured`` is a notification-configuration name: ``s3:ObjectCreated:*``
    matches every ``ObjectCreated:...`` event, ``s3:ObjectCreated:Put`` only that one.
    ``event_name`` is a record's ``eventName`` (the ``s3:`` prefix is tolerated).
    Both are validated; an unknown name raises `reelay.errors.InvalidEventError`
    listing the valid ones.
    """
    if not isinstance(configured, str) or configured not in S3_CONFIGURABLE_EVENTS:
        hint = ""
        if isinstance(configured, str) and f"s3:{configured}" in S3_CONFIGURABLE_EVENTS:
            hint = f" (did you mean 's3:{configured}'?)"
        raise InvalidEventError(
            f"unknown S3 event type {configured!r} in a notification configuration{hint}; "
            f"valid types: {', '.join(sorted(S3_CONFIGURABLE_EVENTS))}"
        )
    name = _check_event_name(event_name)
    wanted = configured[3:]
    if wanted.endswith(":*"):
        return name.startswith(wanted[:-1])
    return name == wanted
