"""`Server`: the HTTP API and dashboard served by uvicorn on a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from reelay.errors import ConfigError


class _Uvicorn(uvicorn.Server):
    """uvicorn, closing the app's streams before it waits for connections to finish."""

    def __init__(self, config: uvicorn.Config, close_streams: Callable[[], Awaitable[None]] | None):
        super().__init__(config)
        self._close_streams = close_streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._close_streams is not None:
            await self._close_streams()
        await super().shutdown(sockets)


class Server:
    """Serve an ASGI app on ``host:port`` (port 0: any free one) until the context exits.

    The socket is bound in `__enter__`, so a port in use is a `ConfigError` here, not
    a thread dying quietly, and `url` names the real port. Leaving stops the server and
    joins its thread: first the app's open streams are ended (an app whose
    ``state.close_streams`` is a coroutine function has it awaited, as `create_app`'s
    does), then uvicorn waits for the responses in flight to finish.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8470) -> None:
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        close_streams = getattr(getattr(app, "state", None), "close_streams", None)
        self._server = _Uvicorn(config, close_streams)
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> Server:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
        # and without it a response written in two parts waits out a delayed ACK (40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"the HTTP server could not listen on {self.host}:{self.port}: "
                f"{exc.strerror or exc} (choose another address with --http HOST:PORT)"
            ) from None
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="reelay-http", daemon=True
        )
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            time.sleep(0.01)
        if not self._server.started:
            sock.close()
            raise ConfigError(f"the HTTP server on {self.url} failed to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
