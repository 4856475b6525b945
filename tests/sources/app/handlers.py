"""Handlers for the source tests: each records what it saw under $REELAY_HOME/out."""

import json
import os
from pathlib import Path
from urllib.parse import unquote_plus

from reelay.client import default_client


def seen(event, context):
    """Read each object the event names through reelay (the app's bucket name) and
    record its key and content."""
    out = Path(os.environ["REELAY_HOME"]) / "out" / "seen.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        data = default_client().get_object(bucket, key).decode()
        with out.open("a") as f:
            f.write(json.dumps({"bucket": bucket, "key": key, "data": data}) + "\n")
    return {"ok": True}
