"""Per-title ladders: a ladder made for each title from trial encodes of samples of it.

A fixed ladder spends the same bits on a cartoon as on a grainy film. A per-title
ladder (Netflix's per-title encoding) measures the title first:

1. **Sample** (`sample_windows`): a few short windows spread evenly over the title,
   together ``sample_share`` of it (at least a second, at most `MAX_SAMPLE_S`), each
   starting just after a keyframe of the source (`window_starts`: no decoding before).
2. **Trial-encode** (`trial_grid`, `run_trials`): the windows, joined, at every trial
   height (the ladder's candidates up to the source's own size, and that size: never
   upscaled) and every trial CRF, with the pipeline's own preparation and encoder
   options (`reelay.media.encode`); each trial is scored by display VMAF (the encode
   upscaled to the source's display size, at most 1080p: what QC reports), in the same
   ffmpeg as the encode. One task per codec and height, its CRFs sharing one decode.
3. **Hull** (`hull`): each height's trials are a curve; `between` adds its points at
   every whole CRF between two trial CRFs (bitrate geometric, VMAF linear in CRF: a
   trial grid a few CRFs apart is too coarse to pick from, its neighbouring points
   often 10 VMAF apart). The hull is the upper-left convex hull of (bitrate, VMAF)
   over all those points of a codec: the best quality any resolution gives for each
   bitrate. Each height's measured curve (`curves`) is kept for drawing.
4. **Pick** (`pick`): for each target quality (``targets``, or ``max_rungs`` spread over
   the ``vmaf`` range), the cheapest point of the hull that reaches it (the best one
   where none does). Rungs are hull points, distinct, their bitrates rising, none
   above the source's size.
5. **Ladder** (`picked_ladder`): each pick is a rung at its height and CRF, capped at
   `CAP_HEADROOM` times its predicted bitrate (the CRF sets the rate; the cap bounds
   peaks the sample did not see).

The pure pieces (windows, grid, hull, pick, ladder) take and return small records;
`run_trials` is the one that runs ffmpeg.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reelay.errors import ChunkCheckError
from reelay.media import encode as enc
from reelay.media._ffmpeg import run_ffmpeg, source_input
from reelay.media.ladder import CODEC_RULES, AutoSpec, Ladder, VideoRung
from reelay.media.plan import Chunk, Plan, make_plan
from reelay.media.probe import Limits, SourceInfo, probe

#: The CRFs tried per codec when the ladder names none: from near transparent to
#: what only the smallest screens accept, about 1.8x bitrate apart for x264.
DEFAULT_CRFS: dict[str, tuple[int, ...]] = {
    "h264": (20, 26, 32, 38),
    "hevc": (22, 28, 34, 40),
    "av1": (26, 34, 42, 50),
    "vp9": (26, 34, 42, 50),
}
#: A rung's maxrate over its predicted bitrate.
CAP_HEADROOM = 2.0
#: Trials are uncapped (the highest maxrate a ladder allows): they measure the CRF alone.
TRIAL_MAXRATE_KBPS = 200000
MIN_WINDOW_S = 1.0
MAX_SAMPLE_S = 120.0


@dataclass(frozen=True)
class Point:
    """A (bitrate, display VMAF) point: a trial encode (``measured``), or one predicted
    between two trials of a height (`between`)."""

    codec: str
    height: int  # the rung's height: the short side of the picture
    size: str  # pixels, "WxH"
    crf: int
    bitrate_kbps: float
    vmaf: float
    measured: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- 1. sample ---------------------------------------------------------------------------


def sample_windows(
    frames: int, fps: float, *, share: float, windows: int, starts: Iterable[int] = ()
) -> tuple[Chunk, ...]:
    """Up to ``windows`` windows of equal length spread evenly over ``frames``, together
    about ``share`` of them (at least `MIN_WINDOW_S`, at most `MAX_SAMPLE_S`, each at
    least `MIN_WINDOW_S` long). Each sits in its own slot of the title: on the frame of
    ``starts`` nearest the slot's middle that leaves it room (`window_starts`: where a
    window costs no decoding before it), else in the middle."""
    if frames <= 0:
        return ()
    shortest = max(1, round(MIN_WINDOW_S * fps))
    total = min(frames, max(round(share * frames), shortest), round(MAX_SAMPLE_S * fps))
    count = max(1, min(windows, total // shortest))
    length = total // count
    slot = frames / count
    preferred = sorted(set(starts))
    out = []
    for i in range(count):
        low, high = round(i * slot), round((i + 1) * slot) - length
        middle = (low + high) // 2
        near = [s for s in preferred if low <= s <= high]
        start = min(near, key=lambda s: abs(s - middle)) if near else middle
        out.append(Chunk(i, start, length))
    return tuple(out)


def window_starts(src: Path, source: SourceInfo) -> list[int]:
    """The first frame, and the frame after each keyframe of the source (frame numbers
    at its pipeline rate): a decode that starts there seeks to that keyframe
    (`encode.chunk_seek` starts half a frame early) and drops one frame, not a GOP."""
    import av

    v = source.video
    if v is None:
        return []
    found = {0}
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.is_keyframe and packet.pts is not None:
                at = float(packet.pts * packet.time_base) - v.start_s
                found.add(round(at * float(v.fps)) + 1)
    return sorted(f for f in found if f < v.frames)


# -- 2. trials ---------------------------------------------------------------------------


def trial_heights(spec: AutoSpec, source: SourceInfo) -> tuple[int, ...]:
    """The heights tried: the candidates up to the source's short side, and that side
    itself where the candidates go beyond it (a 1920x800 source is tried at 800)."""
    v = source.video
    if v is None:
        return ()
    top = min(v.width, v.height)
    top -= top % 2
    heights = {h for h in spec.heights if h <= top}
    if not heights or top < max(spec.heights):
        heights.add(top)
    return tuple(sorted(heights))


def trial_crfs(spec: AutoSpec, codec: str) -> tuple[int, ...]:
    return spec.crfs or DEFAULT_CRFS[codec]


def trial_grid(spec: AutoSpec, source: SourceInfo) -> tuple[tuple[str, int], ...]:
    """(codec, height) of each trial task; each tries every CRF of its codec."""
    return tuple((c, h) for c in spec.codecs for h in trial_heights(spec, source))


def trial_ladder(codec: str, height: int, crfs: Sequence[int], segment_seconds: float) -> Ladder:
    """The trial encodes of one task as a ladder: one uncapped rung per CRF."""
    preset = CODEC_RULES[codec][2]
    rungs = tuple(VideoRung(f"crf{c}", codec, height, c, TRIAL_MAXRATE_KBPS, preset) for c in crfs)
    return Ladder("trials", segment_seconds, rungs, ())


def make_sample(
    src: Path, source: SourceInfo, plan: Plan, windows: Sequence[Chunk], path: Path
) -> Path:
    """The windows of the source, prepared as the encodes prepare it (`prepare_filter`)
    and joined, losslessly (x264 at QP 0): what the trials encode and are scored against."""
    inputs: list[str] = []
    graph = []
    for i, w in enumerate(windows):
        seek = enc.chunk_seek(source, plan, w.start_frame)
        inputs += source_input(src, seek_s=seek)
        prepare = enc.prepare_filter(plan, source, start_frame=w.start_frame, seek_s=seek)
        graph.append(f"[{i}:v:0]{prepare},trim=end_frame={w.frames},setpts=PTS-STARTPTS[w{i}]")
    joined = "".join(f"[w{i}]" for i in range(len(windows)))
    graph.append(f"{joined}concat=n={len(windows)}:v=1:a=0[sample]")
    frames = sum(w.frames for w in windows)
    lossless = ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"]
    run_ffmpeg(
        [*inputs, "-filter_complex", ";".join(graph), "-map", "[sample]", "-an", "-sn", "-dn",
         "-frames:v", str(frames), *lossless, str(path)],
        input=f"{src.name} sample of {len(windows)} windows",
    )  # fmt: skip
    enc.check_video(path, frames, plan, what="the sample")
    return path


def run_trials(
    src: Path,
    source: SourceInfo,
    windows: Sequence[Chunk],
    ladder: Ladder,
    *,
    trial_frames: int,
    work: Path,
) -> list[Point]:
    """Encode the sample (``windows`` of the source) at each rung of ``ladder``
    (`trial_ladder`: one height, several CRFs) as the pipeline encodes a chunk: from one
    decode, each encode decoded again in the same ffmpeg and scored by display VMAF on
    ``trial_frames`` frames spread over the sample (`encode.encode_chunk`)."""
    clock = make_plan("trials", source, ladder)  # the title's frame rate and segments
    sample_path = make_sample(src, source, clock, windows, work / "sample.mp4")
    sample = probe(sample_path, Limits(), name="the sample")
    trial_plan = make_plan("trials", sample, ladder, chunk_seconds=4 * MAX_SAMPLE_S)
    if len(trial_plan.chunks) != 1:
        raise ChunkCheckError(f"the sample of {src.name} is not one chunk of video")
    renditions = list(trial_plan.renditions)
    paths, quality = enc.encode_chunk(
        sample_path,
        sample,
        trial_plan,
        trial_plan.chunks[0],
        renditions,
        work,
        qc_every=max(1, math.ceil(trial_plan.frames / trial_frames)),
    )
    return [
        Point(
            r.rung.codec,
            r.rung.height,
            f"{r.width}x{r.height}",
            r.rung.crf,
            round(enc.stream_stats(paths[r.name]).bitrate_kbps, 1),
            quality[r.name].display_vmaf,
        )
        for r in renditions
    ]


# -- 3. hull ------------------------------------------------------------------------------


def hull(points: Iterable[Point]) -> list[Point]:
    """The upper-left convex hull of (bitrate, VMAF), by bitrate: from the cheapest point
    to the best, each point more VMAF for more bits, at a falling rate (no point above
    a segment between two of its points)."""
    front: list[Point] = []
    for p in sorted(points, key=lambda p: (p.bitrate_kbps, -p.vmaf)):
        if not front or p.vmaf > front[-1].vmaf:  # dominated otherwise
            front.append(p)
    out: list[Point] = []
    for p in front:
        while len(out) >= 2 and _turn(out[-2], out[-1], p) >= 0:
            out.pop()  # out[-1] lies on or under the segment out[-2] -> p
        out.append(p)
    return out


def _turn(o: Point, a: Point, b: Point) -> float:
    """> 0 where o -> a -> b turns left (a under o -> b), < 0 where it turns right."""
    return (a.bitrate_kbps - o.bitrate_kbps) * (b.vmaf - o.vmaf) - (a.vmaf - o.vmaf) * (
        b.bitrate_kbps - o.bitrate_kbps
    )


def curves(points: Iterable[Point]) -> dict[int, list[Point]]:
    """Each height's points, by height, each by falling CRF (rising bitrate)."""
    by_height: dict[int, list[Point]] = {}
    for p in points:
        by_height.setdefault(p.height, []).append(p)
    return {h: sorted(ps, key=lambda p: -p.crf) for h, ps in sorted(by_height.items())}


