"""The command line: every command, its --json, and its broken inputs (no tracebacks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reelay.cli import main

APP = Path(__file__).parent / "runtime" / "apps" / "basic" / "reelay.yaml"


def app_functions() -> str:
    """The basic app's function names as the CLI lists them (the app grows with the tests)."""
    from reelay.runtime import load_app

    return ", ".join(sorted(load_app(APP).functions))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def cli(*args: str | Path, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    # CliRunner catches what would be a traceback: anything but SystemExit is a CLI bug.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_validate_ok_and_broken(tmp_path: Path) -> None:
    ok = cli("validate", APP)
    assert ok.exit_code == 0 and f"functions: {app_functions()})" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("functions:\n  f: {handler: nowhere.main, timeout: 0}\n")
    result = cli("validate", bad)
    assert result.exit_code == 2
    assert f"error: {bad}: functions.f.timeout: 0 is not valid" in result.output
    assert "functions.f.handler: 'nowhere.main': module not found" in result.output
    assert cli("validate", tmp_path / "absent.yaml").exit_code == 2


def test_put_lists_event_in_exact_s3_shape(tmp_path: Path, home: Path) -> None:
    src = tmp_path / "clip.bin"
    src.write_bytes(b"x" * 1000)
    put = cli("put", src, "s3://uploads/in/clip one.bin", "--home", home, "--json")
    assert put.exit_code == 0, put.output
    assert json.loads(put.output)["size"] == 1000
    listing = json.loads(cli("events", "--home", home, "--json").output)
    (event,) = listing
    (record,) = event["event"]["Records"]
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["object"]["key"] == "in/clip+one.bin"
    table = cli("events", "--home", home).output
    assert "ObjectCreated:Put" in table and "SEQ" in table


@pytest.mark.parametrize(
    ("destination", "message"),
    [
        ("uploads/key", "expected s3://BUCKET/KEY"),
        ("s3://uploads", "expected s3://BUCKET/KEY"),
        ("s3://uploads/", "expected s3://BUCKET/KEY"),
        ("s3://uploads/../../etc/passwd", "error:"),
        ("s3://uploads//abs", "error:"),
        ("s3://UP/key", "error:"),
        ("s3://uploads/" + "k" * 1100, "error:"),
    ],
)
def test_put_refuses_bad_destinations(
    tmp_path: Path, home: Path, destination: str, message: str
) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"1")
    result = cli("put", src, destination, "--home", home)
    assert result.exit_code != 0 and message in result.output
    assert not (home / "objects" / "etc").exists()
    assert not home.exists()  # nothing recorded: the put was refused before the home was made


def test_put_missing_file(home: Path) -> None:
    result = cli("put", "/nonexistent/file", "s3://uploads/k", "--home", home)
    assert result.exit_code == 2 and "does not exist" in result.output


def test_invoke_runs_here_without_a_dispatcher(tmp_path: Path, home: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"detail-type": "hello"}))
    result = cli("invoke", "echo", "--event", event, "--app", APP, "--home", home)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"seen": "hello"}
    rows = json.loads(cli("invocations", "--home", home, "--json").output)
    assert [(r["function"], r["status"]) for r in rows] == [("echo", "succeeded")]
    logs = cli("logs", "echo", "--home", home).output
    assert "START RequestId:" in logs and "echo echo" in logs and "REPORT RequestId" in logs
    as_json = json.loads(cli("logs", "echo", "--home", home, "--json").output)
    assert as_json[0]["ok"] is True


def test_invoke_failure_exits_nonzero_and_is_not_retried(tmp_path: Path, home: Path) -> None:
    result = cli("invoke", "broken", "--app", APP, "--home", home, "--json")
    assert result.exit_code == 1
    out = json.loads(result.output[result.output.index("{") :])
    assert out["status"] == "failed" and out["attempts"] == 1
    assert out["error"]["errorMessage"] == "always broken"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "the event must be a JSON object, not list"),
        ('"text"', "the event must be a JSON object, not str"),
    ],
)
def test_invoke_rejects_bad_events(tmp_path: Path, home: Path, content: str, message: str) -> None:
    event = tmp_path / "event.json"
    event.write_text(content)
    result = cli("invoke", "echo", "--event", event, "--app", APP, "--home", home)
    assert result.exit_code == 1 and message in result.output
    assert not home.exists()  # refused before anything was recorded


