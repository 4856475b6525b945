"""The EventBridge event envelope, as a rule target receives it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

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
