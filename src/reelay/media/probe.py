"""Inspect a source with PyAV: what it holds, and whether the pipeline can take it.

`probe` opens only a local file, only in a whitelisted container (never a playlist, a
concat list or anything that points elsewhere), reads every packet once (to count
frames and to find truncation) and decodes the first frames of each stream (to prove
it decodes and to see rotation and interlacing). It returns a `SourceInfo` or raises
`SourceRejectedError` with a stable ``code``:

=============  ==============================================================
code           meaning
=============  ==============================================================
EMPTY          a file of zero bytes
PLAYLIST       an HLS/DASH playlist or concat list: inputs that point elsewhere
NOT_MEDIA      not a container ffmpeg can demux (or a container not allowed)
NO_STREAMS     no video or audio stream
UNDECODABLE    a stream whose first frames do not decode
TRUNCATED      the file ends before what its header declares
TOO_LARGE      width or height beyond the limits
TOO_LONG       duration beyond the limits
TOO_SHORT      no complete frame / under the minimum duration
=============  ==============================================================
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from reelay.errors import SourceRejectedError
from reelay.media._ends import cut_reason, open_ended
from reelay.media._ffmpeg import SOURCE_FORMATS

#: Frame rates a variable-frame-rate source is normalised to (the nearest one).
STANDARD_RATES = tuple(
    Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60")
)
TEXT_SUBTITLES = ("subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text")
PLAYLIST_MAGIC = (b"#EXTM3U", b"ffconcat", b"<?xml", b"<MPD", b"[playlist]", b"#EXTINF")


@dataclass(frozen=True)
class Limits:
    """What a source may be; each from ``REELAY_MEDIA_<NAME>`` or the default."""

    max_width: int = 7680
    max_height: int = 4320
    max_duration_s: float = 6 * 3600.0
    min_duration_s: float = 0.1
    max_fps: float = 120.0

    @classmethod
    def from_env(cls) -> Limits:
        values: dict[str, Any] = {}
        for name, default in asdict(cls()).items():
            raw = os.environ.get(f"REELAY_MEDIA_{name.upper()}")
            if raw:
                try:
                    values[name] = type(default)(raw)
                except ValueError:
                    raise ValueError(
                        f"REELAY_MEDIA_{name.upper()}={raw!r} is not a {type(default).__name__}"
                    ) from None
        return cls(**values)


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int  # as displayed: after rotation and sample aspect ratio
    height: int
    fps_num: int
    fps_den: int
    frames: int  # frames the pipeline makes of it (at fps, so VFR sources too)
    duration_s: float
    start_s: float  # of the first frame, from the container's start
    pix_fmt: str
    bit_depth: int
    rotation: int
    interlaced: bool
    vfr: bool

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)


@dataclass(frozen=True)
class AudioInfo:
    track: int  # the index among the audio streams (ffmpeg's 0:a:N)
    codec: str
    channels: int
    sample_rate: int
    language: str
    duration_s: float
    start_s: float


@dataclass(frozen=True)
class SubtitleInfo:
    track: int  # ffmpeg's 0:s:N
    codec: str
    language: str
    text: bool  # convertible to WebVTT (bitmap subtitles are not)


@dataclass(frozen=True)
class SourceInfo:
    format: str
    size: int
    duration_s: float
    video: VideoInfo | None
    audio: tuple[AudioInfo, ...] = ()
    subtitles: tuple[SubtitleInfo, ...] = ()
    streams: int = 0
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The report's ``source`` object."""
        v = self.video
        return {
            "duration_s": round(self.duration_s, 3),
            "frames": v.frames if v else None,
            "width": v.width if v else None,
            "height": v.height if v else None,
            "fps": round(float(v.fps), 3) if v else None,
            "streams": self.streams,
            "format": self.format,
            "video_codec": v.codec if v else None,
            "audio": [f"{a.codec} {a.channels}ch {a.language}" for a in self.audio],
            "subtitles": [f"{s.codec} {s.language}" for s in self.subtitles],
        }