def test_invoke_unknown_function_lists_valid_ones(home: Path) -> None:
    result = cli("invoke", "nope", "--app", APP, "--home", home)
    assert result.exit_code == 1
    assert f"function 'nope' is not in app 'basic'; functions: {app_functions()}" in result.output


def test_emit_and_bad_detail(home: Path) -> None:
    ok = cli(
        "emit", "--source", "a.b", "--detail-type", "t", "--detail", '{"x": 1}', "--home", home
    )
    assert ok.exit_code == 0
    bad = cli("emit", "--source", "a.b", "--detail-type", "t", "--detail", "[1]", "--home", home)
    assert bad.exit_code == 1 and "Detail must be a JSON object, not list" in bad.output
    bad = cli("emit", "--source", "", "--detail-type", "t", "--home", home)
    assert bad.exit_code == 1 and "Source must be a non-empty string" in bad.output
    assert len(json.loads(cli("events", "--home", home, "--json").output)) == 1


def test_dlq_list_and_redrive(home: Path) -> None:
    cli("invoke", "once", "--app", APP, "--home", home, "--async")
    assert cli("dlq", "redrive", "--home", home).exit_code == 2  # names nothing to redrive
    # serve until the DLQ has it: `invoke` of another function drains pending work here
    from reelay.config import Settings
    from reelay.runtime import Runtime, load_app

    with Runtime(load_app(APP), Settings.load(home), max_workers=1) as rt:
        rt.start()
        assert rt.wait_idle(30)
    listed = json.loads(cli("dlq", "list", "--home", home, "--json").output)
    assert [r["function"] for r in listed] == ["once"]
    unknown = cli("dlq", "redrive", "no-such-id", "--home", home)
    assert unknown.exit_code == 1 and "not in the DLQ" in unknown.output
    ok = cli("dlq", "redrive", listed[0]["id"], "--home", home, "--json")
    assert json.loads(ok.output) == {"redriven": 1}
    assert json.loads(cli("dlq", "list", "--home", home, "--json").output) == []


