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


#: Every container the pipeline takes whose structure says where it ends, in the forms
#: publishers send (ffmpeg's own muxers, as most tools are).
CONTAINERS: dict[str, dict] = {
    "av.ts": {"size": "640x360", "extra": ("-b:v", "2M")},
    "mpeg2.ts": {"video": "mpeg2"},
    "audio.ts": {"video": None},
    "bluray.m2ts": {"extra": ("-f", "mpegts", "-mpegts_m2ts_mode", "1")},
    "av.mkv": {},
    "av.webm": {"video": "vp9", "extra": ("-c:a", "libopus")},
    "moov-last.mp4": {},
    "faststart.mp4": {"extra": ("-movflags", "+faststart")},
    "fragmented.mp4": {"extra": ("-movflags", "+frag_keyframe+empty_moov")},
    "camera.mov": {},
    "music.m4a": {"video": None},
    "av.avi": {},
    "av.flv": {},
    "av.mxf": {"video": "mpeg2", "extra": ("-c:a", "pcm_s16le")},
    "av.mpg": {"video": "mpeg2", "extra": ("-c:a", "mp2")},
    "av.wmv": {"extra": ("-c:v", "wmv2", "-c:a", "wmav2")},
    "voice.ogg": {"video": None, "extra": ("-c:a", "libopus")},
    "voice.wav": {"video": None, "extra": ("-c:a", "pcm_s16le")},
    "voice.mp3": {"video": None, "extra": ("-c:a", "libmp3lame")},
    "cbr.mp3": {"video": None, "extra": ("-c:a", "libmp3lame", "-write_xing", "0")},
    "voice.flac": {"video": None, "extra": ("-c:a", "flac")},
    "voice.aac": {"video": None},
    "raw.y4m": {"audio_tracks": 0, "extra": ("-c:v", "rawvideo")},
}


def _cut(tmp_path: Path, whole: Path, size: int) -> Path:
    cut = tmp_path / f"cut-{size}{whole.suffix}"
    cut.write_bytes(whole.read_bytes()[:size])
    return cut


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_a_container_whose_end_is_cut_is_truncated(
    tmp_path: Path, clip: ClipFactory, name: str
) -> None:
    whole = clip(name, **CONTAINERS[name])
    assert probe(whole).duration_s == pytest.approx(3.0, abs=0.05)  # the whole file passes
    size = whole.stat().st_size
    for fraction in (0.31, 0.5, 0.77, 0.93):
        cut = _cut(tmp_path, whole, int(size * fraction) | 1)  # odd: never on a boundary
        with pytest.raises(SourceRejectedError) as info:
            probe(cut, name=f"s3://media/ingest/{name}")
        assert info.value.code == "TRUNCATED", (fraction, str(info.value))
        message = str(info.value)
        assert message.startswith(f"s3://media/ingest/{name}: truncated: ")
        assert str(tmp_path) not in message and "Errno" not in message


def test_the_truncated_transport_stream_of_the_issue(tmp_path: Path, clip: ClipFactory) -> None:
    # A 3.8 MB .ts with audio and video cut to its first 1.5 MB passed inspect, was
    # encoded whole, then held with its audio and video 243 ms apart.
    whole = clip("issue.ts", seconds=10, size="640x360", extra=("-b:v", "3M"))
    assert 3_000_000 < whole.stat().st_size < 4_500_000
    with pytest.raises(SourceRejectedError, match="not a whole number of 188-byte packets"):
        probe(_cut(tmp_path, whole, 1_500_000))


@pytest.mark.parametrize("name", ["av.ts", "mpeg2.ts", "bluray.m2ts", "av.mpg"])
def test_a_stream_cut_on_a_packet_boundary_is_truncated(
    tmp_path: Path, clip: ClipFactory, name: str
) -> None:
    # Cut between whole packets (188 bytes, 192 in M2TS, 2048-byte packs in a program
    # stream), the size says nothing; the unfinished last PES and the streams' ends do.
    whole = clip(name, **CONTAINERS[name])
    packet = {".ts": 188, ".m2ts": 192, ".mpg": 2048}[whole.suffix]
    packets = whole.stat().st_size // packet
    for fraction in (0.31, 0.5, 0.77, 0.93):
        cut = _cut(tmp_path, whole, int(packets * fraction) * packet)
        with pytest.raises(SourceRejectedError) as info:
            probe(cut)
        assert info.value.code == "TRUNCATED", (fraction, str(info.value))


def test_refusals_name_the_file_never_a_local_path_or_an_error_number(
    tmp_path: Path, clip: ClipFactory
) -> None:
    sources = [
        _write(tmp_path / "notes.mp4", b"just some text, not a video\n" * 50),
        _write(tmp_path / "random.mkv", bytes(range(256)) * 64),
        _cut(tmp_path, clip("moov-last.mp4"), clip("moov-last.mp4").stat().st_size // 2),
    ]
    for path in sources:
        with pytest.raises(SourceRejectedError) as info:
            probe(path, name="s3://media/ingest/film.mp4")
        message = str(info.value)
        assert message.startswith("s3://media/ingest/film.mp4: "), message
        assert str(tmp_path) not in message and "Errno" not in message, message