def probe(
    path: str | os.PathLike[str], limits: Limits | None = None, *, name: str | None = None
) -> SourceInfo:
    """Inspect a local media file; raise `SourceRejectedError` for anything unusable.

    ``name`` is what messages call the file (default: its file name)."""
    import av  # PyAV: imported here so the runtime never pays for it

    limits = limits or Limits()
    path = Path(path)
    label = name or path.name
    size = path.stat().st_size
    if size == 0:
        raise SourceRejectedError("EMPTY", f"{label}: the file is empty")
    with path.open("rb") as f:
        head = f.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(PLAYLIST_MAGIC):
        raise SourceRejectedError(
            "PLAYLIST",
            f"{label}: a playlist or list of other inputs, not a media file; "
            "reelay never follows references to other files or URLs",
        )
    try:
        container = av.open(
            str(path),
            options={"protocol_whitelist": "file", "format_whitelist": ",".join(SOURCE_FORMATS)},
        )
    except (av.FFmpegError, ValueError, OSError) as exc:
        _check_end(path, size, None, label)  # a cut file ffmpeg cannot open is TRUNCATED
        raise SourceRejectedError(
            "NOT_MEDIA", f"{label}: not a media file reelay can read ({_reason(exc)})"
        ) from None
    with container:
        _check_end(path, size, container.format.name, label)
        with path.open("rb") as f:
            unsure = open_ended(f, size, container.format.name)
        return _inspect(av, container, label, size, limits, unsure)


def _check_end(path: Path, size: int, format_name: str | None, label: str) -> None:
    """Refuse a file whose container structure says its end was cut off."""
    with path.open("rb") as f:
        cut = cut_reason(f, size, format_name)
    if cut is not None:
        raise SourceRejectedError("TRUNCATED", f"{label}: truncated: {cut}")


def _check_stream_ends(
    video: Any,
    audio: list[Any],
    spans: dict[int, tuple[float, float]],
    unsure: set[int] | None,
    label: str,
) -> None:
    """Where the structure cannot vouch for the video's last packet (`open_ended`), a
    video that runs on past every audio track is the mark of a cut: a muxer writes
    audio in larger packets, ahead of the video it goes with, so a cut leaves the audio
    short. A whole file's streams end within a frame of each other. With structural
    evidence that the last video packet is unfinished, one frame's gap is enough; a
    program stream cut between packs leaves none, so it takes a gap no muxer leaves."""
    if video is None or video.index not in spans or (unsure is not None and video.id not in unsure):
        return
    ends = [spans[a.index][1] for a in audio if a.index in spans]
    if not ends:
        return
    rate = video.average_rate or video.guessed_rate or video.base_rate or 25
    frame = float(1 / Fraction(rate))
    gap = spans[video.index][1] - max(ends)
    if gap > (frame if unsure is not None else max(2 * frame, 0.25)):
        evidence = "its last video packet is unfinished and " if unsure is not None else ""
        raise SourceRejectedError(
            "TRUNCATED",
            f"{label}: truncated: {evidence}the video runs {gap * 1000:.0f} ms past the "
            "audio, as it does where a file's end is cut off",
        )


def _reason(exc: Exception) -> str:
    """What went wrong, in words: never the local path it happened to, nor ffmpeg's
    error number (an FFmpegError says ``[Errno 1094995529] ...: '/tmp/...'``)."""
    words = getattr(exc, "strerror", None)
    return words if isinstance(words, str) and words else str(exc) or type(exc).__name__


def _check_declared_length(
    streams: list[Any], spans: dict[int, tuple[float, float]], label: str
) -> None:
    """Streams whose header counts their samples must hold them all."""
    for s in streams:
        if s.duration and s.index in spans:
            declared = float(s.duration * s.time_base)
            if spans[s.index][1] < declared - 0.01:
                raise SourceRejectedError(
                    "TRUNCATED",
                    f"{label}: truncated: its header declares {declared:.3f} s of "
                    f"{s.type}, the file holds {spans[s.index][1]:.3f} s",
                )


def _inspect(
    av: Any, container: Any, label: str, size: int, limits: Limits, unsure: set[int] | None
) -> SourceInfo:
    vstreams = [s for s in container.streams.video if s.codec_context is not None]
    # Cover art (an attached picture) is a video stream of one frame: not a video.
    vstreams = [s for s in vstreams if not (s.disposition & av.stream.Disposition.attached_pic)]
    astreams = list(container.streams.audio)
    if not vstreams and not astreams:
        raise SourceRejectedError("NO_STREAMS", f"{label}: no video or audio stream")
    vstream = vstreams[0] if vstreams else None
    notes = []
    if len(vstreams) > 1:
        notes.append(f"{len(vstreams)} video streams: only the first is used")

    counts, spans, pts_lists = _read_packets(av, container, label, [*vstreams[:1], *astreams])
    # Stream starts relative to the container's (ffmpeg's -ss counts from there).
    origin = container.start_time / 1e6 if container.start_time is not None else 0.0
    spans = {i: (first - origin, end - origin) for i, (first, end) in spans.items()}
    _check_stream_ends(vstream, astreams, spans, unsure, label)
    if container.format.name == "flac":  # its STREAMINFO counts the samples
        _check_declared_length(astreams, spans, label)
    video = (
        _video_info(av, container, vstream, counts, spans, pts_lists, label, limits)
        if vstream
        else None
    )
    audio = []
    for i, s in enumerate(astreams):
        if counts.get(s.index, 0) == 0:
            notes.append(f"audio track {i} has no packets: skipped")
            continue
        _first_frame(av, container, s, label)
        first, last = spans[s.index]
        audio.append(
            AudioInfo(
                track=i,
                codec=s.codec_context.name,
                channels=s.codec_context.channels or 2,
                sample_rate=s.codec_context.sample_rate or 48000,
                language=_language(s),
                duration_s=max(0.0, last - first),
                start_s=first,
            )
        )
    if video is None and not audio:
        raise SourceRejectedError("NO_STREAMS", f"{label}: no stream with any data")
    subtitles = tuple(
        SubtitleInfo(
            track=i,
            codec=s.codec_context.name if s.codec_context else "unknown",
            language=_language(s),
            text=(s.codec_context.name if s.codec_context else "") in TEXT_SUBTITLES,
        )
        for i, s in enumerate(container.streams.subtitles)
    )
    notes.extend(
        f"subtitle track {s.track} ({s.codec}) is a bitmap format: not converted"
        for s in subtitles
        if not s.text
    )
    duration = video.duration_s if video else max(a.duration_s for a in audio)
    if duration > limits.max_duration_s:
        raise SourceRejectedError(
            "TOO_LONG",
            f"{label}: {duration:.0f} s is longer than the limit of "
            f"{limits.max_duration_s:.0f} s (REELAY_MEDIA_MAX_DURATION_S)",
        )
    if duration < limits.min_duration_s:
        raise SourceRejectedError(
            "TOO_SHORT",
            f"{label}: {duration:.3f} s is shorter than the minimum of "
            f"{limits.min_duration_s:g} s (REELAY_MEDIA_MIN_DURATION_S)",
        )
    return SourceInfo(
        format=container.format.name,
        size=size,
        duration_s=duration,
        video=video,
        audio=tuple(audio),
        subtitles=subtitles,
        streams=len(container.streams),
        notes=tuple(notes),
    )


def _read_packets(
    av: Any, container: Any, label: str, streams: list[Any]
) -> tuple[dict[int, int], dict[int, tuple[float, float]], dict[int, list[int]]]:
    """Demux every packet once: counts, [first, end) seconds, and the video's pts."""
    counts: dict[int, int] = {s.index: 0 for s in streams}
    spans: dict[int, tuple[float, float]] = {}
    pts_lists: dict[int, list[int]] = {s.index: [] for s in streams if s.type == "video"}
    try:
        for packet in container.demux(streams):
            if packet.size == 0 or packet.pts is None:
                continue
            i = packet.stream.index
            counts[i] += 1
            tb = packet.time_base
            start = float(packet.pts * tb)
            end = float((packet.pts + (packet.duration or 0)) * tb)
            first, last = spans.get(i, (start, end))
            spans[i] = (min(first, start), max(last, end))
            if i in pts_lists:
                pts_lists[i].append(packet.pts)
    except (av.FFmpegError, ValueError) as exc:
        raise SourceRejectedError(
            "TRUNCATED", f"{label}: the file is damaged or truncated ({_reason(exc)})"
        ) from None
    # ISO BMFF headers count the samples (an AVI's count includes the empty chunks that
    # stand for dropped frames, which the demuxer skips: no evidence of a cut).
    counted = container.format.name == "mov,mp4,m4a,3gp,3g2,mj2"
    for s in streams:
        declared = s.frames or 0
        if counted and s.type == "video" and declared > 1 and counts[s.index] < declared:
            raise SourceRejectedError(
                "TRUNCATED",
                f"{label}: truncated: its header declares {declared} video frames, "
                f"the file holds {counts[s.index]}",
            )
    return counts, spans, pts_lists


