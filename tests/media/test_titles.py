"""Title states read back from the pipeline's events (on a real home's event log)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media.config import title_id_for
from reelay.media.progress import TitleProgress
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
        state(client, "a", "PROGRESSING", "inspect")
        state(client, "a", "STATUS_UPDATE", "plan", part="plan", work=10, work_total=100,
              chunks_total=5)  # fmt: skip
        state(client, "a", "PROGRESSING", "encode")
        for chunk in (0, 1):
            state(client, "a", "STATUS_UPDATE", "encode", part=f"encode:{chunk}:x", work=15,
                  chunks=1)  # fmt: skip
        state(client, "b", "PROGRESSING", "inspect")
        emit(client, "Media Title Held", "b", reasons=["VMAF too low"])
        state(client, "b", "ERROR", "publish", error={"code": "HELD", "message": "VMAF"})
        emit(client, "Media Title Rejected", "c", error={"code": "NOT_MEDIA", "message": "x"})
        state(client, "c", "ERROR", "inspect", error={"code": "NOT_MEDIA", "message": "x"})
        # d failed; a part still running then says it is done: d stays failed until a
        # part of it is redriven, then it goes on and is published.
        state(client, "d", "PROGRESSING", "inspect")
        emit(client, "Media Title Failed", "d", error={"code": "E", "message": "encode failed"})
        state(client, "d", "ERROR", "encode", error={"code": "E", "message": "encode failed"})
        state(client, "d", "STATUS_UPDATE", "encode", part="audio:a", work=1)
        assert titles.get("d")["status"] == "failed"
        state(client, "d", "PROGRESSING", "encode", redrive=True)
        assert titles.get("d")["status"] == "processing"
        emit(client, "Media Title Published", "d", outputs={})
        state(client, "d", "COMPLETE", "publish")
        by_id = {t["id"]: t for t in titles.all()}
        assert [t["id"] for t in titles.all()] == ["d", "c", "b", "a"]
        assert [t["id"] for t in Titles(client.state).all()] == ["d", "c", "b", "a"]  # at once
        assert {k: t["status"] for k, t in by_id.items()} == {
            "a": "processing",
            "b": "held",
            "c": "rejected",
            "d": "published",
        }
        a = by_id["a"]
        assert (a["stage"], a["percent"], a["chunks_done"], a["chunks_total"]) == (
            "encode",
            40,
            2,
            5,
        )
        assert by_id["b"]["error"]["code"] == "HELD" and by_id["d"]["error"] is None
        assert (by_id["d"]["stage"], by_id["d"]["percent"]) == ("publish", 100)
        assert [t["id"] for t in titles.all(status="held")] == ["b"]
        with pytest.raises(LookupError, match="no title 'zzz'"):
            titles.get("zzz")


def test_a_title_exists_from_the_moment_its_upload_is_accepted(tmp_path: Path) -> None:
    with Client(Settings.load(tmp_path / "home")) as client:
        titles = Titles(client.state)
        assert titles.all() == []
        info = client.put_object("media", "ingest/My Film.mp4", b"not yet inspected")
        title_id = title_id_for(info.key, info.etag)
        # No stage has run (no runtime serves this home): the title is there all the same.
        title = titles.get(title_id)
        assert title["status"] == "submitted" and title["key"] == "ingest/My Film.mp4"
        assert (title["stage"], title["percent"], title["error"]) == (None, 0, None)
        assert [t["id"] for t in titles.all(status="submitted")] == [title_id]
        assert [t["id"] for t in Titles(client.state).all()] == [title_id]
        # Objects that are not uploads to the ingest prefix are no titles.
        client.put_object("media", "work/x/job.json", b"{}")
        client.put_object("other", "ingest/x.mp4", b"x")
        assert [t["id"] for t in titles.all()] == [title_id]
        # Its first stage makes it processing; the same bytes uploaded again once it is
        # published leave it published (the pipeline does not run it twice).
        state(client, title_id, "PROGRESSING", "inspect")
        assert titles.get(title_id)["status"] == "processing"
        emit(client, "Media Title Published", title_id, outputs={})
        state(client, title_id, "COMPLETE", "publish")
        client.put_object("media", "ingest/My Film.mp4", b"not yet inspected")
        assert titles.get(title_id)["status"] == "published"
        assert titles.timeline(title_id) == []  # no invocations: nothing ran


def test_stage_and_percent_never_go_backwards() -> None:
    fold = TitleProgress()
    events: list[dict[str, Any]] = [
        {"status": "PROGRESSING", "stage": "inspect"},
        {"status": "PROGRESSING", "stage": "plan"},
        {"status": "STATUS_UPDATE", "stage": "plan", "part": "plan", "work": 2,
         "work_total": 100, "chunks_total": 2},
        {"status": "PROGRESSING", "stage": "encode"},
        {"status": "STATUS_UPDATE", "stage": "encode", "part": "encode:0:a", "work": 30, "chunks": 1},
        {"status": "PROGRESSING", "stage": "encode"},  # the next chunk starts
        {"status": "STATUS_UPDATE", "stage": "encode", "part": "encode:0:a", "work": 30, "chunks": 1},
        {"status": "PROGRESSING", "stage": "assemble"},
        {"status": "STATUS_UPDATE", "stage": "encode", "part": "encode:1:a", "work": 30, "chunks": 1},
        {"status": "PROGRESSING", "stage": "encode"},  # a late retry of an encode
        {"status": "STATUS_UPDATE", "stage": "assemble", "part": "assemble:a", "work": 1},
        {"status": "PROGRESSING", "stage": "package"},
        {"status": "STATUS_UPDATE", "stage": "package", "part": "package", "work": 2},
        {"status": "PROGRESSING", "stage": "qc"},
        {"status": "STATUS_UPDATE", "stage": "qc", "part": "qc:a", "work": 33},
        {"status": "PROGRESSING", "stage": "publish"},
        {"status": "COMPLETE", "stage": "publish"},
    ]  # fmt: skip
    seen = []
    for detail in events:
        fold.fold(detail)
        seen.append((fold.stage, fold.percent))
    stages = [s for s, _ in seen]
    percents = [p for _, p in seen]
    assert percents == sorted(percents) and percents[-1] == 100
    assert max(percents[:-1]) == 98  # 100 only once published
    order = ["inspect", "plan", "encode", "assemble", "package", "qc", "publish"]
    assert [order.index(s) for s in stages] == sorted(order.index(s) for s in stages)
    assert list(dict.fromkeys(stages)) == order
    assert fold.chunks_done == 2  # the duplicate of chunk 0 counted once
    # A published title stays published whatever comes late (a redelivered part).
    assert not fold.fold({"status": "PROGRESSING", "stage": "qc", "redrive": True}, resumable=False)
    assert (fold.stage, fold.percent) == ("publish", 100)
    # Weights from anyone's events are checked: a bad one is ignored, not a crash.
    other = TitleProgress()
    other.fold({"status": "STATUS_UPDATE", "stage": "bogus", "part": 3, "work": "x",
                "work_total": -1})  # fmt: skip
    assert (other.stage, other.percent, other.chunks_done) == (None, 0, 0)


def test_a_failed_title_goes_on_only_after_a_later_redrive() -> None:
    fold = TitleProgress()
    assert fold.fold({"status": "ERROR", "stage": "encode"})
    # Parts still running or retrying in the round it failed in leave it failed...
    assert not fold.fold({"status": "PROGRESSING", "stage": "encode"})
    assert fold.settled == "ERROR"
    # ...a part redriven goes on...
    assert fold.fold({"status": "PROGRESSING", "stage": "encode", "redrive": 1})
    assert fold.settled is None
    # ...and if the redriven round fails too, its other parts' retries do not revive it.
    assert fold.fold({"status": "ERROR", "stage": "encode", "redrive": 1})
    assert not fold.fold({"status": "PROGRESSING", "stage": "encode", "redrive": 1})
    assert fold.settled == "ERROR"
    assert fold.fold({"status": "PROGRESSING", "stage": "encode", "redrive": 2})
    assert fold.settled is None
    # Events of older homes said True for the first round.
    old = TitleProgress()
    old.fold({"status": "ERROR", "stage": "qc"})
    assert old.fold({"status": "PROGRESSING", "stage": "qc", "redrive": True})
