"""The ``reelay`` command line. Every listing takes ``--json``; every command ``--home``.

Errors caused by the user (a bad file, a bad URL, an unknown function) print a message
that names the problem and exit non-zero; the CLI never shows a traceback for them.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from reelay._text import plural
from reelay.client import Client
from reelay.config import Settings
from reelay.errors import (
    AppError,
    ConfigError,
    FunctionNotFoundError,
    HomeBusyError,
    InvalidEventError,
    ReelayError,
    StateError,
)
from reelay.plugins import installed, validate_kinds
from reelay.runtime import Runtime, wait_for_invocation
from reelay.runtime.app import App
from reelay.runtime.loading import load_app
from reelay.state import FAILED, STATUSES, Invocation, open_state

F = TypeVar("F", bound=Callable[..., Any])

_home = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="REELAY_HOME",
    help="The reelay home (default: $REELAY_HOME, else a per-user data directory).",
)
state_option = click.option(
    "--state",
    "state_url",
    metavar="URL",
    help="state backend URL: postgresql://user@host:port/db (default: SQLite in the home; "
    "env REELAY_STATE)",
)


def home_option(command: F) -> F:
    """``--home`` and ``--state``: the home, and the state backend that holds its state."""
    return _home(state_option(command))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
app_option = click.option(
    "--app",
    "app_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The app file (default: ./reelay.yaml, else the app `reelay up` last served here).",
)
limit_option = click.option(
    "--limit",
    type=click.IntRange(1, 100000),
    default=50,
    show_default=True,
    help="How many rows, newest first.",
)


def friendly(command: F) -> F:
    """Turn reelay's errors into a message and exit status instead of a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except AppError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(2)
        except (ReelayError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return run  # type: ignore[return-value]


def _app(path: Path | None, client: Client) -> App:
    """The app named by --app, else ./reelay.yaml, else the one ``reelay up`` last served."""
    app = _known_app(path, client)
    if app is None:
        raise click.UsageError("no app: pass --app FILE (or run where reelay.yaml is)")
    return app


def _known_app(path: Path | None, client: Client) -> App | None:
    """As `_app`, but None when no app is named and none is known to the home."""
    if path is None:
        if Path("reelay.yaml").is_file():
            path = Path("reelay.yaml")
        elif (last := client.state.get_meta("app_path")) is not None:
            path = Path(last)
        else:
            return None
    return load_app(path)


def _check_function(name: str, app_path: Path | None, client: Client) -> None:
    """Refuse a function name that is neither in the app nor in the home's history.

    A function that ran here once but has since left the app still has its logs and
    invocations, so the history counts too; a name known to neither is a typo.
    """
    if client.state.invocations(function=name, limit=1):
        return
    try:
        app = _known_app(app_path, client)
    except ReelayError:
        if app_path is not None:
            raise  # the app asked for is broken: say so
        app = None  # a stale or unrelated app found by itself checks nothing
    if app is None:
        raise FunctionNotFoundError(
            f"function {name!r} has never run in {client.settings.home}, and no app is known "
            "to check the name against: pass --app FILE"
        )
    app.function(name)  # raises FunctionNotFoundError, listing the app's functions


def _given(parameter: str) -> bool:
    """Whether the user gave ``parameter`` on the command line (not its default)."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _reading(home: Path | None, state_url: str | None) -> Settings:
    """The settings of an existing home, for commands that only read it.

    Opening a home's state creates it, so a command that only reads checks first: a
    mistyped --home then says so instead of leaving an empty home behind.
    """
    settings = Settings.load(home, state_url=state_url)
    try:
        open_state(settings.state_url, settings.home, create=False).close()
    except StateError as exc:
        if "there is none" not in str(exc):  # one that is there but broken: say that
            raise
        raise ConfigError(
            f"no reelay home at {settings.home} ({exc}); check --home, REELAY_HOME and "
            "REELAY_STATE, or make one with `reelay up`, `reelay put` or `reelay emit`"
        ) from None
    return settings


def _time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> None:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _dump(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class _Commands(click.Group):
    """reelay's commands, then those the installed apps add (media: ``transcode``)."""

    def _added(self) -> dict[str, click.Command]:
        try:
            plugins = installed().values()
        except ReelayError as exc:  # a broken app package: say so, run reelay's own
            click.echo(f"warning: {exc}", err=True)
            return {}
        added: dict[str, click.Command] = {}
        for plugin in plugins:
            for command in plugin.commands() if plugin.commands else ():
                if command.name is not None:
                    added.setdefault(command.name, command)
        return added

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._added()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._added().get(cmd_name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reelay")
def main() -> None:
    """reelay: Lambda-style functions on durable events, on a laptop or a cluster."""


# -- running -------------------------------------------------------------------------------


@main.command()
@click.option(
    "--app",
    "app_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The app file (reelay.yaml).",
)
@click.option("--executor", help="local, local:N, ray:auto, ray:local or ray://HOST:PORT.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes.")
@click.option("-v", "--verbose", is_flag=True, help="Print every invocation, not only failures.")
@click.option(
    "--http",
    "http_address",
    default="127.0.0.1:8470",
    show_default=True,
    help="Serve the HTTP API and dashboard on HOST:PORT (port 0: any free port).",
)
@click.option("--no-http", is_flag=True, help="Serve no HTTP API or dashboard.")
@click.option(
    "--streams",
    "streams_url",
    metavar="URL",
    help="Streams backend (stream triggers, the log stream, the Kinesis API): "
    "redis://host:port/db (default: the segment log in the home; env REELAY_STREAMS).",
)
@click.option(
    "--alerts",
    "alerts_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Alert rules (YAML; default: the built-in rules, reelay's and the installed apps').",
)
@home_option
@friendly
def up(
    app_path: Path,
    executor: str | None,
    workers: int | None,
    verbose: bool,
    http_address: str,
    no_http: bool,
    streams_url: str | None,
    alerts_path: Path | None,
    home: Path | None,
    state_url: str | None,
) -> None:
    """Serve an app: route events, run functions, retry, until Ctrl-C (which drains).

    Also serves the HTTP API, /metrics and the dashboard (see --http), the Kinesis API
    there (for access keys made by `reelay keys create`), and evaluates the alert rules.
    """
    from reelay.keys import AccessKeys, SecretKey
    from reelay.observe.alerts import Alerter, load_alert_rules
    from reelay.streams.kinesis import Kinesis
    from reelay.web import Server, create_app, ensure_token  # FastAPI: only where served

    if no_http and _given("http_address"):
        raise click.UsageError("--http and --no-http contradict each other: choose one")
    settings = Settings.load(home, state_url=state_url, streams_url=streams_url)
    app = load_app(app_path)
    rules = load_alert_rules(alerts_path)
    address = None if no_http else _address(http_address)
    stop = threading.Event()
    stopping = {"serving": True, "handling": False}
    runtime = Runtime(
        app,
        settings,
        executor=executor,
        max_workers=workers,
        out=sys.stdout,
        verbose=verbose,
        standby=True,
    )
    with contextlib.ExitStack() as stack:
        stack.callback(runtime.client.close)  # also if the server cannot start
        server = None
        if address is not None:  # listening first: a bad address costs no work
            token, created = ensure_token(settings.home)
            secret_key = SecretKey.load(settings.home)
            streams = runtime.client.streams  # closed with the client
            streams.list_streams()  # a backend that cannot be reached: said now, not later
            kinesis = Kinesis(streams, secret_key.token_keys("kinesis"), region=settings.region)
            api = create_app(
                runtime.client,
                token,
                app=app,
                alerter=Alerter(rules, runtime.client),
                kinesis=kinesis,
                keys=AccessKeys(runtime.client.state, secret_key),
            )
            server = stack.enter_context(Server(api, *address))
        try:
            stack.enter_context(runtime)  # on a shared state, may stand by first
        except KeyboardInterrupt:
            click.echo("\nreelay up: stopped before serving", err=True)
            return
        assert runtime.dispatcher is not None and runtime.executor is not None
        dispatcher = runtime.dispatcher

        def on_signal(signum: int, frame: object) -> None:
            if stopping["handling"]:
                return  # a signal that came while the last is handled: the same press
            stopping["handling"] = True
            try:
                on_stop_signal()
            finally:
                stopping["handling"] = False

        def on_stop_signal() -> None:
            if stop.is_set():
                # A second Ctrl-C while draining stops now (running work is requeued at
                # the next start); once draining is over, shutting down just finishes.
                if stopping["serving"]:
                    raise KeyboardInterrupt
                return
            stop.set()
            click.echo(
                "\ndraining: waiting for running invocations (Ctrl-C again to stop now)", err=True
            )
            dispatcher.wake()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        try:  # from here on: a Ctrl-C while the banner prints is one while serving
            click.echo(
                f"reelay up: app {app.name!r} ({plural(len(app.functions), 'function')}) on "
                f"{settings.home}, executor {runtime.executor_url} "
                f"({plural(runtime.executor.max_workers, 'worker')})",
                err=True,
            )
            if runtime.recovered:
                click.echo(
                    f"requeued {plural(runtime.recovered, 'invocation')} left unfinished by a "
                    "previous run (attempts that were running are recorded as lost)",
                    err=True,
                )
            if server is not None:
                where = settings.home / "api-token"
                if created:  # the only time the token is printed
                    click.echo(f"dashboard: {server.url}/?token={token}", err=True)
                    click.echo(f"API token (shown once; kept in {where}): {token}", err=True)
                else:
                    click.echo(f"dashboard and API: {server.url} (token in {where})", err=True)
                click.echo(
                    f"Kinesis API: {server.url} (endpoint_url; access keys: `reelay keys create`)",
                    err=True,
                )
            runtime.serve(stop)
        except KeyboardInterrupt:
            click.echo("stopped; unfinished invocations run again at the next start", err=True)
        finally:
            stopping["serving"] = False
    click.echo("reelay up: stopped", err=True)
    # Stopped: a Ctrl-C from here on (the interpreter's own exit) has nothing to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("destination")
@json_option
@home_option
@friendly
def put(
    file: Path, destination: str, as_json: bool, home: Path | None, state_url: str | None
) -> None:
    """Store FILE at s3://BUCKET/KEY in the home's object store (emits ObjectCreated:Put).

    A file put under s3://media/ingest/ starts a media title; its id is printed.
    """
    bucket, key = _parse_s3_url(destination)
    with Client(Settings.load(home, state_url=state_url)) as client:
        info = client.put_object(bucket, key, file)
    title_id = _media_title(info.bucket, info.key, info.etag)
    if as_json:
        out = {"bucket": info.bucket, "key": info.key, "size": info.size, "etag": info.etag}
        _dump(out if title_id is None else out | {"title_id": title_id})
        return
    click.echo(f"put s3://{info.bucket}/{info.key} ({plural(info.size, 'byte')}, etag {info.etag})")
    if title_id is not None:
        click.echo(
            f"media title {title_id}: the pipeline runs it while `reelay up --app media` "
            "serves this home (the same bytes under the same key again are the same title: "
            "one already settled is not run again)"
        )


def _media_title(bucket: str, key: str, etag: str) -> str | None:
    """The media title an upload starts, if it went to the media pipeline's ingest prefix."""
    from reelay.media.config import BUCKET, INGEST_PREFIX, title_id_for

    if bucket != BUCKET or not key.startswith(INGEST_PREFIX):
        return None
    return title_id_for(key, etag)


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    digits = port[1:] if port.startswith("-") else port
    if not sep or not host or not digits.isascii() or not digits.isdigit():
        raise click.BadParameter(
            f"{text!r}: expected HOST:PORT, as in 127.0.0.1:8470", param_hint="--http"
        )
    if not 0 <= int(port) <= 65535:
        raise click.BadParameter(
            f"{text!r}: port {int(port)} is out of range; use 1-65535, or 0 for any free port",
            param_hint="--http",
        )
    return host.strip("[]"), int(port)


def _parse_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:] or url.endswith("/"):
        raise click.BadParameter(f"{url!r}: expected s3://BUCKET/KEY", param_hint="DESTINATION")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


@main.command()
@click.argument("function")
@click.option(
    "--event",
    "event_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSON file with the event (default: {}). '-' is not accepted.",
)
@click.option("--app", "app_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--async",
    "is_async",
    is_flag=True,
    help="Queue it (Lambda's Event invocation) instead of waiting for the result.",
)
@click.option("--timeout", type=float, help="Seconds to wait (default: function timeout + 30).")
@json_option
@home_option
@friendly
def invoke(
    function: str,
    event_file: Path | None,
    app_path: Path | None,
    is_async: bool,
    timeout: float | None,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """Invoke FUNCTION with an event and print its result (runs it here if no `reelay up`)."""
    settings = Settings.load(home, state_url=state_url)
    with Client(settings) as client:
        app = _app(app_path, client)
        spec = app.function(function)
        payload = _read_event(event_file) if event_file else {}
        if is_async:
            event = client.invoke(function, payload)
            click.echo(f"queued event {event.id} for {function}")
            return
        if spec.reserved_concurrency == 0:
            raise ReelayError(f"function {function!r} is throttled: its reservedConcurrency is 0")
        _, request_id = client.invoke_sync(function, payload)
        inv = _run_or_await(app, settings, client, request_id, timeout or spec.timeout_s + 30)
        attempt = client.state.attempts(invocation_id=inv.id, limit=1)
        if as_json:
            _dump(inv.as_dict() | {"logs": attempt[0].logs if attempt else ""})
        else:
            if attempt and attempt[0].logs:
                click.echo(attempt[0].logs.rstrip("\n"), err=True)
            click.echo(inv.result if inv.status != FAILED else json.dumps(inv.error))
        if inv.status == FAILED:
            sys.exit(1)


def _run_or_await(
    app: App, settings: Settings, client: Client, request_id: str, timeout: float
) -> Invocation:
    """Run one invocation here, or wait while another dispatcher serves the home.

    The other dispatcher may be a `reelay up` (which runs it) or another `reelay invoke`
    (which runs only its own): so keep trying to take the home until one of the two
    happens.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        try:
            with Runtime(app, settings, max_workers=1, only={request_id}) as runtime:
                runtime.start()
                return runtime.wait_for(request_id, max(left, 0.1))
        except HomeBusyError:
            try:
                return wait_for_invocation(client, request_id, min(0.5, max(left, 0.1)))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise ReelayError(
                        f"invocation {request_id} did not finish within {timeout:g} s; it stays "
                        "queued and runs when a dispatcher serves this home"
                    ) from None


def _read_event(path: Path) -> dict[str, Any]:
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidEventError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidEventError(f"{path}: not a UTF-8 text file") from None
    if not isinstance(event, dict):
        raise InvalidEventError(
            f"{path}: the event must be a JSON object, not {type(event).__name__}"
        )
    return event


@main.command()
@click.option("--source", required=True, help="The event's source, e.g. my.app.")
@click.option("--detail-type", required=True, help="The event's detail-type.")
@click.option("--detail", default="{}", show_default=True, help="The detail, a JSON object.")
@home_option
@friendly
def emit(
    source: str, detail_type: str, detail: str, home: Path | None, state_url: str | None
) -> None:
    """Put one custom event on the event bus (as EventBridge PutEvents)."""
    with Client(Settings.load(home, state_url=state_url)) as client:
        (event_id,) = client.put_events(
            [{"Source": source, "DetailType": detail_type, "Detail": detail}]
        )
    click.echo(event_id)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    default="app",
    show_default=True,
    help="What FILE is: app, alerts, or a kind an installed app adds (media: ladder, "
    "rules). `reelay validate --kind help FILE` lists them.",
)
@friendly
def validate(file: Path, kind: str) -> None:
    """Check an app, alert-rule or app-specific file (a media ladder, say) completely
    before anything runs."""
    kinds = validate_kinds()
    if kind == "help":
        for name in kinds:
            click.echo(f"{name:<10} {kinds.get(name).about} ({kinds.owner(name)})")
        return
    if kind not in kinds:
        raise click.BadParameter(
            f"unknown kind {kind!r}; valid kinds: {', '.join(kinds)}", param_hint="--kind"
        )
    click.echo(f"{file}: ok ({kinds.get(kind).check(file)})")


# -- listings --------------------------------------------------------------------------------


@main.command()
@limit_option
@click.option("--source", help="Only events from this source.")
@json_option
@home_option
@friendly
def events(
    limit: int, source: str | None, as_json: bool, home: Path | None, state_url: str | None
) -> None:
    """List the newest events in the durable log."""
    with Client(_reading(home, state_url)) as client:
        rows = client.state.events(limit=limit, source=source)
    if as_json:
        _dump([e.as_dict() for e in rows])
        return
    _table(
        [(e.seq, _time(e.time), e.kind, e.source, e.detail_type, e.target or "") for e in rows],
        ("SEQ", "TIME", "KIND", "SOURCE", "DETAIL-TYPE", "TARGET"),
    )


@main.command()
@click.option("--function", help="Only this function.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@app_option
@limit_option
@json_option
@home_option
@friendly
def invocations(
    function: str | None,
    status: str | None,
    app_path: Path | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """List the newest invocations."""
    with Client(_reading(home, state_url)) as client:
        if function is not None:
            _check_function(function, app_path, client)
        rows = client.state.invocations(function=function, status=status, limit=limit)
    _invocation_rows(rows, as_json)


def _invocation_rows(rows: Sequence[Any], as_json: bool) -> None:
    if as_json:
        _dump([i.as_dict() for i in rows])
        return
    _table(
        [
            (
                i.id,
                i.function,
                i.status,
                i.attempts,
                _time(i.created),
                (i.error or {}).get("errorMessage", "")[:60],
            )
            for i in rows
        ],
        ("REQUEST ID", "FUNCTION", "STATUS", "ATTEMPTS", "CREATED", "ERROR"),
    )


@main.command()
@click.argument("function")
@app_option
@limit_option
@json_option
@home_option
@friendly
def logs(
    function: str,
    app_path: Path | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """Show what FUNCTION printed or logged, per invocation attempt (as CloudWatch does)."""
    with Client(_reading(home, state_url)) as client:
        _check_function(function, app_path, client)
        rows = client.state.attempts(function=function, limit=limit)
    if as_json:
        _dump([a.__dict__ for a in rows])
        return
    from reelay.observe.logstream import attempt_lines

    for a in reversed(rows):
        click.echo("\n".join(attempt_lines(a)))


@main.group()
def dlq() -> None:
    """The dead-letter queue: invocations that failed for good."""


@dlq.command("list")
@click.option("--function", help="Only this function.")
@app_option
@limit_option
@json_option
@home_option
@friendly
def dlq_list(
    function: str | None,
    app_path: Path | None,
    limit: int,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """List failed invocations."""
    with Client(_reading(home, state_url)) as client:
        if function is not None:
            _check_function(function, app_path, client)
        rows = client.state.invocations(function=function, status=FAILED, limit=limit)
    _invocation_rows(rows, as_json)


@dlq.command("redrive")
@click.argument("request_ids", nargs=-1)
@click.option("--function", help="Only this function's failed invocations.")
@click.option("--all", "everything", is_flag=True, help="Redrive the whole DLQ.")
@app_option
@json_option
@home_option
@friendly
def dlq_redrive(
    request_ids: tuple[str, ...],
    function: str | None,
    everything: bool,
    app_path: Path | None,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """Queue failed invocations again, with a fresh retry budget."""
    if not (request_ids or function or everything):
        raise click.UsageError("name REQUEST_IDS, --function NAME or --all")
    # Only an existing home has a DLQ to redrive.
    with Client(_reading(home, state_url)) as client:
        if function is not None:
            _check_function(function, app_path, client)
        count = client.state.redrive(ids=request_ids, function=function)
    if as_json:
        _dump({"redriven": count})
    else:
        click.echo(f"redrove {plural(count, 'invocation')}")
    missing = len(request_ids) - count
    if request_ids and missing > 0:
        verb = "is" if missing == 1 else "are"
        click.echo(f"error: {missing} of the ids {verb} not in the DLQ", err=True)
        sys.exit(1)


@main.group()
def keys() -> None:
    """Access keys for the Kinesis API (AWS Signature Version 4, as AWS's keys are used)."""


def _access_keys(settings: Settings, client: Client) -> Any:
    from reelay.keys import AccessKeys, SecretKey

    return AccessKeys(client.state, SecretKey.load(settings.home))


@keys.command("create")
@click.option("--name", default="", help="What the key is for (shown by `reelay keys list`).")
@json_option
@home_option
@friendly
def keys_create(name: str, as_json: bool, home: Path | None, state_url: str | None) -> None:
    """Make an access key and print its id and secret (the secret is shown only now)."""
    settings = Settings.load(home, state_url=state_url)
    with Client(settings) as client:
        keys = _access_keys(settings, client)
        key, secret = keys.create(name)
    if as_json:
        _dump({"AccessKeyId": key.id, "SecretAccessKey": secret, "Name": key.name})
        return
    click.echo(f"AWS_ACCESS_KEY_ID={key.id}")
    click.echo(f"AWS_SECRET_ACCESS_KEY={secret}")
    click.echo(
        "The secret is shown only now: keep it. Clients (boto3, the AWS CLI) sign with the "
        "pair; point their endpoint_url at `reelay up`'s HTTP address. reelay keeps the "
        f"secret encrypted under the secret key of {keys.secret_key.source}: every server "
        "that serves this state needs the same one.",
        err=True,
    )


@keys.command("list")
@json_option
@home_option
@friendly
def keys_list(as_json: bool, home: Path | None, state_url: str | None) -> None:
    """List the access keys (never their secrets), revoked ones too."""
    with Client(_reading(home, state_url)) as client:
        rows = client.state.access_keys()
    if as_json:
        _dump([k.as_dict() for k in rows])
        return
    _table(
        [
            (k.id, k.name or "-", _time(k.created), _time(k.last_used), _key_status(k.revoked))
            for k in rows
        ],
        ("ACCESS KEY ID", "NAME", "CREATED", "LAST USED", "STATUS"),
    )


def _key_status(revoked: float | None) -> str:
    return "active" if revoked is None else f"revoked {_time(revoked)}"


@keys.command("revoke")
@click.argument("key_id")
@home_option
@friendly
def keys_revoke(key_id: str, home: Path | None, state_url: str | None) -> None:
    """Revoke KEY_ID: requests signed with it are refused from now on."""
    settings = _reading(home, state_url)
    with Client(settings) as client:
        key = _access_keys(settings, client).revoke(key_id)
    click.echo(f"revoked {key.id}{f' ({key.name})' if key.name else ''}")


@main.command()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to keep the demo's state (default: a fresh temporary directory).",
)
@click.option(
    "--checksums",
    is_flag=True,
    help="Run the small runtime demo instead (uploads checksummed and catalogued).",
)
@click.option("--files", type=click.IntRange(1, 1000), default=12, show_default=True)
@friendly
def demo(home: Path | None, checksums: bool, files: int) -> None:
    """Run the media pipeline on a generated clip (or --checksums: the runtime demo)."""
    if checksums:
        from reelay.apps.demo import run_demo

        sys.exit(run_demo(home, files=files))
    from reelay.media.demo import run_media_demo

    sys.exit(run_media_demo(home))


if __name__ == "__main__":  # pragma: no cover
    main()
