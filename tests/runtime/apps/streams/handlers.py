"""Handlers for the stream-trigger tests: each leaves evidence under $REELAY_HOME/out.

A record's data is text. ``poison`` always fails its batch; ``fail:N`` fails its batch
the first N times it is seen (counted in a marker file per sequence number)."""

import base64
import json
import os
from pathlib import Path

from reelay.idempotency import once


def _out(name):
    path = Path(os.environ["REELAY_HOME"]) / "out" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _log(name, **fields):
    with _out(f"{name}.jsonl").open("a") as f:
        f.write(json.dumps(fields) + "\n")


def _records(event):
    for r in event["Records"]:
        yield r, base64.b64decode(r["kinesis"]["data"]).decode()


def _fails(seq, data):
    if data == "poison":
        return True
    if data.startswith("fail:"):
        marker = _out(f"seen-{seq}")
        seen = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(seen + 1))
        return seen < int(data.split(":")[1])
    return False


def record(event, context):
    batch = [
        (r["kinesis"]["sequenceNumber"], r["eventID"].split(":")[0], d) for r, d in _records(event)
    ]
    _log(context.function_name, request_id=context.aws_request_id, batch=batch)
    for seq, _, data in batch:
        if _fails(seq, data):
            raise ValueError(f"record {seq} ({data}) failed")
    return {"processed": len(batch)}


def partial(event, context):
    batch = [(r["kinesis"]["sequenceNumber"], d) for r, d in _records(event)]
    _log("partial", batch=batch)
    for seq, data in batch:
        if _fails(seq, data):
            return {"batchItemFailures": [{"itemIdentifier": seq}]}
    return {"batchItemFailures": []}


def window(event, context):
    state = dict(event["state"])
    state["count"] = state.get("count", 0) + len(event["Records"])
    state["data"] = state.get("data", []) + [d for _, d in _records(event)]
    _log(
        "window",
        window=event["window"],
        final=event["isFinalInvokeForWindow"],
        records=len(event["Records"]),
        state=state,
        shard=event["shardId"],
    )
    return {"state": state}


def effect(event, context):
    for r, data in _records(event):

        def act(data=data):
            _log("effects", data=data)
            return data

        once(f"effect:{r['eventID']}", act)
    return {"ok": True}


def sink(event, context):
    _log("sink", event=event)


def watch(event, context):
    import gzip

    for r in event["Records"]:
        message = json.loads(gzip.decompress(base64.b64decode(r["kinesis"]["data"])))
        _log("watch", message=message)
