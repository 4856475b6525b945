"""Make an effect happen once, even when its handler runs twice.

Delivery in reelay is at least once: a retry, a redrive or a crash of the runtime
can run a handler again for the same event. Guard effects that must not repeat
(publishing, sending an alert, appending to a ledger) with a key that names the
effect::

    from reelay.idempotency import once

    def handler(event, context):
        key = event["Records"][0]["s3"]["object"]["key"]
        return once(f"publish:{key}", lambda: publish(key))

The first call runs the effect and records its JSON result under the key; later calls
with the same key return the recorded result without running it. A call that finds
the key held by another invocation still in progress raises
`IdempotencyInProgressError`, so that invocation fails and is retried later; a holder
that died (its lease, the function's timeout, expired) is taken over. Each attempt is
its own holder, so the redelivery of an invocation whose first run is still going
after a crash waits for it too. A result that is not JSON is recorded as its ``str``.

As with any idempotency record kept apart from the effect, a process killed between
the effect and the record repeats the effect on takeover: a handler's own timeout does
that, and so does a dispatcher killed with ``kill -9`` (its workers end with it, and
the attempt runs again once the key's lease runs out).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, cast

from reelay.client import Client, default_client
from reelay.errors import ReelayError

T = TypeVar("T")

DEFAULT_LEASE_S = 900.0


class IdempotencyInProgressError(ReelayError):
    """Another invocation holds the key and is still running."""


def once(
    key: str, effect: Callable[[], T], *, lease_s: float | None = None, client: Client | None = None
) -> T:
    """Run ``effect`` once per ``key`` across all invocations; return its (recorded) result.

    ``lease_s`` bounds how long a holder may take before another may take over; by
    default the current function's timeout, else 15 minutes.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("an idempotency key must be a non-empty string")
    client = client or default_client()
    owner = os.environ.get("REELAY_ATTEMPT_ID") or f"pid-{os.getpid()}-{uuid.uuid4().hex}"
    if lease_s is None:  # the invocation's own time limit bounds how long it can hold the key
        lease_s = float(os.environ.get("REELAY_TIMEOUT") or DEFAULT_LEASE_S)
    state = client.state
    status, recorded = state.idempotency_begin(key, owner, time.time() + lease_s)
    if status == "done":
        return cast(T, json.loads(recorded) if recorded is not None else None)
    if status == "busy":
        raise IdempotencyInProgressError(
            f"idempotency key {key!r} is held by an invocation still in progress; retry later"
        )
    try:
        result = effect()
    except BaseException:
        state.idempotency_release(key, owner)
        raise
    # The effect happened: record it whatever its result, so it is never repeated.
    state.idempotency_complete(key, owner, json.dumps(result, default=str))
    return result


def idempotent(
    key: Callable[[Any], str],
) -> Callable[[Callable[[Any, Any], T]], Callable[[Any, Any], T]]:
    """Decorate a handler so that it runs once per ``key(event)``."""

    def wrap(handler: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
        def guarded(event: Any, context: Any) -> T:
            return once(key(event), lambda: handler(event, context))

        guarded.__name__ = getattr(handler, "__name__", "handler")
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap
