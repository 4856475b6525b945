"""An object and its event are one outcome: a writer killed between storing an object and
appending its S3 event leaves an intent, which the next `Runtime` start settles.

Each crash test runs `put_object`/`delete_object` in a child process that ``os._exit``s
at a named point of the write (the `reelay.client._crash_point` seam), on ``file://``
and on ``s3://`` (a real S3-protocol server on loopback), then starts a Runtime and
checks the event is in the log exactly once and a function triggered by it ran.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import NoSuchKeyError, StorageError
from reelay.runtime import Runtime, load_app

CRASHED = 9  # the child's exit status at the crash point

CHILD = textwrap.dedent(
    """
    import os, sys
    import reelay.client as client_module
    from reelay.config import Settings

    home, op, point, bucket, key = sys.argv[1:]

    def crash(name):
        if name == point:
            os._exit(9)

    client_module._crash_point = crash
    with client_module.Client(Settings.load(home)) as client:
        if op == "put":
            client.put_object(bucket, key, b"written by the crashed child")
        elif op == "copy":
            client.copy_object(bucket, "src.bin", bucket, key)
        else:
            client.delete_object(bucket, key)
    """
)

APP_YAML = """\
service: crashy
functions:
  seen:
    handler: handlers.seen
    events:
      - s3: {bucket: uploads, event: "s3:ObjectCreated:*"}
      - s3: {bucket: uploads, event: "s3:ObjectRemoved:*"}
"""

HANDLERS = """\
import json, os
from pathlib import Path


def seen(event, context):
    out = Path(os.environ["REELAY_HOME"]) / "out" / "seen.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as f:
        f.write(json.dumps(event["Records"][0]) + "\\n")
"""


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A home on each object store in turn; the environment names it for the child."""
    home = tmp_path / "home"
    monkeypatch.setenv("REELAY_HOME", str(home))
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("REELAY_STORE", f"s3://c{uuid.uuid4().hex[:10]}?endpoint={endpoint}")
    else:
        monkeypatch.setenv("REELAY_STORE", (tmp_path / "objects").as_uri())
    return Settings.load(home)


@pytest.fixture
def app_path(tmp_path: Path) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "handlers.py").write_text(HANDLERS)
    (root / "reelay.yaml").write_text(APP_YAML)
    return root / "reelay.yaml"


def crash_child(settings: Settings, op: str, point: str, key: str = "in/a.bin") -> None:
    """Run ``op`` on uploads/``key`` in a child process killed at ``point``."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.home), op, point, "uploads", key],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == CRASHED, done.stderr


def s3_events(client: Client, name: str) -> list[dict[str, Any]]:
    """The S3 records of ``name`` in the log."""
    records = [json.loads(e.body)["Records"][0] for e in client.state.events() if e.kind == "s3"]
    return [r for r in records if r["eventName"] == name]


def serve(settings: Settings, app_path: Path) -> tuple[int, list[dict[str, Any]]]:
    """Start a Runtime (which reconciles), serve until idle; return what it reconciled
    and the records the function saw."""
    with Runtime(load_app(app_path), settings, max_workers=1) as rt:
        reconciled = rt.reconciled
        rt.start()
        assert rt.wait_idle(60)
    out = settings.home / "out" / "seen.jsonl"
    seen = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    return reconciled, seen


def test_put_killed_after_the_store_write_gets_its_event_at_start(
    settings: Settings, app_path: Path
) -> None:
    crash_child(settings, "put", "stored")
    with Client(settings) as client:
        info = client.head_object("uploads", "in/a.bin")  # the object is there...
        assert s3_events(client, "ObjectCreated:Put") == []  # ...and no event yet
        assert len(client.state.intents()) == 1
    reconciled, seen = serve(settings, app_path)
    assert reconciled == 1
    with Client(settings) as client:
        (record,) = s3_events(client, "ObjectCreated:Put")
        assert client.state.intents() == []
    assert record["s3"]["object"] == {
        "key": "in/a.bin",
        "size": info.size,
        "eTag": info.etag,
        "sequencer": record["s3"]["object"]["sequencer"],
    }
    assert record["eventVersion"] == "2.1" and record["s3"]["bucket"]["name"] == "uploads"
    assert [r["eventName"] for r in seen] == ["ObjectCreated:Put"]
    assert seen[0]["s3"]["object"]["eTag"] == info.etag


def test_copy_killed_after_the_store_write_gets_its_copy_event_at_start(
    settings: Settings, app_path: Path
) -> None:
    with Client(settings) as client:
        client.put_object("uploads", "src.bin", b"to be copied")
    crash_child(settings, "copy", "stored")
    reconciled, seen = serve(settings, app_path)
    assert reconciled == 1
    with Client(settings) as client:
        info = client.head_object("uploads", "in/a.bin")
        (record,) = s3_events(client, "ObjectCreated:Copy")
        assert client.state.intents() == []
    assert record["s3"]["object"]["key"] == "in/a.bin"
    assert record["s3"]["object"]["eTag"] == info.etag == hashlib.md5(b"to be copied").hexdigest()
    assert sorted(r["eventName"] for r in seen) == ["ObjectCreated:Copy", "ObjectCreated:Put"]


def test_delete_killed_after_the_store_write_gets_its_event_at_start(
    settings: Settings, app_path: Path
) -> None:
    with Client(settings) as client:
        client.put_object("uploads", "in/a.bin", b"to be deleted")
    crash_child(settings, "delete", "stored")
    with Client(settings) as client:
        with pytest.raises(NoSuchKeyError):
            client.head_object("uploads", "in/a.bin")
        assert s3_events(client, "ObjectRemoved:Delete") == []
    reconciled, seen = serve(settings, app_path)
    assert reconciled == 1
    with Client(settings) as client:
        (record,) = s3_events(client, "ObjectRemoved:Delete")
        assert client.state.intents() == []
    assert record["s3"]["object"]["key"] == "in/a.bin" and "eTag" not in record["s3"]["object"]
    assert sorted(r["eventName"] for r in seen) == ["ObjectCreated:Put", "ObjectRemoved:Delete"]


@pytest.mark.parametrize("op", ["put", "delete"])
def test_killed_after_the_event_append_no_duplicate(
    settings: Settings, app_path: Path, op: str
) -> None:
    name = "ObjectCreated:Put" if op == "put" else "ObjectRemoved:Delete"
    with Client(settings) as client:
        client.put_object("uploads", "in/a.bin", b"before")
    crash_child(settings, op, "committed")
    reconciled, seen = serve(settings, app_path)
    assert reconciled == 0
    with Client(settings) as client:
        assert len(s3_events(client, name)) == (2 if op == "put" else 1)
        assert client.state.intents() == []
    assert len([r for r in seen if r["eventName"] == name]) == (2 if op == "put" else 1)


@pytest.mark.parametrize("op", ["put", "delete"])
def test_killed_before_the_store_write_neither_exists(
    settings: Settings, app_path: Path, op: str
) -> None:
    with Client(settings) as client:
        before = client.put_object("uploads", "in/a.bin", b"before")
    crash_child(settings, op, "intent")
    reconciled, seen = serve(settings, app_path)
    assert reconciled == 0
    with Client(settings) as client:
        assert client.head_object("uploads", "in/a.bin") == before  # as it was
        assert len(s3_events(client, "ObjectCreated:Put")) == 1  # the first put's only
        assert s3_events(client, "ObjectRemoved:Delete") == []
        assert client.state.intents() == []
    assert [r["eventName"] for r in seen] == ["ObjectCreated:Put"]


def test_a_new_object_put_killed_before_the_store_write_leaves_nothing(
    settings: Settings,
) -> None:
    crash_child(settings, "put", "intent")
    with Client(settings) as client:
        assert client.reconcile_objects() == 0
        assert client.state.intents() == [] and client.state.events() == []
        with pytest.raises(NoSuchKeyError):
            client.head_object("uploads", "in/a.bin")


def test_replacing_with_the_same_bytes_still_counts_as_a_write(tmp_path: Path) -> None:
    """The etag alone cannot tell a replacement by equal bytes; the modified time can."""
    settings = Settings.load(tmp_path / "home")
    with Client(settings) as client:
        client.put_object("uploads", "in/a.bin", b"written by the crashed child")
    env = os.environ | {"REELAY_STORE": settings.store_url}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(settings.home), "put", "stored", "uploads", "in/a.bin"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == CRASHED, done.stderr
    with Client(settings) as client:
        assert client.reconcile_objects() == 1
        assert len(s3_events(client, "ObjectCreated:Put")) == 2


def test_live_writers_intents_are_left_to_them(tmp_path: Path) -> None:
    """An intent of this process, or of a live process of this host, is a write in
    progress; past the lease, any intent is settled."""
    settings = Settings.load(tmp_path / "home")
    with Client(settings) as client:
        client.put_object("uploads", "k", b"1")
        mine = client._begin("put", "uploads", "k")
        client.store.put("uploads", "k", b"2")  # the write in progress
        assert client.reconcile_objects() == 0
        assert [i.id for i in client.state.intents()] == [mine.id]
        client.state.commit_intent(mine.id, [])
        with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
            try:
                client.state.begin_intent(
                    "uploads",
                    "k",
                    "put",
                    before_etag=None,
                    before_modified=None,
                    owner=mine.owner.replace(f" {os.getpid()} ", f" {other.pid} "),
                )
                assert client.reconcile_objects() == 0  # alive
                assert client.reconcile_objects(lease_s=0) == 1  # its lease ran out
                assert client.state.intents() == []
            finally:
                other.kill()
        assert len(s3_events(client, "ObjectCreated:Put")) == 2


def test_a_failed_store_write_settles_its_intent_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.load(tmp_path / "home")
    with Client(settings) as client:

        def broken(*args: object) -> None:
            raise OSError("disk on fire")

        monkeypatch.setattr(client.store, "put", broken)
        with pytest.raises(OSError, match="disk on fire"):
            client.put_object("uploads", "k", b"1")
        assert client.state.intents() == [] and client.state.events() == []


def test_a_writer_killed_while_the_runtime_serves_is_settled_by_the_sweep(
    settings: Settings, app_path: Path
) -> None:
    """A writer that dies while `reelay up` runs (a worker killed at its timeout, say)
    is settled with the dispatcher's periodic sweep, not only at the next start."""
    with Runtime(load_app(app_path), settings, max_workers=1) as rt:
        assert rt.dispatcher is not None and rt.reconciled == 0
        crash_child(settings, "put", "stored")
        rt.dispatcher._next_sweep = 0.0  # the sweep is due now (it runs once a minute)
        rt.dispatcher.step()
        assert rt.reconciled == 1
        rt.start()
        assert rt.wait_idle(60)
        assert len(s3_events(rt.client, "ObjectCreated:Put")) == 1
    out = settings.home / "out" / "seen.jsonl"
    assert [json.loads(x)["eventName"] for x in out.read_text().splitlines()] == [
        "ObjectCreated:Put"
    ]


def test_an_unreachable_store_does_not_stop_the_runtime(
    tmp_path: Path, app_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reconciliation that cannot reach the store says so and waits for the next sweep."""
    settings = Settings.load(tmp_path / "home")
    with Client(settings) as client:
        client.state.begin_intent(
            "uploads", "k", "put", before_etag=None, before_modified=None, owner="gone 1 x"
        )
    out = io.StringIO()

    def unreachable(self: Client, *, lease_s: float = 0.0) -> int:
        raise StorageError("store unreachable: connection refused")

    monkeypatch.setattr(Client, "reconcile_objects", unreachable)
    with Runtime(load_app(app_path), settings, max_workers=1, out=out) as rt:
        assert rt.reconciled == 0
    assert "object writes not reconciled yet: store unreachable" in out.getvalue()
