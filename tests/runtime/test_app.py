"""App files: loading, defaults, and every broken form named precisely."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from reelay.config import Settings
from reelay.errors import AppError
from reelay.runtime import Runtime, load_app
from reelay.state import SUCCEEDED


def write_app(
    tmp_path: Path, text: str, handlers: str = "def main(event, context):\n    return event\n"
) -> Path:
    (tmp_path / "handler.py").write_text(handlers)
    path = tmp_path / "reelay.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str, **kw: str) -> list[str]:
    with pytest.raises(AppError) as info:
        load_app(write_app(tmp_path, text, **kw))
    return info.value.problems


def test_full_app_loads_with_every_setting(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "jobs.py").write_text("async def run(event, context):\n    pass\n")
    app = load_app(
        write_app(
            tmp_path,
            """
        service: photos
        provider: {timeout: 20, environment: {STAGE: dev, DEBUG: true}}
        functions:
          thumb:
            handler: handler.main
            memorySize: 512
            reservedConcurrency: 3
            maximumRetryAttempts: 1
            maximumEventAge: 120
            environment: {SIZE: 128}
            destinations: {onSuccess: jobs, onFailure: event}
            events:
              - s3: {bucket: uploads, event: "s3:ObjectCreated:*",
                     rules: [{prefix: in/}, {suffix: .jpg}]}
              - s3: other-bucket
              - eventBridge: {pattern: {source: [my.app], detail: {size: [{numeric: [">", 0]}]}}}
              - schedule: rate(5 minutes)
              - schedule: {rate: "cron(0 10 * * ? *)", input: {hello: world}, name: daily}
          jobs:
            handler: src/jobs.run
            timeout: 900
    """,
        )
    )
    assert app.name == "photos"
    assert app.root == tmp_path.resolve()
    thumb, jobs = app.functions["thumb"], app.functions["jobs"]
    assert thumb.timeout_s == 20 and jobs.timeout_s == 900
    assert (thumb.memory_mb, thumb.reserved_concurrency, thumb.max_attempts) == (512, 3, 2)
    assert thumb.max_event_age_s == 120
    assert thumb.environment == {"STAGE": "dev", "DEBUG": "true", "SIZE": "128"}
    assert thumb.on_success is not None and thumb.on_success.function == "jobs"
    assert thumb.on_failure is not None and thumb.on_failure.function is None
    assert [(t.bucket, t.prefix, t.suffix) for t in thumb.s3] == [
        ("uploads", "in/", ".jpg"),
        ("other-bucket", "", ""),
    ]
    assert thumb.s3[1].event == "s3:ObjectCreated:*"
    assert thumb.patterns[0].compiled.matches({"source": "my.app", "detail": {"size": 3}})
    assert [s.expression for s in thumb.schedules] == ["rate(5 minutes)", "cron(0 10 * * ? *)"]
    assert thumb.schedules[1].input == {"hello": "world"} and thumb.schedules[1].name == "daily"
    assert (jobs.memory_mb, jobs.max_attempts, jobs.max_event_age_s) == (1024, 3, 21600)


def test_handler_in_installed_package_resolves(tmp_path: Path) -> None:
    app = load_app(
        write_app(
            tmp_path,
            """
        functions:
          c: {handler: reelay.apps.demo.handlers.checksum}
    """,
        )
    )
    assert app.functions["c"].handler == "reelay.apps.demo.handlers.checksum"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "functions: {f: {handler: handler.main, timeout: 0}}",
            "reelay.yaml: functions.f.timeout: 0 is not valid: must be an integer from 1 to 900",
        ),
        ("functions: {f: {handler: handler.main, timeout: '5'}}", "functions.f.timeout: '5'"),
        (
            "functions: {f: {handler: handler.main, memorySize: 64}}",
            "functions.f.memorySize: 64 is not valid: must be an integer from 128 to 10240",
        ),
        (
            "functions: {f: {handler: handler.main, maximumRetryAttempts: 3}}",
            "functions.f.maximumRetryAttempts: 3 is not valid: must be an integer from 0 to 2",
        ),
        (
            "functions: {f: {handler: handler.main, maximumEventAge: 30}}",
            "functions.f.maximumEventAge: 30 is not valid: must be an integer from 60 to 21600",
        ),
        (
            "functions: {f: {handler: handler.main, reservedConcurrency: -1}}",
            "functions.f.reservedConcurrency: -1",
        ),
        (
            "functions: {f: {handler: handler.main, timout: 3}}",
            "functions.f.timout: unknown key 'timout'; valid keys: description, destinations",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{sqs: q}]}}",
            "functions.f.events[0]: unknown event kind 'sqs'; valid kinds: eventBridge, s3, "
            "schedule",
        ),
        (
            "functions: {f: {handler: handler.main, events: {s3: b}}}",
            "functions.f.events: must be a list of triggers",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{s3: {bucket: b, event: 's3:Bogus'}}]}}",
            "functions.f.events[0].s3.event:",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{s3: {bucket: b, rules: [{infix: a}]}}]}}",
            "functions.f.events[0].s3.rules[0]: {'infix': 'a'} is not valid",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{s3: {event: 's3:ObjectCreated:*'}}]}}",
            "functions.f.events[0].s3.bucket: None is not valid",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{eventBridge: {pattern: {source: x}}}]}}",
            "functions.f.events[0].eventBridge.pattern:",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{eventBridge: {source: [x]}}]}}",
            "functions.f.events[0].eventBridge: must be a mapping with a 'pattern'",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{schedule: 'rate(0 minutes)'}]}}",
            "functions.f.events[0].schedule.rate:",
        ),
        (
            "functions: {f: {handler: handler.main, events: [{schedule: 'every day'}]}}",
            "functions.f.events[0].schedule.rate:",
        ),
        (
            "functions: {f: {handler: handler.main, destinations: {onSuccess: nobody}}}",
            "functions.f.destinations.onSuccess: 'nobody' is not a function of this app nor "
            "'event'; valid choices: event, f",
        ),
        (
            "functions: {f: {handler: handler.main, destinations: {onDone: f}}}",
            "functions.f.destinations.onDone: unknown key 'onDone'",
        ),
        (
            "functions: {f: {handler: handler.main, environment: {A: [1]}}}",
            "functions.f.environment.A: [1] is not valid",
        ),
        (
            "functions: {f: {handler: handler.main, environment: {AWS_REGION: eu-west-1}}}",
            "functions.f.environment.AWS_REGION: is reserved: the Lambda runtime sets it",
        ),
        ("functions: {f: {handler: nodot}}", "functions.f.handler: 'nodot' is not valid"),
        (
            "functions: {f: {handler: missing.main}}",
            "functions.f.handler: 'missing.main': module not found",
        ),
        ("functions: {f: {handler: handler.nothere}}", "functions.f.handler: 'handler.nothere':"),
        ("functions: {f: {timeout: 3}}", "functions.f.handler: None is not valid"),
        (
            "functions: {'bad name': {handler: handler.main}}",
            "functions.bad name: function name 'bad name' is not valid",
        ),
        ("functions: {f: [handler.main]}", "functions.f: must be a mapping"),
        ("functions: {}", "functions: must be a mapping of function names"),
        ("- a\n- b", "the file must be a mapping with a 'functions' key, not list"),
        (
            "include: [video]",
            "include[0]: unknown app 'video'; installed apps: analytics, demo, media",
        ),
        (
            "include: media",
            "include: must be a list of installed app names: analytics, demo, media",
        ),
        (
            "include: [media]\nfunctions: {plan: {handler: handler.main}}",
            "functions.plan: is already a function of an included app; choose another name",
        ),
        (
            "include: [media]\nfunctions: {f: {handler: handler.main, destinations: {onSuccess: nope}}}",
            "valid choices: event, assemble, choose_ladder, encode, encode_audio, f, fail, inspect, package",
        ),
        (
            "service: x\nfunctions: {f: {handler: handler.main}}\nplugins: [a]",
            "reelay.yaml: plugins: unknown key 'plugins'; valid keys: functions, include, package, "
            "provider, service",
        ),
        ("functions: {f: {handler: handler.main}}\npackage: [lib]", "package: must be a mapping"),
        (
            "functions: {f: {handler: handler.main}}\npackage: {include: [lib]}",
            "package.include: unknown key 'include'; valid keys: modules",
        ),
        (
            "functions: {f: {handler: handler.main}}\npackage: {modules: lib}",
            "package.modules: must be a list of package directories",
        ),
        (
            "functions: {f: {handler: handler.main}}\npackage: {modules: [../nowhere]}",
            "package.modules[0]: '../nowhere': no such directory",
        ),
        (
            "functions: {f: {handler: handler.main}}\npackage: {modules: [.]}",
            "package.modules[0]: '.' is not a Python package: it has no __init__.py",
        ),
        (
            "functions: {f: {handler: handler.main}}\npackage: {modules: [3]}",
            "package.modules[0]: must be a directory path, not 3",
        ),
    ],
)
def test_each_problem_names_file_key_value_and_choices(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "reelay.yaml")) for p in found)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        functions:
          a: {handler: handler.main, timeout: 0, memorySize: 1}
          b: {handler: nope.main, events: [{s3: {bucket: x, rules: [{prefix: 1}]}}]}
    """,
    )
    assert len(found) == 4, found


