"""Handlers of the demo app: plain AWS Lambda handlers that use reelay's client."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from reelay.client import default_client
from reelay.idempotency import once

log = logging.getLogger(__name__)
log.setLevel(logging.INFO)


def checksum(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Hash each uploaded object, check it against its ETag, store the digest beside it."""
    client = default_client()
    out: dict[str, Any] = {}
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = unquote_plus(record["s3"]["object"]["key"])
        data = client.get_object(bucket, key)
        md5 = hashlib.md5(data).hexdigest()
        if md5 != record["s3"]["object"]["eTag"]:
            raise ValueError(
                f"s3://{bucket}/{key}: content MD5 {md5} does not match the "
                f"event's ETag {record['s3']['object']['eTag']}"
            )
        if key.endswith(".broken"):
            raise ValueError(f"s3://{bucket}/{key}: refusing a file marked broken")
        digest = hashlib.sha256(data).hexdigest()
        client.put_object("results", f"checksums/{key}.sha256", f"{digest}  {key}\n".encode())
        log.info("s3://%s/%s: %d bytes, sha256 %s", bucket, key, len(data), digest)
        out = {"bucket": bucket, "key": key, "size": len(data), "sha256": digest}
    return out


def catalog(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record each checksum once in the catalog, even if this event is delivered twice."""
    entry = event["detail"]["responsePayload"]
    client = default_client()

    def write() -> str:
        key = f"catalog/{entry['key']}.json"
        client.put_object("results", key, json.dumps(entry, indent=2).encode())
        return key

    key = once(f"catalog:{entry['key']}:{entry['sha256']}", write)
    print(f"catalogued {entry['key']} as {key} (request {context.aws_request_id})")
    return {"catalog_key": key}
