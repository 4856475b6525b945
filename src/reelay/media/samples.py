"""Generated clips: for the demo, the tests and the benchmarks (real ffmpeg encodes).

`make_clip` writes a clip of moving test patterns with a tone, in the form asked for:
container, codec, size, frame rate, interlacing, rotation, bit depth, several audio
tracks, subtitles, or none of video or audio.
"""

from __future__ import annotations

import os
from pathlib import Path

from reelay.media._ffmpeg import run_ffmpeg

VIDEO_CODECS = {
    "h264": ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18"],
    "hevc": ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
    "prores": ["-c:v", "prores_ks", "-profile:v", "1"],
    "mpeg2": ["-c:v", "mpeg2video", "-q:v", "3"],
    "vp9": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
}


def make_clip(
    path: str | os.PathLike[str],
    *,
    seconds: float = 4.0,
    size: str = "320x240",
    fps: str = "25",
    video: str | None = "h264",
    audio_tracks: int = 1,
    audio_channels: int = 2,
    languages: tuple[str, ...] = ("eng", "fra", "deu"),
    subtitles: bool = False,
    interlaced: bool = False,
    rotation: int = 0,
    ten_bit: bool = False,
    vfr: bool = False,
    extra: tuple[str, ...] = (),
) -> Path:
    """Write a clip with moving pictures (testsrc2) and tones; return its path."""
    path = Path(path)
    inputs: list[str] = []
    maps: list[str] = []
    n = 0
    if video:
        # testsrc2 rounds odd sizes down: draw even, then scale to the size asked for
        w, h = (int(d) for d in size.split("x"))
        pattern = f"testsrc2=size={w + w % 2}x{h + h % 2}:rate={fps}:duration={seconds}"
        inputs += ["-f", "lavfi", "-i", f"{pattern},scale={w}:{h}"]
        maps += ["-map", f"{n}:v"]
        n += 1
    for t in range(audio_tracks):
        layout = {1: "mono", 2: "stereo", 6: "5.1"}[audio_channels]
        inputs += [
            "-f", "lavfi", "-i",
            f"sine=frequency={440 + 220 * t}:sample_rate=48000:duration={seconds},"
            f"aformat=channel_layouts={layout}",
        ]  # fmt: skip
        maps += ["-map", f"{n}:a"]
        n += 1
    if subtitles:
        srt = path.with_suffix(".srt")
        srt.write_text(
            "1\n00:00:00,500 --> 00:00:01,500\nHello\n\n2\n00:00:02,000 --> 00:00:03,000\nWorld\n"
        )
        inputs += ["-i", str(srt)]
        maps += ["-map", f"{n}:s"]
    codec: list[str] = []
    if video:
        codec += VIDEO_CODECS[video]
        odd = w % 2 or h % 2  # 4:2:0 needs even sizes
        pix = "yuv422p10le" if video == "prores" else ("yuv420p10le" if ten_bit else "yuv420p")
        pix = "yuv444p" if odd else pix
        codec += ["-pix_fmt", pix]
        if interlaced:
            codec += ["-vf", "setfield=tff", "-flags", "+ilme+ildct", "-x264-params", "tff=1"]
        if vfr:
            # drop every third frame's neighbour: timestamps no longer evenly spaced
            codec += ["-vf", "select='not(eq(mod(n\\,3)\\,1))'", "-fps_mode", "vfr"]
    if audio_tracks:
        codec += ["-c:a", "aac", "-b:a", "96k"]
        for t in range(audio_tracks):
            codec += [f"-metadata:s:a:{t}", f"language={languages[t % len(languages)]}"]
    if subtitles:
        codec += [
            "-c:s",
            "mov_text" if path.suffix in (".mp4", ".mov") else "srt",
            "-metadata:s:s:0",
            "language=eng",
        ]
    run_ffmpeg([*inputs, *maps, *codec, *extra, str(path)], input=f"generating {path.name}")
    if rotation:
        rotated = path.with_name(f"rotated-{path.name}")
        run_ffmpeg(
            ["-display_rotation:v:0", str(rotation), "-i", str(path), "-c", "copy", str(rotated)],
            input=f"rotating {path.name}",
        )
        rotated.replace(path)
    return path
