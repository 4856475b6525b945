"""The runtime: an app's functions served for the events of one home.

`Runtime` ties the pieces together: the home's durable `State`, an `Executor` chosen
by URL, and the `Dispatcher` loop. ``reelay up`` is ``Runtime(...).serve(stop)``; tests,
benchmarks and the demo run it on a background thread with `start`/`stop`.

The names below load on first use: a worker process imports ``reelay.runtime._worker``
and must not pay for the dispatcher, the state and the client at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelay._lazy import lazy_exports

if TYPE_CHECKING:
    from reelay.runtime._runtime import Runtime, wait_for_invocation
    from reelay.runtime.app import App
    from reelay.runtime.loading import load_app

__all__ = ["App", "Runtime", "load_app", "wait_for_invocation"]


__getattr__ = lazy_exports(
    __name__,
    {
        "App": "reelay.runtime.app",
        "load_app": "reelay.runtime.loading",
        "Runtime": "reelay.runtime._runtime",
        "wait_for_invocation": "reelay.runtime._runtime",
    },
)