def test_handler_syntax_error_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = problems(tmp_path, "functions: {f: {handler: handler.main}}", handlers="def main(:\n")
    assert "cannot parse" in found[0]


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    found = problems(tmp_path, "functions:\n  f: {handler: [unclosed\n")
    assert "invalid YAML: line" in found[0]


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(AppError, match="no such file"):
        load_app(tmp_path / "absent.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AppError, match="cannot read"):
        load_app(binary)


def test_disabled_schedule_is_skipped(tmp_path: Path) -> None:
    app = load_app(
        write_app(
            tmp_path,
            """
        functions:
          f: {handler: handler.main, events: [{schedule: {rate: rate(1 minute), enabled: false}}]}
    """,
        )
    )
    assert app.functions["f"].schedules == ()


def test_include_brings_a_built_in_app_configured_by_provider_environment(tmp_path: Path) -> None:
    path = tmp_path / "reelay.yaml"
    path.write_text(
        "include: [media]\nprovider: {environment: {REELAY_MEDIA_LADDER: full}}\n"
        "functions: {notify: {handler: handler.main}}\n"
    )
    (tmp_path / "handler.py").write_text("def main(event, context):\n    return 1\n")
    app = load_app(path)
    assert {"inspect", "encode", "publish", "notify"} <= set(app.functions)
    assert app.functions["encode"].environment["REELAY_MEDIA_LADDER"] == "full"
    assert app.functions["encode"].handler == "reelay.media.handlers.encode"
    assert load_app("media").functions.keys() == app.functions.keys() - {"notify"}


def test_triggers_describe_what_invokes_each_function() -> None:
    app = load_app(Path(__file__).parent / "apps" / "basic" / "reelay.yaml")
    assert app.triggers("echo") == [
        "s3:ObjectCreated:* s3://uploads/in/*",
        'pattern {"source":["test.app"],"detail-type":["ping"]}',
    ]
    # sink has a pattern of its own and is broken's onFailure destination.
    assert app.triggers("sink")[-1] == "onFailure destination of broken"


def test_package_modules_outside_the_app_are_importable_by_its_handlers(tmp_path: Path) -> None:
    lib = tmp_path / "shared" / "house_rules"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text("GREETING = 'hello from a shared package'\n")
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    path = write_app(
        app_dir,
        """
        package: {modules: [../shared/house_rules]}
        functions: {f: {handler: handler.main}}
        """,
        handlers="import house_rules\n\ndef main(event, context):\n    return house_rules.GREETING\n",
    )
    app = load_app(path)
    assert app.modules == (lib,)
    with Runtime(app, Settings.load(tmp_path / "home"), max_workers=1) as rt:
        rt.start()
        _, request_id = rt.client.invoke_sync("f", {})
        done = rt.wait_for(request_id, timeout=60)
    assert done.status == SUCCEEDED, done.error
    assert json.loads(done.result or "null") == "hello from a shared package"
