"""Apps declared in Python with `reelay.Functions`: same definitions, same validation."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from reelay.config import Settings
from reelay.errors import AppError
from reelay.runtime import Runtime, load_app
from reelay.state import SUCCEEDED

APP_PY = """
from reelay import Functions

app = Functions("pyapp", provider={"environment": {"GREETING": "hi"}})


@app.function(events=[{"eventBridge": {"pattern": {"source": ["py.app"]}}}], timeout=10,
              reserved_concurrency=2, maximum_retry_attempts=0)
def greet(event, context):
    import os
    return f"{os.environ['GREETING']} {event['detail']['name']}"


@app.function("shout", events=[{"s3": {"bucket": "uploads"}}])
def loud(event, context):
    return event["Records"][0]["s3"]["object"]["key"].upper()
"""


def write(tmp_path: Path, text: str, name: str = "pyapp.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_python_app_is_the_yaml_it_stands_for(tmp_path: Path) -> None:
    app = load_app(write(tmp_path, APP_PY))
    assert app.name == "pyapp" and sorted(app.functions) == ["greet", "shout"]
    greet = app.functions["greet"]
    assert greet.handler == "pyapp.greet" and greet.timeout_s == 10
    assert greet.reserved_concurrency == 2 and greet.max_attempts == 1
    assert greet.environment == {"GREETING": "hi"}
    assert app.functions["shout"].handler == "pyapp.loud"
    assert app.functions["shout"].s3[0].bucket == "uploads"


def test_python_app_runs(tmp_path: Path) -> None:
    app = load_app(write(tmp_path, APP_PY))
    with Runtime(app, Settings.load(tmp_path / "home"), max_workers=1) as rt:
        rt.start()
        rt.client.put_events([{"Source": "py.app", "DetailType": "x", "Detail": {"name": "ana"}}])
        rt.client.put_object("uploads", "a/b.txt", b"1")
        assert rt.wait_idle(30)
        results = {
            i.function: (i.status, json.loads(i.result or "null"))
            for i in rt.client.state.invocations()
        }
    assert results == {"greet": (SUCCEEDED, "hi ana"), "shout": (SUCCEEDED, "A/B.TXT")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "from reelay import Functions\napp = Functions('x')\n"
            "@app.function(timeout=0)\ndef f(e, c):\n    pass\n",
            "functions.f.timeout: 0 is not valid: must be an integer from 1 to 900",
        ),
        (
            "from reelay import Functions\napp = Functions('x')\n"
            "@app.function(timout=3)\ndef f(e, c):\n    pass\n",
            "importing it failed: TypeError: unknown option 'timout'; valid options:",
        ),
        (
            "from reelay import Functions\napp = Functions('x')\n"
            "def outer():\n    @app.function()\n    def f(e, c):\n        pass\nouter()\n",
            "a handler must be a module-level function",
        ),
        ("x = 1\n", "expected exactly one reelay.Functions object at module level, found 0"),
        ("raise SystemError('boom')\n", "importing it failed: SystemError: boom"),
        ("def broken(:\n", "importing it failed: SyntaxError"),
    ],
)
def test_broken_python_apps_are_app_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text, name="broken_app.py")
    with pytest.raises(AppError) as info:
        load_app(path)
    assert any(message in p for p in info.value.problems), info.value.problems
    assert all(str(tmp_path) in p for p in info.value.problems)
