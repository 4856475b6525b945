"""The ffmpeg work of the pipeline: encode a chunk, an audio track, subtitles, thumbnails;
concatenate chunks; measure quality. Each function takes local paths and a small spec,
runs ffmpeg once, and checks what it made.

Video preparation is the same wherever the source is decoded (encode and QC alike):
deinterlace if interlaced, constant frame rate at the plan's rate, rotation applied
(ffmpeg's autorotate), then scale with a sample aspect ratio that keeps the display aspect.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reelay._text import plural
from reelay.errors import ChunkCheckError
from reelay.media._ffmpeg import run_ffmpeg, source_input
from reelay.media.plan import AudioOutput, Chunk, Plan, Rendition
from reelay.media.probe import SourceInfo

#: How far before a chunk of a variable-frame-rate source its decode starts, so that the
#: frame-rate conversion has the frames it needs to choose the same frames for the chunk
#: as for the whole title. A constant-rate source needs only half a frame.
VFR_SEEK_MARGIN_S = 1.0


def prepare_filter(
    plan: Plan, source: SourceInfo, *, start_frame: int = 0, seek_s: float = 0.0
) -> str:
    """The filters every decode of the source's video goes through.

    ``seek_s`` is where the decode started (ffmpeg's ``-ss``; timestamps then count from
    there) and ``start_frame`` the first frame wanted: timestamps are put back on the
    title's own clock (0 at its first frame), so the frame-rate conversion picks the
    same source frame for output frame N whether it decodes the whole title (QC) or
    one chunk (encode), also for variable-frame-rate sources.
    """
    v = source.video
    assert v is not None
    steps = ["bwdif=mode=send_frame"] if v.interlaced else []
    shift = seek_s - v.start_s
    if shift:
        steps.append(f"setpts=PTS+{shift:.6f}/TB")
    start = f":start_time={plan.seconds(start_frame):.6f}" if start_frame else ""
    steps += [f"fps={plan.fps_num}/{plan.fps_den}{start}", "setpts=PTS-STARTPTS"]
    return ",".join(steps)


def video_codec_args(rendition: Rendition, keyint: int) -> list[str]:
    """Encoder options for a rung: capped CRF, closed GOPs, a keyframe every ``keyint``."""
    r = rendition.rung
    rate, buf = r.maxrate_kbps, 2 * r.maxrate_kbps
    pix = "yuv420p10le" if r.bit_depth == 10 else "yuv420p"
    if r.codec == "h264":
        return [
            "-c:v", "libx264", "-preset", r.preset, "-crf", str(r.crf), "-profile:v", "high",
            "-maxrate", f"{rate}k", "-bufsize", f"{buf}k", "-g", str(keyint),
            "-keyint_min", str(keyint), "-sc_threshold", "0", "-pix_fmt", pix,
        ]  # fmt: skip
    if r.codec == "hevc":
        params = (
            f"keyint={keyint}:min-keyint={keyint}:scenecut=0:open-gop=0:"
            f"vbv-maxrate={rate}:vbv-bufsize={buf}:log-level=error"
        )
        return [
            "-c:v", "libx265", "-preset", r.preset, "-crf", str(r.crf), "-x265-params", params,
            "-tag:v", "hvc1", "-pix_fmt", pix,
        ]  # fmt: skip
    if r.codec == "av1":
        return [
            "-c:v", "libsvtav1", "-preset", r.preset, "-crf", str(r.crf), "-g", str(keyint),
            "-svtav1-params", f"scd=0:mbr={rate}", "-pix_fmt", pix,
        ]  # fmt: skip
    if r.codec == "vp9":
        return [
            "-c:v", "libvpx-vp9", "-crf", str(r.crf), "-b:v", f"{rate}k", "-g", str(keyint),
            "-keyint_min", str(keyint), "-row-mt", "1", "-deadline", "good",
            "-cpu-used", r.preset, "-pix_fmt", pix,
        ]  # fmt: skip
    raise ValueError(f"unknown video codec {r.codec!r}")


def chunk_seek(source: SourceInfo, plan: Plan, start_frame: int) -> float:
    """Where the decode of a chunk starting at ``start_frame`` starts (ffmpeg's ``-ss``):
    a margin before its first frame, for the frame-rate conversion (see `prepare_filter`)."""
    v = source.video
    assert v is not None
    if not start_frame:
        return 0.0
    margin = VFR_SEEK_MARGIN_S if v.vfr else 0.5 / plan.fps
    return max(0.0, v.start_s + plan.seconds(start_frame) - margin)


def display_size(source: SourceInfo) -> tuple[int, int]:
    """The size a viewer's screen shows the title at, for display quality: the source's
    display size, at most 1920x1080 (what VMAF's default model was trained for)."""
    v = source.video
    assert v is not None
    scale = min(1.0, 1920 / max(v.width, v.height), 1080 / min(v.width, v.height))
    return max(2, round(v.width * scale / 2) * 2), max(2, round(v.height * scale / 2) * 2)


def scored_frames(every: int) -> str:
    """The filter that keeps the frames of a chunk that quality control scores, one in
    ``every``: all of them, or pairs of neighbours, one pair in each ``2 * every``
    frames from the chunk's first (so every chunk is scored). Pairs, because VMAF's
    motion feature compares each frame with the one before and after it (the lower of
    the two): frames scored alone, far apart, would look like fast motion, which raises
    VMAF (by 3.6 points on a test clip, where pairs came within 0.2 of every frame)."""
    return "null" if every == 1 else f"select='lt(mod(n,{2 * every}),2)'"


def scored_frame(index: int, every: int) -> int:
    """The chunk's frame number of the ``index``-th frame `scored_frames` keeps."""
    return index if every == 1 else index // 2 * 2 * every + index % 2


@dataclass(frozen=True)
class ChunkQuality:
    """What quality control measured of one chunk of one rendition, on the frames the
    encode made (decoded again in the same ffmpeg: ffmpeg's loopback decoders).

    *Fidelity* compares the rendition with the source scaled to the rendition's own
    size (the encoder's very input): did this encode come out right. *Display* compares
    the rendition upscaled to the display size with the source at that size: what a
    viewer on a big screen sees (equal to fidelity for a rendition at display size).
    """

    frames_scored: int
    vmaf: float
    vmaf_min: float
    psnr: float
    worst_frame: int  # the title's frame number of the lowest fidelity VMAF
    display_vmaf: float
    display_vmaf_min: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def encode_chunk(
    src: Path,
    source: SourceInfo,
    plan: Plan,
    chunk: Chunk,
    renditions: list[Rendition],
    out_dir: Path,
    *,
    qc_every: int = 0,
) -> tuple[dict[str, Path], dict[str, ChunkQuality]]:
    """Encode one chunk into several renditions from one decode; check each; return
    their paths and, unless ``qc_every`` is 0, their `ChunkQuality` on one frame in
    ``qc_every`` (`scored_frames`)."""
    seek = chunk_seek(source, plan, chunk.start_frame)
    display = display_size(source)
    # Display quality needs the source at display size where a rendition is smaller.
    upscaled = [r for r in renditions if (r.width, r.height) != display] if qc_every else []
    branches = "".join(f"[s{i}]" for i in range(len(renditions))) + ("[sd]" if upscaled else "")
    prepare = prepare_filter(plan, source, start_frame=chunk.start_frame, seek_s=seek)
    count = len(renditions) + (1 if upscaled else 0)
    # The chunk's frames and no more: the encoders stop at -frames:v, but what QC
    # compares them with would run on to the end of the source.
    graph = [f"[0:v:0]{prepare},trim=end_frame={chunk.frames},split={count}{branches}"]
    outputs: list[str] = []
    paths: dict[str, Path] = {}
    for i, r in enumerate(renditions):
        keep = f",split=2[v{i}][r{i}]" if qc_every else f"[v{i}]"
        graph.append(
            f"[s{i}]scale={r.width}:{r.height}:flags=bicubic,setsar={r.sar}:max=100000{keep}"
        )
        path = out_dir / f"{r.name}.mp4"
        paths[r.name] = path
        outputs += [
            "-map", f"[v{i}]", "-an", "-sn", "-dn", "-frames:v", str(chunk.frames),
            *video_codec_args(r, plan.segment_frames), str(path),
        ]  # fmt: skip
    logs: dict[str, tuple[Path, Path | None]] = {}
    if qc_every:
        pick = scored_frames(qc_every)
        analysis, maps = _quality_graph(renditions, upscaled, display, pick, out_dir, logs)
        if upscaled:
            w, h = display
            n = len(upscaled)
            graph.append(
                f"[sd]{pick},scale={w}:{h}:flags=bicubic,setsar=1,split={n}"
                + "".join(f"[ds{i}]" for i in range(n))
            )
        for i in range(len(renditions)):
            outputs += ["-dec", f"{i}:0"]
        outputs += ["-filter_complex", ";".join(analysis), *maps, "-f", "null", "-"]
    run_ffmpeg(
        [*source_input(src, seek_s=seek), "-filter_complex", ";".join(graph), *outputs],
        input=f"{src.name} chunk {chunk.index}",
    )
    for r in renditions:
        check_video(paths[r.name], chunk.frames, plan, what=f"chunk {chunk.index} of {r.name}")
    quality = {
        name: _chunk_quality(*log, first_frame=chunk.start_frame, every=qc_every)
        for name, log in logs.items()
    }
    return paths, quality


def _quality_graph(
    renditions: list[Rendition],
    upscaled: list[Rendition],
    display: tuple[int, int],
    pick: str,
    work: Path,
    logs: dict[str, tuple[Path, Path | None]],
) -> tuple[list[str], list[str]]:
    """The filters that score each encoded rendition (``[dec:i]``, its loopback decode)
    against the encoder's input (``[r{i}]``) and, upscaled, against the source at display
    size (``[ds{j}]``), on the picked frames; the maps that send them to a null output."""
    w, h = display
    graph: list[str] = []
    maps: list[str] = []
    for i, r in enumerate(renditions):
        fidelity = work / f"{r.name}.fidelity.json"
        up = upscaled.index(r) if r in upscaled else None
        split = f",split=2[d{i}][u{i}]" if up is not None else f"[d{i}]"
        graph += [
            f"[dec:{i}]{pick},setsar=1{split}",
            f"[r{i}]{pick},setsar=1[t{i}]",
            f"[d{i}][t{i}]libvmaf=feature=name=psnr:log_fmt=json:"
            f"shortest=1:log_path={fidelity.as_posix()}[q{i}]",
        ]
        maps += ["-map", f"[q{i}]"]
        shown = None
        if up is not None:
            shown = work / f"{r.name}.display.json"
            graph += [
                f"[u{i}]scale={w}:{h}:flags=bicubic,setsar=1[U{i}]",
                f"[U{i}][ds{up}]libvmaf=log_fmt=json:shortest=1:log_path={shown.as_posix()}[p{i}]",
            ]
            maps += ["-map", f"[p{i}]"]
        logs[r.name] = (fidelity, shown)
    return graph, maps


def _chunk_quality(
    fidelity: Path, shown: Path | None, *, first_frame: int, every: int
) -> ChunkQuality:
    frames = json.loads(fidelity.read_text())["frames"]
    fidelity.unlink()
    vmaf = [f["metrics"]["vmaf"] for f in frames]
    psnr = [f["metrics"]["psnr_y"] for f in frames]
    display = vmaf
    if shown is not None:
        display = [f["metrics"]["vmaf"] for f in json.loads(shown.read_text())["frames"]]
        shown.unlink()
    worst = min(range(len(vmaf)), key=vmaf.__getitem__) if vmaf else 0
    return ChunkQuality(
        frames_scored=len(vmaf),
        vmaf=round(sum(vmaf) / len(vmaf), 2) if vmaf else 0.0,
        vmaf_min=round(min(vmaf), 2) if vmaf else 0.0,
        psnr=round(sum(psnr) / len(psnr), 2) if psnr else 0.0,
        worst_frame=first_frame + scored_frame(worst, every),
        display_vmaf=round(sum(display) / len(display), 2) if display else 0.0,
        display_vmaf_min=round(min(display), 2) if display else 0.0,
    )


def encode_audio(src: Path, source: SourceInfo, output: AudioOutput, path: Path) -> Path:
    """Encode one audio track whole (never chunked), aligned to the video's first frame."""
    rung = output.rung
    start = source.video.start_s if source.video else 0.0
    codec = ["-c:a", "aac"] if rung.codec == "aac" else ["-c:a", "libopus"]
    length = ["-t", f"{source.video.duration_s:.6f}"] if source.video else []
    run_ffmpeg(
        [
            *source_input(src, seek_s=start),
            "-map",
            f"0:a:{output.track}",
            "-vn",
            "-sn",
            "-dn",
            "-af",
            "aresample=async=1:first_pts=0",
            *codec,
            "-b:a",
            f"{rung.bitrate_kbps}k",
            "-ac",
            str(rung.channels),
            "-ar",
            "48000",
            *length,
            "-metadata:s:a:0",
            f"language={output.language}",
            str(path),
        ],
        input=f"{src.name} audio track {output.track}",
    )
    return path


def extract_subtitles(src: Path, track: int, path: Path) -> Path:
    """Convert a text subtitle track to WebVTT."""
    run_ffmpeg(
        [*source_input(src), "-map", f"0:s:{track}", "-c:s", "webvtt", str(path)],
        input=f"{src.name} subtitle track {track}",
    )
    return path


def thumbnails(video: Path, source: SourceInfo, out_dir: Path, *, width: int = 160) -> list[Path]:
    """A trick-play sprite sheet (one tile every few seconds) and its WebVTT index.

    ``video`` is an encoded rendition (the smallest: decoding it costs little), which
    starts at the source's first frame."""
    v = source.video
    assert v is not None
    interval = max(2, math.ceil(v.duration_s / 100))
    count = max(1, math.ceil(v.duration_s / interval))
    height = max(2, round(width * v.height / v.width / 2) * 2)
    cols = min(10, count)
    rows = math.ceil(count / cols)
    sprite = out_dir / "thumbnails.jpg"
    run_ffmpeg(
        [
            "-i",
            str(video),
            "-vf",
            f"fps=1/{interval},scale={width}:{height},setsar=1,tile={cols}x{rows}",
            "-frames:v",
            "1",
            "-q:v",
            "5",
            str(sprite),
        ],
        input=f"{video.name} thumbnails",
    )
    lines = ["WEBVTT", ""]
    for i in range(count):
        start, end = i * interval, min((i + 1) * interval, v.duration_s)
        x, y = (i % cols) * width, (i // cols) * height
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"{sprite.name}#xywh={x},{y},{width},{height}",
            "",
        ]
    index = out_dir / "thumbnails.vtt"
    index.write_text("\n".join(lines), encoding="utf-8")
    return [sprite, index]


def scene_cuts(
    src: Path, source: SourceInfo, plan_fps: float, work: Path, *, threshold: float = 0.35
) -> list[int]:
    """Frame numbers (at the plan's rate) where a shot changes, from a small decode."""
    v = source.video
    assert v is not None
    log = work / "scenes.txt"
    run_ffmpeg(
        [
            *source_input(src, seek_s=v.start_s),
            "-an",
            "-sn",
            "-dn",
            "-vf",
            f"scale=160:-2,select='gt(scene\\,{threshold})',metadata=print:file={log.as_posix()}",
            "-f",
            "null",
            "-",
        ],
        input=f"{src.name} scene detection",
    )
    times = re.findall(r"pts_time:([0-9.]+)", log.read_text()) if log.exists() else []
    return sorted({round(float(t) * plan_fps) for t in times})


def _vtt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def concatenate(parts: list[Path], path: Path) -> Path:
    """Join encoded chunks without re-encoding (ffmpeg's concat demuxer, stream copy)."""
    listing = path.with_suffix(".txt")
    listing.write_text("".join(f"file '{p.as_posix()}'\n" for p in parts), encoding="utf-8")
    run_ffmpeg(
        [
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            "-movflags",
            "+faststart",
            str(path),
        ],
        input=f"{plural(len(parts), 'chunk')} of {path.name}",
    )
    listing.unlink()
    return path


@dataclass(frozen=True)
class StreamStats:
    frames: int
    duration_s: float
    start_s: float
    bytes: int

    @property
    def bitrate_kbps(self) -> float:
        return self.bytes * 8 / 1000 / self.duration_s if self.duration_s > 0 else 0.0


def stream_stats(path: Path, kind: str = "video") -> StreamStats:
    """Frames (packets), duration and start of the first stream of ``kind`` in a file."""
    import av

    with av.open(str(path)) as c:
        s = (c.streams.video if kind == "video" else c.streams.audio)[0]
        n = size = 0
        first = math.inf
        end = 0.0
        for p in c.demux(s):
            if p.size == 0 or p.pts is None:
                continue
            n += 1
            size += p.size
            t = float(p.pts * p.time_base)
            first = min(first, t)
            end = max(end, float((p.pts + (p.duration or 0)) * p.time_base))
    first = 0.0 if first == math.inf else first
    return StreamStats(n, end - first, first, size)


def check_video(path: Path, frames: int, plan: Plan, *, what: str) -> StreamStats:
    """Raise `ChunkCheckError` unless ``path`` has ``frames`` frames lasting as long."""
    stats = stream_stats(path)
    want = plan.seconds(frames)
    if stats.frames != frames or abs(stats.duration_s - want) > 1.0 / plan.fps + 1e-6:
        raise ChunkCheckError(
            f"{what}: {plural(stats.frames, 'frame')} over "
            f"{stats.duration_s:.3f} s; expected {plural(frames, 'frame')} "
            f"over {want:.3f} s"
        )
    return stats