def between(points: Iterable[Point]) -> list[Point]:
    """Points at every whole CRF between two neighbouring trial CRFs of one codec and
    height, predicted: bitrate geometric in CRF (x264's roughly halves every 6), VMAF
    linear in it (so linear in log bitrate)."""
    out = []
    for curve in curves(points).values():
        for a, b in itertools.pairwise(curve):  # a: the higher CRF, cheaper
            if a.codec != b.codec:
                continue
            for crf in range(a.crf - 1, b.crf, -1):
                f = (a.crf - crf) / (a.crf - b.crf)
                rate = a.bitrate_kbps * (b.bitrate_kbps / a.bitrate_kbps) ** f
                vmaf = a.vmaf + f * (b.vmaf - a.vmaf)
                out.append(
                    Point(a.codec, a.height, a.size, crf, round(rate, 1), round(vmaf, 2), False)
                )
    return out


# -- 4. pick ------------------------------------------------------------------------------


def targets(spec: AutoSpec) -> tuple[float, ...]:
    """The VMAF each rung aims at: the spec's own, or ``max_rungs`` spread evenly over
    its range (one rung: the top of it)."""
    if spec.targets:
        return spec.targets
    low, high = spec.vmaf
    n = spec.max_rungs
    if n == 1:
        return (high,)
    return tuple(round(low + (high - low) * i / (n - 1), 2) for i in range(n))


