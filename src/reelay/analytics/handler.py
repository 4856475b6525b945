"""The aggregating function: a Lambda handler for stream batches (Kinesis events).

Declare it in an app with a ``stream:`` trigger for each source stream, and its
aggregates in ``REELAY_ANALYTICS`` (a file relative to the app's directory, or the
YAML itself)::

    functions:
      flows:
        handler: reelay.analytics.handler.aggregate
        environment: {REELAY_ANALYTICS: analytics.yaml}
        events:
          - stream: {stream: vpc-flows, batchSize: 1000, startingPosition: TRIM_HORIZON}

Each batch (one shard's records, in order) is folded into every aggregate that reads
its stream, and the results are written before the handler returns, so a query sees
them as soon as the batch is done: no periodic job stands between a put and a query.
Keep ``parallelizationFactor`` at 1 (the default): a shard's records must be folded in
order for its watermark and its exactly-once bookkeeping (see `reelay.analytics.store`).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from reelay.analytics.fold import SourceRecord
from reelay.analytics.spec import ENVIRONMENT, Aggregates, aggregates_from_environment
from reelay.analytics.store import Results
from reelay.client import Client, default_client
from reelay.errors import ConfigError

__all__ = ["aggregate"]

_aggregates: dict[tuple[str, str], tuple[float, Aggregates]] = {}
_results: dict[int, Results] = {}


def _declared() -> Aggregates:
    """The aggregates of ``REELAY_ANALYTICS``, read again when its file changes."""
    value = os.environ.get(ENVIRONMENT, "")
    root = os.environ.get("LAMBDA_TASK_ROOT") or "."
    path = Path(value) if Path(value).is_absolute() else Path(root) / value
    try:
        stamp = path.stat().st_mtime if "\n" not in value and value else 0.0
    except OSError:
        stamp = -1.0
    cached = _aggregates.get((value, root))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    loaded = aggregates_from_environment(Path(root))
    _aggregates[(value, root)] = (stamp, loaded)
    return loaded


def _results_of(client: Client) -> Results:
    found = _results.get(id(client))
    if found is None:
        found = _results[id(client)] = Results(client.state)
    return found


def aggregate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fold a Kinesis batch into the aggregates that read its stream."""
    records = event.get("Records") or []
    answer: dict[str, Any] = {"aggregates": {}}
    if "isFinalInvokeForWindow" in event:  # under tumblingWindowInSeconds: keep no state
        answer["state"] = {}
    if not records:
        return answer
    stream = str(records[0]["eventSourceARN"]).rsplit("/", 1)[-1]
    shard = str(records[0]["eventID"]).split(":", 1)[0]
    declared = _declared()
    mine = declared.for_stream(stream)
    if not mine:
        raise ConfigError(
            f"no aggregate of {declared.source} reads stream {stream!r} (they read: "
            f"{', '.join(declared.streams)}): remove the trigger, or declare one"
        )
    batch = [
        SourceRecord(
            int(r["kinesis"]["sequenceNumber"]),
            str(r["kinesis"]["partitionKey"]),
            base64.b64decode(r["kinesis"]["data"]),
            float(r["kinesis"]["approximateArrivalTimestamp"]),
        )
        for r in records
    ]
    client = default_client()
    results = _results_of(client)
    function = getattr(context, "function_name", None)
    for spec in mine:
        folded = results.apply(spec, shard, batch, client.streams, stream=stream, function=function)
        new = folded.shard
        answer["aggregates"][spec.name] = {
            "records": len(batch) - folded.skipped,
            "skipped": folded.skipped,
            "windows": len(folded.windows),
            "deadLetters": len(folded.dead),
            "watermark": new.watermark(spec.lateness),
        }
        if folded.dead:
            late = sum(1 for d in folded.dead if d.reason == "late")
            print(
                f"{spec.name}: {len(folded.dead)} records to {spec.dead_letter} ({late} late, "
                f"{len(folded.dead) - late} unreadable) from {stream} {shard}"
            )
    return answer
