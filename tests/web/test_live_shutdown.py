"""Ctrl-C to a real `reelay up` while live streams (``/api/live``, server-sent events)
are connected: the streams are closed first, then the server stops, cleanly."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.web import Server, create_app

from .conftest import Up

pytestmark = pytest.mark.slow


def test_ctrl_c_with_live_streams_open_stops_cleanly(up: Up) -> None:
    process, url, token = up.process, up.url, up.token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        with (
            http.stream("GET", "/api/live") as first,
            http.stream("GET", "/api/live", params={"title": "none"}) as second,
        ):
            assert first.status_code == second.status_code == 200
            streams = [first.iter_lines(), second.iter_lines()]
            for lines in streams:
                assert next(lines).startswith("data: ")  # connected, reading
            os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C
            # Each stream ends (the server closes it) rather than being cut off.
            for lines in streams:
                rest = list(lines)
                assert all(line.startswith("data: ") or not line for line in rest), rest
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err and "ERROR" not in err and "CancelledError" not in err, err
    assert err.rstrip().endswith("reelay up: stopped"), err


def test_leaving_the_server_ends_its_live_streams_first(tmp_path: Path) -> None:
    # The same through the `Server` seam, in-process: leaving it while a stream is open
    # ends the stream, rather than waiting out the grace period and cancelling it.
    logged: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record)

    handler = Collect(logging.WARNING)
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with Client(Settings.load(tmp_path / "home")) as client:
            server = Server(create_app(client, "t"), port=0).__enter__()
            try:
                with (
                    httpx.Client(base_url=server.url, timeout=60) as http,
                    http.stream("GET", "/api/live", headers={"Authorization": "Bearer t"}) as live,
                ):
                    lines = live.iter_lines()
                    assert next(lines).startswith("data: ")
                    server.__exit__(None, None, None)
                    assert all(line.startswith("data: ") or not line for line in lines)
            finally:
                server.__exit__(None, None, None)
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert [r.getMessage() for r in logged] == []


@pytest.mark.parametrize("gap_s", [0.0, 0.05, 0.2])
def test_two_quick_ctrl_cs_still_stop_cleanly(up: Up, gap_s: float) -> None:
    os.killpg(up.process.pid, signal.SIGINT)
    time.sleep(gap_s)
    with contextlib.suppress(ProcessLookupError):  # it may be gone already
        os.killpg(up.process.pid, signal.SIGINT)
    _, err = up.process.communicate(timeout=120)
    assert up.process.returncode == 0, err
    assert "Aborted" not in err and "Traceback" not in err, err
    assert err.count("draining:") == 1, err
    assert err.rstrip().endswith("reelay up: stopped"), err
