"""Per-title ladders against the ``default`` ladder, on contrasting generated sources.

    .venv/bin/python benchmarks/per_title.py [--seconds 40] [--size 1280x720] [--builtin]

Three sources (ffmpeg lavfi, encoded as a high-quality H.264 mezzanine, CRF 16):

- ``flat``: ``testsrc2``, flat colours and sharp edges in motion (animation-like);
- ``motion``: a slow ``mandelbrot`` zoom (smooth gradients, detailed edges, continuous
  motion) with light temporal grain (natural-ish);
- ``grain``: ``testsrc2`` under heavy temporal noise (film grain at its worst).

For each, in one run:

1. ``reelay transcode`` with the ``default`` ladder: each rung's display VMAF (QC: the
   rendition upscaled to the source's size, at most 1080p) and bitrate;
2. ``reelay transcode`` with a per-title ladder (``auto``) whose targets are the display
   VMAF the default ladder reached at each of its rungs on that source ("at equal
   quality"); everything else is the built-in ``auto`` ladder's settings.

It prints, for each default rung, the cheapest per-title rung at least as good by
measured display VMAF (or the best one, flagged, if none is); the bits summed over the
default rungs and over those matched rungs, and over the per-title ladder's own rungs;
and the analysis's wall time against the encode stage's, both from the title's report.
With ``--builtin`` it also runs the built-in ``auto`` ladder (its own targets).

QC scores the titles with reelay's default sampling (``--qc`` to change it); trials and
titles score pairs of neighbouring frames, so their VMAF agrees with every frame's.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from reelay.media._ffmpeg import run_ffmpeg
from reelay.media.transcode import transcode

SOURCES = {
    "flat": "testsrc2=size={size}:rate=25:duration={seconds}",
    "motion": (
        "mandelbrot=size={size}:rate=25:end_pts={zoom},trim=duration={seconds},noise=alls=6:allf=t"
    ),
    "grain": "testsrc2=size={size}:rate=25:duration={seconds},noise=alls=25:allf=t+u",
}
AUTO = """name: auto-matched
segment_seconds: 6
auto:
  targets: [{targets}]
  codecs: [h264]
audio:
  - {{name: aac128, codec: aac, bitrate_kbps: 128, channels: 2}}
