"""Record formats: a stream record's data as rows (dicts of fields) to aggregate.

=====================  ==================================================================
format                 rows of a record
=====================  ==================================================================
``json``               the JSON object (or each object of a JSON array, or of JSON lines);
                       fields are its keys, nested ones by dotted path (``user.id``)
``vpc-flow-log``       each line of AWS VPC flow logs' default format (version 2):
                       ``version account-id interface-id srcaddr dstaddr srcport dstport
                       protocol packets bytes start end action log-status``, fields named
                       as there with ``_`` for ``-`` (``account_id``, ``log_status``); a
                       ``-`` (no value: ``NODATA`` and ``SKIPDATA`` records) is null;
                       numbers are integers, ``start`` and ``end`` epoch seconds
``cloudwatch-logs``    each log event of a CloudWatch Logs subscription's gzipped
                       ``DATA_MESSAGE`` (what reelay puts on ``reelay-logs``); a
                       ``CONTROL_MESSAGE`` has none. Fields: ``owner``, ``log_group``,
                       ``log_stream``, ``function`` (of ``/aws/lambda/NAME``), ``id``,
                       ``timestamp`` (epoch ms), ``message``, ``type`` (START, END,
                       REPORT or LOG), ``request_id``, and from REPORT lines
                       ``duration_ms``, ``billed_duration_ms``, ``memory_size_mb``,
                       ``max_memory_mb``, ``init_duration_ms``, ``attempt``,
                       ``cold_start``, ``status``
=====================  ==================================================================

A record that cannot be read raises `UnreadableRecord` saying why; the aggregating
function sends it to the aggregate's dead-letter stream.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "CLOUDWATCH_FIELDS",
    "FORMATS",
    "KNOWN_FIELDS",
    "VPC_FIELDS",
    "UnreadableRecord",
    "field_value",
    "parse_cloudwatch_logs",
    "parse_json",
    "parse_vpc_flow_log",
    "parser",
]

Row = dict[str, Any]


class UnreadableRecord(ValueError):
    """A record's data is not what its format says (the message says how)."""


# The version-2 default format, in order: (name as a field, name in AWS's docs, a number?)
_VPC = (
    ("version", "version", True),
    ("account_id", "account-id", False),
    ("interface_id", "interface-id", False),
    ("srcaddr", "srcaddr", False),
    ("dstaddr", "dstaddr", False),
    ("srcport", "srcport", True),
    ("dstport", "dstport", True),
    ("protocol", "protocol", True),
    ("packets", "packets", True),
    ("bytes", "bytes", True),
    ("start", "start", True),
    ("end", "end", True),
    ("action", "action", False),
    ("log_status", "log-status", False),
)
_VPC_HEADER = [aws for _, aws, _ in _VPC]

#: Each known format's fields: "number" or "text" (what sum, min, max and quantile take).
VPC_FIELDS: dict[str, str] = {name: "number" if n else "text" for name, _, n in _VPC}
CLOUDWATCH_FIELDS: dict[str, str] = {
    "owner": "text",
    "log_group": "text",
    "log_stream": "text",
    "function": "text",
    "id": "text",
    "timestamp": "number",
    "message": "text",
    "type": "text",
    "request_id": "text",
    "duration_ms": "number",
    "billed_duration_ms": "number",
    "memory_size_mb": "number",
    "max_memory_mb": "number",
    "init_duration_ms": "number",
    "attempt": "number",
    "cold_start": "text",
    "status": "text",
}
KNOWN_FIELDS: dict[str, dict[str, str]] = {
    "vpc-flow-log": VPC_FIELDS,
    "cloudwatch-logs": CLOUDWATCH_FIELDS,
}


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableRecord(f"not UTF-8 text: {exc}") from None


def parse_vpc_flow_log(data: bytes) -> list[Row]:
    """The flow log records in a record's data, one per line (see the module's docstring)."""
    rows = []
    for n, line in enumerate(_text(data).splitlines(), 1):
        parts = line.split()
        if not parts or parts == _VPC_HEADER:  # a blank line, or the format's header
            continue
        if len(parts) != len(_VPC):
            raise UnreadableRecord(
                f"line {n}: a version-2 flow log record has {len(_VPC)} fields "
                f"({' '.join(_VPC_HEADER)}), this one {len(parts)}: {line[:200]!r}"
            )
        row: Row = {}
        for (name, aws, number), value in zip(_VPC, parts, strict=True):
            if value == "-":
                row[name] = None
            elif number:
                try:
                    row[name] = int(value)
                except ValueError:
                    raise UnreadableRecord(
                        f"line {n}: {aws} must be a whole number or '-', not {value!r}"
                    ) from None
            else:
                row[name] = value
        rows.append(row)
    return rows


