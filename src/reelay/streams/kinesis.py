"""The Kinesis API: Amazon Kinesis Data Streams' JSON protocol over a `Streams`, so that
boto3's kinesis client, the AWS CLI and other Kinesis producers and consumers work
unchanged with their endpoint pointed at reelay (``reelay up`` serves it).

The protocol is botocore's service model ``kinesis/2013-12-02``: ``POST /`` with
``X-Amz-Target: Kinesis_20131202.<Operation>`` and ``Content-Type:
application/x-amz-json-1.1``, one JSON object in and one out; blobs travel as base64,
times as epoch seconds. A refusal is HTTP 400 (500: the service's own failure) with
``{"__type": "<code>", "message": "..."}``, which the SDKs raise by its code
(``ResourceNotFoundException``, ``ValidationException``, ``ExpiredIteratorException``...).
Requests are signed with AWS Signature Version 4 by access keys that reelay issues
(`reelay.keys`, `reelay.sigv4`).

- `Kinesis`: the operations, on a `Streams` (blocking; `KinesisApp` runs them off the
  event loop): CreateStream, DeleteStream, ListStreams, DescribeStream,
  DescribeStreamSummary, ListShards, PutRecord, PutRecords, GetShardIterator,
  GetRecords, IncreaseStreamRetentionPeriod and DecreaseStreamRetentionPeriod. Input is
  checked as Kinesis checks it (the model's types, lengths, patterns; its limits: 1 MiB
  a record, 500 records and 5 MiB a PutRecords, 10,000 records or 10 MiB a GetRecords).
- `KinesisApp`: the ASGI side: a bounded body, the signature, refusals audited, every
  answer in Kinesis's shape (never a traceback).
- `KinesisRouter`: ASGI middleware that sends Kinesis's requests to a `KinesisApp` and
  everything else on.

PutRecords is the hot path: its records are checked, decoded and made requests in one
pass, and with ``reelay[fast]`` installed its JSON is read and written by orjson and its
base64 decoded by pybase64 (uvicorn's HTTP parsing by httptools), each with the
standard library behind it, so the answers are the same (benchmarks/streams.py
measures it beside moto).

Shard iterators (and the NextTokens of ListStreams and ListShards) are opaque: the
stream, shard and cursor with the time they were issued, under an HMAC keyed by the
deployment's secret key, so they cannot be forged or altered and every server of a
deployment takes them; they expire after 5 minutes (``ExpiredIteratorException``), as
Kinesis's do. Streams are also named by ARN (``arn:aws:kinesis:REGION:ACCOUNT:stream/NAME``,
account `ACCOUNT_ID`) wherever the model takes one.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from reelay.errors import (
    AuthenticationError,
    InvalidStreamArgumentError,
    KinesisApiError,
    StreamError,
    StreamExistsError,
    StreamNotFoundError,
)
from reelay.keys import AccessKeys
from reelay.sigv4 import Signed, verify
from reelay.streams import (
    HASH_SPACE,
    MAX_RECORD_BYTES,
    MAX_RETENTION_HOURS,
    MAX_SHARDS,
    Position,
    Put,
    PutRequest,
    Shard,
    StreamInfo,
    Streams,
)

__all__ = [
    "ACCOUNT_ID",
    "MAX_BODY_BYTES",
    "OPERATIONS",
    "TARGET_PREFIX",
    "Kinesis",
    "KinesisApp",
    "KinesisRouter",
]

TARGET_PREFIX = "Kinesis_20131202."
ACCOUNT_ID = "000000000000"  # the account in reelay's stream ARNs
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_PUT_RECORDS = 500
MAX_PUT_RECORDS_BYTES = 5 << 20  # data and partition keys of one PutRecords, as Kinesis
MAX_GET_RECORDS = 10000
MAX_GET_RECORDS_BYTES = 10 << 20  # data of one GetRecords answer, as Kinesis
# 5 MiB of records in base64 is 6.7 MiB; with 500 partition keys and the JSON around
# them a full PutRecords stays under 7 MiB. Anything larger is refused unread.
MAX_BODY_BYTES = 8 << 20
ON_DEMAND_SHARDS = 4  # an on-demand stream's shards (Kinesis starts one with 4)
MIN_RETENTION_HOURS = 24  # Kinesis's shortest (the Streams seam allows 1 hour)
ITERATOR_TTL_S = 300.0
TOKEN_TTL_S = 300.0
_LOG = logging.getLogger(__name__)

# Optional accelerators (``reelay[fast]``), each with the standard library behind it.
try:  # base64 (`_unbase64`)
    from pybase64 import b64decode as _fast_b64decode
except ImportError:  # pragma: no cover - not installed
    _fast_b64decode = None  # type: ignore[assignment]
try:  # JSON (`_fast_params`, `_json`)
    import orjson
except ImportError:  # pragma: no cover - not installed
    orjson = None  # type: ignore[assignment]

# -- input shapes (botocore's model, the parts Kinesis checks) -------------------------------


@dataclass(frozen=True)
class _Shape:
    """A member of an input: its JSON type, whether required, and its constraints
    (``low``/``high``: a length for strings, blobs and lists, a value for integers)."""

    kind: str  # string | integer | boolean | blob | timestamp | list | structure | map
    required: bool = False
    low: int | None = None
    high: int | None = None
    pattern: str | None = None
    enum: tuple[str, ...] = ()
    member: _Shape | None = None
    members: Mapping[str, _Shape] = field(default_factory=dict)


def _string(low: int | None = None, high: int | None = None, pattern: str | None = None) -> _Shape:
    return _Shape("string", low=low, high=high, pattern=pattern)


def _required(shape: _Shape) -> _Shape:
    return _Shape(**{**shape.__dict__, "required": True})


_NAME = _string(1, 128, r"[a-zA-Z0-9_.-]+")
_ARN = _string(1, 2048, r"arn:aws.*:kinesis:.*:\d{12}:stream/\S+")
_SHARD_ID = _string(1, 128, r"[a-zA-Z0-9_.-]+")
_PARTITION_KEY = _string(1, 256)
_HASH_KEY = _string(pattern=r"0|([1-9]\d{0,38})")
_SEQUENCE = _string(pattern=r"0|([1-9]\d{0,128})")
_TOKEN = _string(1, 1048576)
_STREAM = {"StreamName": _NAME, "StreamARN": _ARN}
_ITERATOR_TYPES = (
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
)
_SHARD_FILTERS = (
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
)
_RECORD = _Shape(
    "structure",
    members={
        "Data": _Shape("blob", required=True, high=MAX_RECORD_BYTES),
        "ExplicitHashKey": _HASH_KEY,
        "PartitionKey": _required(_PARTITION_KEY),
    },
)
SHAPES: dict[str, dict[str, _Shape]] = {
    "CreateStream": {
        "StreamName": _required(_NAME),
        "ShardCount": _Shape("integer", low=1),
        "StreamModeDetails": _Shape(
            "structure",
            members={"StreamMode": _Shape("string", True, enum=("PROVISIONED", "ON_DEMAND"))},
        ),
        "Tags": _Shape("map"),
    },
    "DeleteStream": {**_STREAM, "EnforceConsumerDeletion": _Shape("boolean")},
    "ListStreams": {
        "Limit": _Shape("integer", low=1, high=10000),
        "ExclusiveStartStreamName": _NAME,
        "NextToken": _TOKEN,
    },
    "DescribeStreamSummary": _STREAM,
    "DescribeStream": {
        **_STREAM,
        "Limit": _Shape("integer", low=1, high=10000),
        "ExclusiveStartShardId": _SHARD_ID,
    },
    "ListShards": {
        **_STREAM,
        "NextToken": _TOKEN,
        "ExclusiveStartShardId": _SHARD_ID,
        "MaxResults": _Shape("integer", low=1, high=10000),
        "StreamCreationTimestamp": _Shape("timestamp"),
        "ShardFilter": _Shape(
            "structure",
            members={
                "Type": _Shape("string", True, enum=_SHARD_FILTERS),
                "ShardId": _SHARD_ID,
                "Timestamp": _Shape("timestamp"),
            },
        ),
    },
    "PutRecord": {
        **_STREAM,
        "Data": _Shape("blob", required=True, high=MAX_RECORD_BYTES),
        "PartitionKey": _required(_PARTITION_KEY),
        "ExplicitHashKey": _HASH_KEY,
        "SequenceNumberForOrdering": _SEQUENCE,
    },
    "PutRecords": {
        **_STREAM,
        "Records": _Shape("list", True, low=1, high=MAX_PUT_RECORDS, member=_RECORD),
    },
    "GetShardIterator": {
        **_STREAM,
        "ShardId": _required(_SHARD_ID),
        "ShardIteratorType": _Shape("string", True, enum=_ITERATOR_TYPES),
        "StartingSequenceNumber": _SEQUENCE,
        "Timestamp": _Shape("timestamp"),
    },
    # GetRecords checks Limit's top itself: Kinesis answers a Limit over 10,000 with
    # InvalidArgumentException, not the model's ValidationException.
    "GetRecords": {
        "ShardIterator": _required(_string(1, 512)),
        "Limit": _Shape("integer", low=1),
        "StreamARN": _ARN,
    },
    "IncreaseStreamRetentionPeriod": {
        **_STREAM,
        "RetentionPeriodHours": _Shape("integer", required=True),
    },
    "DecreaseStreamRetentionPeriod": {
        **_STREAM,
        "RetentionPeriodHours": _Shape("integer", required=True),
    },
}
OPERATIONS = tuple(SHAPES)
SHAPES["_StreamOnly"] = _STREAM  # what PutRecords takes besides its records


def _unbase64(text: str) -> bytes:
    """``base64.b64decode(text, validate=True)``: the alphabet only, padding as it must
    be. pybase64, where installed, decodes several times faster; it refuses a little more
    (excess padding), never less, and what it takes it decodes alike, so what it refuses
    is asked of the standard library again, which has the last word."""
    if _fast_b64decode is not None:
        try:
            decoded: bytes = _fast_b64decode(text, validate=True)
            return decoded
        except (binascii.Error, ValueError):
            pass
    return base64.b64decode(text, validate=True)


def _plain_requests(records: Any) -> tuple[list[PutRequest], int] | None:
    """PutRecords' entries as requests, and the bytes of their data and partition keys,
    when every one is plainly valid (data in base64 up to 1 MiB, a partition key, no
    explicit hash key): the general check takes member by member what this does in one
    loop. None when any is not: the general check then says what is wrong."""
    if type(records) is not list or not 1 <= len(records) <= MAX_PUT_RECORDS:
        return None
    unbase64, request = _unbase64, PutRequest
    out = []
    size = 0
    for entry in records:
        if type(entry) is not dict or "ExplicitHashKey" in entry:
            return None
        data, key = entry.get("Data"), entry.get("PartitionKey")
        if type(data) is not str or type(key) is not str or not 1 <= len(key) <= 256:
            return None
        try:
            raw = unbase64(data)
        except (binascii.Error, ValueError):
            return None
        if len(raw) > MAX_RECORD_BYTES:
            return None
        size += len(raw) + (len(key) if key.isascii() else len(key.encode()))
        out.append(request(key, raw))
    return out, size


def _unknown(operation: str) -> KinesisApiError:
    return KinesisApiError(
        "UnknownOperationException",
        f"No operation {operation[:100]!r} here; reelay serves {', '.join(sorted(OPERATIONS))}",
    )


def _invalid(message: str) -> KinesisApiError:
    return KinesisApiError("InvalidArgumentException", message)


def _serialization(message: str) -> KinesisApiError:
    return KinesisApiError("SerializationException", message)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


class _Wrong(Exception):
    """A member whose JSON type is wrong: where (``parts``, innermost last) and what."""

    def __init__(self, problem: str) -> None:
        self.parts: list[str] = []
        self.problem = problem


def _decoded(value: Any, shape: _Shape) -> Any:
    """``value`` as the operation takes it (a blob's bytes, a timestamp's epoch seconds),
    or `_Wrong` when its JSON type is not the member's. (Paths are put together only for
    a failure: a PutRecords of 500 records is checked member by member.)"""
    kind = shape.kind
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "blob":
        if isinstance(value, str):
            try:
                return _unbase64(value)
            except (binascii.Error, ValueError):
                raise _Wrong("not base64 (a blob travels base64-encoded)") from None
    elif kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if isinstance(value, float):
            raise _Wrong(f"expected a whole number, not {value!r}")
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind == "timestamp":
        return _timestamp(value)
    elif kind == "map":
        if isinstance(value, dict):
            return value
    elif kind == "list":
        if isinstance(value, list):
            assert shape.member is not None
            out = []
            for i, item in enumerate(value, 1):
                try:
                    out.append(None if item is None else _decoded(item, shape.member))
                except _Wrong as exc:
                    exc.parts.append(str(i))
                    raise
            return out
    elif isinstance(value, dict):  # a structure
        decoded = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                try:
                    decoded[name] = _decoded(item, member)
                except _Wrong as exc:
                    exc.parts.append(_lower_first(name))
                    raise
        return decoded
    expected = "an object" if kind == "structure" else f"{'an' if kind[0] in 'aei' else 'a'} {kind}"
    raise _Wrong(f"expected {expected}, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _timestamp(value: Any) -> float:
    """Epoch seconds from a number (what the SDKs send) or an ISO 8601 text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _Wrong(f"not a time: {value!r}")
        return float(value)
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
    raise _Wrong(f"expected a time (epoch seconds or ISO 8601), not {str(value)[:100]!r}")


