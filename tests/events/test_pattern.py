"""EventBridge event patterns: every operator, its edge cases, and every invalid form.

Most cases come from AWS's documentation; the page each comes from is cited above it:

- EVENT_PATTERNS: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html
- CONTENT: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html
- OPERATORS: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
- ARRAYS: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-arrays.html
- NULLS: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-null-values.html
- SNS_NUMERIC: https://docs.aws.amazon.com/sns/latest/dg/numeric-value-matching.html
- RULER: https://github.com/aws/event-ruler/blob/main/README.md (AWS's matcher)
- SYNTAX: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern.html
  ("Considerations when creating event patterns")
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from reelay.errors import InvalidPatternError
from reelay.events._pattern import (
    OPERATORS,
    Pattern,
    PatternIndex,
    compile_pattern,
    matches,
)

# EVENT_PATTERNS: the sample Amazon EC2 event.
EC2_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "111122223333",
    "time": "2017-12-22T18:43:48Z",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "detail": {"instance-id": "i-1234567890abcdef0", "state": "terminated"},
}

# RULER: the sample event of "Ruler by Example".
RULER_EVENT: dict[str, Any] = {
    "version": "0",
    "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "012345679012",
    "time": "2017-10-02T16:24:49Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
    "detail": {
        "c-count": 5,
        "d-count": 3,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "instance-id": "i-000000aaaaaa00000",
        "state": "running",
    },
}


def field(value: Any) -> dict[str, Any]:
    """An event whose only field ``f`` holds ``value``."""
    return {"f": value}


NOTHING: dict[str, Any] = {}  # an event without the field

# (pattern, event, expected)
CASES = [
    # --- EVENT_PATTERNS: the EC2 termination example -----------------------------------
    pytest.param(
        {
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {"state": ["terminated"]},
        },
        EC2_EVENT,
        True,
        id="doc-ec2-terminated",
    ),
    pytest.param(
        {"source": ["aws.ec2"], "detail": {"state": ["running"]}},
        EC2_EVENT,
        False,
        id="doc-ec2-other-state",
    ),
    pytest.param({"source": ["aws.s3"]}, EC2_EVENT, False, id="doc-other-source"),
    pytest.param({"missing": ["x"]}, EC2_EVENT, False, id="field-absent"),
    # RULER "Simple matching": any listed value, every listed field.
    pytest.param(
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
            "detail": {"state": ["initializing", "running"]},
        },
        RULER_EVENT,
        True,
        id="ruler-simple",
    ),
    # RULER "Complex example".
    pytest.param(
        {
            "time": [{"prefix": "2017-10-02"}],
            "detail": {
                "state": [{"anything-but": "initializing"}],
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"anything-but": [100, 200, 300]}],
                "source-ip": [{"cidr": "10.0.0.0/8"}],
            },
        },
        RULER_EVENT,
        True,
        id="ruler-complex",
    ),
    # --- exact values: types never mix ------------------------------------------------
    pytest.param({"f": ["a"]}, field("a"), True, id="string"),
    pytest.param({"f": ["a"]}, field("A"), False, id="string-case-sensitive"),
    pytest.param({"F": ["a"]}, field("a"), False, id="key-case-sensitive"),
    pytest.param({"f": ["1"]}, field(1), False, id="string-vs-number"),
    pytest.param({"f": [1]}, field("1"), False, id="number-vs-string"),
    pytest.param({"f": [300]}, field(3.0e2), True, id="number-by-value"),
    pytest.param({"f": [3.018e2]}, field(301.8), True, id="float-by-value"),
    pytest.param({"f": [123456789012]}, field(123456789012), True, id="big-number"),
    pytest.param({"f": [True]}, field(True), True, id="true"),
    pytest.param({"f": [True]}, field(1), False, id="true-vs-1"),
    pytest.param({"f": [1]}, field(True), False, id="1-vs-true"),
    pytest.param({"f": [False]}, field(0), False, id="false-vs-0"),
    pytest.param({"f": [0]}, field(False), False, id="0-vs-false"),
    pytest.param({"f": [True]}, field("true"), False, id="true-vs-string"),
    pytest.param({"f": [False]}, field(False), True, id="false"),
    # NULLS: null and "" are both matchable and never interchangeable.
    pytest.param(
        {"detail": {"eventVersion": [""]}},
        {"detail": {"eventVersion": "", "responseElements": None}},
        True,
        id="doc-empty-string",
    ),
    pytest.param(
        {"detail": {"responseElements": [None]}},
        {"detail": {"eventVersion": "", "responseElements": None}},
        True,
        id="doc-null",
    ),
    pytest.param({"f": [""]}, field(None), False, id="empty-string-vs-null"),
    pytest.param({"f": [None]}, field(""), False, id="null-vs-empty-string"),
    pytest.param({"f": [None]}, NOTHING, False, id="null-vs-absent"),
    pytest.param({"f": [None]}, field([]), False, id="null-vs-empty-array"),
    # An exact IP address matches the same address however it is written.
    pytest.param({"f": ["2001:db8::1"]}, field("2001:0db8:0:0:0:0:0:1"), True, id="ip-spelling"),
    pytest.param({"f": ["10.0.0.1"]}, field("10.0.0.1"), True, id="ip-exact"),
    pytest.param({"f": ["10.0.0.1"]}, field("10.0.0.2"), False, id="ip-other"),
    # A leaf value never matches an object.
    pytest.param({"f": ["a"]}, field({"a": 1}), False, id="value-vs-object"),
    # --- ARRAYS -------------------------------------------------------------------------
    pytest.param(
        {
            "resources": [
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
                "arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f",
                "arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f",
            ]
        },
        {
            "resources": [
                "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b-bbf0-401d-"
                "b893-d5978ed4a025:autoScalingGroupName/ASGTerminate",
                "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
            ]
        },
        True,
        id="doc-array-intersection",
    ),
    pytest.param({"f": ["a", "b"]}, field(["c", "d"]), False, id="array-disjoint"),
    pytest.param({"f": ["a"]}, field([]), False, id="empty-event-array"),
    pytest.param({"f": ["a"]}, field([["x"], ["y", ["a"]]]), True, id="nested-arrays-crushed"),
    pytest.param({"f": [1]}, field([{"g": 1}]), False, id="array-of-objects-vs-value"),
    # RULER "JSON Array Matching": objects in arrays are matched element by element.
    pytest.param(
        {"employees": {"firstName": ["Anna"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
                {"firstName": "Peter", "lastName": "Jones"},
            ]
        },
        True,
        id="ruler-array-of-objects",
    ),
    pytest.param(
        {"employees": {"firstName": ["Anna"]}},
        {
            "employees": [
                [
                    {"firstName": "John", "lastName": "Doe"},
                    {"firstName": "Anna", "lastName": "Smith"},
                ],
                [{"firstName": "Peter", "lastName": "Jones"}],
            ]
        },
        True,
        id="ruler-multi-level-arrays",
    ),
    pytest.param(
        {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
                {"firstName": "Peter", "lastName": "Jones"},
            ]
        },
        False,
        id="ruler-array-consistency",
    ),
    pytest.param(
        {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}},
        {
            "employees": [
                {"firstName": "John", "lastName": "Doe"},
                {"firstName": "Anna", "lastName": "Smith"},
            ]
        },
        True,
        id="array-consistent-element",
    ),
    pytest.param(
        {"a": {"b": {"c": ["x"]}}},
        {"a": [{"b": [{"c": "y"}, {"c": ["z", "x"]}]}]},
        True,
        id="arrays-at-every-level",
    ),
    pytest.param({"a": {"b": ["x"]}}, {"a": "not an object"}, False, id="nested-vs-scalar"),
    pytest.param({"a": {"b": ["x"]}}, {"a": None}, False, id="nested-vs-null"),
    # --- dotted field names -------------------------------------------------------------
    # SYNTAX, "Considerations": EventBridge compiles a pattern with the dot as the joining
    # character, so a dotted key and the nesting it spells are one field, in the pattern
    # and in the event. RULER, "Caveat: Compiled rules and JSON keys with dots": both
    # {"detail": {"state": {"status": ["running"]}}} and {"detail": {"state.status":
    # ["running"]}} match both {"detail": {"state": {"status": "running"}}} and
    # {"detail": {"state.status": "running"}}.
    pytest.param(
        {"detail": {"state": {"status": ["running"]}}},
        {"detail": {"state": {"status": "running"}}},
        True,
        id="doc-dots-nested-nested",
    ),
    pytest.param(
        {"detail": {"state": {"status": ["running"]}}},
        {"detail": {"state.status": "running"}},
        True,
        id="doc-dots-nested-pattern-dotted-event",
    ),
    pytest.param(
        {"detail": {"state.status": ["running"]}},
        {"detail": {"state": {"status": "running"}}},
        True,
        id="doc-dots-dotted-pattern-nested-event",
    ),
    pytest.param(
        {"detail": {"state.status": ["running"]}},
        {"detail": {"state.status": "running"}},
        True,
        id="doc-dots-dotted-dotted",
    ),
    pytest.param(
        {"detail": {"state.status": ["running"]}},
        {"detail": {"state": {"status": "stopped"}}},
        False,
        id="dots-other-value",
    ),
    pytest.param({"state.status": ["on"]}, {"state": {"status": "on"}}, True, id="dots-top"),
    pytest.param({"state": {"status": ["on"]}}, {"state.status": "on"}, True, id="dots-top-ev"),
    pytest.param({"a": {"b.c": [1]}}, {"a.b": {"c": 1}}, True, id="dots-split-differently"),
    pytest.param({"a.b.c": [1]}, {"a": {"b.c": 1}}, True, id="dots-deep"),
    pytest.param({"a.b": ["x"]}, {"a": "x"}, False, id="dots-not-a-prefix"),
    pytest.param({"a..b": ["x"]}, {"a": {"": {"b": "x"}}}, True, id="dots-empty-part"),
    # A dotted key and nesting merge into one nested pattern, and into one event object.
    pytest.param(
        {"a.b": ["x"], "a": {"c": ["y"]}},
        {"a": {"c": "y"}, "a.b": "x"},
        True,
        id="dots-merge",
    ),
    pytest.param(
        {"a.b": ["x"], "a": {"c": ["y"]}},
        {"a": {"c": "z"}, "a.b": "x"},
        False,
        id="dots-merge-no",
    ),
    # One field named twice in an event holds both values, as an array would.
    pytest.param({"a.b": ["1"]}, {"a": {"b": "1"}, "a.b": "2"}, True, id="dots-both-1"),
    pytest.param({"a.b": ["2"]}, {"a": {"b": "1"}, "a.b": "2"}, True, id="dots-both-2"),
    # Inside arrays, and with array-consistent matching kept per element.
    pytest.param(
        {"items": {"x": {"y": [2]}}},
        {"items": [{"x.y": 1}, {"x": {"y": 2}}]},
        True,
        id="dots-in-array",
    ),
    pytest.param({"items.x.y": [1]}, {"items": [{"x.y": 1}]}, True, id="dots-through-array"),
    pytest.param(
        {"e": {"a.b": ["1"], "c": ["4"]}},
        {"e": [{"a.b": "1", "c": "2"}, {"a": {"b": "3"}, "c": "4"}]},
        False,
        id="dots-array-consistent-no",
    ),
    pytest.param(
        {"e": {"a.b": ["3"], "c": ["4"]}},
        {"e": [{"a.b": "1", "c": "2"}, {"a": {"b": "3"}, "c": "4"}]},
        True,
        id="dots-array-consistent",
    ),
    pytest.param({"a": {"b": [{"exists": True}]}}, {"a.b": None}, True, id="dots-exists"),
    pytest.param({"a.b": [{"exists": False}]}, {"a": {"b": 1}}, False, id="dots-absent-no"),
    pytest.param({"a.b": [{"exists": False}]}, {"a": {"c": 1}}, True, id="dots-absent"),
    # --- prefix ---------------------------------------------------------------------------
    # CONTENT: "time" starting with 2017-10-02.
    pytest.param(
        {"time": [{"prefix": "2017-10-02"}]},
        {"time": "2017-10-02T18:43:48Z"},
        True,
        id="doc-prefix",
    ),
    pytest.param(
        {"time": [{"prefix": "2017-10-02"}]},
        {"time": "2017-10-03T18:43:48Z"},
        False,
        id="doc-prefix-no",
    ),
    # CONTENT "Prefix matching example": Auto Scaling events from European regions.
    pytest.param(
        {"source": ["aws.autoscaling"], "region": [{"prefix": "eu-"}]},
        {"source": "aws.autoscaling", "region": "eu-west-1"},
        True,
        id="doc-prefix-eu",
    ),
    pytest.param({"f": [{"prefix": "ab"}]}, field("AB"), False, id="prefix-case-sensitive"),
    pytest.param({"f": [{"prefix": "1"}]}, field(12), False, id="prefix-number"),
    pytest.param({"f": [{"prefix": "n"}]}, field(None), False, id="prefix-null"),
    pytest.param({"f": [{"prefix": ""}]}, field("anything"), True, id="prefix-empty-string"),
    pytest.param({"f": [{"prefix": ""}]}, NOTHING, False, id="prefix-empty-absent"),
    pytest.param({"f": [{"prefix": "ab"}]}, field(["x", "abc"]), True, id="prefix-in-array"),
    # OPERATORS "Begins with (ignore case)".
    pytest.param(
        {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]},
        {"service": "EventBridge"},
        True,
        id="doc-prefix-ignore-case",
    ),
    pytest.param(
        {"service": [{"prefix": {"equals-ignore-case": "EVENTB"}}]},
        {"service": "eventbus"},
        True,
        id="prefix-ignore-case-upper",
    ),
    pytest.param(
        {"service": [{"prefix": {"equals-ignore-case": "eventb"}}]},
        {"service": "Lambda"},
        False,
        id="prefix-ignore-case-no",
    ),
    # --- suffix ---------------------------------------------------------------------------
    # CONTENT "Suffix matching": FileName ending with .png.
    pytest.param({"FileName": [{"suffix": ".png"}]}, {"FileName": "a.png"}, True, id="doc-suffix"),
    pytest.param(
        {"FileName": [{"suffix": ".png"}]}, {"FileName": "a.PNG"}, False, id="suffix-case"
    ),
    pytest.param(
        {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]},
        {"FileName": "IMAGE.PNG"},
        True,
        id="doc-suffix-ignore-case",
    ),
    pytest.param({"f": [{"suffix": "2"}]}, field(12), False, id="suffix-number"),
    # --- equals-ignore-case -----------------------------------------------------------
    # RULER "Equals-ignore-case matching".
    pytest.param(
        {"source": [{"equals-ignore-case": "EC2"}]}, {"source": "ec2"}, True, id="ignore-case"
    ),
    pytest.param(
        {"source": [{"equals-ignore-case": "EC2"}]}, {"source": "ec22"}, False, id="ignore-case-no"
    ),
    pytest.param({"f": [{"equals-ignore-case": ""}]}, field(""), True, id="ignore-case-empty"),
    pytest.param({"f": [{"equals-ignore-case": "1"}]}, field(1), False, id="ignore-case-number"),
    pytest.param(
        {"f": [{"equals-ignore-case": "ÉTÉ"}]}, field("été"), True, id="ignore-case-unicode"
    ),
    # --- wildcard -----------------------------------------------------------------------
    # RULER "Wildcard matching".
    pytest.param(
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "Simple Notification Service"},
        True,
        id="ruler-wildcard",
    ),
    pytest.param(
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "SimpleService"},
        True,
        id="wildcard-empty-run",
    ),
    pytest.param(
        {"source": [{"wildcard": "Simple*Service"}]},
        {"source": "Simple Service!"},
        False,
        id="wildcard-anchored",
    ),
    # OPERATORS "Wildcard": "dir/*/file" style paths; several wildcards.
    pytest.param(
        {"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:*:event-bus/*"}]},
        {"EventBusArn": "arn:aws:events:us-east-1:123456789012:event-bus/myEventBus"},
        True,
        id="doc-wildcard-arn",
    ),
    pytest.param({"f": [{"wildcard": "*"}]}, field(""), True, id="wildcard-star-empty"),
    pytest.param({"f": [{"wildcard": "*"}]}, field("x"), True, id="wildcard-star"),
    pytest.param({"f": [{"wildcard": "*"}]}, field(5), False, id="wildcard-number"),
    pytest.param({"f": [{"wildcard": ""}]}, field(""), True, id="wildcard-empty"),
    pytest.param({"f": [{"wildcard": ""}]}, field("x"), False, id="wildcard-empty-no"),
    pytest.param({"f": [{"wildcard": "a*b*c"}]}, field("aXbYc"), True, id="wildcard-two"),
    pytest.param({"f": [{"wildcard": "a*b*c"}]}, field("abc"), True, id="wildcard-two-empty"),
    pytest.param({"f": [{"wildcard": "a*b*c"}]}, field("acb"), False, id="wildcard-order"),
    pytest.param({"f": [{"wildcard": "ab*ba"}]}, field("aba"), False, id="wildcard-no-overlap"),
    pytest.param({"f": [{"wildcard": "ab*ba"}]}, field("abba"), True, id="wildcard-adjacent"),
    pytest.param({"f": [{"wildcard": "*a*a*"}]}, field("xaya"), True, id="wildcard-repeat"),
    pytest.param({"f": [{"wildcard": "*a*a*"}]}, field("xay"), False, id="wildcard-repeat-no"),
    pytest.param({"f": [{"wildcard": "a\\*b"}]}, field("a*b"), True, id="wildcard-escaped-star"),
    pytest.param({"f": [{"wildcard": "a\\*b"}]}, field("aXb"), False, id="wildcard-escaped-lit"),
    pytest.param({"f": [{"wildcard": "a\\\\*"}]}, field("a\\xyz"), True, id="wildcard-backslash"),
    pytest.param({"f": [{"wildcard": "\\**"}]}, field("*tail"), True, id="wildcard-escape-first"),
    pytest.param({"f": [{"wildcard": "*.png"}]}, field(["a.jpg", "b.png"]), True, id="wc-array"),
    # --- anything-but -------------------------------------------------------------------
    # CONTENT "Anything-but matching", each documented form.
    pytest.param(
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"state": "running"}},
        True,
        id="doc-anything-but-string",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": "initializing"}]}},
        {"detail": {"state": "initializing"}},
        False,
        id="doc-anything-but-string-no",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": 123}]}},
        {"detail": {"x-limit": 124}},
        True,
        id="doc-anything-but-number",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": 123}]}},
        {"detail": {"x-limit": 123.0}},
        False,
        id="doc-anything-but-number-no",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        {"detail": {"state": "running"}},
        True,
        id="doc-anything-but-strings",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": ["stopped", "overloaded"]}]}},
        {"detail": {"state": "overloaded"}},
        False,
        id="doc-anything-but-strings-no",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"detail": {"x-limit": 301.8}},
        True,
        id="doc-anything-but-numbers",
    ),
    pytest.param(
        {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}},
        {"detail": {"x-limit": 200}},
        False,
        id="doc-anything-but-numbers-no",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        {"detail": {"state": "running"}},
        True,
        id="doc-anything-but-prefix",
    ),
    pytest.param(
        {"detail": {"state": [{"anything-but": {"prefix": "init"}}]}},
        {"detail": {"state": "initializing"}},
        False,
        id="doc-anything-but-prefix-no",
    ),
    # CONTENT "Anything-but matching example": only events that are not from AWS.
    pytest.param(
        {"source": [{"anything-but": {"prefix": "aws."}}]},
        {"source": "com.mycompany.myapp"},
        True,
        id="doc-anything-but-not-aws",
    ),
    # OPERATORS: the anything-but suffix, ignore-case and wildcard rows.
    pytest.param(
        {"FileName": [{"anything-but": {"suffix": ".png"}}]},
        {"FileName": "a.jpg"},
        True,
        id="doc-anything-but-suffix",
    ),
    pytest.param(
        {"FileName": [{"anything-but": {"suffix": ".png"}}]},
        {"FileName": "a.png"},
        False,
        id="doc-anything-but-suffix-no",
    ),
    pytest.param(
        {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]},
        {"state": "INITIALIZING"},
        False,
        id="doc-anything-but-ignore-case-no",
    ),
    pytest.param(
        {"state": [{"anything-but": {"equals-ignore-case": ["initializing", "stopped"]}}]},
        {"state": "Running"},
        True,
        id="anything-but-ignore-case-list",
    ),
    pytest.param(
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/lib/x"},
        False,
        id="doc-anything-but-wildcard-no",
    ),
    pytest.param(
        {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]},
        {"FilePath": "/usr/bin/x"},
        True,
        id="doc-anything-but-wildcard",
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": ["*/lib/*", "*.tmp"]}}]},
        field("a.tmp"),
        False,
        id="anything-but-wildcard-list",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": ["a", "b"]}}]},
        field("bx"),
        False,
        id="anything-but-prefix-list",
    ),
    pytest.param(
        {"f": [{"anything-but": {"suffix": ["a", "b"]}}]},
        field("xc"),
        True,
        id="anything-but-suffix-list",
    ),
    # Anything-but matches every present value the inner test does not exclude,
    # whatever its type, but never an absent field.
    pytest.param({"f": [{"anything-but": "x"}]}, field(None), True, id="anything-but-null"),
    pytest.param({"f": [{"anything-but": "1"}]}, field(1), True, id="anything-but-str-vs-num"),
    pytest.param({"f": [{"anything-but": 1}]}, field("1"), True, id="anything-but-num-vs-str"),
    pytest.param({"f": [{"anything-but": 1}]}, field(True), True, id="anything-but-1-vs-true"),
    pytest.param({"f": [{"anything-but": 0}]}, field(789), True, id="anything-but-zero"),
    pytest.param(
        {"f": [{"anything-but": {"prefix": "init"}}]}, field(12), True, id="anything-but-prefix-num"
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": "*"}}]}, field(None), True, id="anything-but-wc-null"
    ),
    pytest.param({"f": [{"anything-but": "x"}]}, NOTHING, False, id="anything-but-absent"),
    pytest.param({"f": [{"anything-but": "x"}]}, field([]), False, id="anything-but-empty-array"),
    pytest.param({"f": [{"anything-but": "x"}]}, field({"g": 1}), False, id="anything-but-object"),
    pytest.param({"f": [{"anything-but": ""}]}, field(""), False, id="anything-but-empty-string"),
    # SNS_NUMERIC: an array matches when any element is not excluded.
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]}, {"price": [100, 50]}, True, id="doc-ab-array"
    ),
    pytest.param(
        {"price": [{"anything-but": [100, 500]}]}, {"price": [100, 500]}, False, id="ab-array-no"
    ),
    # --- numeric ------------------------------------------------------------------------
    # CONTENT "Numeric matching".
    pytest.param(
        {
            "detail": {
                "c-count": [{"numeric": [">", 0, "<=", 5]}],
                "d-count": [{"numeric": ["<", 10]}],
                "x-limit": [{"numeric": ["=", 3.018e2]}],
            }
        },
        {"detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8}},
        True,
        id="doc-numeric",
    ),
    pytest.param(
        {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}},
        {"detail": {"c-count": 0}},
        False,
        id="doc-numeric-open-bottom",
    ),
    pytest.param({"f": [{"numeric": [">", 0, "<=", 5]}]}, field(5.0), True, id="numeric-closed"),
    pytest.param({"f": [{"numeric": [">", 0, "<=", 5]}]}, field(5.01), False, id="numeric-above"),
    pytest.param({"f": [{"numeric": [">=", 0, "<", 5]}]}, field(0), True, id="numeric-ge"),
    pytest.param({"f": [{"numeric": [">=", 0, "<", 5]}]}, field(5), False, id="numeric-lt"),
    pytest.param({"f": [{"numeric": [">=", 0]}]}, field(1e9), True, id="numeric-ge-only"),
    pytest.param({"f": [{"numeric": ["<=", -1]}]}, field(-1), True, id="numeric-le-only"),
    pytest.param({"f": [{"numeric": ["=", 3]}]}, field(3.0), True, id="numeric-eq"),
    pytest.param({"f": [{"numeric": ["=", 3]}]}, field(3.5), False, id="numeric-eq-no"),
    pytest.param({"f": [{"numeric": [">", 0]}]}, field("5"), False, id="numeric-string"),
    pytest.param({"f": [{"numeric": [">", 0]}]}, field(True), False, id="numeric-bool"),
    pytest.param({"f": [{"numeric": [">", 0]}]}, field(None), False, id="numeric-null"),
    pytest.param({"f": [{"numeric": [">", 0]}]}, field([-1, 2]), True, id="numeric-array"),
    pytest.param({"f": [{"numeric": [">", 0]}]}, field(5e9), True, id="numeric-limit"),
    # CONTENT: numeric matching is limited to -5e9..5e9; larger values never match.
    pytest.param({"f": [{"numeric": [">", 0]}]}, field(5e9 + 1), False, id="numeric-over-limit"),
    pytest.param({"f": [{"numeric": ["<", 0]}]}, field(-6e9), False, id="numeric-under-limit"),
    # Several operator objects in one array: any may match.
    pytest.param(
        {"f": [{"numeric": ["<", 0]}, {"numeric": [">", 10]}]},
        field(11),
        True,
        id="numeric-or",
    ),
    pytest.param(
        {"f": [{"numeric": ["<", 0]}, {"numeric": [">", 10]}]},
        field(5),
        False,
        id="numeric-or-no",
    ),
    # --- cidr ---------------------------------------------------------------------------
    # CONTENT "IP address matching".
    pytest.param(
        {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"sourceIPAddress": "10.0.0.255"}},
        True,
        id="doc-cidr",
    ),
    pytest.param(
        {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}},
        {"detail": {"sourceIPAddress": "10.0.1.0"}},
        False,
        id="doc-cidr-no",
    ),
    pytest.param({"f": [{"cidr": "10.0.0.7/24"}]}, field("10.0.0.1"), True, id="cidr-host-bits"),
    pytest.param({"f": [{"cidr": "0.0.0.0/0"}]}, field("8.8.8.8"), True, id="cidr-all"),
    pytest.param({"f": [{"cidr": "10.0.0.1/32"}]}, field("10.0.0.1"), True, id="cidr-host"),
    pytest.param(
        {"f": [{"cidr": "2001:db8:1234:1a00::/64"}]},
        field("2001:db8:1234:1a00::a"),
        True,
        id="cidr-ipv6",
    ),
    pytest.param(
        {"f": [{"cidr": "2001:db8:1234:1a00::/64"}]},
        field("2001:db8:1234:1a01::a"),
        False,
        id="cidr-ipv6-no",
    ),
    pytest.param({"f": [{"cidr": "::/0"}]}, field("10.0.0.1"), False, id="cidr-v6-vs-v4"),
    pytest.param({"f": [{"cidr": "0.0.0.0/0"}]}, field("::1"), False, id="cidr-v4-vs-v6"),
    pytest.param({"f": [{"cidr": "10.0.0.0/8"}]}, field("not an ip"), False, id="cidr-text"),
    pytest.param({"f": [{"cidr": "10.0.0.0/8"}]}, field(10), False, id="cidr-number"),
    # --- exists -------------------------------------------------------------------------
    # CONTENT "Exists matching": both documented events match exists: false.
    pytest.param(
        {"detail": {"c-count": [{"exists": False}]}},
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"],
            "detail": {"state": ["initializing", "running"]},
        },
        True,
        id="doc-exists-false",
    ),
    pytest.param(
        {"detail": {"c-count": [{"exists": False}]}},
        {
            "detail-type": ["EC2 Instance State-change Notification"],
            "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-02ebd4584a2ebd341"],
            "detail": {"state": ["initializing", "running"], "c-count": {"c1": 100}},
        },
        True,
        id="doc-exists-false-not-leaf",
    ),
    pytest.param(
        {"detail": {"c-count": [{"exists": True}]}},
        {"detail": {"c-count": {"c1": 100}}},
        False,
        id="exists-true-not-leaf",
    ),
    pytest.param(
        {"detail": {"c-count": [{"exists": True}]}},
        RULER_EVENT,
        True,
        id="ruler-exists-true",
    ),
    pytest.param({"f": [{"exists": False}]}, field(5), False, id="exists-false-present"),
    pytest.param({"f": [{"exists": True}]}, NOTHING, False, id="exists-true-absent"),
    pytest.param({"f": [{"exists": True}]}, field(None), True, id="exists-null"),
    pytest.param({"f": [{"exists": True}]}, field(""), True, id="exists-empty-string"),
    pytest.param({"f": [{"exists": True}]}, field(False), True, id="exists-false-value"),
    pytest.param({"f": [{"exists": True}]}, field([]), False, id="exists-empty-array"),
    pytest.param({"f": [{"exists": False}]}, field([]), True, id="exists-false-empty-array"),
    pytest.param({"f": [{"exists": True}]}, field([1]), True, id="exists-array"),
    pytest.param({"f": [{"exists": True}]}, field([{"g": 1}]), False, id="exists-array-objects"),
    pytest.param({"f": [{"exists": True}]}, field([[], [None]]), True, id="exists-nested-null"),
    # A missing parent makes its leaves missing, however deep.
    pytest.param(
        {"detail": {"a": {"b": {"c": [{"exists": False}]}}}},
        {"detail": {"a": {"x": "y"}}},
        True,
        id="exists-false-deep",
    ),
    pytest.param(
        {"detail": {"a": [{"exists": False}]}}, {"other": 1}, True, id="exists-false-no-parent"
    ),
    pytest.param(
        {"detail": {"a": [{"exists": False}]}},
        {"detail": "scalar"},
        True,
        id="exists-false-scalar-parent",
    ),
    # Absence within arrays of objects: absent from every element.
    pytest.param(
        {"items": {"b": [{"exists": False}]}},
        {"items": [{"a": 1}, {"a": 2}]},
        True,
        id="exists-false-in-all-elements",
    ),
    pytest.param(
        {"items": {"b": [{"exists": False}]}},
        {"items": [{"a": 1}, {"b": 2}]},
        False,
        id="exists-false-one-element-has-it",
    ),
    pytest.param(
        {"items": {"a": [2], "b": [{"exists": False}]}},
        {"items": [{"a": 1, "b": 0}, {"a": 2}]},
        True,
        id="exists-false-with-positive-in-element",
    ),
    # Exists combined with values: AWS's "or-exists-parent" case.
    pytest.param(
        {
            "dynamodb": {
                "NewImage": {"homemade": {"S": [{"anything-but": ["roses"]}, {"exists": False}]}}
            }
        },
        {"dynamodb": {"NewImage": {"purchased": {"N": "789"}}}},
        True,
        id="exists-false-or-anything-but",
    ),
    # --- $or ----------------------------------------------------------------------------
    # RULER "$or" examples.
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/ES"},
        True,
        id="ruler-or",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
        },
        {"source": "aws.cloudwatch", "namespace": "AWS/S3"},
        False,
        id="ruler-or-no",
    ),
    pytest.param(
        {
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
            "detail": {
                "$or": [
                    {"source": ["aws.cloudwatch"]},
                    {"detail-type": ["CloudWatch Alarm State Change"]},
                ]
            },
        },
        {"metricName": "ReadLatency", "detail": {"detail-type": "CloudWatch Alarm State Change"}},
        True,
        id="ruler-parallel-or",
    ),
    pytest.param(
        {
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"namespace": ["AWS/EC2", "AWS/ES"]},
            ],
            "detail": {
                "$or": [
                    {"source": ["aws.cloudwatch"]},
                    {"detail-type": ["CloudWatch Alarm State Change"]},
                ]
            },
        },
        {"metricName": "ReadLatency", "detail": {"source": "aws.ec2"}},
        False,
        id="ruler-parallel-or-no",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"]},
                {"scope": ["Service"]},
            ],
        },
        {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/EC2"},
        True,
        id="ruler-or-with-and",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {"metricType": ["MetricType"], "namespace": ["AWS/EC2", "AWS/ES"]},
                {"scope": ["Service"]},
            ],
        },
        {"source": "aws.cloudwatch", "metricType": "MetricType"},
        False,
        id="ruler-or-with-and-no",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {
                    "metricType": ["MetricType"],
                    "namespace": ["AWS/EC2", "AWS/ES"],
                    "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
                },
                {"scope": ["Service"]},
            ],
        },
        {
            "source": "aws.cloudwatch",
            "metricType": "MetricType",
            "namespace": "AWS/ES",
            "spaceId": 1000,
        },
        True,
        id="ruler-nested-or",
    ),
    pytest.param(
        {
            "source": ["aws.cloudwatch"],
            "$or": [
                {"metricName": ["CPUUtilization", "ReadLatency"]},
                {
                    "metricType": ["MetricType"],
                    "namespace": ["AWS/EC2", "AWS/ES"],
                    "$or": [{"metricId": [1234]}, {"spaceId": [1000]}],
                },
                {"scope": ["Service"]},
            ],
        },
        {"source": "aws.cloudwatch", "metricType": "MetricType", "namespace": "AWS/ES"},
        False,
        id="ruler-nested-or-no",
    ),
    # $or with exists and anything-but, as in OPERATORS' "Or" row.
    pytest.param(
        {"$or": [{"a": [{"exists": False}]}, {"a": [{"anything-but": "bad"}]}]},
        {"a": "good"},
        True,
        id="or-exists-anything-but",
    ),
    pytest.param(
        {"$or": [{"a": [{"exists": False}]}, {"a": [{"anything-but": "bad"}]}]},
        {"a": "bad"},
        False,
        id="or-exists-anything-but-no",
    ),
    # A key constrained both outside and inside an $or branch must satisfy both.
    pytest.param(
        {"a": [{"prefix": "x"}], "$or": [{"a": [{"suffix": "y"}]}, {"b": [1]}]},
        {"a": "xzy"},
        True,
        id="or-and-same-key",
    ),
    pytest.param(
        {"a": [{"prefix": "x"}], "$or": [{"a": [{"suffix": "y"}]}, {"b": [1]}]},
        {"a": "zy"},
        False,
        id="or-and-same-key-no",
    ),
    # Nested objects from an $or branch and outside it are one nested pattern, so array
    # consistency still holds across them.
    pytest.param(
        {"e": {"a": [1]}, "$or": [{"e": {"b": [2]}}, {"x": [1]}]},
        {"e": [{"a": 1}, {"b": 2}]},
        False,
        id="or-array-consistency",
    ),
    pytest.param(
        {"e": {"a": [1]}, "$or": [{"e": {"b": [2]}}, {"x": [1]}]},
        {"e": [{"a": 1, "b": 2}]},
        True,
        id="or-array-consistent",
    ),
    # --- the empty pattern --------------------------------------------------------------
    pytest.param({}, EC2_EVENT, True, id="empty-pattern"),
    pytest.param({}, {}, True, id="empty-pattern-empty-event"),
]


@pytest.mark.parametrize(("pattern", "event", "expected"), CASES)
def test_matching(pattern: dict[str, Any], event: dict[str, Any], expected: bool) -> None:
    assert compile_pattern(pattern).matches(event) is expected
    assert matches(pattern, event) is expected


VALID = ", ".join(OPERATORS)

# (pattern, path of the offending key, a fragment of the message)
INVALID = [
    # A leaf must be an array (EVENT_PATTERNS; AWS: '"int" must be an object or an array').
    pytest.param(
        {"source": "aws.ec2"},
        "source",
        'got the string "aws.ec2"; write ["aws.ec2"]',
        id="leaf-string",
    ),
    pytest.param({"int": 42}, "int", "got the number 42", id="leaf-number"),
    pytest.param({"b": True}, "b", "got true", id="leaf-bool"),
    pytest.param({"n": None}, "n", "got null", id="leaf-null"),
    pytest.param(
        {"detail": {"pipeline": {"slug": "x"}}},
        "detail.pipeline.slug",
        "must be an array of values or a nested object",
        id="leaf-deep",
    ),
    pytest.param({"resources": []}, "resources", "empty arrays are not allowed", id="empty-array"),
    pytest.param(
        {"source": ["aws.health"], "detail": {}},
        "detail",
        "empty objects are not allowed",
        id="empty-object",
    ),
    pytest.param({"f": [["a"]]}, "f", "got an array", id="array-in-array"),
    pytest.param({"f": [1.5, float("nan")]}, "f", "not a finite number", id="nan"),
    pytest.param({"f": [float("inf")]}, "f", "not a finite number", id="infinity"),
    pytest.param({"f": [{1, 2}]}, "f", "not a JSON value", id="not-json"),
    pytest.param({"d": {1: ["x"]}}, "d.1", "keys must be strings", id="non-string-key"),
    # Operator objects: exactly one known operator.
    pytest.param(
        {"detail": {"size": [{"gt": 5}]}},
        "detail.size",
        f"unknown operator 'gt'; valid operators: {VALID}",
        id="unknown-operator",
    ),
    pytest.param(
        {"my_key": [{"EXISTS": True}]},
        "my_key",
        "unknown operator 'EXISTS'",
        id="operator-case-sensitive",
    ),
    pytest.param({"f": [{}]}, "f", "exactly one operator, got none", id="operator-empty"),
    pytest.param(
        {"f": [{"prefix": "a", "suffix": "b"}]},
        "f",
        "exactly one operator, got 2 ('prefix', 'suffix')",
        id="operator-two",
    ),
    # prefix / suffix / equals-ignore-case / wildcard want strings.
    pytest.param({"time": [{"prefix": 123}]}, "time", "prefix must be a string", id="prefix-int"),
    pytest.param(
        {"time": [{"prefix": ["2022"]}]}, "time", "prefix must be a string", id="prefix-list"
    ),
    pytest.param(
        {"f": [{"prefix": {"equals-ignore-case": 1}}]},
        "f",
        "prefix: equals-ignore-case must be a string",
        id="prefix-ignore-case-int",
    ),
    pytest.param(
        {"f": [{"prefix": {"wildcard": "a"}}]},
        "f",
        "single option equals-ignore-case, got options 'wildcard'",
        id="prefix-option",
    ),
    pytest.param({"f": [{"suffix": 123}]}, "f", "suffix must be a string", id="suffix-int"),
    pytest.param({"f": [{"suffix": [".png"]}]}, "f", "suffix must be a string", id="suffix-list"),
    pytest.param(
        {"f": [{"equals-ignore-case": ["x"]}]},
        "f",
        "equals-ignore-case must be a string",
        id="ignore-case-list",
    ),
    pytest.param(
        {"f": [{"equals-ignore-case": {"prefix": "ec2"}}]},
        "f",
        "equals-ignore-case must be a string",
        id="ignore-case-object",
    ),
    pytest.param({"f": [{"wildcard": 123}]}, "f", "wildcard must be a string", id="wildcard-int"),
    pytest.param(
        {"f": [{"wildcard": ["a*"]}]}, "f", "wildcard must be a string", id="wildcard-list"
    ),
    pytest.param(
        {"f": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]},
        "f",
        "consecutive '*' at position 26",
        id="wildcard-consecutive",
    ),
    pytest.param(
        {"f": [{"wildcard": "a\\b"}]},
        "f",
        "backslash at position 2 may only escape",
        id="wildcard-bad-escape",
    ),
    pytest.param(
        {"f": [{"wildcard": "a\\"}]},
        "f",
        "backslash at position 2",
        id="wildcard-trailing-backslash",
    ),
    # exists takes a boolean.
    pytest.param(
        {"f": [{"exists": "true"}]},
        "f",
        "exists must be true or false, got the string",
        id="exists-string",
    ),
    pytest.param(
        {"f": [{"exists": 1}]},
        "f",
        "exists must be true or false, got the number 1",
        id="exists-number",
    ),
    pytest.param(
        {"f": [{"exists": None}]}, "f", "exists must be true or false, got null", id="exists-null"
    ),
    # numeric: operators and their order (CONTENT, and AWS's validation messages).
    pytest.param(
        {"f": [{"numeric": 5}]}, "f", "numeric must be a non-empty array", id="numeric-not-array"
    ),
    pytest.param(
        {"f": [{"numeric": []}]}, "f", "numeric must be a non-empty array", id="numeric-empty"
    ),
    pytest.param(
        {"f": [{"numeric": ["gt", 5]}]},
        "f",
        "unknown comparison 'gt' at position 1; valid comparisons: <, <=, =, >, >=",
        id="numeric-bad-operator",
    ),
    pytest.param(
        {"f": [{"numeric": [5, ">"]}]},
        "f",
        "unknown comparison the number 5",
        id="numeric-operand-first",
    ),
    pytest.param(
        {"detail": {"c-count": [{"numeric": [">", 0, "<"]}]}},
        "detail.c-count",
        "'<' must be followed by a number, got nothing",
        id="numeric-missing-operand",
    ),
    pytest.param(
        {"f": [{"numeric": [">", "0"]}]},
        "f",
        "'>' must be followed by a number, got the string",
        id="numeric-string-operand",
    ),
    pytest.param(
        {"f": [{"numeric": [">", True]}]},
        "f",
        "must be followed by a number, got true",
        id="numeric-bool-operand",
    ),
    pytest.param(
        {"detail": {"c-count": [{"numeric": [">", 0, ">", 0]}]}},
        "detail.c-count",
        "after the lower bound '>' comes an upper bound",
        id="numeric-two-lower",
    ),
    pytest.param(
        {"f": [{"numeric": ["<", 5, ">", 0]}]},
        "f",
        "'<' must be the last comparison",
        id="numeric-upper-first",
    ),
    pytest.param(
        {"f": [{"numeric": ["=", 3, "<", 5]}]},
        "f",
        "'=' must be the last comparison",
        id="numeric-eq-then-more",
    ),
    pytest.param(
        {"f": [{"numeric": [">", 5, "<", 5]}]},
        "f",
        "lower bound 5 must be less than the upper bound 5",
        id="numeric-empty-range",
    ),
    pytest.param(
        {"f": [{"numeric": [">", 0, "<", 5, "<", 6]}]},
        "f",
        "too many comparisons (3)",
        id="numeric-too-many",
    ),
    pytest.param({"f": [{"numeric": [">", 6e9]}]}, "f", "out of range", id="numeric-range"),
    # anything-but: strings or numbers, never mixed, never null or booleans.
    pytest.param(
        {"f": [{"anything-but": None}]}, "f", "anything-but takes a string", id="anything-but-null"
    ),
    pytest.param(
        {"f": [{"anything-but": True}]}, "f", "anything-but takes a string", id="anything-but-bool"
    ),
    pytest.param(
        {"f": [{"anything-but": []}]},
        "f",
        "at least one value, got an empty array",
        id="anything-but-empty-list",
    ),
    pytest.param(
        {"f": [{"anything-but": ["a", 1]}]},
        "f",
        "got both strings and numbers",
        id="anything-but-mixed",
    ),
    pytest.param(
        {"f": [{"anything-but": ["a", None]}]},
        "f",
        "only strings or only numbers, got null",
        id="anything-but-list-null",
    ),
    pytest.param(
        {"f": [{"anything-but": [6e9]}]}, "f", "out of range", id="anything-but-number-range"
    ),
    pytest.param(
        {"f": [{"anything-but": {"numeric": [">", 1]}}]},
        "f",
        "anything-but takes one option, got 'numeric'; valid options: "
        "equals-ignore-case, prefix, suffix, wildcard",
        id="anything-but-option",
    ),
    pytest.param(
        {"f": [{"anything-but": {}}]},
        "f",
        "anything-but takes one option, got none",
        id="anything-but-no-option",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
        "f",
        "takes one option, got 'prefix', 'suffix'",
        id="anything-but-two-options",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": 123}}]},
        "f",
        "anything-but prefix must be a string or an array of strings",
        id="anything-but-prefix-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": [123, "test"]}}]},
        "f",
        "anything-but prefix must be a string",
        id="anything-but-prefix-list-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": ""}}]},
        "f",
        "anything-but prefix must not be empty",
        id="anything-but-prefix-empty",
    ),
    pytest.param(
        {"f": [{"anything-but": {"suffix": ""}}]},
        "f",
        "anything-but suffix must not be empty",
        id="anything-but-suffix-empty",
    ),
    pytest.param(
        {"f": [{"anything-but": {"suffix": [123, ".txt"]}}]},
        "f",
        "anything-but suffix must be a string",
        id="anything-but-suffix-list-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]},
        "f",
        "anything-but prefix must be a string",
        id="anything-but-prefix-ignore-case",
    ),
    pytest.param(
        {"f": [{"anything-but": {"equals-ignore-case": 123}}]},
        "f",
        "anything-but equals-ignore-case must be a string",
        id="anything-but-ignore-case-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"equals-ignore-case": [123, 456]}}]},
        "f",
        "anything-but equals-ignore-case must be a string",
        id="anything-but-ignore-case-list-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": 123}}]},
        "f",
        "anything-but wildcard must be a string",
        id="anything-but-wildcard-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": [123, "*/dir/*"]}}]},
        "f",
        "anything-but wildcard must be a string",
        id="anything-but-wildcard-list-int",
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": "a**"}}]},
        "f",
        "consecutive '*'",
        id="anything-but-wildcard-consecutive",
    ),
    pytest.param(
        {"f": [{"anything-but": {"wildcard": []}}]},
        "f",
        "needs at least one string",
        id="anything-but-wildcard-empty-list",
    ),
    # cidr: a string with exactly one '/', an integer mask and a valid address.
    pytest.param({"f": [{"cidr": ["10.0.0.0/8"]}]}, "f", "cidr must be a string", id="cidr-list"),
    pytest.param({"f": [{"cidr": "10.0.0.1"}]}, "f", "needs exactly one '/'", id="cidr-no-slash"),
    pytest.param(
        {"f": [{"cidr": "10.0.0.0/8/8"}]}, "f", "needs exactly one '/'", id="cidr-two-slashes"
    ),
    pytest.param(
        {"f": [{"cidr": "10.0.0.0/x"}]}, "f", "mask bits 'x' must be an integer", id="cidr-bad-mask"
    ),
    pytest.param(
        {"f": [{"cidr": "xx.11.xx/24"}]},
        "f",
        "'xx.11.xx' is not an IPv4 or IPv6 address",
        id="cidr-bad-ip",
    ),
    pytest.param(
        {"f": [{"cidr": "xxxx:db8:1234:1a00::/64"}]},
        "f",
        "is not an IPv4 or IPv6",
        id="cidr-bad-ipv6",
    ),
    pytest.param(
        {"f": [{"cidr": "10.0.0.0/33"}]}, "f", "mask bits must be 0 to 32", id="cidr-mask-too-big"
    ),
    pytest.param(
        {"f": [{"cidr": "::/129"}]}, "f", "mask bits must be 0 to 128", id="cidr-v6-mask-too-big"
    ),
    # $or: an array of at least two non-empty objects, without operator names as keys.
    pytest.param(
        {"$or": [{"a": [1]}]}, "$or", "at least 2 objects, got an array of 1", id="or-one"
    ),
    pytest.param({"$or": []}, "$or", "at least 2 objects, got an array of 0", id="or-empty"),
    pytest.param({"$or": {"a": [1]}}, "$or", "at least 2 objects, got an object", id="or-object"),
    pytest.param(
        {"detail": {"$or": [{"a": [1]}, ["b"]]}},
        "detail.$or[1]",
        "each $or alternative must be an object, got an array",
        id="or-array-member",
    ),
    pytest.param(
        {"$or": [{"a": [1]}, {}]}, "$or[1]", "empty objects are not allowed", id="or-empty-member"
    ),
    pytest.param(
        {"$or": [{"numeric": [">", 1]}, {"prefix": "abc"}]},
        "$or[0].numeric",
        "'numeric' is an operator name and cannot be a field name inside $or",
        id="or-reserved",
    ),
    pytest.param(
        {"$or": [{"d": {"exists": [True]}}, {"b": [1]}]},
        "$or[0].d.exists",
        "'exists' is an operator name",
        id="or-reserved-nested",
    ),
    pytest.param(
        {"$or": [{"a": [1]}, {"b": [{"numeric": ["<"]}]}]},
        "$or[1].b",
        "'<' must be followed by a number",
        id="or-member-invalid",
    ),
]


@pytest.mark.parametrize(("pattern", "path", "fragment"), INVALID)
def test_invalid_pattern(pattern: Any, path: str, fragment: str) -> None:
    with pytest.raises(InvalidPatternError) as caught:
        compile_pattern(pattern)
    message = str(caught.value)
    assert message.startswith(f"pattern key {path!r}: "), message
    assert fragment in message, message
    # The convenience function reports the same problem.
    with pytest.raises(InvalidPatternError):
        matches(pattern, EC2_EVENT)


@pytest.mark.parametrize("pattern", [[{"a": [1]}], "source", None, 5])
def test_pattern_must_be_an_object(pattern: Any) -> None:
    with pytest.raises(InvalidPatternError, match="an event pattern must be a JSON object"):
        compile_pattern(pattern)


def test_invalid_pattern_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="pattern key 'f'"):
        compile_pattern({"f": "x"})


def test_too_many_or_branches_is_refused() -> None:
    alternatives = [{"a": [1]}, {"b": [1]}, {"c": [1]}, {"d": [1]}]
    pattern = {f"k{i}": {"$or": alternatives} for i in range(6)}  # 4**6 = 4096 branches
    with pytest.raises(InvalidPatternError, match=r"pattern key 'k5': .*more than 1024"):
        compile_pattern(pattern)


def test_pattern_is_immutable_hashable_and_canonical() -> None:
    first = compile_pattern({"source": ["a"], "detail": {"x": [1, 2]}})
    second = compile_pattern({"detail": {"x": [1, 2]}, "source": ["a"]})
    assert first == second
    assert hash(first) == hash(second)
    assert first != compile_pattern({"source": ["b"]})
    assert first.text == '{"detail":{"x":[1,2]},"source":["a"]}'
    assert repr(first) == 'Pattern({"detail":{"x":[1,2]},"source":["a"]})'
    assert json.loads(first.text) == {"source": ["a"], "detail": {"x": [1, 2]}}
    with pytest.raises(AttributeError):
        first.text = "{}"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        first._text = "{}"
    with pytest.raises(AttributeError):
        del first._branches


def test_compiling_does_not_keep_the_callers_objects() -> None:
    source = {"source": ["a"], "detail": {"state": ["on"]}}
    pattern = compile_pattern(source)
    source["source"].append("b")  # type: ignore[attr-defined]
    source["detail"]["state"] = ["off"]  # type: ignore[index]
    assert pattern.matches({"source": "a", "detail": {"state": "on"}})
    assert not pattern.matches({"source": "b", "detail": {"state": "on"}})


def test_matching_does_not_modify_the_event() -> None:
    event = {"a": [{"b": [1, [2]]}, "x"], "c": {"d": None}}
    before = copy.deepcopy(event)
    compile_pattern({"a": {"b": [{"numeric": [">", 1]}]}, "c": {"e": [{"exists": False}]}}).matches(
        event
    )
    assert event == before
    dotted = {"a": {"b": {"c": 1}}, "a.b": {"d": 2}, "x": [{"y.z": 3}, {"y": {"z": 4}}]}
    before = copy.deepcopy(dotted)
    assert compile_pattern({"a.b": {"c": [1], "d": [2]}, "x": {"y": {"z": [4]}}}).matches(dotted)
    assert dotted == before


def test_dotted_and_nested_patterns_match_alike() -> None:
    """SYNTAX "Considerations": EventBridge treats the two spellings as one pattern."""
    events = [
        {"detail": {"state": {"status": "running"}}},
        {"detail": {"state.status": "running"}},
        {"detail.state.status": "running"},
        {"detail": {"state": {"status": "stopped"}}},
        {"detail": {"state": "running"}},
        {},
    ]
    nested = compile_pattern({"detail": {"state": {"status": ["running"]}}})
    for spelling in (
        {"detail": {"state.status": ["running"]}},
        {"detail.state": {"status": ["running"]}},
        {"detail.state.status": ["running"]},
    ):
        dotted = compile_pattern(spelling)
        assert [dotted.matches(e) for e in events] == [nested.matches(e) for e in events]
    assert [nested.matches(e) for e in events] == [True, True, True, False, False, False]


# --- wildcard complexity ----------------------------------------------------------------------
# OPERATORS, "Wildcards and event pattern complexity": "If a rule is too complex, EventBridge
# returns an InvalidEventPatternException when attempting to create the rule"; the remedies it
# gives are fewer wildcard characters and fewer repeating character sequences after a wildcard.
# RULER, "Matching with a Machine": the complexity is "how many wildcard rule prefixes match a
# theoretical worst-case event", as its MachineComplexityEvaluator computes it; event-ruler's
# MachineComplexityEvaluatorTest pins "*a*a*a*" at 7 ("aaa" is matched by "*", "*a", "*a*",
# "*a*a", "*a*a*", "*a*a*a" and "*a*a*a*"), and its regression test evaluates under the
# "production-style cap of 11". AWS publishes no number: reelay allows 10, and refuses 11 up.


def complexity(*wildcards: str) -> int:
    from reelay.events._pattern import _term, _wildcard_complexity

    return _wildcard_complexity([_term({"wildcard": w}) for w in wildcards], 1000)


def test_wildcard_complexity_counts_the_prefixes_one_value_can_match() -> None:
    assert complexity("abc") == 1  # no wildcard: one pattern, one path
    assert complexity("*a*a*a*") == 7  # RULER's MachineComplexityEvaluatorTest
    assert complexity("*") == 2  # the value's opening quote, then the wildcard
    # Each "*:stack/NAME/*" adds 3: the shared leading wildcard, the literal run after it
    # and its own trailing wildcard, all active at once on ":stack/a/:stack/b/...:stack/".
    assert [complexity(*(f"*:stack/n{i}/*" for i in range(n))) for n in (1, 2, 3, 4)] == [
        3,
        6,
        9,
        12,
    ]
    # Patterns that share a literal prefix up to their first wildcard share its states.
    assert complexity("arn:aws:events:us-east-1:*:event-bus/*") == 3


def test_too_complex_wildcards_are_refused_with_the_limit() -> None:
    from reelay.events._pattern import WILDCARD_COMPLEXITY_LIMIT

    assert WILDCARD_COMPLEXITY_LIMIT == 10
    three = [{"wildcard": f"*:stack/n{i}/*"} for i in range(3)]
    compile_pattern({"detail": {"stack-id": three}})  # complexity 9: allowed
    four = [*three, {"wildcard": "*:stack/n3/*"}]
    with pytest.raises(InvalidPatternError) as caught:
        compile_pattern({"detail": {"stack-id": four}})
    message = str(caught.value)
    assert "pattern key 'detail.stack-id': the wildcard patterns are too complex" in message
    assert "11 or more wildcard prefixes can match one value at once" in message
    assert "EventBridge allows at most 10" in message and "fewer wildcard characters" in message
    # One leaf or several: the patterns of one field share its machine, $or included.
    with pytest.raises(InvalidPatternError, match="too complex"):
        compile_pattern({"$or": [{"f": three}, {"f": [{"wildcard": "*:stack/n3/*"}]}]})
    with pytest.raises(InvalidPatternError, match="too complex"):
        compile_pattern({"f": [{"anything-but": {"wildcard": "*a*a*a*a*a*"}}]})
    # Each wildcard followed by a repeat of what came before costs 2 ("*a*a*a*" is 7).
    compile_pattern({"f": [{"wildcard": "*a*a*a*a*"}]})  # 9
    with pytest.raises(InvalidPatternError, match="11 or more wildcard prefixes"):
        compile_pattern({"f": [{"wildcard": "*a*a*a*a*a*"}]})


def test_wildcard_complexity_is_per_field_and_per_path() -> None:
    three = [{"wildcard": f"*:stack/n{i}/*"} for i in range(3)]
    # Two fields, each under the limit: each has a machine of its own.
    compile_pattern({"a": three, "b": three})
    # The same field behind different values of an earlier field: separate machines.
    compile_pattern({"$or": [{"a": ["1"], "z": three}, {"a": ["2"], "z": three[:1]}]})
    # ...but behind the same value, one machine.
    with pytest.raises(InvalidPatternError, match="pattern key 'z'"):
        compile_pattern(
            {"$or": [{"a": ["1"], "z": three}, {"a": ["1"], "z": [{"wildcard": "*:stack/n3/*"}]}]}
        )
    # A dotted key and its nesting are one field, so one machine.
    with pytest.raises(InvalidPatternError, match=r"pattern key 'd\.f'"):
        compile_pattern({"$or": [{"d.f": three}, {"d": {"f": [{"wildcard": "*:stack/n3/*"}]}}]})


def test_matches_accepts_a_compiled_pattern_and_tuples() -> None:
    pattern = compile_pattern({"f": ["a"]})
    assert matches(pattern, {"f": "a"})
    assert matches({"f": ("a", "b")}, {"f": ("x", "b")})


def test_matches_caches_compiled_patterns() -> None:
    from reelay.events import _pattern

    _pattern._compile_text.cache_clear()
    for _ in range(3):
        assert matches({"source": ["s"], "n": [1]}, {"source": "s", "n": 1})
        assert matches({"n": [1], "source": ["s"]}, {"source": "s", "n": 1})  # same JSON text
    info = _pattern._compile_text.cache_info()
    assert (info.misses, info.hits) == (1, 5)


# ---------------------------------------------------------------------------------------
# PatternIndex


def test_index_returns_matching_keys_in_insertion_order() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("ec2-any", compile_pattern({"source": ["aws.ec2"]}))
    index.add("s3", compile_pattern({"source": ["aws.s3"]}))
    index.add("terminated", compile_pattern({"detail": {"state": ["terminated"]}}))
    index.add("everything", compile_pattern({}))
    index.add(
        "ec2-state-change",
        compile_pattern(
            {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]}
        ),
    )
    index.add("not-ec2", compile_pattern({"source": [{"anything-but": "aws.ec2"}]}))
    assert len(index) == 6
    assert index.match(EC2_EVENT) == ["ec2-any", "terminated", "everything", "ec2-state-change"]
    assert index.match({"source": "aws.s3"}) == ["s3", "everything", "not-ec2"]
    assert index.match({}) == ["everything"]


def test_index_key_added_twice_matches_once() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("r1", compile_pattern({"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}))
    index.add("r2", compile_pattern({"source": ["aws.ec2"]}))
    index.add("r1", compile_pattern({"detail": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}))
    # RULER "Rules and rule names": either pattern of R1 makes R1 match.
    assert index.match(RULER_EVENT) == ["r1", "r2"]
    assert index.match({"detail": {"x-limit": 301.8}}) == ["r1"]


def test_index_handles_or_nested_fields_and_arrays() -> None:
    index: PatternIndex[int] = PatternIndex()
    index.add(1, compile_pattern({"$or": [{"source": ["a"]}, {"source": ["b"], "x": [1]}]}))
    index.add(2, compile_pattern({"detail": {"bucket": {"name": ["media"]}}}))
    index.add(3, compile_pattern({"$or": [{"source": ["a"]}, {"other": ["b"]}]}))
    assert index.match({"source": "b", "x": 1}) == [1]
    assert index.match({"source": "b"}) == []
    assert index.match({"source": ["z", "a"]}) == [1, 3]
    assert index.match({"other": "b"}) == [3]
    assert index.match(
        {"detail": [{"bucket": {"name": "x"}}, {"bucket": [{"name": ["media"]}]}]}
    ) == [2]


def test_index_does_not_file_ip_addresses_by_spelling() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("host", compile_pattern({"ip": ["2001:db8::1"]}))
    assert index.match({"ip": "2001:0db8::0001"}) == ["host"]


def test_index_tests_only_candidates() -> None:
    """With thousands of sources, one event is tested against one pattern (plus residue)."""
    calls = 0

    class Counting(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            nonlocal calls
            calls += 1
            return super().get(key, default)

    index: PatternIndex[int] = PatternIndex()
    for i in range(2000):
        index.add(i, compile_pattern({"source": [f"app.{i}"], "detail": {"n": [i]}}))
    event = Counting({"source": "app.1234", "detail": {"n": 1234}})
    assert index.match(event) == [1234]
    assert calls <= 3  # one pattern looked at two fields; a scan would look 2000 times


def test_index_spreads_patterns_over_their_most_selective_field() -> None:
    """Patterns sharing one detail-type are filed by source, so an event looks at few."""
    calls = 0

    class Counting(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            nonlocal calls
            calls += 1
            return super().get(key, default)

    index: PatternIndex[int] = PatternIndex()
    for i in range(1000):
        index.add(i, compile_pattern({"source": [f"app.{i}"], "detail-type": ["Object Created"]}))
    event = Counting({"source": "app.500", "detail-type": "Object Created"})
    assert index.match(event) == [500]
    assert calls <= 6  # two lookups, then at most two candidate patterns


def test_index_matches_dotted_names_either_way() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("dotted", compile_pattern({"detail.state": ["on"], "source": ["s"]}))
    index.add("nested", compile_pattern({"detail": {"state": ["on"]}}))
    index.add("deep", compile_pattern({"detail": {"state.x": ["on"]}}))
    assert index.match({"source": "s", "detail": {"state": "on"}}) == ["dotted", "nested"]
    assert index.match({"source": "s", "detail.state": "on"}) == ["dotted", "nested"]
    assert index.match({"detail": {"state.x": "on"}}) == ["deep"]
    assert index.match({"detail.state.x": "on"}) == ["deep"]
    assert index.match({"detail": {"state": "off"}}) == []


def test_index_rejects_uncompiled_patterns() -> None:
    index: PatternIndex[str] = PatternIndex()
    with pytest.raises(TypeError, match="compile_pattern"):
        index.add("k", {"source": ["a"]})  # type: ignore[arg-type]


# Random patterns and events over a small vocabulary, so that they often match.
FIELDS = ["source", "detail-type", "a", "b", "a.b"]  # "a.b" is "b" inside "a"
STRINGS = ["x", "y", "xy", "Xy", "", "10.0.0.1", "2001:db8::1"]
NUMBERS = [0, 1, 2.5, -3, 300]


def random_value_condition(rng: random.Random) -> Any:
    kind = rng.randrange(12)
    if kind < 4:
        return rng.choice(STRINGS)
    if kind == 4:
        return rng.choice(NUMBERS)
    if kind == 5:
        return rng.choice([None, True, False])
    if kind == 6:
        return {"prefix": rng.choice(["x", "X", ""])}
    if kind == 7:
        return {"anything-but": rng.choice([rng.choice(STRINGS[:4]), rng.choice(NUMBERS)])}
    if kind == 8:
        low = rng.choice(NUMBERS)
        return {"numeric": [">=", low, "<", low + rng.choice([1, 10])]}
    if kind == 9:
        return {"exists": rng.choice([True, False])}
    if kind == 10:
        return {"wildcard": rng.choice(["x*", "*y", "*"])}
    return {"cidr": "10.0.0.0/24"}


def random_pattern(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for name in rng.sample(FIELDS, rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.15 and depth < 2:
            pattern[name] = random_pattern(rng, depth + 1)
        elif roll < 0.6:
            # Exact strings only: the fields PatternIndex can file patterns under.
            pattern[name] = rng.sample(STRINGS[:5], rng.randint(1, 2))
        else:
            pattern[name] = [random_value_condition(rng) for _ in range(rng.randint(1, 2))]
    if rng.random() < 0.2 and depth < 2:
        pattern["$or"] = [random_pattern(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    return pattern


def random_event_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if roll < 0.15 and depth < 2:
        return random_event(rng, depth + 1)
    if roll < 0.3:
        return [random_event_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.75:
        return rng.choice(STRINGS)
    if roll < 0.9:
        return rng.choice(NUMBERS)
    return rng.choice([None, True, False])


def random_event(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    return {name: random_event_value(rng, depth) for name in FIELDS if rng.random() < 0.7}


def test_index_agrees_with_a_linear_scan() -> None:
    rng = random.Random(20240601)
    index: PatternIndex[int] = PatternIndex()
    patterns: list[tuple[int, Pattern]] = []
    for _ in range(400):
        key = rng.randrange(350)  # some keys repeat
        pattern = compile_pattern(random_pattern(rng))
        index.add(key, pattern)
        patterns.append((key, pattern))
    indexed = sum(1 for _, p in patterns if index._choose_field(p) is not None)
    assert indexed > len(patterns) // 2  # the test exercises the index, not just residue

    total = 0
    for _ in range(600):
        event = random_event(rng)
        expected: list[int] = []
        for key, pattern in patterns:
            if key not in expected and pattern.matches(event):
                expected.append(key)
        assert index.match(event) == expected, event
        total += len(expected)
    assert total > 600  # events do match, often
