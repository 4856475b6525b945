"""The whole pipeline on real clips: published, decodable, correct; or refused, held,
failed, with nothing stuck and nothing lost."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media._ffmpeg import ffmpeg_path, run_ffmpeg
from reelay.media.encode import stream_stats
from reelay.media.titles import Titles
from reelay.state import ACTIVE, CLAIMED, FAILED, QUEUED, RUNNING

from .conftest import ClipFactory

pytestmark = pytest.mark.media


# ffmpeg's HLS demuxer, opening a master playlist of several fMP4 variants, feeds its
# probing parser (the "[NULL @ ...]" context) bytes of the other variant and says so; it
# says the same of a master playlist written by ffmpeg itself. The decoders report
# nothing: each media playlist is also decoded alone, where any message fails the test.
PROBE_NOISE = ("Invalid NAL unit size", "missing picture in access unit")


def decode(path: str, *args: str) -> None:
    """Decode a playlist or manifest completely with ffmpeg; fail the test if it cannot."""
    proc = subprocess.run(
        [
            ffmpeg_path(),
            "-v",
            "error",
            "-allowed_extensions",
            "ALL",
            "-i",
            path,
            *args,
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
    )
    errors = [
        line
        for line in proc.stderr.splitlines()
        if not (line.startswith("[NULL @") and any(n in line for n in PROBE_NOISE))
    ]
    assert proc.returncode == 0 and not errors, proc.stderr[-2000:]


def run(src: Path, home: Path, **options: Any) -> dict[str, Any]:
    from reelay.media.transcode import transcode

    options.setdefault("ladder", "demo")
    options.setdefault("chunk_seconds", 2)
    options.setdefault("qc", 3)
    return transcode(src, home=home, **options)


def events(home: Path, detail_type: str) -> list[dict[str, Any]]:
    with Client(Settings.load(home)) as client:
        return [
            json.loads(e.body)["detail"]
            for e in client.state.events(limit=10000)
            if e.detail_type == detail_type
        ]


def assert_settled(home: Path) -> None:
    """Nothing queued, running or in the DLQ: no stuck work."""
    with Client(Settings.load(home)) as client:
        counts = client.state.counts()
    assert counts[QUEUED] == counts[CLAIMED] == counts[RUNNING] == counts[FAILED] == 0, counts


def test_a_clip_is_published_as_correct_decodable_hls_and_dash(
    clip: ClipFactory, tmp_path: Path
) -> None:
    src = clip("title.mp4", seconds=5, size="640x360", subtitles=True)
    report = run(src, tmp_path / "home")
    assert report["status"] == "published", report.get("error")
    assert report["source"]["frames"] == 125
    video = [r for r in report["renditions"] if r["kind"] == "video"]
    assert [(r["name"], r["width"], r["height"], r["frames"]) for r in video] == [
        ("240p", 426, 240, 125),
        ("360p", 640, 360, 125),
    ]
    for r in video:
        assert r["duration_s"] == pytest.approx(5.0, abs=0.04)
        assert r["fidelity_vmaf"] > 80 and r["psnr"] > 28
        assert r["display_vmaf"] is not None and r["display_vmaf"] <= r["fidelity_vmaf"] + 5
        assert [c["chunk"] for c in r["chunks"]] == [0, 1, 2]
        assert r["seam_faults"] == []
    assert report["chunks"] == 3  # 2 s chunks of a 5 s clip
    assert set(report["timings"]) >= {
        "inspect",
        "plan",
        "encode",
        "assemble",
        "package",
        "qc",
        "publish",
        "total",
    }
    master = Path(report["outputs"]["hls"])
    text = master.read_text()
    for attribute in (
        "BANDWIDTH=",
        "AVERAGE-BANDWIDTH=",
        "RESOLUTION=640x360",
        "FRAME-RATE=25.000",
        'CODECS="avc1.',
        'mp4a.40.2"',
        'TYPE=AUDIO,GROUP-ID="aac96"',
        'LANGUAGE="eng"',
        "TYPE=SUBTITLES",
    ):
        assert attribute in text, attribute
    decode(str(master))
    for playlist in sorted(master.parent.glob("media_*.m3u8")):
        decode(str(playlist))
        assert "#EXT-X-ENDLIST" in playlist.read_text()
    decode(report["outputs"]["dash"], "-map", "0:v", "-map", "0:a")
    # segments align across renditions: every video playlist lists the same durations
    durations = {
        p.name: [ln for ln in p.read_text().splitlines() if ln.startswith("#EXTINF")]
        for p in master.parent.glob("media_*.m3u8")
    }
    video_lists = [durations[f"media_{i}.m3u8"] for i in range(2)]
    assert video_lists[0] == video_lists[1] == ["#EXTINF:2.000000,"] * 2 + ["#EXTINF:1.000000,"]
    assert "WEBVTT" in (master.parent / "subs_0.vtt").read_text()
    thumbs = (master.parent / "thumbnails.vtt").read_text()
    assert "thumbnails.jpg#xywh=0,0,160,90" in thumbs
    published = events(tmp_path / "home", "Media Title Published")
    assert len(published) == 1 and published[0]["title"]["id"] == report["title_id"]
    states = [e["status"] for e in events(tmp_path / "home", "Media Title State Change")]
    assert states[-1] == "PROGRESSING" and states[0] == "COMPLETE"  # newest first
    assert "STATUS_UPDATE" in states
    assert_settled(tmp_path / "home")


@pytest.mark.parametrize(
    ("name", "options", "check"),
    [
        ("rotated.mp4", {"rotation": 90}, {"240p": (240, 320)}),
        ("interlaced.mkv", {"interlaced": True}, {"240p": (320, 240)}),
        ("mezzanine.mov", {"video": "prores", "audio_channels": 6}, {"240p": (320, 240)}),
        ("broadcast.ts", {"video": "mpeg2"}, {"240p": (320, 240)}),
        ("hdr10bit.mov", {"video": "hevc", "ten_bit": True}, {"240p": (320, 240)}),
        ("odd.mp4", {"size": "321x241"}, {"240p": (320, 240)}),
        ("ntsc.mp4", {"fps": "30000/1001"}, {"240p": (320, 240)}),
        ("vfr.mkv", {"vfr": True}, {"240p": (320, 240)}),
        (
            "camera.mp4",
            {"extra": ("-preset:v", "medium", "-bf", "3", "-g", "60")},
            {"240p": (320, 240)},
        ),
        (
            "opengop.mp4",
            {
                "video": "hevc",
                "extra": ("-x265-params", "open-gop=1:keyint=60:bframes=4:log-level=error"),
            },
            {"240p": (320, 240)},
        ),
        ("tracks.mkv", {"audio_tracks": 2, "subtitles": True}, {"240p": (320, 240)}),
        ("silent.mp4", {"audio_tracks": 0}, {"240p": (320, 240)}),
        ("music.m4a", {"video": None}, {}),
    ],
)
def test_the_forms_publishers_send(
    clip: ClipFactory, tmp_path: Path, name: str, options: dict, check: dict
) -> None:
    src = clip(name, **options)
    report = run(src, tmp_path / "home")
    assert report["status"] == "published", report.get("error")
    video = {r["name"]: r for r in report["renditions"] if r["kind"] == "video"}
    assert {n: (r["width"], r["height"]) for n, r in video.items()} == check
    for r in video.values():
        assert r["frames"] == report["source"]["frames"]
    audio = [r for r in report["renditions"] if r["kind"] == "audio"]
    assert len(audio) == options.get("audio_tracks", 1)
    master = report["outputs"]["hls"]
    decode(master)
    if options.get("audio_tracks") == 2:
        text = Path(master).read_text()
        assert 'LANGUAGE="eng"' in text and 'LANGUAGE="fra"' in text
        assert 'NAME="eng (aac96-0)"' in text and 'NAME="fra (aac96-1)"' in text
    assert_settled(tmp_path / "home")


def test_every_codec_of_the_ladder(clip: ClipFactory, tmp_path: Path) -> None:
    ladder = tmp_path / "codecs.yaml"
    ladder.write_text(
        "name: codecs\nsegment_seconds: 1\nvideo:\n"
        "  - {name: avc, codec: h264, height: 120, crf: 28, maxrate_kbps: 300}\n"
        "  - {name: hevc, codec: hevc, height: 120, crf: 30, maxrate_kbps: 300, preset: ultrafast}\n"
        "  - {name: av1, codec: av1, height: 120, crf: 40, maxrate_kbps: 300, preset: 12}\n"
        "  - {name: vp9, codec: vp9, height: 120, crf: 40, maxrate_kbps: 300, preset: 8}\n"
        "audio:\n  - {name: aac, codec: aac, bitrate_kbps: 64}\n"
        "  - {name: opus, codec: opus, bitrate_kbps: 48}\n"
    )
    src = clip("small.mp4", seconds=2, size="160x120")
    report = run(src, tmp_path / "home", ladder=str(ladder), chunk_seconds=1, qc="off")
    assert report["status"] == "published", report.get("error")
    text = Path(report["outputs"]["hls"]).read_text()
    for codec in ("avc1.", "hvc1.", "av01.", "vp09.", "mp4a.40.2", "opus"):
        assert codec in text, codec
    for r in report["renditions"]:
        assert r["frames"] in (None, 50)
    decode(report["outputs"]["hls"])
    for playlist in Path(report["outputs"]["hls"]).parent.glob("media_*.m3u8"):
        decode(str(playlist))


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.mp4", b"", "EMPTY"),
        ("notes.mov", b"this is a text file\n" * 40, "NOT_MEDIA"),
        ("evil.m3u8", b"#EXTM3U\n#EXTINF:4,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n", "PLAYLIST"),
    ],
)
def test_a_broken_upload_is_quarantined_with_its_reason(
    tmp_path: Path, name: str, data: bytes, code: str
) -> None:
    src = tmp_path / name
    src.write_bytes(data)
    home = tmp_path / "home"
    report = run(src, home)
    assert report["status"] == "rejected"
    assert report["error"]["code"] == code and name in report["error"]["message"]
    with Client(Settings.load(home)) as client:
        assert [o.key for o in client.list_objects("media", "ingest/")] == []
        kept = [o for o in client.list_objects("media", "quarantine/")]
        assert [o.key.rsplit("/", 1)[-1] for o in kept] == [name]
        assert client.get_object("media", kept[0].key) == data  # nothing lost
    rejected = events(home, "Media Title Rejected")
    assert len(rejected) == 1 and rejected[0]["error"]["code"] == code
    assert_settled(home)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("faststart.mp4", {"extra": ("-movflags", "+faststart")}),
        ("moov-last.mp4", {}),  # was NOT_MEDIA, "[Errno 1094995529] ... '/tmp/.../source.mp4'"
        ("broadcast.ts", {"size": "640x360", "extra": ("-b:v", "2M")}),  # was encoded, held
    ],
)
def test_a_truncated_upload_is_rejected_naming_its_key(
    clip: ClipFactory, tmp_path: Path, name: str, options: dict
) -> None:
    whole = clip(name, **options)
    src = tmp_path / f"cut-{name}"
    src.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2 + 1])
    home = tmp_path / "home"
    report = run(src, home)
    assert (report["status"], report["error"]["code"]) == ("rejected", "TRUNCATED")
    # The one recorded reason (the report, the title the API and dashboard show, the
    # event) names the object, never the worker's copy of it nor an error number.
    with Client(Settings.load(home)) as client:
        title = Titles(client.state).get(report["title_id"])
    (rejected,) = events(home, "Media Title Rejected")
    for error in (report["error"], title["error"], rejected["error"]):
        assert error["message"].startswith(f"s3://media/ingest/cut-{name}: truncated: ")
        assert str(home) not in error["message"] and "Errno" not in error["message"]
    assert report["source_key"] == f"s3://media/ingest/cut-{name}"
    assert_settled(home)


def test_publish_rules_hold_a_title_with_reasons(clip: ClipFactory, tmp_path: Path) -> None:
    rules = tmp_path / "strict.yaml"
    rules.write_text("require:\n  min_display_vmaf_top: 99.9\n  min_psnr: 80\n")
    report = run(clip("plain.mp4"), tmp_path / "home", rules=str(rules))
    assert report["status"] == "held"
    assert "display VMAF" in report["error"]["message"] and "PSNR" in report["error"]["message"]
    held = events(tmp_path / "home", "Media Title Held")
    assert len(held) == 1 and held[0]["reasons"] == report["reasons"]
    with Client(Settings.load(tmp_path / "home")) as client:
        assert list(client.list_objects("media", "published/")) == []
    assert_settled(tmp_path / "home")


def test_a_stage_that_keeps_failing_fails_the_title_until_redriven(
    clip: ClipFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = clip("plain.mp4")
    # An ffmpeg that cannot run: every encode fails, is retried, lands in the DLQ.
    monkeypatch.setenv("REELAY_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    report = run(src, tmp_path / "home")
    assert report["status"] == "failed"
    assert "REELAY_FFMPEG" in report["error"]["message"]
    # The reason names the title's object and the stage, not the worker's paths.
    assert "failed on s3://media/ingest/plain.mp4: " in report["error"]["message"]
    assert str(tmp_path) not in report["error"]["message"]
    assert len(events(tmp_path / "home", "Media Title Failed")) == 1
    from reelay.media.titles import Titles
    from reelay.runtime import Runtime, load_app

    # Redriven while still broken, it fails again and says so again (not "processing").
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    with Runtime(load_app("media"), settings) as runtime:
        runtime.start()
        assert runtime.client.state.redrive() == 3
        assert runtime.wait_idle(timeout=120)
    assert len(events(tmp_path / "home", "Media Title Failed")) == 2
    with Client(settings) as client:
        assert Titles(client.state).get(report["title_id"])["status"] == "failed"
    # Fixed, the failed parts are redriven from the DLQ and the title is published.
    monkeypatch.delenv("REELAY_FFMPEG")
    with Runtime(load_app("media"), settings) as runtime:
        runtime.start()
        assert runtime.client.state.redrive() == 3  # 2 chunks and the audio (dlq redrive --all)
        assert runtime.wait_idle(timeout=120)
    published = events(tmp_path / "home", "Media Title Published")
    assert len(published) == 1 and published[0]["title"]["id"] == report["title_id"]
    with Client(Settings.load(tmp_path / "home")) as client:
        final = json.loads(client.get_object("media", published[0]["report"]))
    assert final["status"] == "published" and "error" not in final
    assert_settled(tmp_path / "home")


def test_stream_stats_of_an_assembled_rendition(clip: ClipFactory) -> None:
    stats = stream_stats(clip("plain.mp4"))
    assert (stats.frames, round(stats.duration_s, 3), stats.start_s) == (75, 3.0, 0.0)
    assert stats.bitrate_kbps > 0


def test_the_same_upload_again_is_the_same_title(clip: ClipFactory, tmp_path: Path) -> None:
    src = clip("plain.mp4")
    first = run(src, tmp_path / "home")
    again = run(src, tmp_path / "home")
    assert first["status"] == again["status"] == "published"
    assert first["title_id"] == again["title_id"]
    assert len(events(tmp_path / "home", "Media Title Published")) == 1
    assert_settled(tmp_path / "home")


@pytest.mark.parametrize(
    ("detail_type", "detail", "message"),
    [
        (
            "Media Chunk Encode Requested",
            {"chunk": 0},
            "the event's detail.title must be an object",
        ),
        ("Media Title Inspected", {"title": "x"}, "the event's detail.title must be an object"),
        (
            "Media QC Requested",
            {"title": {"id": "t-1", "bucket": "media", "key": "ingest/t.mp4", "etag": "e"}},
            "work/t-1/job.json",
        ),
    ],
)
def test_a_malformed_pipeline_event_fails_clearly_and_harms_nothing(
    tmp_path: Path, detail_type: str, detail: dict, message: str
) -> None:
    from reelay.runtime import Runtime, load_app

    settings = Settings.load(tmp_path / "home", retry_delays=(0.05, 0.1))
    with Runtime(load_app("media"), settings) as runtime:
        runtime.start()
        runtime.client.put_events(
            [{"Source": "reelay.media", "DetailType": detail_type, "Detail": detail}]
        )
        assert runtime.wait_idle(timeout=60)
        state = runtime.client.state
        (failed,) = state.invocations(status=FAILED)
        assert message in failed.error["errorMessage"]
        assert "Traceback" not in failed.error["errorMessage"]
        (recorded,) = state.invocations(function="fail")
        assert recorded.status == "succeeded"  # the failure is recorded, not repeated
        assert not any(state.counts()[s] for s in ACTIVE)


def test_chunks_of_a_variable_frame_rate_source_pick_the_frames_a_whole_encode_picks(
    clip: ClipFactory, tmp_path: Path, separate_state: Callable[[], str]
) -> None:
    src = clip("phone.mkv", seconds=7, size="640x360", vfr=True)
    chunked = run(src, tmp_path / "chunked", chunk_seconds=2, qc=2)
    # The same source again in a home of its own: a state of its own too.
    whole = run(src, tmp_path / "whole", chunk_seconds=60, qc=2, state_url=separate_state())
    assert chunked["chunks"] == 4 and whole["chunks"] == 1
    for a, b in zip(chunked["renditions"], whole["renditions"], strict=True):
        if a["kind"] == "video":
            assert a["frames"] == b["frames"]
            # Frame by frame, the chunked rendition shows what the whole one shows: a
            # frame-rate conversion that drifted at a chunk boundary would put shifted
            # frames side by side (about 19 dB on this clip; the same frames: 40+).
            paths = [rendition_file(r, a["name"]) for r in (chunked, whole)]
            psnr = frame_psnr(*paths, work=tmp_path)
            assert len(psnr) == a["frames"] and min(psnr) > 30, sorted(psnr)[:5]


def rendition_file(report: dict[str, Any], name: str) -> Path:
    (path,) = (Path(report["home"]) / "objects" / "media" / "work").glob(f"*/renditions/{name}.mp4")
    return path


def frame_psnr(a: Path, b: Path, *, work: Path) -> list[float]:
    """PSNR (dB, average of the planes) of each frame of ``a`` against ``b``'s."""
    stats = work / "psnr.txt"
    run_ffmpeg(
        ["-i", str(a), "-i", str(b), "-lavfi", f"psnr=stats_file={stats}", "-f", "null", "-"],
        input="psnr",
    )
    fields = (dict(f.split(":") for f in line.split()) for line in stats.read_text().splitlines())
    return [float(f["psnr_avg"]) for f in fields]


