"""A publisher's upload straight to the real bucket publishes a title: the media pipeline
fed by S3 notifications through SQS (moto's server on loopback), the store on S3."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from reelay.config import Settings
from reelay.media.samples import make_clip
from reelay.media.titles import Titles
from reelay.runtime import Runtime
from reelay.runtime.app import parse_app

pytestmark = [pytest.mark.media, pytest.mark.s3]

REGION = "us-east-1"


def test_an_mp4_uploaded_with_boto3_publishes_one_title(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name=REGION)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION)
    prefix = "m" + uuid.uuid4().hex[:10]
    real = f"{prefix}-media"  # what the store s3://PREFIX calls the app's bucket media
    queue = sqs.create_queue(QueueName=f"{prefix}-ingest")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    s3.create_bucket(Bucket=real)
    s3.put_bucket_notification_configuration(
        Bucket=real,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "ingest/"}]}},
                }
            ]
        },
    )
    app = parse_app(
        {
            "include": ["media"],
            "provider": {
                "environment": {
                    "REELAY_MEDIA_LADDER": "demo",
                    "REELAY_MEDIA_CHUNK_SECONDS": 2,
                    "REELAY_MEDIA_QC": "10",
                }
            },
            "sources": [
                {
                    "sqs": {
                        "queue": queue,
                        "bucket": "media",
                        "realBucket": real,
                        "endpoint": s3_endpoint,
                        "waitTime": 1,
                    }
                }
            ],
        },
        root=tmp_path,
    )
    settings = Settings.load(
        tmp_path / "home",
        store_url=f"s3://{prefix}?endpoint={s3_endpoint}",
        retry_delays=(0.5, 1.0),
    )
    clip = make_clip(tmp_path / "clip.mp4", seconds=3)
    key = "ingest/our film.mp4"
    with Runtime(app, settings, max_workers=2) as rt:
        rt.start()
        s3.upload_file(str(clip), real, key)  # a publisher's own tool, not reelay
        titles = Titles(rt.client.state)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            settled = [t for t in titles.all() if t["status"] not in ("submitted", "processing")]
            if settled:
                break
            time.sleep(0.2)
        (title,) = titles.all()
        assert title["status"] == "published", title
        # S3 delivers at least once: the same event again (here in S3's own format, with
        # the sequencer moto leaves out), twice, appends one more event and no title.
        head = s3.head_object(Bucket=real, Key=key)
        again = _notification(real, "ingest/our+film.mp4", head)
        for _ in range(2):
            sqs.send_message(QueueUrl=queue, MessageBody=again)
        deadline = time.monotonic() + 30
        while rt.sources is not None and time.monotonic() < deadline:
            (consumer,) = rt.sources.consumers
            if consumer.appended + consumer.duplicates >= 3:
                break
            time.sleep(0.1)
        assert rt.wait_idle(120)
        uploads = [
            e for e in rt.client.state.events(limit=10000, source="aws.s3") if "ingest/" in e.body
        ]
        assert len(uploads) == 2  # moto's notification, and S3's once of two
        assert [t["id"] for t in titles.all()] == [title["id"]]
        assert titles.get(title["id"])["status"] == "published"


def _notification(bucket: str, encoded_key: str, head: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventTime": "2024-05-01T12:00:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
                    "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                    "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810"},
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "ingest",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {
                            "key": encoded_key,
                            "size": head["ContentLength"],
                            "eTag": head["ETag"].strip('"'),
                            "sequencer": "0055AED6DCD90281E5",
                        },
                    },
                }
            ]
        }
    )
