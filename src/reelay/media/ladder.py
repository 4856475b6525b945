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
``default``, ``full`` and ``auto`` (`BUILTIN_LADDERS`); `load_ladder` takes one of those
names or a path, validates the whole file and raises `LadderError` naming every problem.

A per-title ladder has ``auto`` instead of ``video``: its video rungs are picked for
each title from trial encodes of samples of it (`reelay.media.per_title`)::

    name: auto
    auto:
      vmaf: [45, 95]        # the quality range the rungs spread over (display VMAF)
      max_rungs: 6          # per codec; or targets: [60, 80, 93] instead of both
      codecs: [h264]
      heights: [234, 360, 540, 720, 1080, 1440, 2160]   # tried, up to the source's
      crfs: [20, 26, 32, 38]                            # tried (default: per codec)
      sample_share: 0.05    # the part of the title the trials encode
      windows: 6            # spread over the title
      trial_frames: 20      # frames scored per trial (evenly sampled)
    audio: [...]
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reelay._yamlfile import Problems, int_in, number_in, parse_yaml, read_yaml
from reelay.errors import LadderError

LADDER_DIR = Path(__file__).with_name("ladders")
BUILTIN_LADDERS = ("demo", "default", "full", "auto")

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
LADDER_KEYS = ("audio", "auto", "name", "segment_seconds", "video")
VIDEO_KEYS = ("bit_depth", "codec", "crf", "height", "maxrate_kbps", "name", "preset")
AUDIO_KEYS = ("bitrate_kbps", "channels", "codec", "name")
AUTO_KEYS = (
    "codecs",
    "crfs",
    "heights",
    "max_rungs",
    "sample_share",
    "targets",
    "trial_frames",
    "vmaf",
    "windows",
)


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
class AutoSpec:
    """How a per-title ladder is made (see `reelay.media.per_title`): trial encodes of
    ``windows`` samples making ``sample_share`` of the title, at each of ``heights``
    (up to the source's) and ``crfs`` (empty: the codec's defaults), per codec; rungs
    picked on the hull of (bitrate, display VMAF) at ``targets``, or at ``max_rungs``
    targets spread over ``vmaf``."""

    vmaf: tuple[float, float] = (45.0, 95.0)
    max_rungs: int = 6
    targets: tuple[float, ...] = ()
    codecs: tuple[str, ...] = ("h264",)
    heights: tuple[int, ...] = (234, 360, 540, 720, 1080, 1440, 2160)
    crfs: tuple[int, ...] = ()
    sample_share: float = 0.05
    windows: int = 6
    trial_frames: int = 20


@dataclass(frozen=True)
class Ladder:
    name: str
    segment_seconds: float
    video: tuple[VideoRung, ...]
    audio: tuple[AudioRung, ...]
    auto: AutoSpec | None = None  # a per-title ladder: video rungs picked per title

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
    auto = _auto(problems, doc["auto"]) if "auto" in doc else None
    if "auto" in doc and video:
        problems.add("auto", "a ladder has either 'auto' (rungs picked per title) or 'video'")
    if not video and not audio and "auto" not in doc and not problems.items:
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
        auto=auto,
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


def _auto(problems: Problems, spec: Any) -> AutoSpec | None:
    """The ``auto`` mapping of a per-title ladder, validated whole."""
    if not _mapping(problems, "auto", spec, AUTO_KEYS, "{vmaf: [45, 95], max_rungs: 6}"):
        return None
    before = len(problems.items)
    default = AutoSpec()
    codecs = _distinct(problems, "auto.codecs", spec.get("codecs", ["h264"]), VIDEO_CODECS)
    vmaf = spec.get("vmaf", list(default.vmaf))
    if not (
        isinstance(vmaf, list)
        and len(vmaf) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vmaf)
        and 0 <= vmaf[0] < vmaf[1] <= 100
    ):
        problems.add(
            "auto.vmaf", f"{vmaf!r} is not valid: must be [min, max], 0 <= min < max <= 100"
        )
    targets: list[float] = []
    if "targets" in spec:
        for key in ("vmaf", "max_rungs"):
            if key in spec:
                problems.add(f"auto.{key}", "give either 'targets' or 'vmaf' and 'max_rungs'")
        raw = spec["targets"]
        if not isinstance(raw, list) or not raw or len(raw) > 20:
            problems.add(
                "auto.targets", f"{raw!r} is not valid: must be a list of 1-20 VMAF targets"
            )
        else:
            targets = [
                t
                for i, v in enumerate(raw)
                if (t := number_in(problems, f"auto.targets[{i}]", v, 0, 100)) is not None
            ]
    max_rungs = int_in(problems, "auto.max_rungs", spec.get("max_rungs", default.max_rungs), 1, 20)
    heights = spec.get("heights", list(default.heights))
    if not isinstance(heights, list) or not heights:
        problems.add("auto.heights", f"{heights!r} is not valid: must be a list of heights")
        heights = []
    for i, h in enumerate(heights):
        if int_in(problems, f"auto.heights[{i}]", h, 64, 4320) is not None and h % 2:
            problems.add(f"auto.heights[{i}]", f"{h} is not valid: must be even")
    crfs = spec.get("crfs", [])
    if not isinstance(crfs, list) or ("crfs" in spec and not crfs):
        problems.add("auto.crfs", f"{crfs!r} is not valid: must be a list of CRFs")
        crfs = []
    highest = min((CODEC_RULES[c][0] for c in codecs), default=51)
    for i, c in enumerate(crfs):
        int_in(problems, f"auto.crfs[{i}]", c, 0, highest)
    share = number_in(
        problems, "auto.sample_share", spec.get("sample_share", default.sample_share), 0.005, 1
    )
    windows = int_in(problems, "auto.windows", spec.get("windows", default.windows), 1, 100)
    frames = int_in(
        problems, "auto.trial_frames", spec.get("trial_frames", default.trial_frames), 5, 10000
    )
    if len(problems.items) > before:
        return None
    if targets:
        vmaf = [min(targets), max(targets)]
    return AutoSpec(
        vmaf=(float(vmaf[0]), float(vmaf[1])),
        max_rungs=len(targets) if targets else int(max_rungs or 0),
        targets=tuple(sorted(float(t) for t in targets)),
        codecs=tuple(codecs),
        heights=tuple(sorted(set(heights))),
        crfs=tuple(sorted(set(crfs))),
        sample_share=float(share or 0),
        windows=int(windows or 0),
        trial_frames=int(frames or 0),
    )


def _distinct(problems: Problems, where: str, value: Any, valid: tuple[str, ...]) -> list[str]:
    """A non-empty list of distinct names from ``valid``."""
    if not isinstance(value, list) or not value:
        problems.add(where, f"{value!r} is not valid: must be a list of: {', '.join(valid)}")
        return []
    for i, v in enumerate(value):
        if v not in valid:
            problems.add(f"{where}[{i}]", f"{v!r} is not valid; valid values: {', '.join(valid)}")
        elif value.index(v) != i:
            problems.add(f"{where}[{i}]", f"{v!r} is listed twice")
    return [v for v in value if v in valid]
