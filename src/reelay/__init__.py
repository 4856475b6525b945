"""reelay: Lambda-style functions on durable events, on one laptop or a cluster.

The public surface, loaded on first use (a worker process that only runs handlers does
not pay for the rest)::

    from reelay import Client, Runtime, Settings, load_app, once

- `Client`: objects, events and invocations of a home (``Client.from_env()`` in a handler)
- `Runtime`, `load_app`, `App`: serve an app's functions
- `Functions`: declare an app in Python with decorators instead of YAML
- `Settings`: where the home is and which backend serves each seam
- `matches`, `compile_pattern`: EventBridge event patterns
- `once`, `idempotent`: effects that happen once under at-least-once delivery
- `errors`: the exception tree
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelay._lazy import lazy_exports

if TYPE_CHECKING:
    from reelay.client import Client
    from reelay.config import Settings
    from reelay.events import compile_pattern, matches
    from reelay.functions import Functions
    from reelay.idempotency import idempotent, once
    from reelay.runtime import App, Runtime, load_app

__version__ = "0.1.0"

__all__ = [
    "App",
    "Client",
    "Functions",
    "Runtime",
    "Settings",
    "__version__",
    "compile_pattern",
    "idempotent",
    "load_app",
    "matches",
    "once",
]


__getattr__ = lazy_exports(
    __name__,
    {
        "App": "reelay.runtime",
        "Client": "reelay.client",
        "Functions": "reelay.functions",
        "Runtime": "reelay.runtime",
        "Settings": "reelay.config",
        "compile_pattern": "reelay.events",
        "idempotent": "reelay.idempotency",
        "load_app": "reelay.runtime",
        "matches": "reelay.events",
        "once": "reelay.idempotency",
    },
)
