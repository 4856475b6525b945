"""`Client`: writes emit events; every broken PutEvents entry is refused whole, naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import InvalidEventError, InvalidKeyError, PreconditionFailedError


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(Settings.load(tmp_path / "home"))


def test_put_and_delete_emit_s3_events(client: Client) -> None:
    client.put_object("photos", "a/b.jpg", b"123")
    assert client.delete_object("photos", "a/b.jpg") is True
    assert client.delete_object("photos", "a/b.jpg") is False  # nothing to delete: no event
    created, removed = sorted(client.state.events(), key=lambda e: e.seq)
    assert created.kind == removed.kind == "s3"
    assert json.loads(created.body)["Records"][0]["eventName"] == "ObjectCreated:Put"
    assert json.loads(removed.body)["Records"][0]["eventName"] == "ObjectRemoved:Delete"


def test_a_copy_emits_object_created_copy_as_s3_does(client: Client) -> None:
    put = client.put_object("photos", "a.jpg", b"123")
    copied = client.copy_object("photos", "a.jpg", "archive", "2024/a.jpg", if_match=put.etag)
    assert (copied.bucket, copied.key, copied.etag) == ("archive", "2024/a.jpg", put.etag)
    last = max(client.state.events(), key=lambda e: e.seq)
    assert (last.kind, last.source, last.detail_type) == ("s3", "aws.s3", "ObjectCreated:Copy")
    (record,) = json.loads(last.body)["Records"]
    assert record["eventName"] == "ObjectCreated:Copy"
    assert record["s3"]["bucket"]["name"] == "archive"
    assert record["s3"]["object"]["key"] == "2024/a.jpg"
    assert (record["s3"]["object"]["eTag"], record["s3"]["object"]["size"]) == (put.etag, 3)
    # A copy refused (the source is not the version asked for) emits nothing.
    client.put_object("photos", "a.jpg", b"456")
    count = len(client.state.events())
    with pytest.raises(PreconditionFailedError):
        client.copy_object("photos", "a.jpg", "archive", "b.jpg", if_match=put.etag)
    assert len(client.state.events()) == count and client.state.intents() == []


def test_refused_key_emits_nothing(client: Client) -> None:
    with pytest.raises(InvalidKeyError):
        client.put_object("photos", "../escape", b"1")
    assert client.state.events() == []


def test_put_events_builds_eventbridge_envelopes(client: Client) -> None:
    ids = client.put_events(
        [
            {"Source": "a", "DetailType": "t", "Detail": '{"x": 1}', "Resources": ["r"]},
            {
                "Source": "b",
                "DetailType": "u",
                "Detail": {"y": [2]},
                "Time": "2026-01-31T12:00:00Z",
            },
        ]
    )
    bodies = {e.id: json.loads(e.body) for e in client.state.events()}
    first = bodies[ids[0]]
    assert first["source"] == "a" and first["detail-type"] == "t" and first["detail"] == {"x": 1}
    assert first["resources"] == ["r"] and first["account"] == "000000000000"
    assert first["id"] == ids[0] and first["time"].endswith("Z")
    assert bodies[ids[1]]["time"] == "2026-01-31T12:00:00Z"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"Source": "a"}, "entries must be a list"),
        ("text", "entries must be a list"),
        ([1], "entry 0: must be an object"),
        ([{"DetailType": "t"}], "entry 0: Source must be a non-empty string"),
        ([{"Source": "a", "DetailType": ""}], "entry 0: DetailType must be a non-empty string"),
        (
            [{"Source": "a", "DetailType": "t", "Detail": "{oops"}],
            "entry 0: Detail is not valid JSON",
        ),
        (
            [{"Source": "a", "DetailType": "t", "Detail": "[1]"}],
            "Detail must be a JSON object, not list",
        ),
        (
            [{"Source": "a", "DetailType": "t", "Detail": 5}],
            "Detail must be a JSON object, not int",
        ),
        (
            [{"Source": "a", "DetailType": "t", "Resources": "r"}],
            "Resources must be a list of strings",
        ),
        ([{"Source": "a", "DetailType": "t", "Colour": 1}], "unknown field 'Colour'; valid fields"),
        ([{"Source": "a", "DetailType": "t", "Time": "yesterday"}], "Time must be an ISO 8601"),
        ([{"Source": "a", "DetailType": "t", "Time": 12}], "Time must be an ISO 8601"),
        (
            [{"Source": "a", "DetailType": "t"}, {"Source": "a"}],
            "entry 1: DetailType must be a non-empty string",
        ),
        (
            [{"Source": "a", "DetailType": "t", "Detail": {"x": float("nan")}}],
            "entry 0: Detail is not JSON-serializable",
        ),
        (
            [{"Source": "a", "DetailType": "t", "Detail": '{"x": Infinity}'}],
            "entry 0: Detail is not JSON-serializable",
        ),
    ],
)
def test_put_events_refuses_broken_entries_whole(
    client: Client, entries: Any, message: str
) -> None:
    with pytest.raises(InvalidEventError, match=message.replace("[", r"\[")):
        client.put_events(entries)
    assert client.state.events() == []  # a batch is accepted entirely or not at all


def test_invoke_payload_must_be_json(client: Client) -> None:
    with pytest.raises(InvalidEventError, match="not JSON-serializable"):
        client.invoke("f", {"x": object()})
    with pytest.raises(InvalidEventError, match="not JSON-serializable"):
        client.invoke("f", {"x": float("nan")})  # not JSON; SQLite's JSON functions refuse it
    event = client.invoke("f", {"x": 1})
    assert event.kind == "invoke-async" and event.target == "f"
    assert client.state.invocations() == []  # a dispatcher routes it with f's policy
    event, request_id = client.invoke_sync("f", {"x": 2})
    assert event.kind == "invoke" and json.loads(event.body) == {"x": 2}
    inv = client.state.invocation(request_id)  # created with its event: no routing
    assert (inv.function, inv.status, inv.max_attempts) == ("f", "queued", 1)


def test_a_workers_client_never_makes_a_state_it_cannot_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose machine lacks the dispatcher's home fails saying so, instead of
    writing to a fresh state of its own that nothing reads (a silent split)."""
    from reelay.client import default_client
    from reelay.errors import StateError

    missing = tmp_path / "on-the-driver-only"
    monkeypatch.setenv("REELAY_HOME", str(missing))
    monkeypatch.delenv("REELAY_STATE", raising=False)
    monkeypatch.setattr("reelay.client._defaults", {})
    client = default_client()
    with pytest.raises(StateError, match=r"there is none.*cannot reach its dispatcher's state"):
        client.put_events([{"Source": "a", "DetailType": "b", "Detail": "{}"}])
    assert not missing.exists()  # nothing was made on the worker's side
