"""`once`: an effect runs once per key, a live holder blocks, a dead holder is taken over."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.idempotency import IdempotencyInProgressError, idempotent, once


@pytest.fixture
def client(tmp_path: Path) -> Client:
    """The client of a home whose state exists (as a dispatcher's start makes it): a
    handler's own client never makes one."""
    client = Client(Settings.load(tmp_path / "home"))
    client.state.last_seq()
    return client


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
    # An attempt still running (say, an orphan finishing after a crash) holds the key.
    assert state.idempotency_begin("k", "req-1:1:run-a", time.time() + 60) == ("run", None)
    # Its redelivery after the restart is another attempt: it must wait, not run twice.
    monkeypatch.setenv("REELAY_ATTEMPT_ID", "req-1:1:run-b")
    with pytest.raises(IdempotencyInProgressError, match="'k' is held"):
        once("k", lambda: 1, client=client)
    # Once the holder completes, the redelivery gets its result without running.
    state.idempotency_complete("k", "req-1:1:run-a", "41")
    assert once("k", lambda: 1, client=client) == 41
    # A holder whose lease expired is taken over, and can no longer complete the key.
    assert state.idempotency_begin("j", "dead", time.time() - 1) == ("run", None)
    assert once("j", lambda: 3, client=client) == 3
    state.idempotency_complete("j", "dead", "99")
    assert once("j", lambda: 4, client=client) == 3


def test_bad_keys_and_results_that_are_not_json(client: Client) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        once("", lambda: 1, client=client)
    marker = object()
    calls: list[object] = []

    def effect() -> object:
        calls.append(marker)
        return marker

    assert once("k", effect, client=client) is marker
    # The effect happened: it is recorded (as text) and never repeated.
    assert once("k", effect, client=client) == str(marker)
    assert len(calls) == 1


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
