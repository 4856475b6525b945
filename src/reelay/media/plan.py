"""Plan a title: chunks on segment boundaries, and the renditions it gets from a ladder.

Everything is counted in frames of the output frame rate, so that boundaries are exact:
a segment is ``round(segment_seconds * fps)`` frames, a chunk a whole number of
segments (the last chunk takes the rest). Every rendition puts a keyframe at every
segment boundary, so chunks concatenate without re-encoding and segments align across
renditions. In scene-aligned mode a chunk boundary moves to the nearest shot change
within half a chunk, and its segments count from there (so the last segment before a
cut may be short); renditions still align, since they share the boundaries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, TypeVar

from reelay.errors import InvalidEventError
from reelay.media.ladder import AudioRung, Ladder, VideoRung
from reelay.media.probe import SourceInfo

DEFAULT_CHUNK_SECONDS = 300.0
N = TypeVar("N", "Rendition", "AudioOutput")


@dataclass(frozen=True)
class Rendition:
    """A video rung resolved against a source: its actual size."""

    rung: VideoRung
    width: int
    height: int
    sar: str = "1/1"  # keeps the source's display aspect exactly (renditions of one
    # adaptation set must agree on it), though even sizes can only approximate it

    @property
    def name(self) -> str:
        return self.rung.name


@dataclass(frozen=True)
class AudioOutput:
    """One audio rung applied to one audio track of the source."""

    rung: AudioRung
    track: int
    language: str

    @property
    def name(self) -> str:
        return f"{self.rung.name}-{self.track}"


@dataclass(frozen=True)
class Chunk:
    index: int
    start_frame: int
    frames: int


@dataclass(frozen=True)
class Plan:
    title_id: str
    fps_num: int
    fps_den: int
    frames: int
    segment_frames: int
    chunks: tuple[Chunk, ...]
    renditions: tuple[Rendition, ...]
    audio: tuple[AudioOutput, ...]
    groups: tuple[tuple[str, ...], ...]  # renditions encoded together from one decode
    subtitles: tuple[int, ...]  # text subtitle tracks to convert

    @property
    def fps(self) -> float:
        return self.fps_num / self.fps_den

    def seconds(self, frame: int) -> float:
        return frame * self.fps_den / self.fps_num

    def rendition(self, name: Any) -> Rendition:
        """The video rendition called ``name``; `InvalidEventError` if there is none."""
        return _named(self.renditions, name, f"title {self.title_id} has no video rendition")

    def audio_output(self, name: Any) -> AudioOutput:
        """The audio output called ``name``; `InvalidEventError` if there is none."""
        return _named(self.audio, name, f"title {self.title_id} has no audio output")

    def chunk(self, index: Any) -> Chunk:
        """Chunk number ``index``; `InvalidEventError` if there is none."""
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not 0 <= index < len(self.chunks)
        ):
            raise InvalidEventError(
                f"title {self.title_id} has no chunk {index!r}; chunks: 0-{len(self.chunks) - 1}"
            )
        return self.chunks[index]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _named(items: tuple[N, ...], name: Any, missing: str) -> N:
    for item in items:
        if item.name == name:
            return item
    names = ", ".join(item.name for item in items) or "none"
    raise InvalidEventError(f"{missing} {name!r}; it has: {names}")


def resolve_renditions(ladder: Ladder, source: SourceInfo) -> tuple[Rendition, ...]:
    """The ladder's video rungs that fit the source (never upscaled), sized to it."""
    v = source.video
    if v is None:
        return ()
    short, long_ = min(v.width, v.height), max(v.width, v.height)
    rungs = [r for r in ladder.video if r.height <= short]
    if not rungs and ladder.video:  # a source smaller than every rung: the lowest, at its size
        lowest = min(ladder.video, key=lambda r: r.height)
        rungs = [VideoRung(**{**asdict(lowest), "height": short - short % 2})]
    out = []
    for rung in rungs:
        other = max(2, round(long_ * rung.height / short / 2) * 2)
        width, height = (other, rung.height) if v.width >= v.height else (rung.height, other)
        sar = Fraction(v.width * height, v.height * width)
        out.append(Rendition(rung, width, height, f"{sar.numerator}/{sar.denominator}"))
    return tuple(out)


def make_plan(
    title_id: str,
    source: SourceInfo,
    ladder: Ladder,
    *,
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS,
    group_size: int = 0,
    scene_cuts: list[int] | None = None,
) -> Plan:
    """Chunks and renditions for a probed source.

    ``group_size`` renditions share one decode in an encode task (0: all of them);
    ``scene_cuts`` are frame numbers of shot changes (scene-aligned mode).
    """
    renditions = resolve_renditions(ladder, source)
    audio = tuple(
        AudioOutput(rung, a.track, a.language)
        for a in source.audio
        for rung in ladder.audio
        if rung.channels <= max(2, a.channels)  # never upmix to surround
    )
    v = source.video
    if v is None or not renditions:
        fps_num, fps_den, frames, seg = 1, 1, 0, 1
        chunks: tuple[Chunk, ...] = ()
    else:
        fps_num, fps_den, frames = v.fps_num, v.fps_den, v.frames
        seg = max(1, round(ladder.segment_seconds * fps_num / fps_den))
        per_chunk = max(1, round(chunk_seconds * fps_num / fps_den / seg)) * seg
        starts = _chunk_starts(frames, per_chunk, scene_cuts or [])
        ends = [*starts[1:], frames]
        chunks = tuple(
            Chunk(i, s, e - s) for i, (s, e) in enumerate(zip(starts, ends, strict=True))
        )
    names = [r.name for r in renditions]
    size = group_size if group_size > 0 else max(1, len(names))
    groups = tuple(tuple(names[i : i + size]) for i in range(0, len(names), size))
    return Plan(
        title_id=title_id,
        fps_num=fps_num,
        fps_den=fps_den,
        frames=frames,
        segment_frames=seg,
        chunks=chunks,
        renditions=renditions,
        audio=audio,
        groups=groups,
        subtitles=tuple(s.track for s in source.subtitles if s.text),
    )


def _chunk_starts(frames: int, per_chunk: int, cuts: list[int]) -> list[int]:
    """Chunk start frames: every ``per_chunk`` frames, or the nearest cut within half."""
    starts = [0]
    nominal = per_chunk
    while nominal < frames:
        near = [c for c in cuts if abs(c - nominal) <= per_chunk // 2 and c > starts[-1]]
        start = min(near, key=lambda c: abs(c - nominal)) if near else nominal
        if frames - start >= 1:
            starts.append(start)
        nominal = start + per_chunk
    return starts
