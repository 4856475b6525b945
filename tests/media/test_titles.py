"""Title states read back from the pipeline's events (on a real home's event log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media.titles import Titles


def emit(client: Client, detail_type: str, title: str, **detail: Any) -> None:
    ref = {"id": title, "bucket": "media", "key": f"ingest/{title}.mp4", "etag": "0" * 32}
    client.put_events(
        [{"Source": "reelay.media", "DetailType": detail_type, "Detail": {"title": ref, **detail}}]
    )


def state(client: Client, title: str, status: str, stage: str, **extra: Any) -> None:
    emit(client, "Media Title State Change", title, status=status, stage=stage, **extra)


def test_each_title_has_the_state_of_its_newest_events(tmp_path: Path) -> None:
    with Client(Settings.load(tmp_path / "home")) as client:
        titles = Titles(client.state)  # folds the log as it grows, read after read
        state(client, "a", "PROGRESSING", "inspect", percent=0)
        state(client, "a", "STATUS_UPDATE", "encode", percent=40, chunks_done=2, chunks_total=5)
        state(client, "b", "PROGRESSING", "inspect", percent=0)
        emit(client, "Media Title Held", "b", reasons=["VMAF too low"])
        state(client, "b", "ERROR", "publish", error={"code": "HELD", "message": "VMAF"})
        emit(client, "Media Title Rejected", "c", error={"code": "NOT_MEDIA", "message": "x"})
        state(client, "c", "ERROR", "inspect", error={"code": "NOT_MEDIA", "message": "x"})
        # d failed, was redriven (processing again), then published.
        state(client, "d", "PROGRESSING", "inspect", percent=0)
        emit(client, "Media Title Failed", "d", error={"code": "E", "message": "encode failed"})
        state(client, "d", "ERROR", "encode", error={"code": "E", "message": "encode failed"})
        state(client, "d", "STATUS_UPDATE", "encode", percent=60)
        assert titles.get("d")["status"] == "processing"
        emit(client, "Media Title Published", "d", outputs={})
        state(client, "d", "COMPLETE", "publish", percent=100)
        by_id = {t["id"]: t for t in titles.all()}
        assert [t["id"] for t in titles.all()] == ["d", "c", "b", "a"]
        assert [t["id"] for t in Titles(client.state).all()] == ["d", "c", "b", "a"]  # at once
        assert {k: t["status"] for k, t in by_id.items()} == {
            "a": "processing",
            "b": "held",
            "c": "rejected",
            "d": "published",
        }
        assert (by_id["a"]["percent"], by_id["a"]["chunks_done"]) == (40, 2)
        assert by_id["b"]["error"]["code"] == "HELD" and by_id["d"]["error"] is None
        assert [t["id"] for t in titles.all(status="held")] == ["b"]
        with pytest.raises(LookupError, match="no title 'zzz'"):
            titles.get("zzz")
