"""``reelay demo``: a generated clip with motion and audio through the whole pipeline."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from reelay.media.samples import make_clip
from reelay.media.transcode import progress_bar, transcode


def run_media_demo(home: Path | None = None) -> int:
    """Run the demo; return 0 when the title is published."""
    home = home or Path(tempfile.mkdtemp(prefix="reelay-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    clip = make_clip(
        home / "demo-clip.mp4",
        seconds=12,
        size="640x360",
        fps="25",
        subtitles=True,
    )
    click.echo(f"reelay demo: home {home}")
    click.echo(f"made {clip.name}: 12 s of 640x360 at 25 fps, stereo AAC, English subtitles")
    click.echo("uploading it to s3://media/ingest/ starts the pipeline (ladder 'demo', 4 s chunks)")
    report = transcode(
        clip,
        home=home,
        ladder="demo",
        chunk_seconds=4,
        on_progress=progress_bar() if sys.stderr.isatty() else None,
    )
    if sys.stderr.isatty():
        click.echo("", err=True)
    click.echo(
        f"title {report['title_id']}: {report['status']} in {report['timings']['wall_s']:.1f} s"
    )
    for r in report["renditions"]:
        quality = (
            f", VMAF {r['fidelity_vmaf']} (fidelity) {r['display_vmaf']} (display), "
            f"PSNR {r['psnr']} dB"
            if r.get("fidelity_vmaf") is not None
            else ""
        )
        size = f" {r['width']}x{r['height']}" if r.get("width") else ""
        click.echo(f"  {r['name']:8} {r['codec']}{size} {r['bitrate_kbps']} kbit/s{quality}")
    if report["status"] != "published":
        click.echo(f"demo FAILED: {report.get('error')}", err=True)
        return 1
    hls = report["outputs"]["hls"]
    click.echo(f"published: {hls}")
    click.echo(f"           {report['outputs']['dash']}")
    click.echo("watch it:")
    click.echo(f"  mpv {hls}     # or vlc, ffplay: any HLS player")
    click.echo(
        f"  python3 -m http.server -d {Path(hls).parent} 8000   # then open "
        "http://127.0.0.1:8000/master.m3u8 in Safari or an hls.js player"
    )
    click.echo("or in the dashboard (timeline, QC charts, a player), at the URL it prints:")
    click.echo(f"  reelay up --app media --home {home}")
    return 0