def test_the_same_bytes_under_several_keys_at_once_are_titles_apart(
    clip: ClipFactory, tmp_path: Path
) -> None:
    """One title settling (and dropping its cached source) never pulls the source file
    from under another title of the same bytes: every part succeeds at its first try."""
    from reelay.runtime import Runtime, load_app

    src = clip("plain.mp4")
    settings = Settings.load(tmp_path / "home", retry_delays=(0.2, 0.5))
    app = load_app("media").with_environment(
        {"REELAY_MEDIA_LADDER": "demo", "REELAY_MEDIA_CHUNK_SECONDS": "1"}
    )
    with Runtime(app, settings, max_workers=2) as runtime:
        for name in "abcd":
            runtime.client.put_object("media", f"ingest/{name}.mp4", src)
        runtime.start()
        assert runtime.wait_idle(timeout=240)
        failed = [a for a in runtime.client.state.attempts(limit=10000) if not a.ok]
    assert failed == []
    assert len(events(tmp_path / "home", "Media Title Published")) == 4
    assert_settled(tmp_path / "home")


def test_titles_of_the_same_bytes_cache_their_source_apart(tmp_path: Path) -> None:
    # The race above is rare (a file deleted between a task's check and ffmpeg's open),
    # so the rule that prevents it is pinned too: a cached source belongs to one title.
    from reelay.media.config import Title, title_id_for
    from reelay.media.handlers import _source_cache

    with Client(Settings.load(tmp_path / "home")) as client:
        a, b = (
            Title(title_id_for(key, "e" * 32), "media", key, "e" * 32)
            for key in ("ingest/a.mp4", "ingest/b.mp4")
        )
        assert _source_cache(client, a) != _source_cache(client, b)
