"""The API token: made on first start, kept owner-only in the home, checked per request.

One bearer token guards the whole server (API, metrics, dashboard). Scripts and
Prometheus send ``Authorization: Bearer TOKEN``; a browser opens the URL that
``reelay up`` prints once, ``/?token=TOKEN``, which sets an HttpOnly cookie.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from starlette.requests import HTTPConnection

COOKIE = "reelay_token"
TOKEN_FILE = "api-token"


def ensure_token(home: Path) -> tuple[str, bool]:
    """The home's API token and whether it was just created (so it is printed once).

    The file is created owner-only (0600) and atomically, so two servers starting
    together agree on one token; a file left readable by others is narrowed again.
    """
    path = home / TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)
        existing = path.read_text().strip()
        if existing:
            return existing, False
        path.write_text(token + "\n")
        return token, True
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def presented(conn: HTTPConnection) -> tuple[str | None, str]:
    """The token a request carries and where: bearer header, ``?token=`` (GET only: it
    is answered with a cookie and a redirect) or cookie."""
    header = conn.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return (value.strip() if scheme.lower() == "bearer" else None), "header"
    if "token" in conn.query_params and conn.scope.get("method") == "GET":
        return conn.query_params["token"], "query"  # a browser's sign-in link
    return conn.cookies.get(COOKIE), "cookie"


def same(token: str | None, expected: str) -> bool:
    return token is not None and hmac.compare_digest(token.encode(), expected.encode())
