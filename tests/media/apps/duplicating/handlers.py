"""Injected duplicate deliveries, and a user's function on the pipeline's events."""

from reelay.client import default_client


def duplicate(event, context):
    detail = dict(event["detail"], duplicate=True)
    default_client().put_events(
        [{"Source": event["source"], "DetailType": event["detail-type"], "Detail": detail}]
    )


def notify(event, context):
    print("published", event["detail"]["title"]["id"])
    return event["detail"]["title"]["id"]
