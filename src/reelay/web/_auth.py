"""The API token: made on first start, kept owner-only in the home, checked per request.

One bearer token guards the whole server (API, metrics, dashboard). Scripts and
Prometheus send ``Authorization: Bearer TOKEN``; a browser opens the URL that
``reelay up`` prints once, ``/?token=TOKEN``, or posts the sign-in form to ``/sign-in``;
either sets an HttpOnly, SameSite=Strict cookie and redirects to a URL without the
token. `Audit` records the requests refused.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request

from reelay.client import Client

COOKIE = "reelay_token"
TOKEN_FILE = "api-token"
SIGN_IN = "/sign-in"  # where the sign-in form posts
FORM_LIMIT = 4096  # bytes of a sign-in form


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


class FormError(Exception):
    """A sign-in form that is refused before its token is looked at: an HTTP status
    and a message for the person signing in."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_sign_in(request: Request) -> tuple[str | None, str]:
    """The token and the local page to return to from a POSTed sign-in form (HTML's
    ``application/x-www-form-urlencoded``, at most `FORM_LIMIT` bytes).

    Raises `FormError` for a form posted by another site (its ``Origin`` is not this
    server's: login CSRF, which SameSite cookies do not cover), one of another type or
    one too large. A ``next`` that is not a path on this server becomes ``/``.
    """
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host')}":
        raise FormError(403, "This sign-in form was sent from another site; sign in here.")
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError(415, "Sign in with the form (application/x-www-form-urlencoded).")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_LIMIT:
            raise FormError(413, "That sign-in form is too large.")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    token = fields.get("token", [""])[0] or None
    return token, local_path(fields.get("next", ["/"])[0])


def local_path(target: str) -> str:
    """``target`` if it is a path on this server (with any query and fragment: the
    dashboard's pages are ``/#/titles/X``), else ``/``: the redirect after a sign-in
    never leads to another site (``//host``, ``/\\host``, ``http://host``)."""
    path = target.partition("#")[0]
    # A browser reads a backslash before the fragment as a slash, and drops tabs and
    # newlines anywhere.
    foreign = "\\" in path or any(ord(c) < 0x20 for c in target)
    return target if path.startswith("/") and not path.startswith("//") and not foreign else "/"


@dataclass
class _Window:
    """One source address's refusals in the current window."""

    start: float
    recorded: int = 0
    suppressed: int = 0
    first: float = 0.0
    last: float = 0.0
    paths: set[str] = field(default_factory=set)
    reasons: Counter[str] = field(default_factory=Counter)


class Audit:
    """Refused requests, recorded as events without letting a flood fill the log.

    Each source address gets ``burst`` ``Unauthorized Request`` events per ``window_s``
    (one per refused request: address, method, path, time, reason). Past that its
    refusals are counted, and the count is recorded as one ``Unauthorized Requests
    Suppressed`` event when the window closes (`flush`, which the server calls every
    second and at shutdown). Every refusal is accounted for; the log grows by at most
    ``burst + 1`` events per address and window. Thread-safe.
    """

    def __init__(self, client: Client, *, burst: int = 60, window_s: float = 60.0) -> None:
        self.client = client
        self.burst = burst
        self.window_s = window_s
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def refused(self, conn: HTTPConnection, reason: str) -> None:
        now = time.time()
        address = conn.client.host if conn.client else "unknown"
        with self._lock:
            entries = self._closed(now, force=False)
            window = self._windows.setdefault(address, _Window(now))
            if window.recorded < self.burst:
                window.recorded += 1
                detail = {
                    "source_ip": address,
                    "method": conn.scope.get("method", "GET"),
                    "path": conn.url.path,
                    "time": now,
                    "reason": reason,
                }
                entries.append(_entry("Unauthorized Request", detail))
            else:
                window.suppressed += 1
                window.first = window.first or now
                window.last = now
                if len(window.paths) < 10:
                    window.paths.add(conn.url.path)
                window.reasons[reason] += 1
        self._append(entries)

    def flush(self, *, force: bool = False) -> None:
        """Record the counts of closed windows (with ``force``, of every window)."""
        with self._lock:
            entries = self._closed(time.time(), force=force)
        self._append(entries)

    def _closed(self, now: float, *, force: bool) -> list[dict[str, Any]]:
        entries = []
        for address, window in list(self._windows.items()):
            if force or now - window.start >= self.window_s:
                del self._windows[address]
                if window.suppressed:
                    detail = {
                        "source_ip": address,
                        "count": window.suppressed,
                        "first": window.first,
                        "last": window.last,
                        "paths": sorted(window.paths),
                        "reasons": dict(window.reasons),
                    }
                    entries.append(_entry("Unauthorized Requests Suppressed", detail))
        return entries

    def _append(self, entries: list[dict[str, Any]]) -> None:
        for start in range(0, len(entries), 10):  # PutEvents takes 10 entries a call
            self.client.put_events(entries[start : start + 10])


def _entry(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"Source": "reelay.web", "DetailType": detail_type, "Detail": detail}