def pick(on_hull: Sequence[Point], wanted: Iterable[float]) -> list[Point]:
    """For each target, the cheapest point on the hull (``on_hull``, as `hull` returns
    it) with at least that VMAF, or the hull's best where none reaches it; distinct,
    by rising bitrate."""
    out: list[Point] = []
    for target in sorted(wanted):
        chosen = next((p for p in on_hull if p.vmaf >= target), on_hull[-1])
        if chosen not in out:
            out.append(chosen)
    return out


# -- 5. the ladder ------------------------------------------------------------------------


@dataclass(frozen=True)
class Analysis:
    """What a title's trials came to: per codec, the hull, each height's measured curve
    and the picked rungs (points of the hull)."""

    targets: tuple[float, ...]
    trials: tuple[Point, ...]
    hulls: dict[str, list[Point]]
    curves: dict[str, dict[int, list[Point]]]
    picks: dict[str, list[Point]]

    def as_dict(self) -> dict[str, Any]:
        def points(ps: Iterable[Point]) -> list[dict[str, Any]]:
            return [p.as_dict() for p in ps]

        return {
            "targets": list(self.targets),
            "trials": points(self.trials),
            "hull": {c: points(h) for c, h in self.hulls.items()},
            "curves": {
                c: {str(h): points(ps) for h, ps in cs.items()} for c, cs in self.curves.items()
            },
            "picks": {c: points(ps) for c, ps in self.picks.items()},
        }


