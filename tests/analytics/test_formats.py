"""Record formats: AWS VPC flow logs in the default (version 2) format, with the lines
AWS documents (accepted and rejected traffic, NODATA and SKIPDATA records, '-' fields);
the CloudWatch Logs messages reelay puts on reelay-logs; JSON."""

from __future__ import annotations

import gzip
import json

import pytest

from reelay.analytics.formats import (
    UnreadableRecord,
    field_value,
    parse_cloudwatch_logs,
    parse_json,
    parse_vpc_flow_log,
)
from reelay.observe.logstream import log_record
from reelay.state import Attempt

# AWS's examples of default-format records (Flow log record examples, VPC user guide).
ACCEPTED = "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK"
REJECTED = "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK"
NODATA = "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA"
SKIPDATA = "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA"
HEADER = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"


def test_flow_log_lines_of_the_default_format() -> None:
    (row,) = parse_vpc_flow_log(ACCEPTED.encode())
    assert row == {
        "version": 2,
        "account_id": "123456789010",
        "interface_id": "eni-1235b8ca123456789",
        "srcaddr": "172.31.16.139",
        "dstaddr": "172.31.16.21",
        "srcport": 20641,
        "dstport": 22,
        "protocol": 6,
        "packets": 20,
        "bytes": 4249,
        "start": 1418530010,
        "end": 1418530070,
        "action": "ACCEPT",
        "log_status": "OK",
    }
    (rejected,) = parse_vpc_flow_log(REJECTED.encode())
    assert rejected["action"] == "REJECT" and rejected["dstport"] == 3389


def test_nodata_and_skipdata_records_have_nulls_for_their_dashes() -> None:
    rows = parse_vpc_flow_log(f"{HEADER}\n{NODATA}\n\n{SKIPDATA}\r\n".encode())
    assert [r["log_status"] for r in rows] == ["NODATA", "SKIPDATA"]  # the header is skipped
    for row in rows:
        for name in (
            "srcaddr",
            "dstaddr",
            "srcport",
            "dstport",
            "protocol",
            "packets",
            "bytes",
            "action",
        ):
            assert row[name] is None, name
        assert row["start"] == 1431280876 and row["end"] == 1431280934
    assert rows[1]["interface_id"] == "eni-11111111aaaaaaaaa"


def test_an_account_of_unknown_is_text_and_several_lines_are_several_rows() -> None:
    unknown = ACCEPTED.replace("123456789010", "unknown")
    rows = parse_vpc_flow_log(f"{unknown}\n{REJECTED}".encode())
    assert [r["account_id"] for r in rows] == ["unknown", "123456789010"]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (
            "2 123456789010 eni-1 1.2.3.4 5.6.7.8 1 2 6 20 4249 1418530010 ACCEPT OK",
            "has 14 fields (version account-id",
        ),
        (ACCEPTED.replace(" 4249 ", " lots "), "bytes must be a whole number or '-', not 'lots'"),
        (f"{ACCEPTED}\n{ACCEPTED} extra", "line 2: a version-2 flow log record has 14 fields"),
    ],
)
def test_a_line_that_is_not_a_flow_log_record_says_why(line: str, says: str) -> None:
    with pytest.raises(UnreadableRecord, match=None) as caught:
        parse_vpc_flow_log(line.encode())
    assert says in str(caught.value)
    with pytest.raises(UnreadableRecord, match="not UTF-8"):
        parse_vpc_flow_log(b"\xff\xfe")


def _attempt(**changes: object) -> Attempt:
    fields: dict[str, object] = dict(
        invocation_id="req-1", attempt=1, function="encode", started=1_700_000_000.25,
        ok=True, duration_ms=123.45, max_memory_mb=87, logs="hello\nworld\n",
        logs_truncated=0, cold_start=True, worker="w1", error_type=None, error_message=None,
    )  # fmt: skip
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


def test_reelays_own_log_records_as_cloudwatch_logs_rows() -> None:
    record = log_record(_attempt())
    rows = parse_cloudwatch_logs(record.data)
    assert [r["type"] for r in rows] == ["START", "LOG", "LOG", "END", "REPORT"]
    assert {r["function"] for r in rows} == {"encode"}
    assert {r["log_group"] for r in rows} == {"/aws/lambda/encode"}
    assert {r["timestamp"] for r in rows} == {1_700_000_000_250}
    report = rows[-1]
    assert report["request_id"] == "req-1"
    assert report["duration_ms"] == 123.45 and report["max_memory_mb"] == 87
    assert report["attempt"] == 1 and report["cold_start"] == "true"
    assert report.get("status") is None
    failed = parse_cloudwatch_logs(log_record(_attempt(ok=False, error_type="Timeout")).data)
    assert failed[-1]["status"] == "Timeout"


def test_lambdas_report_line_and_a_control_message() -> None:
    message = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/checkout",
        "logStream": "2024/01/01/[$LATEST]abc",
        "subscriptionFilters": ["all"],
        "logEvents": [
            {
                "id": "1",
                "timestamp": 1704067200000,
                "message": "REPORT RequestId: 8f5\tDuration: 102.25 ms\tBilled Duration: 103 ms\t"
                "Memory Size: 128 MB\tMax Memory Used: 70 MB\tInit Duration: 150.30 ms\t",
            }
        ],
    }
    (row,) = parse_cloudwatch_logs(gzip.compress(json.dumps(message).encode()))
    assert row["billed_duration_ms"] == 103 and row["memory_size_mb"] == 128
    assert row["init_duration_ms"] == 150.3 and row["max_memory_mb"] == 70
    control = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logEvents": []}
    assert parse_cloudwatch_logs(gzip.compress(json.dumps(control).encode())) == []
    with pytest.raises(UnreadableRecord, match="not a whole gzip stream"):
        parse_cloudwatch_logs(gzip.compress(b"{}")[:-4])
    with pytest.raises(UnreadableRecord, match="no messageType"):
        parse_cloudwatch_logs(b'{"logEvents": []}')


def test_json_objects_arrays_and_lines() -> None:
    assert parse_json(b'{"a": 1}') == [{"a": 1}]
    assert parse_json(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]
    assert parse_json(b'{"a": 1}\n{"a": 2}\n') == [{"a": 1}, {"a": 2}]
    with pytest.raises(UnreadableRecord, match="not JSON"):
        parse_json(b"a=1")
    with pytest.raises(UnreadableRecord, match="must be an object"):
        parse_json(b"[1, 2]")
    row = {"user": {"id": 7, "tags": ["x"]}, "a.b": 1}
    assert field_value(row, "user.id") == 7 and field_value(row, "a.b") == 1
    assert field_value(row, "user.missing") is None and field_value(row, "nope") is None
