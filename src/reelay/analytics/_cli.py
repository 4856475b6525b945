"""The analytics app's commands, added to ``reelay`` by its plugin: ``reelay query``
(SQL over the aggregates) and ``reelay analytics demo|generate|status``."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from reelay._text import plural
from reelay.cli import _address, _dump, _reading, _table, friendly, home_option, json_option
from reelay.client import Client
from reelay.config import Settings

streams_option = click.option(
    "--streams",
    "streams_url",
    metavar="URL",
    help="streams backend URL: redis://host:port/db (default: the embedded log in the home; "
    "env REELAY_STREAMS)",
)


def _settings(home: Path | None, state_url: str | None, streams_url: str | None) -> Settings:
    overrides = {k: v for k, v in (("state_url", state_url), ("streams_url", streams_url)) if v}
    return Settings.load(home, **overrides)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        return value.replace("T", " ")  # a time: as people write it
    return str(value)


def _utc(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- reelay query ---------------------------------------------------------------------------


@click.command("query")
@click.argument("sql")
@json_option
@click.option("--limit", type=click.IntRange(1, 10_000_000), help="At most this many rows.")
@home_option
@friendly
def query(
    sql: str, as_json: bool, limit: int | None, home: Path | None, state_url: str | None
) -> None:
    """Run SQL over the analytics aggregates, through DuckDB (reads only).

    Each aggregate is a table: window_start, window_end (UTC), its groupBy dimensions,
    then its metrics. For example:

        reelay query "SELECT * FROM flows_by_app ORDER BY window_start DESC, bytes DESC LIMIT 10"
    """
    from reelay.analytics.query import run_query
    from reelay.analytics.store import Results

    settings = _reading(home, state_url)
    with Client(settings) as client:
        found = run_query(Results(client.state), sql, limit=limit)
    if as_json:
        _dump(found.records())
        return
    _table([[_cell(v) for v in row] for row in found.rows], found.columns)
    more = " (more were left out: --limit)" if found.truncated else ""
    click.echo(f"({plural(len(found.rows), 'row')}{more})", err=True)


# -- reelay analytics ... ---------------------------------------------------------------------


@click.group("analytics")
def analytics() -> None:
    """Aggregates over streams, queried with SQL: the demo, a flow-log generator, status."""


@analytics.command("status")
@json_option
@home_option
@friendly
def status(as_json: bool, home: Path | None, state_url: str | None) -> None:
    """The aggregates with results in the home: their shards' watermark and counters."""
    from reelay.analytics._observe import summary
    from reelay.analytics.store import Results

    settings = _reading(home, state_url)
    with Client(settings) as client:
        results = Results(client.state)
        found = [summary(results, info, 1) for info in results.aggregates().values()]
    if as_json:
        _dump([{k: v for k, v in s.items() if k not in ("series", "latest")} for s in found])
        return
    if not found:
        click.echo("no aggregate has results in this home yet (reelay analytics demo)", err=True)
        return
    _table(
        [
            [
                s["name"],
                s["stream"],
                f"{s['window']['size']}s/{s['window']['hop']}s",
                _utc(s["watermark"]),
                s["records"],
                s["rows"],
                s["late"],
                s["unreadable"],
            ]
            for s in found
        ],
        [
            "AGGREGATE",
            "STREAM",
            "WINDOW",
            "WATERMARK (UTC)",
            "RECORDS",
            "ROWS",
            "LATE",
            "UNREADABLE",
        ],
    )


def _generator_options(command: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--rate",
                type=click.FloatRange(0.1, 100_000),
                default=200.0,
                show_default=True,
                help="Flow log records a second.",
            ),
            click.option(
                "--duration",
                type=click.FloatRange(0.1),
                help="Seconds to run (default: until Ctrl-C).",
            ),
            click.option(
                "--late",
                type=click.FloatRange(0, 1),
                default=0.01,
                show_default=True,
                help="Share of records delivered minutes late.",
            ),
            click.option(
                "--reject",
                type=click.FloatRange(0, 1),
                default=0.02,
                show_default=True,
                help="Share of flows rejected (REJECT).",
            ),
            click.option("--seed", type=int, default=0, show_default=True, help="Random seed."),
            click.option(
                "--backfill",
                type=click.FloatRange(0, 1440),
                default=0,
                help="First put this many minutes of past records at once (a history to see).",
            ),
        ]
    ):
        command = option(command)
    return command


