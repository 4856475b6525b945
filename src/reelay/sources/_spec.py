"""The ``sources:`` section of an app file: which queues feed the event log.

::

    sources:
      - sqs:
          queue: https://sqs.eu-west-1.amazonaws.com/123456789012/acme-uploads
          bucket: media                  # the app's name for the bucket (its triggers')
          realBucket: acme-uploads-prod  # the S3 bucket whose events the queue receives
                                         #   (default: bucket)
          region: eu-west-1              # default: the queue URL's, else AWS_REGION
          endpoint: http://127.0.0.1:5000  # an SQS-compatible endpoint (default: AWS)
          waitTime: 20                   # long polling, seconds, 1-20 (default 20)
          batchSize: 10                  # messages per receive, 1-10 (default 10)

Validated with the rest of the app (`reelay validate`), every problem named with the
file, the key path, the bad value and the valid choices.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from reelay._yamlfile import Problems, int_in, kinded
from reelay.errors import InvalidKeyError
from reelay.storage import validate_bucket

__all__ = ["SOURCE_KINDS", "SQS_KEYS", "SQSSource", "parse_sources"]

SOURCE_KINDS = ("sqs",)
SQS_KEYS = ("batchSize", "bucket", "endpoint", "queue", "realBucket", "region", "waitTime")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$")
# sqs.REGION.amazonaws.com (and .com.cn), or the legacy REGION.queue.amazonaws.com
_AWS_HOST = re.compile(r"^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$")


@dataclass(frozen=True)
class SQSSource:
    """An SQS queue that receives a bucket's S3 event notifications (directly, through
    SNS, or as EventBridge events); its events go to the log as the app's ``bucket``."""

    queue: str
    bucket: str
    real_bucket: str
    region: str | None = None  # None: the queue URL's region, else the settings'
    endpoint: str | None = None
    wait_time_s: int = 20
    batch_size: int = 10

    @property
    def name(self) -> str:
        """The queue's name: the last segment of its URL."""
        return self.queue.rstrip("/").rsplit("/", 1)[-1]

    def region_or(self, default: str) -> str:
        """The region to talk to the queue in: the declared one, the queue URL's, else
        ``default``."""
        if self.region:
            return self.region
        match = _AWS_HOST.match(urlsplit(self.queue).hostname or "")
        if match:
            return match.group(1) or match.group(2)
        return default

    def describe(self) -> str:
        mapping = (
            f"s3://{self.real_bucket} as {self.bucket}"
            if self.real_bucket != self.bucket
            else f"s3://{self.bucket}"
        )
        return f"sqs {self.queue} ({mapping})"


def parse_sources(problems: Problems, value: Any) -> tuple[SQSSource, ...]:
    """Read an app file's ``sources:`` list, adding every problem to ``problems``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.add("sources", "must be a list such as [{sqs: {queue: URL, bucket: NAME}}]")
        return ()
    out: list[SQSSource] = []
    queues: dict[str, int] = {}
    for i, at, _, spec in kinded(
        problems, "sources", value, SOURCE_KINDS, each="source", kind="source kind"
    ):
        source = _sqs(problems, f"{at}.sqs", spec)
        if source is None:
            continue
        if source.queue in queues:
            problems.add(
                f"{at}.sqs.queue",
                f"{source.queue!r} is already the queue of sources[{queues[source.queue]}]; "
                "a queue feeds one source (a queue per bucket)",
            )
            continue
        queues[source.queue] = i
        out.append(source)
    return tuple(out)


def _sqs(problems: Problems, at: str, spec: Any) -> SQSSource | None:
    if not isinstance(spec, dict):
        problems.add(at, "must be a mapping with at least 'queue' (an SQS queue URL) and 'bucket'")
        return None
    count = len(problems.items)
    problems.unknown_keys(at, spec, SQS_KEYS)
    queue = spec.get("queue")
    if not isinstance(queue, str) or not _queue_url_ok(queue):
        problems.add(
            f"{at}.queue",
            f"{queue!r} is not valid: expected an SQS queue URL such as "
            "https://sqs.us-east-1.amazonaws.com/123456789012/my-queue",
        )
    bucket = _bucket(problems, f"{at}.bucket", spec.get("bucket"), required=True)
    real = _bucket(problems, f"{at}.realBucket", spec.get("realBucket", bucket), required=False)
    region = spec.get("region")
    if region is not None and (not isinstance(region, str) or not _REGION.match(region)):
        problems.add(
            f"{at}.region", f"{region!r} is not valid: expected an AWS region such as us-east-1"
        )
    endpoint = spec.get("endpoint")
    if endpoint is not None and (
        not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https")
    ):
        problems.add(
            f"{at}.endpoint",
            f"{endpoint!r} is not valid: expected an http:// or https:// URL of an SQS endpoint",
        )
    wait = int_in(problems, f"{at}.waitTime", spec.get("waitTime", 20), 1, 20)
    batch = int_in(problems, f"{at}.batchSize", spec.get("batchSize", 10), 1, 10)
    if (
        len(problems.items) != count
        or not isinstance(queue, str)
        or bucket is None
        or real is None
        or wait is None
        or batch is None
    ):
        return None
    return SQSSource(queue, bucket, real, region, endpoint, wait, batch)


def _queue_url_ok(url: str) -> bool:
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return (
        parts.scheme in ("http", "https") and bool(parts.netloc) and bool(_QUEUE_NAME.match(name))
    )


def _bucket(problems: Problems, at: str, value: Any, *, required: bool) -> str | None:
    if value is None:
        if required:
            problems.add(at, "is required: name the bucket")
        return None
    try:
        return validate_bucket(value)
    except InvalidKeyError as exc:
        problems.add(at, f"{value!r} is not valid: {exc}")
        return None
