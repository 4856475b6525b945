"""`once`: an effect runs once per key, a live holder blocks, a dead holder is taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.idempotency import IdempotencyInProgressError, idempotent, once


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(Settings.load(tmp_path / "home"))


def test_effect_runs_once_and_result_is_replayed(client: Client) -> None:
    calls: list[int] = []

    def effect() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    assert once("k", effect, client=client) == {"n": 1}
    assert once("k", effect, client=client) == {"n": 1}
    assert once("other", effect, client=client) == {"n": 2}
    assert len(calls) == 2


def test_failed_effect_releases_the_key(client: Client) -> None:
    def boom() -> None:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        once("k", boom, client=client)
    assert once("k", lambda: "second try", client=client) == "second try"


def test_live_holder_blocks_and_dead_holder_is_taken_over(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    state = client.state
    assert state.idempotency_begin("k", "other-request", time.time() + 60) == ("run", None)
    monkeypatch.setenv("REELAY_REQUEST_ID", "me")
    with pytest.raises(IdempotencyInProgressError, match="'k' is held"):
        once("k", lambda: 1, client=client)
    # The same request redelivered after a crash takes its own key back.
    monkeypatch.setenv("REELAY_REQUEST_ID", "other-request")
    assert once("k", lambda: 2, client=client) == 2
    # A holder whose lease expired is taken over by anyone.
    assert state.idempotency_begin("j", "dead", time.time() - 1) == ("run", None)
    monkeypatch.setenv("REELAY_REQUEST_ID", "me")
    assert once("j", lambda: 3, client=client) == 3


def test_bad_keys_and_unserializable_results(client: Client) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        once("", lambda: 1, client=client)
    with pytest.raises(TypeError):
        once("k", lambda: object(), client=client)
    assert once("k", lambda: [1], client=client) == [1]  # the failed attempt released it


def test_idempotent_decorator_keys_on_the_event(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REELAY_HOME", str(client.settings.home))
    seen: list[str] = []

    @idempotent(key=lambda event: f"order:{event['id']}")
    def handler(event: dict[str, str], context: object) -> str:
        seen.append(event["id"])
        return event["id"]

    assert [handler({"id": i}, None) for i in ("a", "a", "b")] == ["a", "a", "b"]
    assert seen == ["a", "b"] and handler.__name__ == "handler"