def _first_frame(av: Any, container: Any, stream: Any, label: str, n: int = 1) -> list[Any]:
    """Decode the first ``n`` frames of a stream (fewer if it is shorter)."""
    frames: list[Any] = []
    try:
        container.seek(0)
        for frame in container.decode(stream):
            frames.append(frame)
            if len(frames) >= n:
                break
    except (av.FFmpegError, ValueError) as exc:
        raise SourceRejectedError(
            "UNDECODABLE",
            f"{label}: {stream.type} stream {stream.index} does not decode ({_reason(exc)})",
        ) from None
    if not frames:
        raise SourceRejectedError(
            "UNDECODABLE",
            f"{label}: {stream.type} stream {stream.index} has no decodable frame",
        )
    return frames


def _video_info(
    av: Any,
    container: Any,
    s: Any,
    counts: dict[int, int],
    spans: dict[int, tuple[float, float]],
    pts_lists: dict[int, list[int]],
    label: str,
    limits: Limits,
) -> VideoInfo:
    packets = counts.get(s.index, 0)
    if packets == 0:
        raise SourceRejectedError("TOO_SHORT", f"{label}: the video stream has no frames")
    frames = _first_frame(av, container, s, label, n=8)
    rotation = int(getattr(frames[0], "rotation", 0) or 0) % 360
    interlaced = any(getattr(f, "interlaced_frame", False) for f in frames)
    cc = s.codec_context
    width, height = frames[0].width, frames[0].height
    sar = cc.sample_aspect_ratio
    if sar and sar.numerator and sar.denominator and sar != 1:
        width = round(width * sar.numerator / sar.denominator)
    if rotation in (90, 270):
        width, height = height, width
    if width > limits.max_width or height > limits.max_height or width < 16 or height < 16:
        raise SourceRejectedError(
            "TOO_LARGE" if width > 16 and height > 16 else "TOO_SHORT",
            f"{label}: {width}x{height} is outside the limits 16x16 to "
            f"{limits.max_width}x{limits.max_height} (REELAY_MEDIA_MAX_WIDTH/HEIGHT)",
        )
    pts = sorted(pts_lists[s.index])
    deltas = [b - a for a, b in itertools.pairwise(pts) if b > a]
    tb = s.time_base
    first, end = spans[s.index]
    rate = s.average_rate or s.guessed_rate or s.base_rate
    vfr = bool(deltas) and (max(deltas) - min(deltas)) * tb > Fraction(1, 1000)
    if vfr or not rate:
        span = max(end - first, 1e-3)
        measured = Fraction(packets, 1) / Fraction(span).limit_denominator(100000)
        fps = min(STANDARD_RATES, key=lambda r: abs(r - measured))
        duration = span
        out_frames = max(1, round(duration * fps))
    else:
        fps = Fraction(rate).limit_denominator(1001)
        out_frames = packets
        duration = float(packets / fps)
    if fps > limits.max_fps:
        raise SourceRejectedError(
            "TOO_LARGE",
            f"{label}: {float(fps):.2f} fps is beyond the limit of {limits.max_fps:g} "
            "(REELAY_MEDIA_MAX_FPS)",
        )
    pix_fmt = cc.pix_fmt or (frames[0].format.name if frames[0].format else "yuv420p")
    return VideoInfo(
        codec=cc.name,
        width=width,
        height=height,
        fps_num=fps.numerator,
        fps_den=fps.denominator,
        frames=out_frames,
        duration_s=duration,
        start_s=first,
        pix_fmt=pix_fmt,
        bit_depth=10 if ("10" in pix_fmt or "12" in pix_fmt) else 8,
        rotation=rotation,
        interlaced=interlaced,
        vfr=vfr,
    )


def _language(stream: Any) -> str:
    lang = (stream.metadata or {}).get("language", "und")
    return lang if isinstance(lang, str) and lang.isalpha() and len(lang) <= 8 else "und"
