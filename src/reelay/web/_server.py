"""`Server`: the HTTP API and dashboard served by uvicorn on a background thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from reelay.errors import ConfigError


class Server:
    """Serve an ASGI app on ``host:port`` (port 0: any free one) until the context exits.

    Binds before `__enter__` returns, so `url` is live at once and a port in use is a
    `ConfigError` here rather than a thread dying quietly. Leaving stops the server,
    closing open streams, and joins its thread.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8470) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="reelay-http", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Server:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._thread.join(5)
                raise ConfigError(
                    f"the HTTP server could not listen on {self.host}:{self.port} "
                    "(is the port in use? choose another with --http HOST:PORT)"
                )
            time.sleep(0.02)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(15)