def test_up_with_broken_app_exits_cleanly(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("functions: [oops")
    result = cli("up", "--app", bad, "--home", home)
    assert result.exit_code == 2 and "invalid YAML" in result.output


def test_up_unknown_executor_and_unreachable_ray(home: Path) -> None:
    result = cli("up", "--app", APP, "--home", home, "--executor", "k8s://x")
    assert result.exit_code == 1 and "error:" in result.output and "local" in result.output


def test_up_serves_put_from_another_process_and_drains_on_ctrl_c(
    tmp_path: Path, home: Path
) -> None:
    env = os.environ | {"REELAY_HOME": str(home)}
    up = subprocess.Popen(
        [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP), "--http", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert up.stdout is not None
        banner = up.stdout.readline()  # printed once the home is locked and workers run
        assert banner.startswith("reelay up: app 'basic'"), banner
        src = tmp_path / "f.txt"
        src.write_text("hello")
        put = subprocess.run(
            [sys.executable, "-m", "reelay.cli", "put", str(src), "s3://uploads/in/f.txt"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert put.returncode == 0, put.stderr
        busy = subprocess.run(
            [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert busy.returncode == 1 and "already serving" in busy.stderr
        assert "Traceback" not in busy.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "reelay.cli", "invocations", "--json"],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                ).stdout
            )
            if rows and rows[0]["status"] == "succeeded":
                break
            time.sleep(0.1)
        assert rows and rows[0]["function"] == "echo" and rows[0]["status"] == "succeeded"
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, banner + out
    assert "draining" in out and "reelay up: stopped" in out and "Traceback" not in out


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_ray_and_s3_endpoints_are_clear_errors(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    ray = cli("up", "--app", APP, "--home", home, "--executor", f"ray://127.0.0.1:{port}")
    assert ray.exit_code == 1 and f"127.0.0.1:{port}" in ray.output
    monkeypatch.setenv("REELAY_STORE", f"s3://x?endpoint=http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    src = tmp_path / "f"
    src.write_bytes(b"1")
    s3 = cli("put", src, "s3://uploads/k", "--home", home)
    assert s3.exit_code == 1 and f"127.0.0.1:{port}" in s3.output
    monkeypatch.delenv("REELAY_STORE")
    assert json.loads(cli("events", "--home", home, "--json").output) == []  # nothing emitted


def test_invoke_runs_only_its_own_invocation(tmp_path: Path, home: Path) -> None:
    from reelay.client import Client
    from reelay.config import Settings

    with Client(Settings.load(home)) as client:
        client.put_events([{"Source": "test.app", "DetailType": "ping", "Detail": "{}"}] * 2010)
        result = cli("invoke", "echo", "--app", APP, "--home", home)
        assert result.exit_code == 0, result.output
        # The pending events were neither routed nor run by the one-shot invoke: they
        # wait for `reelay up` and the app it serves.
        assert client.state.route_cursor() == 0
        assert len(client.state.invocations(limit=10)) == 1
        assert client.state.get_meta("app_path") is None


def test_concurrent_invokes_on_one_home_both_finish(home: Path) -> None:
    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reelay.cli",
                "invoke",
                "nap",
                "--app",
                str(APP),
                "--home",
                str(home),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    first, second = start(), start()
    outputs = [p.communicate(timeout=120)[0] for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    assert all("Traceback" not in out for out in outputs)


def test_throttled_function_is_refused_at_once(home: Path) -> None:
    result = cli("invoke", "disabled", "--app", APP, "--home", home)
    assert result.exit_code == 1 and "throttled: its reservedConcurrency is 0" in result.output


def test_corrupt_state_database_is_a_clear_error(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "state.db").write_bytes(b"this is not a database" * 100)
    result = cli("events", "--home", home)
    assert result.exit_code == 1
    assert "state.db: open failed: file is not a database" in result.output
    # The database is there but broken: said as it is, not as "no reelay home".
    assert result.output.startswith(f"error: state {home / 'state.db'}: ")
    assert "Traceback" not in result.output


def test_validate_alert_rules(tmp_path: Path) -> None:
    from reelay.observe.alerts import builtin_alert_files

    core, media = builtin_alert_files()
    ok = cli("validate", "--kind", "alerts", core)
    assert ok.exit_code == 0 and "2 alert rules: HighErrorRate, DeadLetters" in ok.output
    ok = cli("validate", "--kind", "alerts", media)
    assert ok.exit_code == 0 and "2 alert rules: TitleHeld, TitleFailed" in ok.output
    bad = tmp_path / "alerts.yaml"
    bad.write_text("alerts: [{name: x, metric: errors, above: 1}]")
    result = cli("validate", "--kind", "alerts", bad)
    assert result.exit_code == 2, result.output
    assert "alerts[0].metric: 'errors'" in result.output and "error_rate" in result.output
    assert "Traceback" not in result.output


def test_up_prints_the_token_once_and_serves_the_api(home: Path) -> None:
    import httpx

    def start() -> tuple[subprocess.Popen[str], list[str]]:
        up = subprocess.Popen(
            [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP), "--http", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=os.environ | {"REELAY_HOME": str(home)},
            text=True,
        )
        assert up.stdout is not None
        lines = [up.stdout.readline()]
        while "dashboard" not in lines[-1]:
            lines.append(up.stdout.readline())
            assert lines[-1], lines
        return up, lines

    def stop(up: subprocess.Popen[str]) -> str:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
        assert up.returncode == 0 and "Traceback" not in out, out
        return out

    up, lines = start()
    try:
        url = lines[-1].split("dashboard: ", 1)[1].split("/?token=")[0]
        token = lines[-1].rsplit("token=", 1)[1].strip()
        assert (home / "api-token").stat().st_mode & 0o777 == 0o600
        assert (home / "api-token").read_text().strip() == token
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/metrics").status_code == 401
            metrics = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert metrics.status_code == 200 and "reelay_queue_depth" in metrics.text
    finally:
        out = stop(up)
    assert token in "".join(lines)
    again, lines = start()
    out = stop(again)
    assert token not in "".join(lines) + out  # printed once, on the first start only
    assert "token in" in lines[-1]


def test_up_with_a_bad_http_address_or_a_port_in_use(home: Path) -> None:
    import socket

    result = cli("up", "--app", APP, "--home", home, "--http", "nowhere")
    assert result.exit_code == 2 and "HOST:PORT" in result.output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("up", "--app", APP, "--home", home, "--http", f"127.0.0.1:{port}")
    assert result.exit_code == 1 and "could not listen" in result.output, result.output
    assert "Traceback" not in result.output
    # It says so before any work: no app served, no worker started, nothing recovered.
    assert "reelay up: app" not in result.output
    from reelay.client import Client
    from reelay.config import Settings

    with Client(Settings.load(home)) as client:
        assert client.state.get_meta("app_path") is None  # the runtime never started
    result = cli("up", "--app", APP, "--home", home, "--no-http", "--http", "127.0.0.1:1")
    assert result.exit_code == 2 and "contradict" in result.output


# -- bad store URLs, unknown functions, missing homes, wording ------------------------------


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("notaurl", "object store URL 'notaurl' names no scheme; valid schemes: file, s3"),
        (
            "gs://bucket",
            "unknown object store scheme 'gs' in 'gs://bucket'; valid schemes: file, s3",
        ),
    ],
)
def test_an_unknown_store_url_is_an_error_naming_the_schemes(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, store: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REELAY_STORE", store)
    src = tmp_path / "f"
    src.write_bytes(b"1")
    for args in (("put", src, "s3://media/x"), ("events",), ("up", "--app", APP)):
        result = cli(*args, "--home", home)
        assert result.exit_code == 1, (args, result.output)
        assert f"error: REELAY_STORE: {message}" in result.output
    assert not (tmp_path / "notaurl").exists() and not home.exists()
    # The same in a real process: a message and a non-zero exit, no traceback.
    proc = subprocess.run(
        [sys.executable, "-m", "reelay.cli", "put", str(src), "s3://media/x", "--home", str(home)],
        env=os.environ | {"REELAY_STORE": store},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr


def test_reading_commands_do_not_make_a_home(tmp_path: Path) -> None:
    never = tmp_path / "never-made"
    for args in (
        ("events",),
        ("invocations",),
        ("logs", "echo", "--app", APP),
        ("dlq", "list"),
        ("dlq", "redrive", "--all"),
    ):
        result = cli(*args, "--home", never)
        assert result.exit_code == 1, (args, result.output)
        assert f"error: no reelay home at {never}" in result.output
    assert not never.exists()
    # A directory that is not a home is not made into one either.
    never.mkdir()
    assert cli("events", "--home", never).exit_code == 1
    assert list(never.iterdir()) == []


def test_logs_of_an_unknown_function_is_an_error(tmp_path: Path, home: Path) -> None:
    assert cli("invoke", "echo", "--app", APP, "--home", home).exit_code == 0
    result = cli("logs", "nosuchfn", "--app", APP, "--home", home)
    assert result.exit_code == 1
    assert f"function 'nosuchfn' is not in app 'basic'; functions: {app_functions()}" in (
        result.output
    )
    # Without --app, the app `reelay up` last served here is the reference.
    from reelay.client import Client
    from reelay.config import Settings

    with Client(Settings.load(home)) as client:
        client.state.set_meta("app_path", str(APP))
    result = cli("logs", "nosuchfn", "--home", home)
    assert result.exit_code == 1 and "is not in app 'basic'" in result.output
    result = cli("invocations", "--function", "nosuchfn", "--home", home)
    assert result.exit_code == 1 and "is not in app 'basic'" in result.output
    # A function of the app, or one with a history here, is fine.
    assert cli("logs", "echo", "--home", home).exit_code == 0
    assert cli("logs", "broken", "--home", home).exit_code == 0  # in the app, never ran


def test_logs_without_any_app_knows_the_history(home: Path) -> None:
    assert cli("invoke", "echo", "--app", APP, "--home", home).exit_code == 0
    assert "echo echo" in cli("logs", "echo", "--home", home).output
    result = cli("logs", "nosuchfn", "--home", home)
    assert result.exit_code == 1
    assert "function 'nosuchfn' has never run in" in result.output and "--app" in result.output


def test_a_port_out_of_range_says_so(home: Path) -> None:
    result = cli("up", "--app", APP, "--home", home, "--http", "127.0.0.1:99999")
    assert result.exit_code == 2
    assert "port 99999 is out of range; use 1-65535, or 0 for any free port" in result.output
    result = cli("up", "--app", APP, "--home", home, "--http", "127.0.0.1:-1")
    assert result.exit_code == 2 and "port -1 is out of range" in result.output


def test_a_store_that_cannot_be_written_says_why_in_words(tmp_path: Path, home: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    source = tmp_path / "f.txt"
    source.write_text("x")
    store = f"file://{blocker}/objects"  # under a file: no directory can be made there
    result = CliRunner(env={"REELAY_STORE": store}).invoke(
        main, ["put", str(source), "s3://media/x", "--home", str(home)]
    )
    assert result.exit_code == 1, result.output
    assert "create bucket 'media' failed: Not a directory" in result.output
    assert "Errno" not in result.output and "Traceback" not in result.output


def test_redrive_wording_agrees_with_the_count(home: Path) -> None:
    assert cli("emit", "--source", "a.b", "--detail-type", "t", "--home", home).exit_code == 0
    result = cli("dlq", "redrive", "no-such-id", "--home", home)
    assert result.exit_code == 1
    assert "redrove 0 invocations" in result.output
    assert "error: 1 of the ids is not in the DLQ" in result.output
    result = cli("dlq", "redrive", "a", "b", "--home", home)
    assert "error: 2 of the ids are not in the DLQ" in result.output


def test_put_into_the_media_ingest_prefix_names_the_title(tmp_path: Path, home: Path) -> None:
    from reelay.media.config import title_id_for

    src = tmp_path / "My Clip.mp4"
    src.write_bytes(b"x")
    result = cli("put", src, "s3://media/ingest/My Clip.mp4", "--home", home)
    assert result.exit_code == 0, result.output
    assert "(1 byte, etag" in result.output
    as_json = json.loads(
        cli("put", src, "s3://media/ingest/My Clip.mp4", "--home", home, "--json").output
    )
    title = title_id_for("ingest/My Clip.mp4", as_json["etag"])
    assert as_json["title_id"] == title and title.startswith("my-clip-")
    assert f"media title {title}: the pipeline runs it" in result.output
    other = json.loads(
        cli("put", src, "s3://media/elsewhere/x.mp4", "--home", home, "--json").output
    )
    assert "title_id" not in other


def test_storage_messages_read_well(tmp_path: Path, home: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"1")
    result = cli("put", src, "s3://a/k", "--home", home)
    assert result.exit_code == 1
    assert "bucket name 'a' is 1 character long; it must be 3 to 63 characters" in result.output
    home.mkdir()
    (home / "objects").write_text("a file where the object store should be")
    result = cli("put", src, "s3://media/k", "--home", home)
    assert result.exit_code == 1 and "file store: create bucket 'media' failed" in result.output


def test_logs_of_a_function_that_ran_need_no_loadable_app(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("invoke", "echo", "--app", APP, "--home", home).exit_code == 0
    from reelay.client import Client
    from reelay.config import Settings

    # The app `reelay up` last served here is gone, and ./reelay.yaml is broken.
    with Client(Settings.load(home)) as client:
        client.state.set_meta("app_path", str(tmp_path / "gone" / "reelay.yaml"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reelay.yaml").write_text("functions: [not, a, mapping\n")
    result = cli("logs", "echo", "--home", home)
    assert result.exit_code == 0 and "echo echo" in result.output
    # A name that never ran is still refused, and the message says what to do.
    result = cli("logs", "nosuchfn", "--home", home)
    assert result.exit_code == 1 and "--app" in result.output
    # An app asked for by name that does not load is an error about that app.
    result = cli("logs", "nosuchfn", "--home", home, "--app", tmp_path / "reelay.yaml")
    assert result.exit_code == 2 and "invalid YAML" in result.output


def test_logs_say_what_the_runtime_knows_of_a_lost_attempt(home: Path) -> None:
    import time as _time

    from reelay.state import NewEvent, NewInvocation, Start, open_state

    with open_state("", home) as state:
        (e,) = state.append([NewEvent("event", "{}")])
        state.route([NewInvocation(e.seq, e.time, "echo", 3, 60)], e.seq)
        ((inv, _),) = state.claim(_time.time(), 1)
        state.start([Start(inv.id, 1, _time.time(), "77@node")])
        state.release()  # the dispatcher was killed under it
    logs = cli("logs", "echo", "--home", home).output
    assert f"RequestId: {inv.id} Error: Runtime.ExitError: the worker 77@node was lost" in logs
    assert "Status: Runtime.ExitError" in logs


def test_state_option_chooses_the_state_backend(tmp_path: Path, postgres_url: str) -> None:
    # Two homes, one state: what one emits, the other lists (the state is not in a home).
    emitted = cli(
        "emit",
        "--home",
        tmp_path / "a",
        "--state",
        postgres_url,
        "--source",
        "my.app",
        "--detail-type",
        "Hi",
    )
    assert emitted.exit_code == 0, emitted.output
    listed = cli("events", "--home", tmp_path / "b", "--state", postgres_url, "--json")
    assert listed.exit_code == 0, listed.output
    assert [e["id"] for e in json.loads(listed.output)] == [emitted.output.strip()]
    assert not (tmp_path / "b" / "state.db").exists()
    bad = cli("events", "--home", tmp_path / "b", "--state", "mysql://x/y")
    assert bad.exit_code == 1 and "mysql" in bad.output and "postgresql" in bad.output
    assert "--state URL" in cli("events", "--help").output
