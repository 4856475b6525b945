"""Argument rules both stream backends share: cursors, read limits, positions, times."""

from __future__ import annotations

import math

from reelay.errors import InvalidStreamArgumentError
from reelay.streams import POSITIONS, Position

MAX_READ_RECORDS = 10000  # per read, as GetRecords's Limit
READ_BYTES = 10 << 20  # a read stops after this much data (at least one record), as GetRecords


def check_cursor(cursor: object) -> int:
    if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 0:
        raise InvalidStreamArgumentError(f"cursor {cursor!r} must be a whole number >= 0")
    return cursor


def check_limit(limit: object) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_READ_RECORDS:
        raise InvalidStreamArgumentError(f"limit {limit!r} must be 1 to {MAX_READ_RECORDS}")
    return limit


def sequence_number(value: object) -> int:
    """A sequence number given by a caller, as the integer it names."""
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise InvalidStreamArgumentError(
            f"sequence number {value!r} is not valid: a decimal string of digits"
        )
    return int(value)


def millis(timestamp: float) -> int:
    """The first whole millisecond at or after ``timestamp`` (epoch seconds). Rounded to
    the microsecond first, so that a record's own ``arrival`` (milliseconds / 1000, not
    exact in binary) names that record's millisecond and not the next one."""
    return math.ceil(round(timestamp * 1000, 3))


def check_position(position: Position) -> None:
    """Refuse a position that lacks what its kind needs, naming it."""
    kind = getattr(position, "kind", None)
    if kind not in POSITIONS:
        raise InvalidStreamArgumentError(f"position {kind!r} is not one of {', '.join(POSITIONS)}")
    if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        sequence_number(position.sequence_number)
    if kind == "AT_TIMESTAMP":
        ts = position.timestamp
        if (
            not isinstance(ts, int | float)
            or isinstance(ts, bool)
            or not math.isfinite(ts)
            or ts < 0
        ):
            raise InvalidStreamArgumentError(
                f"AT_TIMESTAMP needs a timestamp (epoch seconds >= 0), not {ts!r}"
            )