_Violation = tuple[list[str], str, str]  # where (innermost first), "Value ..." shown, rule
_PATTERNS: dict[str, re.Pattern[str]] = {}


def _violations(value: Any, shape: _Shape) -> list[_Violation]:
    """What ``value`` breaks of ``shape``'s constraints (nothing: an empty list)."""
    if value is None:
        return [([], "Value null", "not be null")] if shape.required else []
    kind = shape.kind
    found: list[_Violation] = []
    if shape.low is not None or shape.high is not None:
        size = len(value) if kind in ("string", "blob", "list") else value
        measure = "value" if kind == "integer" else "length"
        if shape.low is not None and size < shape.low:
            found.append(
                ([], _shown(value, kind), f"have {measure} greater than or equal to {shape.low}")
            )
        if shape.high is not None and size > shape.high:
            found.append(
                ([], _shown(value, kind), f"have {measure} less than or equal to {shape.high}")
            )
    if shape.pattern is not None:
        pattern = _PATTERNS.get(shape.pattern) or _PATTERNS.setdefault(
            shape.pattern, re.compile(shape.pattern)
        )
        if not pattern.fullmatch(value):
            rule = f"satisfy regular expression pattern: {shape.pattern}"
            found.append(([], _shown(value, kind), rule))
    if shape.enum and value not in shape.enum:
        rule = f"satisfy enum value set: [{', '.join(shape.enum)}]"
        found.append(([], _shown(value, kind), rule))
    if kind == "list" and shape.member is not None:
        for i, item in enumerate(value, 1):
            if item is None:  # a list holds no nulls
                found.append((["member", f"{i}"], "Value null", "not be null"))
                continue
            for where, shown, rule in _violations(item, shape.member):
                found.append(([*where, "member", f"{i}"], shown, rule))
    for name, member in shape.members.items():
        for where, shown, rule in _violations(value.get(name), member):
            found.append(([*where, _lower_first(name)], shown, rule))
    return found