@analytics.command("generate")
@_generator_options
@click.option(
    "--stream", default="vpc-flows", show_default=True, help="The stream to put records on."
)
@home_option
@streams_option
@friendly
def generate_command(
    rate: float,
    duration: float | None,
    late: float,
    reject: float,
    seed: int,
    backfill: float,
    stream: str,
    home: Path | None,
    state_url: str | None,
    streams_url: str | None,
) -> None:
    """Put AWS VPC flow log records (version 2) of a few made-up applications on a stream."""
    from reelay.analytics.generator import FlowLogs, generate

    settings = _settings(home, state_url, streams_url)
    stop = threading.Event()
    with Client(settings) as client, _stopping(stop):
        click.echo(
            f"putting {rate:g} flow log records a second on {stream} "
            f"({client.streams.url or settings.home / 'streams'}); Ctrl-C stops",
            err=True,
        )
        done = generate(
            client.streams,
            stream=stream,
            rate=rate,
            duration=duration,
            stop=stop,
            flows=FlowLogs(seed=seed, late=late, reject=reject),
            backfill=backfill * 60,
        )
    click.echo(
        f"put {plural(done.records, 'record')} ({done.late} late, {done.rejected} rejected, "
        f"{done.nodata} NODATA/SKIPDATA)",
        err=True,
    )


@contextlib.contextmanager
def _stopping(stop: threading.Event) -> Any:
    """Ctrl-C (or SIGTERM) sets ``stop`` instead of raising, while inside."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    for s in previous:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@analytics.command("demo")
@_generator_options
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes.")
@click.option(
    "--http",
    "http_address",
    default="127.0.0.1:8470",
    show_default=True,
    help="Serve the dashboard on HOST:PORT (port 0: any free port).",
)
@home_option
@streams_option
@friendly
def demo(
    rate: float,
    duration: float | None,
    late: float,
    reject: float,
    seed: int,
    backfill: float,
    workers: int | None,
    http_address: str,
    home: Path | None,
    state_url: str | None,
    streams_url: str | None,
) -> None:
    """Netflix's flow-log analytics, end to end, in one command.

    Serves the analytics app (per-minute traffic between applications from VPC flow
    logs; reelay's own functions from reelay-logs) and the dashboard, and puts
    generated flow logs on the stream vpc-flows, until Ctrl-C (or --duration). Query
    the results meanwhile with `reelay query` (same --home).
    """
    from reelay.analytics._plugin import plugin
    from reelay.analytics.generator import (
        FLOWS_SHARDS,
        FLOWS_STREAM,
        FlowLogs,
        Generated,
        ensure_stream,
        generate,
    )
    from reelay.observe.alerts import Alerter, load_alert_rules
    from reelay.runtime import Runtime, load_app
    from reelay.web import Server, create_app, ensure_token

    assert plugin.app_file is not None
    settings = _settings(home, state_url, streams_url)
    app = load_app(plugin.app_file)
    address = _address(http_address)
    stop = threading.Event()
    with Client(settings) as setup:  # the stream first, so its trigger reads it at once
        ensure_stream(setup.streams, FLOWS_STREAM, FLOWS_SHARDS)
    with contextlib.ExitStack() as stack:
        runtime = stack.enter_context(Runtime(app, settings, max_workers=workers, out=sys.stdout))
        client = runtime.client
        token, _ = ensure_token(settings.home)
        api = create_app(client, token, app=app, alerter=Alerter(load_alert_rules(None), client))
        server = stack.enter_context(Server(api, *address))
        runtime.start()
        stack.enter_context(_stopping(stop))
        backend = settings.streams_url or f"embedded ({settings.home / 'streams'})"
        click.echo(
            f"reelay analytics demo: {rate:g} flow log records a second on {FLOWS_STREAM}, "
            f"streams {backend}, home {settings.home}\n"
            f"dashboard: {server.url}/?token={token}#/analytics\n"
            f'query:     reelay query --home {settings.home} "SELECT * FROM flows_by_app '
            f'ORDER BY window_start DESC, bytes DESC LIMIT 10"\n'
            "Ctrl-C stops",
            err=True,
        )
        shown = {"at": time.monotonic()}

        def report(done: Generated) -> None:
            if time.monotonic() - shown["at"] >= 10:
                shown["at"] = time.monotonic()
                click.echo(
                    f"{datetime.now():%H:%M:%S} put {plural(done.records, 'record')} "
                    f"({done.late} late, {done.rejected} rejected)",
                    err=True,
                )

        done = generate(
            client.streams,
            rate=rate,
            duration=duration,
            stop=stop,
            flows=FlowLogs(seed=seed, late=late, reject=reject),
            on_put=report,
            backfill=backfill * 60,
        )
        click.echo(
            f"put {plural(done.records, 'record')}; stopping (draining the last batches)",
            err=True,
        )
        if not stop.is_set():  # a --duration run: let the last records be folded first
            runtime.wait_idle(10)
    click.echo("reelay analytics demo: stopped", err=True)