_REPORT_FIELDS = {
    "Duration": ("duration_ms", float),
    "Billed Duration": ("billed_duration_ms", float),
    "Memory Size": ("memory_size_mb", int),
    "Max Memory Used": ("max_memory_mb", int),
    "Init Duration": ("init_duration_ms", float),
    "Attempt": ("attempt", int),
    "Cold Start": ("cold_start", str),
    "Status": ("status", str),
}
_REQUEST = re.compile(r"^(START|END|REPORT) RequestId: (\S+)")


def _log_event(message: str) -> Row:
    """What a Lambda log line says: its type, request and REPORT figures."""
    found = _REQUEST.match(message)
    if found is None:
        return {"type": "LOG"}
    row: Row = {"type": found.group(1), "request_id": found.group(2)}
    if found.group(1) == "REPORT":
        for part in message.split("\t")[1:]:
            key, _, value = part.partition(":")
            known = _REPORT_FIELDS.get(key.strip())
            if known is None:
                continue
            name, kind = known
            text = value.strip().split(" ")[0] if kind is not str else value.strip()
            try:
                row[name] = kind(text)
            except ValueError:
                continue
    return row


def parse_cloudwatch_logs(data: bytes) -> list[Row]:
    """The log events of a CloudWatch Logs subscription record (gzipped JSON)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise UnreadableRecord(f"not a whole gzip stream: {exc}") from None
    try:
        message = json.loads(data)
    except ValueError as exc:
        raise UnreadableRecord(f"not a CloudWatch Logs message (JSON): {exc}") from None
    if not isinstance(message, dict) or "messageType" not in message:
        raise UnreadableRecord("not a CloudWatch Logs message: no messageType")
    if message["messageType"] == "CONTROL_MESSAGE":
        return []
    if message["messageType"] != "DATA_MESSAGE" or not isinstance(message.get("logEvents"), list):
        raise UnreadableRecord(
            f"messageType {message['messageType']!r} with no logEvents: expected DATA_MESSAGE "
            "or CONTROL_MESSAGE"
        )
    group = message.get("logGroup")
    function = (
        group[len("/aws/lambda/") :]
        if isinstance(group, str) and group.startswith("/aws/lambda/")
        else None
    )
    common: Row = {
        "owner": message.get("owner"),
        "log_group": group,
        "log_stream": message.get("logStream"),
        "function": function,
    }
    rows = []
    for event in message["logEvents"]:
        if not isinstance(event, dict):
            raise UnreadableRecord(f"a log event must be an object, not {event!r:.100}")
        text = event.get("message")
        row = {
            **common,
            "id": event.get("id"),
            "timestamp": event.get("timestamp"),
            "message": text,
        }
        row |= _log_event(text if isinstance(text, str) else "")
        rows.append(row)
    return rows


def parse_json(data: bytes) -> list[Row]:
    """A JSON object, a JSON array of objects, or JSON lines."""
    text = _text(data)
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            docs = [json.loads(line) for line in lines] if len(lines) > 1 else None
        except ValueError:
            docs = None
        if docs is None:
            raise UnreadableRecord(f"not JSON: {text[:200]!r}") from None
        doc = docs
    items = doc if isinstance(doc, list) else [doc]
    for item in items:
        if not isinstance(item, dict):
            raise UnreadableRecord(f"each JSON value must be an object, not {item!r:.100}")
    return list(items)


_PARSERS: dict[str, Callable[[bytes], list[Row]]] = {
    "json": parse_json,
    "vpc-flow-log": parse_vpc_flow_log,
    "cloudwatch-logs": parse_cloudwatch_logs,
}
FORMATS = tuple(sorted(_PARSERS))


def parser(format: str) -> Callable[[bytes], list[Row]]:
    return _PARSERS[format]


def field_value(row: Mapping[str, Any], field: str) -> Any:
    """A row's field: its key, else a dotted path into nested objects (None if absent)."""
    if field in row:
        return row[field]
    if "." not in field:
        return None
    value: Any = row
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