def _shown(value: Any, kind: str) -> str:
    """A value as Kinesis's messages show it (a list's is not shown)."""
    if kind == "blob":
        return f"Value 'java.nio.HeapByteBuffer[pos=0 lim={len(value)} cap={len(value)}]'"
    if kind == "list":
        return "Value"
    text = str(value)
    return f"Value '{text if len(text) <= 256 else text[:256] + '...'}'"


def checked(operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """An operation's input, decoded and checked against its shape: a wrong JSON type is
    a ``SerializationException``, a broken constraint a ``ValidationException`` naming
    every one (as Kinesis words them). Members the operation does not take are dropped."""
    shapes = SHAPES[operation]
    try:
        values: dict[str, Any] = _decoded(dict(params), _Shape("structure", members=shapes))
    except _Wrong as exc:
        raise _serialization(f"{'.'.join(reversed(exc.parts))}: {exc.problem}") from None
    problems = []
    for name, shape in shapes.items():
        for where, shown, rule in _violations(values.get(name), shape):
            at = ".".join(reversed([*where, _lower_first(name)]))
            problems.append(f"{shown} at '{at}' failed to satisfy constraint: Member must {rule}")
    if problems:
        count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
        raise KinesisApiError("ValidationException", f"{count}: {'; '.join(problems[:10])}")
    return values


# -- tokens ------------------------------------------------------------------------------------


_LEAD = "R"


class _BadToken(Exception):
    """A token that was not issued here (or was altered)."""


class _Tokens:
    """Opaque, tamper-proof tokens: ``kind``, issue time (ms) and fields, as JSON, with
    a 128-bit HMAC-SHA256 tag in front, in URL-safe base64 after a letter (`_LEAD`): a
    token that began with '-' would read as an option to the AWS CLI's parser."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("no key to sign tokens with")
        self._keys = list(keys)

    def issue(self, kind: str, fields: Sequence[str], now: float) -> str:
        payload = json.dumps([kind, int(now * 1000), *fields], separators=(",", ":")).encode()
        tag = hmac.new(self._keys[0], payload, hashlib.sha256).digest()[:16]
        return _LEAD + base64.urlsafe_b64encode(tag + payload).rstrip(b"=").decode()

    def open(self, kind: str, token: str) -> tuple[list[str], float]:
        """The fields of a token of ``kind`` and when it was issued (epoch seconds)."""
        if not token.startswith(_LEAD):
            raise _BadToken
        token = token[len(_LEAD) :]
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _BadToken from None
        tag, payload = raw[:16], raw[16:]
        if not any(
            hmac.compare_digest(tag, hmac.new(k, payload, hashlib.sha256).digest()[:16])
            for k in self._keys
        ):
            raise _BadToken
        data = json.loads(payload)
        if not (isinstance(data, list) and len(data) >= 2 and data[0] == kind):
            raise _BadToken
        return [str(f) for f in data[2:]], data[1] / 1000


def _utc(seconds: float) -> str:
    """A time as Kinesis's messages write it (``Thu Jan 22 01:22:02 UTC 2015``)."""
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(seconds))


