"""The HTTP API, Prometheus metrics and the live dashboard (served by ``reelay up``).

- `create_app`: the FastAPI app over one home (API under ``/api``, ``/metrics``,
  the dashboard at ``/``, the OpenAPI document at ``/api/openapi.json``).
- `Server`: that app on a background thread, bound to loopback by default.
- `ensure_token`: the home's bearer token, created owner-only on first start.
- `Audit`: refused requests as events, a flood of them as counts.
"""

from reelay.web._auth import Audit, ensure_token
from reelay.web._server import Server
from reelay.web.api import create_app

__all__ = ["Audit", "Server", "create_app", "ensure_token"]
