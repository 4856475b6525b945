"""Per-title ladders: windows, trial grid, hull and picks; real trial encodes on tiny
clips (a flat one costs fewer bits than a noisy one); bad ``auto`` specs; and a title
transcoded with ``--ladder auto`` end to end."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reelay.errors import LadderError
from reelay.media import per_title as pt
from reelay.media.ladder import AutoSpec, load_ladder, parse_ladder
from reelay.media.probe import Limits, SourceInfo, VideoInfo, probe

from .conftest import ClipFactory

pytestmark = pytest.mark.media

SPEC = AutoSpec(
    vmaf=(30.0, 90.0),
    max_rungs=3,
    heights=(120, 240, 480),
    crfs=(24, 36),
    sample_share=0.25,
    windows=2,
    trial_frames=10,
)
TINY_LADDER = """name: tiny-auto
segment_seconds: 1
auto:
  vmaf: [30, 90]
  max_rungs: 3
  heights: [120, 240, 480]
  crfs: [24, 36]
  sample_share: 0.25
  windows: 2
  trial_frames: 10
audio:
  - {name: aac64, codec: aac, bitrate_kbps: 64, channels: 2}
"""


def point(height: int, crf: int, kbps: float, vmaf: float, codec: str = "h264") -> pt.Point:
    return pt.Point(codec, height, f"{height * 16 // 9}x{height}", crf, kbps, vmaf)


# A grid as trials give it: each height a rising curve, the higher ones better only
# at higher rates, and points no rung should take (dominated, or under the hull).
TRIALS = [
    point(234, 38, 90, 32),
    point(234, 32, 100, 47),
    point(234, 26, 125, 60),
    point(234, 20, 230, 67),  # dominated by 360p crf 26
    point(360, 38, 130, 48),  # under the hull
    point(360, 32, 150, 66),
    point(360, 26, 235, 77),
    point(360, 20, 500, 83),
    point(540, 32, 290, 78),
    point(540, 26, 590, 86),
    point(540, 20, 1350, 90),
    point(720, 32, 710, 87),
    point(720, 26, 1510, 94),
    point(720, 20, 2930, 97.8),
]


def under_hull(p: pt.Point, hull: list[pt.Point]) -> bool:
    """Whether ``p`` lies on or under the hull (at its rate; right of it, under its top)."""
    if p.bitrate_kbps >= hull[-1].bitrate_kbps:
        return p.vmaf <= hull[-1].vmaf
    for a, b in itertools.pairwise(hull):
        if a.bitrate_kbps <= p.bitrate_kbps <= b.bitrate_kbps:
            f = (p.bitrate_kbps - a.bitrate_kbps) / (b.bitrate_kbps - a.bitrate_kbps)
            return p.vmaf <= a.vmaf + f * (b.vmaf - a.vmaf) + 1e-9
    return p.bitrate_kbps >= hull[0].bitrate_kbps or p.vmaf <= hull[0].vmaf


def test_the_hull_is_upper_left_and_concave() -> None:
    hull = pt.hull(TRIALS)
    assert hull[0] == TRIALS[0] and hull[-1] == TRIALS[-1]
    assert point(234, 20, 230, 67) not in hull and point(360, 38, 130, 48) not in hull
    rates = [p.bitrate_kbps for p in hull]
    assert rates == sorted(rates) and [p.vmaf for p in hull] == sorted(p.vmaf for p in hull)
    slopes = [
        (b.vmaf - a.vmaf) / (b.bitrate_kbps - a.bitrate_kbps) for a, b in itertools.pairwise(hull)
    ]
    assert slopes == sorted(slopes, reverse=True)  # concave: each step buys less
    assert all(under_hull(p, hull) for p in TRIALS)
    curves = pt.curves(TRIALS)
    assert list(curves) == [234, 360, 540, 720]
    assert all(p.height == h for h, ps in curves.items() for p in ps)
    assert [p.crf for p in curves[360]] == [38, 32, 26, 20]


def test_points_between_trials_fill_each_curve() -> None:
    filled = pt.between(TRIALS)
    assert not any(p.measured for p in filled)
    at360 = {p.crf: p for p in filled if p.height == 360}
    assert sorted(at360) == [21, 22, 23, 24, 25, 27, 28, 29, 30, 31, 33, 34, 35, 36, 37]
    # halfway from CRF 32 to 26: the geometric mean of the rates, the mean of the VMAFs
    assert at360[29].bitrate_kbps == pytest.approx((150 * 235) ** 0.5, abs=0.1)
    assert at360[29].vmaf == pytest.approx((66 + 77) / 2, abs=0.01)
    rates = [p.bitrate_kbps for p in sorted(at360.values(), key=lambda p: -p.crf)]
    assert rates == sorted(rates)


def test_rungs_lie_on_the_hull_reach_their_targets_and_rise() -> None:
    candidates = [*TRIALS, *pt.between(TRIALS)]
    hull = pt.hull(candidates)
    assert all(under_hull(p, hull) for p in candidates)
    wanted = pt.targets(replace(SPEC, vmaf=(40.0, 96.0), max_rungs=6))
    assert wanted[0] == 40 and wanted[-1] == 96 and len(wanted) == 6
    picks = pt.pick(hull, wanted)
    assert len(picks) == 6 and all(p in hull for p in picks), picks
    rates = [p.bitrate_kbps for p in picks]
    assert rates == sorted(rates) and len(set(rates)) == len(rates)
    for target, p in zip(wanted, picks, strict=True):  # the cheapest point reaching it
        assert p.vmaf >= target
        assert not [q for q in hull if target <= q.vmaf and q.bitrate_kbps < p.bitrate_kbps]
    assert any(not p.measured for p in picks)  # the grid alone is too coarse
    # a target above everything takes the best point; one below, the cheapest
    assert pt.pick(hull, [99.5]) == [hull[-1]] and pt.pick(hull, [10]) == [hull[0]]
    assert pt.pick(hull, [50, 50.01]) == pt.pick(hull, [50])  # distinct


def test_the_ladder_from_the_picks() -> None:
    analysis = pt.analyse(replace(SPEC, vmaf=(40.0, 96.0), max_rungs=4), TRIALS)
    ladder = pt.picked_ladder(load_ladder(TINY_LADDER), analysis)
    assert ladder.auto is None and ladder.name == "tiny-auto" and ladder.audio
    picks = analysis.picks["h264"]
    assert [r.height for r in ladder.video] == [p.height for p in picks]
    assert [r.crf for r in ladder.video] == [p.crf for p in picks]
    assert all(
        r.maxrate_kbps >= pt.CAP_HEADROOM * p.bitrate_kbps
        for r, p in zip(ladder.video, picks, strict=True)
    )
    assert len({r.name for r in ladder.video}) == len(ladder.video)
    two = pt.analyse(
        replace(SPEC, codecs=("h264", "hevc")), TRIALS + [replace(p, codec="hevc") for p in TRIALS]
    )
    names = [r.name for r in pt.picked_ladder(load_ladder(TINY_LADDER), two).video]
    assert {n.split("-")[0] for n in names} == {"h264", "hevc"}


def source_of(width: int, height: int, frames: int = 250) -> SourceInfo:
    video = VideoInfo(
        "h264", width, height, 25, 1, frames, frames / 25, 0.0, "yuv420p", 8, 0, False, False
    )
    return SourceInfo("mp4", 1, frames / 25, video)


def test_never_upscaled() -> None:
    spec = replace(SPEC, heights=(120, 240, 480, 720))
    assert pt.trial_heights(spec, source_of(320, 240)) == (120, 240)
    assert pt.trial_heights(spec, source_of(1920, 800)) == (120, 240, 480, 720)
    assert pt.trial_heights(spec, source_of(1280, 720)) == (120, 240, 480, 720)
    assert pt.trial_heights(spec, source_of(854, 480)) == (120, 240, 480)
    assert pt.trial_heights(spec, source_of(600, 500)) == (120, 240, 480, 500)  # its own size
    assert pt.trial_heights(spec, source_of(240, 426)) == (120, 240)  # portrait: short side
    assert pt.trial_heights(spec, source_of(90, 70)) == (70,)  # smaller than every candidate
    assert pt.trial_grid(replace(spec, codecs=("h264", "av1")), source_of(320, 240)) == (
        ("h264", 120),
        ("h264", 240),
        ("av1", 120),
        ("av1", 240),
    )


def test_sample_windows_spread_over_the_title() -> None:
    windows = pt.sample_windows(3000, 25, share=0.05, windows=6)
    assert len(windows) == 6 and len({w.frames for w in windows}) == 1
    assert sum(w.frames for w in windows) == 150
    slot = 3000 / 6
    assert all(i * slot <= w.start_frame and w.start_frame + w.frames <= (i + 1) * slot
               for i, w in enumerate(windows))  # fmt: skip
    # short titles: windows at least a second long, fewer of them
    assert [w.frames for w in pt.sample_windows(100, 25, share=0.05, windows=6)] == [25]
    assert sum(w.frames for w in pt.sample_windows(20, 25, share=0.05, windows=6)) == 20
    # long titles: at most MAX_SAMPLE_S in all
    long = pt.sample_windows(25 * 7200, 25, share=0.05, windows=12)
    assert sum(w.frames for w in long) <= pt.MAX_SAMPLE_S * 25
    # a window takes the start nearest its slot's middle that leaves it room
    starts = [0, 30, 240, 480, 700, 990]
    on = pt.sample_windows(1000, 25, share=0.1, windows=2, starts=starts)
    assert [w.start_frame for w in on] == [240, 700]


@pytest.fixture(scope="module")
def flat_and_noisy(clip: ClipFactory) -> tuple[Path, Path]:
    flat = clip("pt-flat.mp4", seconds=2, audio_tracks=0)
    noisy = clip("pt-noisy.mp4", seconds=2, audio_tracks=0, extra=("-vf", "noise=alls=40:allf=t"))
    return flat, noisy


def trials_of(src: Path, tmp: Path) -> list[pt.Point]:
    source = probe(src, Limits(), name=src.name)
    assert source.video is not None
    windows = pt.sample_windows(
        source.video.frames,
        float(source.video.fps),
        share=SPEC.sample_share,
        windows=SPEC.windows,
        starts=pt.window_starts(src, source),
    )
    points = []
    for codec, height in pt.trial_grid(SPEC, source):
        work = tmp / f"{src.stem}-{height}"
        work.mkdir()
        ladder = pt.trial_ladder(codec, height, SPEC.crfs, 1)
        points += pt.run_trials(
            src, source, windows, ladder, trial_frames=SPEC.trial_frames, work=work
        )
    return points


def test_a_flat_source_gets_fewer_bits_than_a_noisy_one(
    flat_and_noisy: tuple[Path, Path], tmp_path: Path
) -> None:
    flat, noisy = (pt.analyse(SPEC, trials_of(src, tmp_path)) for src in flat_and_noisy)
    for a in (flat, noisy):
        assert {(p.height, p.crf) for p in a.trials} == {
            (h, c) for h in (120, 240) for c in (24, 36)
        }
        assert all(p.bitrate_kbps > 0 and 0 <= p.vmaf <= 100 for p in a.trials)
        assert all(p in a.hulls["h264"] for p in a.picks["h264"])
    # at the same targets the noisy title needs more bits, rung by rung and in all: its
    # trials cost more at every height and CRF
    for target in (50.0, 70.0):
        f, n = (pt.pick(a.hulls["h264"], [target])[0] for a in (flat, noisy))
        assert f.bitrate_kbps < n.bitrate_kbps, (target, f, n)
    summed = [sum(p.bitrate_kbps for p in a.picks["h264"]) for a in (flat, noisy)]
    assert summed[0] < summed[1], summed
    rate = {(p.height, p.crf): p.bitrate_kbps for p in flat.trials}
    assert all(p.bitrate_kbps > rate[p.height, p.crf] for p in noisy.trials), (flat, noisy)


def test_window_starts_are_after_keyframes(clip: ClipFactory) -> None:
    src = clip("pt-gop.mp4", seconds=3, audio_tracks=0, extra=("-g", "25"))
    source = probe(src, Limits(), name=src.name)
    assert pt.window_starts(src, source) == [0, 1, 26, 51]


@pytest.mark.parametrize(
    ("auto", "message"),
    [
        ("3", "auto: must be a mapping such as {vmaf: [45, 95], max_rungs: 6}"),
        ("{vmaf: [90, 50]}", "auto.vmaf: [90, 50] is not valid: must be [min, max]"),
        ("{vmaf: 80}", "auto.vmaf: 80 is not valid"),
        ("{max_rungs: 0}", "auto.max_rungs: 0 is not valid: must be an integer from 1 to 20"),
        ("{codecs: [h263]}", "auto.codecs[0]: 'h263' is not valid; valid values: h264, hevc"),
        ("{codecs: [h264, h264]}", "auto.codecs[1]: 'h264' is listed twice"),
        ("{codecs: []}", "auto.codecs: [] is not valid: must be a list of: h264"),
        ("{heights: [361]}", "auto.heights[0]: 361 is not valid: must be even"),
        ("{heights: [32]}", "auto.heights[0]: 32 is not valid: must be an integer from 64"),
        ("{crfs: [60]}", "auto.crfs[0]: 60 is not valid: must be an integer from 0 to 51"),
        ("{codecs: [av1], crfs: [60]}", None),
        ("{crfs: []}", "auto.crfs: [] is not valid: must be a list of CRFs"),
        (
            "{sample_share: 2}",
            "auto.sample_share: 2 is not valid: must be a number from 0.005 to 1",
        ),
        ("{windows: 0}", "auto.windows: 0 is not valid"),
        ("{trial_frames: 1}", "auto.trial_frames: 1 is not valid"),
        ("{targets: [60, 120]}", "auto.targets[1]: 120 is not valid"),
        ("{targets: []}", "auto.targets: [] is not valid: must be a list of 1-20 VMAF targets"),
        ("{targets: [60], vmaf: [40, 90]}", "auto.vmaf: give either 'targets' or 'vmaf'"),
        ("{vmaf: [40, 90], preset: slow}", "auto.preset: unknown key 'preset'; valid keys:"),
    ],
)
def test_bad_auto_specs_are_clear_errors(auto: str, message: str | None) -> None:
    import yaml

    doc = {"name": "x", "auto": yaml.safe_load(auto)}
    if message is None:
        assert parse_ladder(doc, source="l.yaml").auto is not None
        return
    with pytest.raises(LadderError) as info:
        parse_ladder(doc, source="l.yaml")
    assert any(p.startswith(f"l.yaml: {message}") for p in info.value.problems), info.value.problems


def test_auto_specs_load() -> None:
    builtin = load_ladder("auto")
    assert builtin.auto == AutoSpec() and not builtin.video and builtin.audio
    tiny = load_ladder(TINY_LADDER)
    assert tiny.auto == replace(SPEC, heights=(120, 240, 480))
    targeted = parse_ladder({"name": "x", "auto": {"targets": [93, 60, 80]}})
    assert targeted.auto is not None
    assert targeted.auto.targets == (60, 80, 93) and targeted.auto.max_rungs == 3
    assert pt.targets(targeted.auto) == (60, 80, 93)
    video = {"name": "v", "codec": "h264", "height": 360, "maxrate_kbps": 500}
    with pytest.raises(LadderError, match=r"either 'auto' .* or 'video'"):
        parse_ladder({"name": "x", "auto": {}, "video": [video]})


def test_transcode_with_a_per_title_ladder(clip: ClipFactory, tmp_path: Path) -> None:
    ladder = tmp_path / "tiny-auto.yaml"
    ladder.write_text(TINY_LADDER)
    src = clip("pt-title.mp4", seconds=3)  # 320x240
    proc = subprocess.run(
        [
            sys.executable, "-m", "reelay.cli", "transcode", str(src), "--ladder", str(ladder),
            "--qc", "5", "--json", "--home", str(tmp_path / "h"),
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "published" and report["ladder"] == "tiny-auto"
    made = report["per_title"]
    assert made["spec"]["heights"] == [120, 240, 480]
    assert {(t["height"], t["crf"]) for t in made["trials"]} == {
        (h, c) for h in (120, 240) for c in (24, 36)
    }  # 480 is above the source: never tried, never a rung
    hull = [pt.Point(**p) for p in made["hull"]["h264"]]
    picks = [pt.Point(**p) for p in made["picks"]["h264"]]
    assert all(p in hull for p in picks)
    assert set(made["curves"]["h264"]) == {"120", "240"}
    assert made["targets"] == [30.0, 60.0, 90.0] and len(made["windows"]) >= 1
    videos = [r for r in report["renditions"] if r["kind"] == "video"]
    assert [r["name"] for r in videos] == [r["name"] for r in made["ladder"]]
    assert [(r["height"], r["crf"]) for r in made["ladder"]] == [(p.height, p.crf) for p in picks]
    assert all(r["height"] <= 240 and r["width"] <= 320 for r in videos)
    assert all(r["display_vmaf"] is not None and r["frames"] == 75 for r in videos)
    assert report["timings"]["analyse"] > 0


def test_a_source_without_video_gets_the_ladders_audio(tmp_path: Path) -> None:
    from reelay.media.samples import make_clip
    from reelay.media.transcode import transcode

    src = make_clip(tmp_path / "pt-audio.mp4", seconds=2, video=None)
    report = transcode(src, home=tmp_path / "h", ladder=TINY_LADDER)
    assert report["status"] == "published", report.get("error")
    assert [r["name"] for r in report["renditions"]] == ["aac64-0"]
    assert report["per_title"] is None  # nothing to try