# -- the operations ----------------------------------------------------------------------------


class Kinesis:
    """Kinesis's operations on a `Streams`: `call` takes an operation's name and its JSON
    input and returns its JSON output (None for an operation without one), or raises
    `KinesisApiError`. Thread-safe; blocking.

    ``token_keys`` sign shard iterators and NextTokens (`reelay.keys.SecretKey.token_keys`:
    servers sharing a secret key take each other's); ``clock`` tells the time they are
    issued and checked at (a test moves it to expire an iterator).
    """

    def __init__(
        self,
        streams: Streams,
        token_keys: Sequence[bytes],
        *,
        region: str = "us-east-1",
        account: str = ACCOUNT_ID,
        iterator_ttl_s: float = ITERATOR_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.streams = streams
        self.region = region
        self.account = account
        self.iterator_ttl_s = iterator_ttl_s
        self.clock = clock
        self._tokens = _Tokens(token_keys)
        self._operations: dict[str, Callable[[dict[str, Any]], Any]] = {
            "CreateStream": self.create_stream,
            "DeleteStream": self.delete_stream,
            "ListStreams": self.list_streams,
            "DescribeStreamSummary": self.describe_stream_summary,
            "DescribeStream": self.describe_stream,
            "ListShards": self.list_shards,
            "PutRecord": self.put_record,
            "PutRecords": self.put_records,
            "GetShardIterator": self.get_shard_iterator,
            "GetRecords": self.get_records,
            "IncreaseStreamRetentionPeriod": self.increase_retention,
            "DecreaseStreamRetentionPeriod": self.decrease_retention,
        }
        assert set(self._operations) == set(OPERATIONS)

    def call(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
        plain = _plain_requests(params.get("Records")) if operation == "PutRecords" else None
        return self._call(operation, params, plain)

    def _call(
        self,
        operation: str,
        params: Mapping[str, Any],
        plain: tuple[list[PutRequest], int] | None,
    ) -> dict[str, Any] | None:
        """`call`, given what `_plain_requests` made of a PutRecords' records."""
        run = self._operations.get(operation)
        if run is None:
            raise _unknown(operation)
        try:
            result: dict[str, Any] | None
            if plain is not None:  # the common case, its records checked in one pass
                result = self._put_plain(checked("_StreamOnly", params), *plain)
            else:
                result = run(checked(operation, params))
            return result
        except KinesisApiError:
            raise
        except StreamNotFoundError as exc:
            raise KinesisApiError("ResourceNotFoundException", str(exc)) from None
        except StreamExistsError as exc:
            raise KinesisApiError("ResourceInUseException", str(exc)) from None
        except InvalidStreamArgumentError as exc:
            raise _invalid(str(exc)) from None
        except StreamError as exc:  # the backend failed (Redis unreachable...)
            raise KinesisApiError("InternalFailureException", str(exc), 500) from None

    # -- naming streams --------------------------------------------------------------------

    def arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{name}"

    def _not_found(self, name: str) -> KinesisApiError:
        return KinesisApiError(
            "ResourceNotFoundException", f"Stream {name} under account {self.account} not found."
        )

    def _name(self, values: Mapping[str, Any]) -> str:
        """The stream named by StreamName or StreamARN (both: the same one)."""
        name: str | None = values.get("StreamName")
        arn: str | None = values.get("StreamARN")
        if arn is not None:
            match = re.fullmatch(
                r"arn:aws[^:]*:kinesis:[^:]*:(\d{12}):stream/([a-zA-Z0-9_.-]{1,128})", arn
            )
            if match is None or match[1] != self.account:
                raise KinesisApiError(
                    "ResourceNotFoundException",
                    f"Stream {arn} not found (this is account {self.account}).",
                )
            if name is not None and name != match[2]:
                raise _invalid(f"StreamName {name} and StreamARN {arn} name different streams")
            name = match[2]
        if name is None:
            raise _invalid("Either StreamName or StreamARN must be given")
        return name

    @contextlib.contextmanager
    def _stream(self, name: str) -> Iterator[None]:
        """Say a stream that is not there as Kinesis does."""
        try:
            yield
        except StreamNotFoundError:
            raise self._not_found(name) from None

    def _describe(self, name: str) -> StreamInfo:
        with self._stream(name):
            return self.streams.describe(name)

    # -- streams -----------------------------------------------------------------------------

    def create_stream(self, values: dict[str, Any]) -> None:
        name = values["StreamName"]
        mode = values.get("StreamModeDetails", {}).get("StreamMode")
        count = values.get("ShardCount")
        if count is None:
            if mode == "PROVISIONED":
                raise _invalid("ShardCount is required for a PROVISIONED stream")
            count = ON_DEMAND_SHARDS
        if count > MAX_SHARDS:
            raise KinesisApiError(
                "LimitExceededException",
                f"A stream here has at most {MAX_SHARDS} shards; {count} were asked for.",
            )
        try:
            self.streams.create_stream(name, count)
        except StreamExistsError:
            raise KinesisApiError(
                "ResourceInUseException",
                f"Stream {name} under account {self.account} already exists.",
            ) from None
        return None

    def delete_stream(self, values: dict[str, Any]) -> None:
        name = self._name(values)
        with self._stream(name):
            self.streams.delete_stream(name)
        return None

    def list_streams(self, values: dict[str, Any]) -> dict[str, Any]:
        limit = min(values.get("Limit", 100), 100)
        start: str | None = values.get("ExclusiveStartStreamName")
        if "NextToken" in values:
            if start is not None:
                raise _invalid(
                    "NextToken and ExclusiveStartStreamName cannot be provided together."
                )
            (start,) = self._open_token("streams", values["NextToken"], 1)
        names = sorted(n for n in self.streams.list_streams() if start is None or n > start)
        page = names[:limit]
        summaries = []
        for name in page:
            with contextlib.suppress(StreamNotFoundError):  # deleted since it was listed
                summaries.append(self._summary(self.streams.describe(name)))
        out: dict[str, Any] = {
            "StreamNames": [s["StreamName"] for s in summaries],
            "HasMoreStreams": len(names) > limit,
            "StreamSummaries": summaries,
        }
        if len(names) > limit:
            out["NextToken"] = self._tokens.issue("streams", [page[-1]], self.clock())
        return out

    def _summary(self, info: StreamInfo) -> dict[str, Any]:
        return {
            "StreamName": info.name,
            "StreamARN": self.arn(info.name),
            "StreamStatus": info.status,
            "StreamModeDetails": {"StreamMode": "PROVISIONED"},  # shards are fixed here
            "StreamCreationTimestamp": info.created,
        }

    def _common(self, info: StreamInfo) -> dict[str, Any]:
        return {
            **self._summary(info),
            "RetentionPeriodHours": info.retention_hours,
            "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
            "EncryptionType": "NONE",
        }

    def describe_stream_summary(self, values: dict[str, Any]) -> dict[str, Any]:
        info = self._describe(self._name(values))
        open_shards = sum(1 for s in info.shards if s.ending_sequence_number is None)
        return {
            "StreamDescriptionSummary": {
                **self._common(info),
                "OpenShardCount": open_shards,
                "ConsumerCount": 0,
            }
        }

    def describe_stream(self, values: dict[str, Any]) -> dict[str, Any]:
        info = self._describe(self._name(values))
        limit = min(values.get("Limit", 100), 100)
        after = values.get("ExclusiveStartShardId")
        shards = [s for s in info.shards if after is None or s.shard_id > after]
        return {
            "StreamDescription": {
                **self._common(info),
                "Shards": [_shard(s) for s in shards[:limit]],
                "HasMoreShards": len(shards) > limit,
            }
        }

    def list_shards(self, values: dict[str, Any]) -> dict[str, Any]:
        after: str | None = values.get("ExclusiveStartShardId")
        if "NextToken" in values:
            given = [
                n
                for n in (
                    "StreamName",
                    "StreamARN",
                    "ExclusiveStartShardId",
                    "StreamCreationTimestamp",
                )
                if n in values
            ]
            if given:
                # As Kinesis: "the latter unambiguously identifies the stream", so botocore's
                # list_shards paginator (which sends StreamName again) fails here as there.
                raise _invalid(f"NextToken and {given[0]} cannot be provided together.")
            name, after = self._open_token("shards", values["NextToken"], 2)
        else:
            name = self._name(values)
            shard_filter = values.get("ShardFilter", {})
            if shard_filter.get("Type") == "AFTER_SHARD_ID":
                if "ShardId" not in shard_filter:
                    raise _invalid("ShardFilter AFTER_SHARD_ID needs a ShardId")
                after = shard_filter["ShardId"]
            elif shard_filter.get("Type") in ("AT_TIMESTAMP", "FROM_TIMESTAMP") and (
                "Timestamp" not in shard_filter
            ):
                raise _invalid(f"ShardFilter {shard_filter['Type']} needs a Timestamp")
        info = self._describe(name)
        created = values.get("StreamCreationTimestamp")
        if created is not None and abs(created - info.created) >= 1:
            raise KinesisApiError(
                "ResourceNotFoundException",
                f"Stream {name} under account {self.account} created at {_utc(created)} not found.",
            )
        limit = min(values.get("MaxResults", 1000), 1000)
        shards = [s for s in info.shards if after is None or s.shard_id > after]
        out: dict[str, Any] = {"Shards": [_shard(s) for s in shards[:limit]]}
        if len(shards) > limit:
            out["NextToken"] = self._tokens.issue(
                "shards", [name, shards[limit - 1].shard_id], self.clock()
            )
        return out

    def _open_token(self, kind: str, token: str, fields: int) -> list[str]:
        try:
            values, issued = self._tokens.open(kind, token)
        except (_BadToken, ValueError):
            raise _invalid("Invalid NextToken.") from None
        if len(values) != fields:
            raise _invalid("Invalid NextToken.")
        if self.clock() - issued > TOKEN_TTL_S:
            raise KinesisApiError(
                "ExpiredNextTokenException",
                f"The NextToken was issued at {_utc(issued)}, more than {TOKEN_TTL_S:g} s ago; "
                "list again from the start.",
            )
        return values

    def increase_retention(self, values: dict[str, Any]) -> None:
        return self._retention(values, increase=True)

    def decrease_retention(self, values: dict[str, Any]) -> None:
        return self._retention(values, increase=False)

    def _retention(self, values: dict[str, Any], *, increase: bool) -> None:
        name = self._name(values)
        hours = values["RetentionPeriodHours"]
        if hours < MIN_RETENTION_HOURS:
            raise _invalid(
                f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested "
                f"retention period ({hours} hours) is too short."
            )
        if hours > MAX_RETENTION_HOURS:
            raise _invalid(
                f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested "
                f"retention period ({hours} hours) is too long."
            )
        current = self._describe(name).retention_hours
        if increase and hours < current:
            raise _invalid(
                f"Requested retention period ({hours} hours) for stream {name} can not be "
                f"shorter than existing retention period ({current} hours). Use "
                "DecreaseRetentionPeriod API."
            )
        if not increase and hours > current:
            raise _invalid(
                f"Requested retention period ({hours} hours) for stream {name} can not be "
                f"longer than existing retention period ({current} hours). Use "
                "IncreaseRetentionPeriod API."
            )
        with self._stream(name):
            self.streams.set_retention(name, hours)
        return None

    # -- records ----------------------------------------------------------------------------

    def put_record(self, values: dict[str, Any]) -> dict[str, Any]:
        name = self._name(values)
        request = _request(values, "")
        with self._stream(name):
            (result,) = self.streams.put(name, [request])
        if not isinstance(result, Put):
            internal = not result.code.endswith("Exception")
            code = "InternalFailureException" if internal else result.code
            raise KinesisApiError(code, result.message, 500 if internal else 400)
        return {
            "ShardId": result.shard_id,
            "SequenceNumber": result.sequence_number,
            "EncryptionType": "NONE",
        }

    def put_records(self, values: dict[str, Any]) -> dict[str, Any]:
        name = self._name(values)
        entries = values["Records"]
        _check_put_size(sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in entries))
        return self._put_all(
            name, [_request(e, f"Records.{i}: ") for i, e in enumerate(entries, 1)]
        )

    def _put_plain(
        self, values: dict[str, Any], requests: list[PutRequest], size: int
    ) -> dict[str, Any]:
        """PutRecords of records `_plain_requests` made (``size``: their bytes)."""
        name = self._name(values)
        _check_put_size(size)
        return self._put_all(name, requests)

    def _put_all(self, name: str, requests: list[PutRequest]) -> dict[str, Any]:
        with self._stream(name):
            results = self.streams.put(name, requests)
        records: list[dict[str, Any]] = []
        add = records.append
        failed = 0
        for result in results:
            if isinstance(result, Put):
                add({"SequenceNumber": result.sequence_number, "ShardId": result.shard_id})
            else:
                add({"ErrorCode": result.code, "ErrorMessage": result.message})
                failed += 1
        return {"FailedRecordCount": failed, "Records": records, "EncryptionType": "NONE"}

    def get_shard_iterator(self, values: dict[str, Any]) -> dict[str, Any]:
        name = self._name(values)
        shard_id = values["ShardId"]
        kind = values["ShardIteratorType"]
        sequence = values.get("StartingSequenceNumber")
        if (sequence is None) == kind.endswith("SEQUENCE_NUMBER"):
            given = "and also a" if sequence is not None else "and no"
            raise _invalid(
                "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
                "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
                f"StartingSequenceNumber. Request specified {kind} {given} StartingSequenceNumber."
            )
        if kind == "AT_TIMESTAMP" and "Timestamp" not in values:
            raise _invalid(
                "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. "
                "Current request has no timestamp parameter."
            )
        info = self._describe(name)
        if shard_id not in {s.shard_id for s in info.shards}:
            raise KinesisApiError(
                "ResourceNotFoundException",
                f"Shard {shard_id} in stream {name} under account {self.account} does not exist",
            )
        position = Position(kind, sequence, values.get("Timestamp"))
        with self._stream(name):
            cursor = self.streams.locate(name, shard_id, position)
        return {"ShardIterator": self._iterator(name, shard_id, cursor)}

    def _iterator(self, name: str, shard_id: str, cursor: int) -> str:
        return self._tokens.issue("iterator", [name, shard_id, str(cursor)], self.clock())

    def get_records(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            fields, issued = self._tokens.open("iterator", values["ShardIterator"])
            name, shard_id, position = fields
            cursor = int(position)
        except (_BadToken, ValueError):
            raise _invalid("Invalid ShardIterator.") from None
        now = self.clock()
        if now - issued > self.iterator_ttl_s:
            raise KinesisApiError(
                "ExpiredIteratorException",
                f"Iterator expired. The iterator was created at time {_utc(issued)} while right "
                f"now it is {_utc(now)} which is further in the future than the tolerated "
                f"delay of {int(self.iterator_ttl_s * 1000)} milliseconds.",
            )
        if "StreamARN" in values and self._name({"StreamARN": values["StreamARN"]}) != name:
            raise _invalid("The ShardIterator is not of the stream StreamARN names")
        limit = values.get("Limit", MAX_GET_RECORDS)
        if limit > MAX_GET_RECORDS:
            raise _invalid(f"Limit must be at most {MAX_GET_RECORDS}, not {limit}")
        batch = self.streams.read(name, shard_id, cursor, limit=limit)
        records, size, following = batch.records, 0, batch.next
        for i, record in enumerate(records):
            size += len(record.data)
            if size > MAX_GET_RECORDS_BYTES and i > 0:  # the rest on the next call
                following = int(record.sequence_number)
                records = records[:i]
                break
        behind = batch.millis_behind
        if records and len(records) < len(batch.records):
            behind += max(0, round((batch.records[-1].arrival - records[-1].arrival) * 1000))
        return {
            "Records": [
                {
                    "SequenceNumber": r.sequence_number,
                    "ApproximateArrivalTimestamp": r.arrival,
                    "Data": base64.b64encode(r.data).decode(),
                    "PartitionKey": r.partition_key,
                }
                for r in records
            ],
            "NextShardIterator": self._iterator(name, shard_id, following),
            "MillisBehindLatest": behind,
        }


def _check_put_size(size: int) -> None:
    if size > MAX_PUT_RECORDS_BYTES:
        raise _invalid("Records size exceeds 5 MB limit")


def _request(values: Mapping[str, Any], where: str) -> PutRequest:
    explicit = values.get("ExplicitHashKey")
    if explicit is not None and int(explicit) >= HASH_SPACE:
        raise _invalid(
            f"{where}Invalid ExplicitHashKey. ExplicitHashKey must be in the range: "
            f"[0, 2^128-1]. Specified value was {explicit}"
        )
    # The rest of Kinesis's rules (a record's data and key together within 1 MiB) are
    # the backend's to apply, its refusal an InvalidArgumentException.
    return PutRequest(
        values["PartitionKey"], values["Data"], None if explicit is None else int(explicit)
    )


def _shard(shard: Shard) -> dict[str, Any]:
    out: dict[str, Any] = {"ShardId": shard.shard_id}
    if shard.parent_shard_id is not None:
        out["ParentShardId"] = shard.parent_shard_id
    if shard.adjacent_parent_shard_id is not None:
        out["AdjacentParentShardId"] = shard.adjacent_parent_shard_id
    out["HashKeyRange"] = {
        "StartingHashKey": str(shard.starting_hash_key),
        "EndingHashKey": str(shard.ending_hash_key),
    }
    sequence = {"StartingSequenceNumber": shard.starting_sequence_number}
    if shard.ending_sequence_number is not None:
        sequence["EndingSequenceNumber"] = shard.ending_sequence_number
    out["SequenceNumberRange"] = sequence
    return out


# -- HTTP --------------------------------------------------------------------------------------

Refused = Callable[[HTTPConnection, str], None]


class KinesisApp:
    """The Kinesis API as an ASGI app: reads the body (at most `MAX_BODY_BYTES`), checks
    its signature against ``keys`` (a refusal is reported to ``refused`` with the request
    and why: the API's audit), runs the operation off the event loop and answers as
    Kinesis does. An unexpected failure is logged and answered as
    ``InternalFailureException`` naming the request id, never with a traceback."""

    def __init__(
        self,
        kinesis: Kinesis,
        keys: AccessKeys,
        refused: Refused | None = None,
        *,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.kinesis = kinesis
        self.keys = keys
        self.refused = refused
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = str(uuid.uuid4())
        status, body = 200, b""
        try:
            payload = await self._body(scope, receive)
            result = await asyncio.to_thread(self._handle, scope, payload)
            body = b"" if result is None else _json(result)
        except KinesisApiError as exc:
            status, body = exc.status, _error(exc.code, str(exc))
        except Exception:
            _LOG.exception("Kinesis request %s failed", request_id)
            status = 500
            body = _error("InternalFailureException", f"Internal failure (request {request_id})")
        headers = [
            (b"content-type", CONTENT_TYPE.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-amzn-requestid", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        too_large = KinesisApiError(
            "InvalidArgumentException",
            f"Request body over {self.max_body} bytes refused (a PutRecords takes at most "
            f"{MAX_PUT_RECORDS} records and {MAX_PUT_RECORDS_BYTES} bytes of them)",
            413,
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise KinesisApiError("SerializationException", "the request ended early")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _handle(self, scope: Scope, payload: bytes) -> dict[str, Any] | None:
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]
        request = Signed(
            scope["method"],
            scope.get("raw_path", scope["path"].encode()).decode("latin-1").partition("?")[0],
            scope.get("query_string", b"").decode("latin-1"),
            headers,
            payload,
        )
        try:
            key_id = verify(request, self.keys.secret, service="kinesis")
        except AuthenticationError as exc:
            if self.refused is not None:
                self.refused(HTTPConnection(scope), f"Kinesis API: {exc.reason}")
            raise KinesisApiError(exc.code, str(exc)) from None
        self.keys.used(key_id)
        found = {name.lower(): value for name, value in headers}
        operation = found.get("x-amz-target", "").partition(".")[2]
        if operation not in OPERATIONS:
            raise _unknown(operation)
        _check_content_type(found.get("content-type", ""))
        if operation == "PutRecords":
            fast = _fast_params(payload)
            plain = None if fast is None else _plain_requests(fast.get("Records"))
            if fast is not None and plain is not None:
                return self.kinesis._call(operation, fast, plain)
        return self.kinesis.call(operation, _params(payload))


def _fast_params(payload: bytes) -> dict[str, Any] | None:
    """A PutRecords' JSON object as orjson reads it, faster than the standard library;
    None where orjson is not installed or does not read it as an object (`_params` then
    says why). orjson takes less than the standard library does (no NaN, no lone
    surrogates) and reads what it takes alike, but for one thing: a whole number beyond
    64 bits becomes a float. So what it reads stands only for records that
    `_plain_requests` takes, whose outcome no number changes (their members are
    strings; a number where a name belongs is refused alike, whatever its value);
    anything else is read again by `_params`."""
    if orjson is None:
        return None
    try:
        params = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return params if type(params) is dict else None


def _json(result: dict[str, Any]) -> bytes:
    """An answer's JSON (orjson's where installed: the same JSON, faster, UTF-8 rather
    than ``\\u`` escapes; the standard library's for what orjson refuses, such as a
    whole number beyond 64 bits)."""
    if orjson is not None:
        try:
            encoded: bytes = orjson.dumps(result)
            return encoded
        except TypeError:  # orjson.JSONEncodeError is one
            pass
    return json.dumps(result, separators=(",", ":")).encode()


def _check_content_type(content_type: str) -> None:
    """``SerializationException`` for a body that is not said to be JSON."""
    kind = content_type.partition(";")[0].strip().lower()
    if kind and "json" not in kind:
        raise _serialization(
            f"reelay speaks Kinesis's JSON protocol ({CONTENT_TYPE}), not {kind[:80]}; a "
            "client that sends CBOR (the AWS SDK for Java) takes AWS_CBOR_DISABLE=true"
        )


def _params(payload: bytes) -> dict[str, Any]:
    """The JSON object a request carries; ``SerializationException`` for anything else."""
    try:
        params = json.loads(payload)
    except (ValueError, RecursionError) as exc:
        where = (
            f" ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise _serialization(f"The request body is not JSON{where}") from None
    if not isinstance(params, dict):
        raise _serialization(f"The request body must be a JSON object, not {_json_type(params)}")
    return params


def _error(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message}).encode()


class KinesisRouter:
    """ASGI middleware: a Kinesis request (``POST /`` with an ``X-Amz-Target`` of
    Kinesis's, ``Kinesis_20131202.*``) goes to ``kinesis``, anything else to ``app``.
    So Kinesis's clients, which sign with SigV4 rather than send the API's bearer token,
    share the server's address with the API and the dashboard."""

    def __init__(self, app: ASGIApp, kinesis: KinesisApp) -> None:
        self.app = app
        self.kinesis = kinesis
        self._prefix = TARGET_PREFIX.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/":
            for name, value in scope["headers"]:
                if name == b"x-amz-target" and value.startswith(self._prefix):
                    await self.kinesis(scope, receive, send)
                    return
        await self.app(scope, receive, send)
