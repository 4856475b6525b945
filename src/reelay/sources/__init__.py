"""Event sources: events from outside reelay, appended to a home's log.

reelay sees the writes made through it (`reelay.Client.put_object`...). An object
uploaded straight to a real S3 bucket (``aws s3 cp``, boto3, a publisher's own tool)
reaches it through the bucket's event notifications, sent to an SQS queue (directly,
through SNS, or as EventBridge events) that `reelay up` consumes:

.. code-block:: yaml

    sources:
      - sqs: {queue: https://sqs.eu-west-1.amazonaws.com/123456789012/acme-uploads,
              bucket: media, realBucket: acme-uploads-prod}

- `SQSSource` / `parse_sources`: the ``sources:`` section of an app file, validated.
- `read_message`: an SQS message body -> the S3 events it holds, in reelay's record
  shape, with the app's bucket name and each event's dedupe key (pure, no network).
- `SQSConsumer` / `Sources`: the consumer (long polling, commit before delete, one event
  per S3 event however often it is delivered) and the threads `Runtime` runs them on.
"""

from reelay.sources._messages import REJECTED, SKIPPED, SOURCE, Entry, read_message
from reelay.sources._spec import SOURCE_KINDS, SQSSource, parse_sources
from reelay.sources._sqs import Sources, SQSConsumer

__all__ = [
    "REJECTED",
    "SKIPPED",
    "SOURCE",
    "SOURCE_KINDS",
    "Entry",
    "SQSConsumer",
    "SQSSource",
    "Sources",
    "parse_sources",
    "read_message",
]
