"""Planning: chunks on segment boundaries, renditions never upscaled."""

from __future__ import annotations

from reelay.media.config import title_id_for
from reelay.media.ladder import load_ladder
from reelay.media.plan import make_plan, resolve_renditions
from reelay.media.probe import AudioInfo, SourceInfo, VideoInfo


def source(
    width: int = 1920,
    height: int = 1080,
    frames: int = 1000,
    fps: tuple[int, int] = (25, 1),
    channels: int = 2,
) -> SourceInfo:
    video = VideoInfo(
        "h264",
        width,
        height,
        fps[0],
        fps[1],
        frames,
        frames * fps[1] / fps[0],
        0.0,
        "yuv420p",
        8,
        0,
        False,
        False,
    )
    audio = (AudioInfo(0, "aac", channels, 48000, "eng", video.duration_s, 0.0),)
    return SourceInfo("mp4", 1, video.duration_s, video, audio)


def test_chunks_are_whole_segments_and_cover_every_frame() -> None:
    ladder = load_ladder("demo")  # 2 s segments: 50 frames at 25 fps
    plan = make_plan("t", source(frames=1013), ladder, chunk_seconds=10.6)  # rounds to 10 s
    assert plan.segment_frames == 50
    assert [(c.start_frame, c.frames) for c in plan.chunks] == [
        (0, 250),
        (250, 250),
        (500, 250),
        (750, 250),
        (1000, 13),
    ]
    assert all(c.start_frame % plan.segment_frames == 0 for c in plan.chunks)


def test_ntsc_rates_count_in_frames() -> None:
    plan = make_plan(
        "t", source(frames=3000, fps=(30000, 1001)), load_ladder("default"), chunk_seconds=30
    )
    assert plan.segment_frames == 180  # 6 s at 29.97
    assert [c.frames for c in plan.chunks] == [900, 900, 900, 300]


def test_scene_cuts_move_boundaries_to_the_nearest_shot_change() -> None:
    plan = make_plan(
        "t", source(frames=1000), load_ladder("demo"), chunk_seconds=10, scene_cuts=[240, 530, 990]
    )
    assert [c.start_frame for c in plan.chunks] == [0, 240, 530, 780]
    assert sum(c.frames for c in plan.chunks) == 1000


def test_renditions_never_upscale() -> None:
    default = load_ladder("default")
    names = [r.name for r in resolve_renditions(default, source(1280, 720))]
    assert names == ["234p", "360p", "432p", "432p-hi", "540p", "720p", "720p-hi"]
    sizes = {r.name: (r.width, r.height) for r in resolve_renditions(default, source(1280, 720))}
    assert sizes["234p"] == (416, 234) and sizes["720p"] == (1280, 720)
    tiny = resolve_renditions(default, source(200, 150))
    assert [(r.width, r.height) for r in tiny] == [(200, 150)]  # the lowest rung, at its size
    portrait = resolve_renditions(load_ladder("demo"), source(720, 1280))
    assert [(r.width, r.height) for r in portrait] == [(240, 426), (360, 640)]


def test_groups_share_a_decode_and_audio_never_upmixes() -> None:
    plan = make_plan("t", source(), load_ladder("default"), group_size=4)
    assert [len(g) for g in plan.groups] == [4, 4, 1]
    assert make_plan("t", source(), load_ladder("default")).groups == (
        tuple(r.name for r in load_ladder("default").video),
    )
    full = load_ladder("full")
    stereo = make_plan("t", source(channels=2), full)
    assert all(a.rung.channels == 2 for a in stereo.audio)
    surround = make_plan("t", source(channels=6), full)
    assert len(surround.audio) == len(full.audio)


def test_title_ids_follow_name_and_content() -> None:
    assert (
        title_id_for("ingest/My Movie (final).mov", "0123456789abcdef")
        == "my-movie-final-0123456789"
    )
    assert title_id_for("ingest/a.mp4", "aaaaaaaaaaaa") != title_id_for(
        "ingest/a.mp4", "bbbbbbbbbbbb"
    )


def test_records_come_back_from_their_json() -> None:
    import json

    from reelay.media._records import load
    from reelay.media.config import MediaConfig
    from reelay.media.plan import Plan

    plan = make_plan("t", source(frames=1013), load_ladder("full"), chunk_seconds=10, group_size=5)
    config = MediaConfig(ladder=load_ladder("default"))
    for record in (plan, source(), config):
        assert load(type(record), json.loads(json.dumps(record.as_dict()))) == record
    assert load(Plan, json.loads(json.dumps(plan.as_dict()))).groups == plan.groups
