"""reelay's media pipeline against one hand-written ffmpeg command, same source, same ladder.

    .venv/bin/python benchmarks/ladder.py [--seconds 40] [--chunk-seconds 20]

The source is a high-bitrate 1280x720 H.264 clip with noise (hard to decode, as a
mezzanine is) and stereo audio. The ladder is the issue's ``bench``: 360p and 720p H.264
(veryfast, capped CRF 23, 4 s segments) plus AAC 128k. In one run, on this machine:

1. by hand: one ffmpeg command that decodes once, ``split``s to both encoders and writes
   fMP4 HLS (the best a user does by hand);
2. reelay ``transcode`` with its default settings: renditions sharing a decode per
   chunk, QC on (one frame in 25 scored inside the encodes);
3. the same with QC off (``--qc off``); the difference is QC's share;
4. reelay with one task per chunk and rendition (``--group 1``), QC off;
5. the quality cost of chunking: VMAF and bit rate of the 720p rendition encoded in
   chunks against one encoded whole (one chunk), same settings.

It prints wall times, ratios against the hand-written command, and the CPU busy share
of reelay's encode phase (from /proc/stat, both cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from reelay.media._ffmpeg import ffmpeg_path
from reelay.media.transcode import transcode

LADDER = """name: bench
segment_seconds: 4
video:
  - {name: 360p, codec: h264, height: 360, crf: 23, maxrate_kbps: 800, preset: veryfast}
  - {name: 720p, codec: h264, height: 720, crf: 23, maxrate_kbps: 3000, preset: veryfast}
audio:
  - {name: aac128, codec: aac, bitrate_kbps: 128, channels: 2}
"""


def make_source(path: Path, seconds: int) -> None:
    subprocess.run(
        [
            ffmpeg_path(),
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1280x720:rate=25:duration={seconds},noise=alls=12:allf=t",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
            "-ac",
            "2",
            str(path),
        ],
        check=True,
    )


def by_hand(src: Path, out: Path) -> float:
    """One command: decode once, split, both encoders, fMP4 HLS with a master playlist."""
    out.mkdir()
    x264 = [
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-g",
        "100",
        "-keyint_min",
        "100",
        "-sc_threshold",
        "0",
    ]
    cmd = [
        ffmpeg_path(), "-v", "error", "-y", "-i", str(src),
        "-filter_complex", "[0:v]split=2[a][b];[a]scale=-2:360[v0];[b]scale=-2:720[v1]",
        "-map", "[v0]", "-map", "[v1]", "-map", "0:a",
        "-c:v:0", "libx264", *x264, "-maxrate:v:0", "800k", "-bufsize:v:0", "1600k",
        "-c:v:1", "libx264", *x264, "-maxrate:v:1", "3000k", "-bufsize:v:1", "6000k",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "hls", "-hls_time", "4", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,agroup:a v:1,agroup:a a:0,agroup:a",
        str(out / "stream_%v.m3u8"),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - started


class CpuSampler:
    """Samples /proc/stat; `busy(t0, t1)` is the busy share of all cores between two times."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
            idle = fields[3] + fields[4]
            self.samples.append((time.time(), sum(fields), idle))
            time.sleep(0.1)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def busy(self, t0: float, t1: float) -> float:
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return float("nan")
        total = inside[-1][1] - inside[0][1]
        idle = inside[-1][2] - inside[0][2]
        return 1 - idle / total if total else float("nan")


def encode_window(home: Path, title_id: str) -> tuple[float, float]:
    """The first start and last end of the encode tasks, from their records in the store."""
    spans = []
    work = home / "objects" / "media" / "work" / title_id
    for f in [*work.glob("times/encode-*.json"), *work.glob("audio/*.json")]:
        record = json.loads(f.read_text())
        spans.append((record["started"], record["finished"]))
    return min(s for s, _ in spans), max(e for _, e in spans)


def reelay_run(
    src: Path, ladder: Path, root: Path, name: str, cpu: CpuSampler, **options: object
) -> dict:
    home = root / name
    started = time.perf_counter()
    report = transcode(src, home=home, ladder=str(ladder), **options)  # type: ignore[arg-type]
    wall = time.perf_counter() - started
    assert report["status"] == "published", report.get("error")
    t0, t1 = encode_window(home, report["title_id"])
    return {"wall_s": wall, "report": report, "encode_s": t1 - t0, "busy": cpu.busy(t0, t1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--chunk-seconds", type=float, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="reelay-bench-"))
    src = root / "source.mp4"
    ladder = root / "bench.yaml"
    ladder.write_text(LADDER)
    make_source(src, args.seconds)
    rate = os.path.getsize(src) * 8 / args.seconds / 1e6
    print(f"source: {args.seconds} s 1280x720 H.264 at {rate:.1f} Mbit/s, {os.cpu_count()} cores")
    hand = by_hand(src, root / "by-hand")
    with CpuSampler() as cpu:
        checked = reelay_run(src, ladder, root, "checked", cpu, chunk_seconds=args.chunk_seconds)
        shared = reelay_run(
            src, ladder, root, "shared", cpu, chunk_seconds=args.chunk_seconds, qc="off"
        )
        split = reelay_run(
            src,
            ladder,
            root,
            "split",
            cpu,
            chunk_seconds=args.chunk_seconds,
            qc="off",
            group_size=1,
        )
    rows = [("one ffmpeg command, decode once, split", hand, None, None)]
    rows.append(
        (
            f"reelay defaults: {args.chunk_seconds:g} s chunks, QC on",
            checked["wall_s"],
            checked["encode_s"],
            checked["busy"],
        )
    )
    rows.append(
        (
            f"reelay, {args.chunk_seconds:g} s chunks, QC off",
            shared["wall_s"],
            shared["encode_s"],
            shared["busy"],
        )
    )
    rows.append(
        (
            f"reelay, {args.chunk_seconds:g} s chunks x rendition tasks",
            split["wall_s"],
            split["encode_s"],
            split["busy"],
        )
    )
    print(f"{'path':52} {'wall s':>7} {'ratio':>6} {'encode s':>9} {'CPU busy':>9}")
    for name, wall, enc, busy in rows:
        extra = f"{enc:9.2f} {busy * 100:8.0f}%" if enc is not None else f"{'':9} {'':9}"
        print(f"{name:52} {wall:7.2f} {wall / hand:6.2f} {extra}")
    share = 1 - shared["wall_s"] / checked["wall_s"]
    print(f"QC's share of the default run's wall time: {share * 100:.0f}%")
    # the quality cost of chunking, 720p: chunked against one whole encode, same settings
    chunked = transcode(
        src,
        home=root / "q-chunked",
        ladder=str(ladder),
        chunk_seconds=args.chunk_seconds / 2,
        qc=4,
    )
    whole = transcode(
        src,
        home=root / "q-whole",
        ladder=str(ladder),
        chunk_seconds=args.seconds * 2,
        qc=4,
    )

    def top(report: dict) -> dict:
        return next(r for r in report["renditions"] if r["name"] == "720p")

    c, w = top(chunked), top(whole)
    print(
        f"quality cost of chunking (720p, {chunked['chunks']} chunks vs 1): "
        f"VMAF {c['display_vmaf']} vs {w['display_vmaf']} "
        f"({c['display_vmaf'] - w['display_vmaf']:+.2f}), "
        f"{c['bitrate_kbps']} vs {w['bitrate_kbps']} kbit/s "
        f"({(c['bitrate_kbps'] / w['bitrate_kbps'] - 1) * 100:+.1f}%)"
    )
    print(f"work in {root}")


if __name__ == "__main__":
    main()