"""


def make_source(path: Path, kind: str, size: str, seconds: int) -> Path:
    if not path.exists():
        pattern = SOURCES[kind].format(size=size, seconds=seconds, zoom=seconds * 10)
        run_ffmpeg(
            [
                "-f", "lavfi", "-i", pattern,
                "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "192k", "-shortest", str(path),
            ],
            input=f"generating {path.name}",
        )  # fmt: skip
    return path


def videos(report: dict[str, Any]) -> list[dict[str, Any]]:
    assert report["status"] == "published", report.get("error")
    return [r for r in report["renditions"] if r["kind"] == "video"]


def compare(kind: str, src: Path, root: Path, qc: str | None, builtin: bool) -> dict[str, Any]:
    # Published whatever its quality: the figures are what is compared here.
    rules = root / "complete.yaml"
    rules.write_text("require:\n  renditions_complete: true\n")
    fixed = transcode(src, home=root / f"{kind}-default", ladder="default", rules=str(rules), qc=qc)
    base = videos(fixed)
    targets = ", ".join(
        f"{r['display_vmaf']:.2f}" for r in sorted(base, key=lambda r: r["display_vmaf"])
    )
    ladder = root / f"{kind}-auto.yaml"
    ladder.write_text(AUTO.format(targets=targets))
    auto = transcode(src, home=root / f"{kind}-auto", ladder=str(ladder), rules=str(rules), qc=qc)
    rungs = sorted(videos(auto), key=lambda r: r["bitrate_kbps"])
    rows = []
    for r in base:
        good = [a for a in rungs if a["display_vmaf"] >= r["display_vmaf"]]
        match = good[0] if good else max(rungs, key=lambda a: a["display_vmaf"])
        rows.append((r, match, bool(good)))
    plain = None
    if builtin:  # what `--ladder auto` gives, its own targets (VMAF 45 to 95, 6 rungs)
        own = transcode(src, home=root / f"{kind}-builtin", ladder="auto", rules=str(rules), qc=qc)
        plain = sorted(videos(own), key=lambda r: r["bitrate_kbps"])
    return {
        "kind": kind,
        "builtin": plain,
        "rows": rows,
        "rungs": rungs,
        "default_kbps": sum(r["bitrate_kbps"] for r in base),
        "matched_kbps": sum(m["bitrate_kbps"] for _, m, _ in rows),
        "own_kbps": sum(a["bitrate_kbps"] for a in rungs),
        "analyse_s": auto["timings"].get("analyse", 0.0),
        "encode_s": auto["timings"].get("encode", 0.0),
        "default_encode_s": fixed["timings"].get("encode", 0.0),
        "per_title": auto["per_title"],
    }


def size_of(r: dict[str, Any]) -> str:
    return f"{r['width']}x{r['height']}"


def show(c: dict[str, Any]) -> None:
    print(f"\n== {c['kind']}")
    print(f"{'default rung':14} {'size':>9} {'kbit/s':>8} {'VMAF':>6}   "
          f"{'per-title rung':14} {'size':>9} {'kbit/s':>8} {'VMAF':>6}")  # fmt: skip
    for r, m, ok in c["rows"]:
        flag = "" if ok else "  (below)"
        cells = [
            f"{x['name']:14} {size_of(x):>9} {x['bitrate_kbps']:8.0f} {x['display_vmaf']:6.2f}"
            for x in (r, m)
        ]
        print(f"{cells[0]}   {cells[1]}{flag}")
    met = sum(ok for _, _, ok in c["rows"])
    cheaper = sum(ok and m["bitrate_kbps"] <= r["bitrate_kbps"] for r, m, ok in c["rows"])
    saved = 1 - c["matched_kbps"] / c["default_kbps"]
    print(
        f"rungs at equal or higher VMAF: {met}/{len(c['rows'])} ({cheaper} of them for no more "
        f"bits); bits summed over the default "
        f"rungs: {c['default_kbps']:.0f} vs {c['matched_kbps']:.0f} kbit/s ({-saved:+.1%}); "
        f"the per-title ladder's own {len(c['rungs'])} rungs: {c['own_kbps']:.0f} kbit/s "
        f"({c['own_kbps'] / c['default_kbps'] - 1:+.1%})"
    )
    trials = c["per_title"]["trials"]
    print(
        f"analysis: {len(trials)} trials on {c['per_title']['sampled_frames']} frames "
        f"({c['per_title']['sampled_share']:.1%} of the title), {c['analyse_s']:.1f} s; "
        f"encode {c['encode_s']:.1f} s (default ladder: {c['default_encode_s']:.1f} s): "
        f"analysis = {c['analyse_s'] / c['encode_s']:.0%} of the per-title ladder's encode, "
        f"{c['analyse_s'] / c['default_encode_s']:.0%} of the default's"
    )
    if c["builtin"]:
        rungs = ", ".join(
            f"{r['name']} {r['bitrate_kbps']:.0f} kbit/s VMAF {r['display_vmaf']:.1f}"
            for r in c["builtin"]
        )
        total = sum(r["bitrate_kbps"] for r in c["builtin"])
        print(
            f"built-in auto ladder: {rungs}; {total:.0f} kbit/s in all "
            f"({total / c['default_kbps'] - 1:+.1%} against the default ladder)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--qc", help="Quality control: N (one frame in N), full or off.")
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--work", type=Path, help="Keep sources and homes here.")
    parser.add_argument("--builtin", action="store_true", help="Also run the built-in auto ladder.")
    args = parser.parse_args()
    root = args.work or Path(tempfile.mkdtemp(prefix="reelay-per-title-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.seconds} s {args.size} sources, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    results = []
    for kind in args.sources.split(","):
        src = make_source(root / f"{kind}.mp4", kind, args.size, args.seconds)
        results.append(compare(kind, src, root, args.qc, args.builtin))
        show(results[-1])
    (root / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(
        f"\n{time.perf_counter() - started:.0f} s in all; load average "
        f"{os.getloadavg()[0]:.1f}; work in {root}"
    )


if __name__ == "__main__":
    main()
