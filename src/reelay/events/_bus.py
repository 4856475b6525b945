"""The EventBridge event envelope, as a rule target receives it, and the ``Detail`` of a
PutEvents entry as EventBridge takes it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from reelay.errors import InvalidEventError

ACCOUNT_ID = "000000000000"


def iso_time(moment: datetime | None = None) -> str:
    """EventBridge's ``time`` format: UTC, whole seconds, ``Z``."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def bus_event(
    source: str,
    detail_type: str,
    detail: Any,
    *,
    resources: list[str] | None = None,
    region: str = "us-east-1",
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Build an event exactly as EventBridge delivers it to a target."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT_ID,
        "time": iso_time(time),
        "region": region,
        "resources": list(resources or []),
        "detail": detail,
    }


def parse_detail(detail: object) -> dict[str, Any]:
    """A PutEvents entry's ``Detail`` as the event's ``detail`` object.

    EventBridge takes ``Detail`` as text that holds a JSON object (its wire form, what
    boto3 and the AWS CLI send); reelay takes that, or the object itself. Anything else
    EventBridge fails as ``MalformedDetail``; here it raises `InvalidEventError`
    saying what is wrong: not JSON, JSON that is not an object (an array, a string, a
    number...), or values that are not standard JSON (NaN, Infinity). The one parser
    for `reelay.client.Client.put_events`, ``reelay emit`` and ``POST /api/events``.
    """
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except RecursionError:
            raise InvalidEventError("Detail is not valid JSON: nested too deeply") from None
        except ValueError as exc:
            raise InvalidEventError(f"Detail is not valid JSON: {exc}") from None
    if not isinstance(detail, Mapping):
        raise InvalidEventError(f"Detail must be a JSON object, not {type(detail).__name__}")
    try:  # what the log holds must be standard JSON (SQLite's JSON functions read it)
        json.dumps(detail, allow_nan=False)
    except ValueError:
        raise InvalidEventError(
            "Detail is not JSON-serializable: NaN and Infinity are not JSON; use null or a number"
        ) from None
    except RecursionError:
        raise InvalidEventError("Detail is not JSON-serializable: nested too deeply") from None
    except TypeError as exc:  # a mapping given in Python, holding a set or a datetime...
        raise InvalidEventError(f"Detail is not JSON-serializable: {exc}") from None
    return dict(detail)


# RFC 3339's date-time (what JSON Schema's "date-time" format means): a UTC offset
# is part of it, so no timestamp is read in some local zone.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", re.I)


def parse_time(time: object) -> datetime:
    """A PutEvents entry's ``Time``: an RFC 3339 timestamp such as
    ``2026-01-31T12:00:00Z``, or a `datetime` (naive: UTC). Raises `InvalidEventError`
    otherwise. The one parser for `reelay.client.Client.put_events` and the API."""
    if isinstance(time, datetime):
        return time if time.tzinfo is not None else time.replace(tzinfo=UTC)
    if isinstance(time, str) and _RFC3339.fullmatch(time):
        try:
            return datetime.fromisoformat(time.upper())
        except ValueError:  # the right shape, but no such day or hour
            pass
    raise InvalidEventError(
        "Time must be an ISO 8601 timestamp with its UTC offset, such as 2026-01-31T12:00:00Z"
    )
