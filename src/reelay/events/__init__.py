"""Event formats reelay speaks: EventBridge patterns, S3 notifications, schedules.

- `matches` / `compile_pattern` / `PatternIndex`: the EventBridge event-pattern language.
- `s3_record` / `s3_event`: S3 event-notification records, exactly as AWS sends them.
- `parse_schedule`: ``rate(...)`` and ``cron(...)`` expressions as AWS writes them.
- `bus_event`: an EventBridge event envelope (what PutEvents delivers to a rule target).
- `parse_detail` / `parse_time`: a PutEvents entry's ``Detail`` (a JSON object, as text
  or not) and ``Time`` (RFC 3339).
"""

from reelay.events._bus import bus_event, parse_detail, parse_time
from reelay.events._pattern import Pattern, PatternIndex, compile_pattern, matches
from reelay.events._s3 import (
    S3_EVENT_NAMES,
    encode_s3_key,
    next_sequencer,
    s3_event,
    s3_event_matches,
    s3_record,
)
from reelay.events._schedule import Schedule, parse_schedule

__all__ = [
    "S3_EVENT_NAMES",
    "Pattern",
    "PatternIndex",
    "Schedule",
    "bus_event",
    "compile_pattern",
    "encode_s3_key",
    "matches",
    "next_sequencer",
    "parse_detail",
    "parse_schedule",
    "parse_time",
    "s3_event",
    "s3_event_matches",
    "s3_record",
]
