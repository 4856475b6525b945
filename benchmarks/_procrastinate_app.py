"""The procrastinate app that ``benchmarks/runtime.py`` runs beside reelay on PostgreSQL.

Its workers are started the way a procrastinate user starts them, one process each::

    PYTHONPATH=benchmarks procrastinate --app _procrastinate_app.app worker

so the app is found by import path, and the database by ``BENCH_PROCRASTINATE_URL``
(a database of the benchmark's own, created and dropped by it).
"""

from __future__ import annotations

import os
import socket
import struct
import time

import procrastinate

URL_VARIABLE = "BENCH_PROCRASTINATE_URL"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get(URL_VARIABLE, ""))
)


@app.task(name="noop")
def noop() -> None:
    """The no-op, as reelay's handler: a plain (synchronous) function that does nothing."""
    return None


@app.task(name="started")
def started(port: int) -> None:
    """Tell the benchmark, on a loopback UDP ``port``, when this task began (epoch s)."""
    at = time.time()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(struct.pack("!d", at), ("127.0.0.1", port))
