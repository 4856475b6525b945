"""Ladders: which renditions a title is encoded into, as a YAML file users write.

::

    name: bench
    segment_seconds: 4            # HLS/DASH segment length; chunks are multiples of it
    video:
      - {name: 360p, codec: h264, height: 360, crf: 23, maxrate_kbps: 800, preset: veryfast}
      - {name: 720p, codec: h264, height: 720, crf: 23, maxrate_kbps: 3000, preset: veryfast}
    audio:
      - {name: aac128, codec: aac, bitrate_kbps: 128, channels: 2}

A video rung's ``height`` is the short side of the picture (so a portrait source gets a
720-wide rendition from a 720 rung); the width follows the source's display aspect,
rounded to even. Rungs taller than the source are dropped, never upscaled; a source
smaller than every rung gets the lowest rung at its own size. ``crf`` is capped by
``maxrate_kbps`` (a VBV buffer of twice the rate). Built-in ladders: ``demo``,
``default`` and ``full`` (`BUILTIN_LADDERS`); `load_ladder` takes one of those names or
a path, validates the whole file and raises `LadderError` naming every problem.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reelay._yamlfile import Problems, int_in, number_in, parse_yaml, read_yaml
from reelay.errors import LadderError

LADDER_DIR = Path(__file__).with_name("ladders")
BUILTIN_LADDERS = ("demo", "default", "full")

VIDEO_CODECS = ("h264", "hevc", "av1", "vp9")
AUDIO_CODECS = ("aac", "opus")
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
#: codec -> (highest crf, valid presets, default preset)
CODEC_RULES: dict[str, tuple[int, tuple[str, ...], str]] = {
    "h264": (51, X26X_PRESETS, "veryfast"),
    "hevc": (51, X26X_PRESETS, "veryfast"),
    "av1": (63, tuple(str(i) for i in range(14)), "10"),  # SVT-AV1 presets 0-13
    "vp9": (63, tuple(str(i) for i in range(9)), "5"),  # libvpx -cpu-used 0-8
}
AUDIO_CHANNELS = (1, 2, 6)
NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
LADDER_KEYS = ("audio", "name", "segment_seconds", "video")
VIDEO_KEYS = ("bit_depth", "codec", "crf", "height", "maxrate_kbps", "name", "preset")
AUDIO_KEYS = ("bitrate_kbps", "channels", "codec", "name")


@dataclass(frozen=True)
class VideoRung:
    name: str
    codec: str
    height: int
    crf: int
    maxrate_kbps: int
    preset: str
    bit_depth: int = 8


@dataclass(frozen=True)
class AudioRung:
    name: str
    codec: str
    bitrate_kbps: int
    channels: int = 2


@dataclass(frozen=True)
class Ladder:
    name: str
    segment_seconds: float
    video: tuple[VideoRung, ...]
    audio: tuple[AudioRung, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


CONTENT = "a ladder given by content"


def load_ladder(name_or_path: str | Path) -> Ladder:
    """A built-in ladder by name, a ladder file, or a ladder itself as YAML text (several
    lines: how `reelay transcode` sends a file's ladder, so that a worker on another
    machine needs no path of the driver's); `LadderError` lists every problem."""
    text = str(name_or_path)
    if "\n" in text:
        return parse_ladder(parse_yaml(text, CONTENT, LadderError), source=CONTENT)
    path = LADDER_DIR / f"{text}.yaml" if text in BUILTIN_LADDERS else Path(name_or_path)
    if not path.is_file() and text not in BUILTIN_LADDERS and "/" not in text and "." not in text:
        raise LadderError(
            [
                f"{text}: no such ladder; built-in ladders: {', '.join(BUILTIN_LADDERS)}, "
                "or the path of a ladder file"
            ]
        )
    return parse_ladder(read_yaml(path, LadderError), source=str(path))


def parse_ladder(doc: Any, *, source: str = "<ladder>") -> Ladder:
    """Validate a ladder already parsed from YAML and build it."""
    problems = Problems(source)
    if not isinstance(doc, dict):
        problems.add(
            "",
            f"a ladder must be a mapping with 'name' and 'video' or 'audio', not "
            f"{type(doc).__name__}",
        )
        raise LadderError(problems.items)
    problems.unknown_keys("", doc, LADDER_KEYS)
    name = _name(problems, "name", doc.get("name"))
    segment = number_in(problems, "segment_seconds", doc.get("segment_seconds", 4), 1, 20)
    video = [
        _video(problems, f"video[{i}]", v) for i, v in enumerate(_list(problems, doc, "video"))
    ]
    audio = [
        _audio(problems, f"audio[{i}]", a) for i, a in enumerate(_list(problems, doc, "audio"))
    ]
    if not video and not audio and not problems.items:
        problems.add("", "a ladder needs at least one video or audio rendition")
    seen: set[str] = set()
    for kind, rungs in (("video", video), ("audio", audio)):
        for i, rung in enumerate(rungs):
            if rung is not None and rung.name in seen:
                problems.add(
                    f"{kind}[{i}].name", f"{rung.name!r} is used twice; names must be unique"
                )
            if rung is not None:
                seen.add(rung.name)
    if problems.items:
        raise LadderError(problems.items)
    return Ladder(
        name=name,
        segment_seconds=float(segment or 4),
        video=tuple(v for v in video if v is not None),
        audio=tuple(a for a in audio if a is not None),
    )


def _list(problems: Problems, doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        problems.add(key, f"must be a list of renditions, not {type(value).__name__}")
        return []
    return value


def _name(problems: Problems, where: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        problems.add(where, f"{value!r} is not valid: use 1-32 letters, digits, '-' or '_'")
    return str(value)


def _mapping(
    problems: Problems, where: str, spec: Any, keys: tuple[str, ...], example: str
) -> bool:
    """Whether a rung is a mapping (else say what one looks like); flags unknown keys."""
    if not isinstance(spec, dict):
        problems.add(where, f"must be a mapping such as {example}")
        return False
    problems.unknown_keys(where, spec, keys)
    return True


def _video(problems: Problems, where: str, spec: Any) -> VideoRung | None:
    example = "{name: 720p, codec: h264, height: 720, crf: 23, maxrate_kbps: 3000}"
    if not _mapping(problems, where, spec, VIDEO_KEYS, example):
        return None
    before = len(problems.items)
    name = _name(problems, f"{where}.name", spec.get("name"))
    codec = spec.get("codec")
    if codec not in CODEC_RULES:
        problems.add(
            f"{where}.codec", f"{codec!r} is not valid; valid codecs: {', '.join(VIDEO_CODECS)}"
        )
        return None
    max_crf, presets, default_preset = CODEC_RULES[codec]
    height = int_in(problems, f"{where}.height", spec.get("height"), 64, 4320)
    if height is not None and height % 2:
        problems.add(f"{where}.height", f"{height} is not valid: must be even")
    crf = int_in(problems, f"{where}.crf", spec.get("crf", 23), 0, max_crf)
    maxrate = int_in(problems, f"{where}.maxrate_kbps", spec.get("maxrate_kbps"), 50, 200000)
    preset = str(spec.get("preset", default_preset))
    if preset not in presets:
        problems.add(
            f"{where}.preset",
            f"{spec.get('preset')!r} is not a {codec} preset; valid presets: {', '.join(presets)}",
        )
    depth = spec.get("bit_depth", 8)
    if depth not in (8, 10) or (depth == 10 and codec == "h264"):
        problems.add(
            f"{where}.bit_depth",
            f"{depth!r} is not valid for {codec}: 8" + ("" if codec == "h264" else " or 10"),
        )
    if len(problems.items) > before:
        return None
    return VideoRung(name, codec, int(height or 0), int(crf or 0), int(maxrate or 0), preset, depth)


def _audio(problems: Problems, where: str, spec: Any) -> AudioRung | None:
    example = "{name: aac128, codec: aac, bitrate_kbps: 128}"
    if not _mapping(problems, where, spec, AUDIO_KEYS, example):
        return None
    before = len(problems.items)
    name = _name(problems, f"{where}.name", spec.get("name"))
    codec = spec.get("codec")
    if codec not in AUDIO_CODECS:
        problems.add(
            f"{where}.codec", f"{codec!r} is not valid; valid codecs: {', '.join(AUDIO_CODECS)}"
        )
    bitrate = int_in(problems, f"{where}.bitrate_kbps", spec.get("bitrate_kbps"), 16, 1024)
    channels = spec.get("channels", 2)
    if channels not in AUDIO_CHANNELS:
        problems.add(
            f"{where}.channels",
            f"{channels!r} is not valid; valid values: {', '.join(map(str, AUDIO_CHANNELS))}",
        )
    if len(problems.items) > before:
        return None
    return AudioRung(name, str(codec), int(bitrate or 0), int(channels))
