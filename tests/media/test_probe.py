"""Inspect: the forms publishers send are understood; every broken form is refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelay.errors import SourceRejectedError
from reelay.media.probe import Limits, probe

from .conftest import ClipFactory


def test_plain_h264_clip(clip: ClipFactory) -> None:
    info = probe(clip("plain.mp4"))
    v = info.video
    assert v is not None
    assert (v.width, v.height, v.fps_num, v.fps_den, v.frames) == (320, 240, 25, 1, 75)
    assert v.duration_s == pytest.approx(3.0)
    assert not v.interlaced and not v.vfr and v.rotation == 0 and v.bit_depth == 8
    assert [(a.codec, a.channels, a.language) for a in info.audio] == [("aac", 2, "eng")]


@pytest.mark.parametrize(
    ("name", "options", "expect"),
    [
        ("rotated.mp4", {"rotation": 90}, {"width": 240, "height": 320, "rotation": 90}),
        ("interlaced.mkv", {"interlaced": True}, {"interlaced": True}),
        ("ten.mov", {"video": "hevc", "ten_bit": True}, {"bit_depth": 10, "codec": "hevc"}),
        ("prores.mov", {"video": "prores"}, {"codec": "prores", "bit_depth": 10}),
        ("mpeg2.ts", {"video": "mpeg2"}, {"codec": "mpeg2video", "frames": 75}),
        ("vp9.mkv", {"video": "vp9"}, {"codec": "vp9", "frames": 75}),
        ("vfr.mkv", {"vfr": True}, {"vfr": True}),
        ("odd.mp4", {"size": "321x241"}, {"width": 321, "height": 241}),
        ("ntsc.mp4", {"fps": "30000/1001"}, {"fps_num": 30000, "fps_den": 1001}),
    ],
)
def test_video_forms(clip: ClipFactory, name: str, options: dict, expect: dict) -> None:
    v = probe(clip(name, **options)).video
    assert v is not None
    assert {k: getattr(v, k) for k in expect} == expect


def test_audio_only_video_only_tracks_and_subtitles(clip: ClipFactory) -> None:
    audio_only = probe(clip("audio.m4a", video=None))
    assert audio_only.video is None and audio_only.duration_s == pytest.approx(3.0, abs=0.05)
    video_only = probe(clip("silent.mp4", audio_tracks=0))
    assert video_only.audio == () and video_only.video is not None
    multi = probe(clip("multi.mkv", audio_tracks=2, subtitles=True, audio_channels=6))
    assert [(a.track, a.language, a.channels) for a in multi.audio] == [
        (0, "eng", 6),
        (1, "fra", 6),
    ]
    assert [(s.codec, s.language, s.text) for s in multi.subtitles] == [("srt", "eng", True)]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("code", "make"),
    [
        ("EMPTY", lambda d, clip: _write(d / "empty.mp4", b"")),
        (
            "NOT_MEDIA",
            lambda d, clip: _write(d / "notes.mp4", b"just some text, not a video\n" * 50),
        ),
        ("NOT_MEDIA", lambda d, clip: _write(d / "random.mkv", bytes(range(256)) * 64)),
        (
            "PLAYLIST",
            lambda d, clip: _write(
                d / "evil.m3u8", b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
            ),
        ),
        (
            "PLAYLIST",
            lambda d, clip: _write(
                d / "remote.mp4", b"#EXTM3U\n#EXTINF:10,\nhttp://example.invalid/a.ts\n"
            ),
        ),
        (
            "PLAYLIST",
            lambda d, clip: _write(d / "list.txt", b"ffconcat version 1.0\nfile /etc/passwd\n"),
        ),
        ("PLAYLIST", lambda d, clip: _write(d / "x.mpd", b'<?xml version="1.0"?><MPD></MPD>')),
        (
            "TRUNCATED",
            lambda d, clip: _write(
                d / "cut.mp4",
                clip("faststart.mp4", extra=("-movflags", "+faststart")).read_bytes()[:60000],
            ),
        ),
        (
            "NO_STREAMS",
            lambda d, clip: clip("subs-only.mkv", video=None, audio_tracks=0, subtitles=True),
        ),
    ],
)
def test_broken_forms_are_refused_with_their_reason(
    tmp_path: Path, clip: ClipFactory, code: str, make: object
) -> None:
    path = make(tmp_path, clip)  # type: ignore[operator]
    with pytest.raises(SourceRejectedError) as info:
        probe(path)
    assert info.value.code == code
    assert path.name in str(info.value)


def test_limits_refuse_absurd_sources(clip: ClipFactory) -> None:
    path = clip("plain.mp4")
    with pytest.raises(SourceRejectedError, match="outside the limits") as big:
        probe(path, Limits(max_width=300))
    assert big.value.code == "TOO_LARGE"
    with pytest.raises(SourceRejectedError, match="longer than the limit") as long_:
        probe(path, Limits(max_duration_s=2))
    assert long_.value.code == "TOO_LONG"
    with pytest.raises(SourceRejectedError) as short:
        probe(path, Limits(min_duration_s=10))
    assert short.value.code == "TOO_SHORT"


def test_limits_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELAY_MEDIA_MAX_WIDTH", "640")
    assert Limits.from_env().max_width == 640
    monkeypatch.setenv("REELAY_MEDIA_MAX_WIDTH", "wide")
    with pytest.raises(ValueError, match="REELAY_MEDIA_MAX_WIDTH='wide' is not a int"):
        Limits.from_env()