def analyse(spec: AutoSpec, trials: Sequence[Point]) -> Analysis:
    """Hull, curves and picks, per codec, from every trial of a title."""
    wanted = targets(spec)
    by_codec = {c: [t for t in trials if t.codec == c] for c in spec.codecs}
    hulls = {c: hull([*ts, *between(ts)]) for c, ts in by_codec.items() if ts}
    return Analysis(
        targets=wanted,
        trials=tuple(trials),
        hulls=hulls,
        curves={c: curves(ts) for c, ts in by_codec.items() if ts},
        picks={c: pick(h, wanted)[: spec.max_rungs] for c, h in hulls.items()},
    )


def picked_ladder(ladder: Ladder, analysis: Analysis) -> Ladder:
    """``ladder`` (a per-title one) with the picked rungs as its video: named by height
    (``720p``, ``720p-2``; with several codecs ``hevc-720p``), each at its CRF, capped at
    `CAP_HEADROOM` times its predicted bitrate."""
    several = len(analysis.picks) > 1
    taken = {a.name for a in ladder.audio}
    rungs = []
    for codec, points in analysis.picks.items():
        for p in points:
            base = f"{codec}-{p.height}p" if several else f"{p.height}p"
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
            taken.add(name)
            cap = max(50, math.ceil(CAP_HEADROOM * p.bitrate_kbps))
            rungs.append(VideoRung(name, codec, p.height, p.crf, cap, CODEC_RULES[codec][2]))
    return Ladder(ladder.name, ladder.segment_seconds, tuple(rungs), ladder.audio)
