"""``reelay transcode``: the media app's command, added to ``reelay`` by its plugin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from reelay._text import plural
from reelay.cli import _dump, _table, friendly, json_option, state_option


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ladder",
    help="A built-in ladder (demo, default, full; auto: per title) or a ladder file.",
)
@click.option("--rules", help="A publish-rule file (default: the built-in rules).")
@click.option("--chunk-seconds", type=click.FloatRange(1, 86400), help="Chunk length (300).")
@click.option(
    "--group",
    type=click.IntRange(0, 1000),
    help="Renditions per encode task; 0 (default): all share one decode.",
)
@click.option(
    "--qc",
    metavar="N|full|off",
    callback=lambda _ctx, _param, value: _checked_qc(value),
    help="Quality control: score one frame in N of every rendition (25), all, or none.",
)
@click.option("--scenes", is_flag=True, help="Put chunk boundaries on shot changes.")
@click.option("--executor", help="local, local:N, ray:auto, ray:local or ray://HOST:PORT.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes.")
@json_option
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="The reelay home (default: a fresh temporary directory).",
)
@state_option
@friendly
def transcode(
    source: Path,
    ladder: str | None,
    rules: str | None,
    chunk_seconds: float | None,
    group: int | None,
    qc: str | None,
    scenes: bool,
    executor: str | None,
    workers: int | None,
    as_json: bool,
    home: Path | None,
    state_url: str | None,
) -> None:
    """Put SOURCE through the media pipeline and wait: exit 0 published, 3 rejected, 1 else."""
    from reelay.media.transcode import EXIT_CODES, progress_bar, transcode

    draw = progress_bar() if sys.stderr.isatty() and not as_json else None
    report = transcode(
        source,
        home=home,
        state_url=state_url,
        ladder=ladder,
        rules=rules,
        chunk_seconds=chunk_seconds,
        group_size=group,
        qc=qc,
        scenes=scenes,
        executor=executor,
        workers=workers,
        on_progress=draw,
    )
    if draw is not None:
        click.echo("", err=True)
    if as_json:
        _dump(report)
    else:
        _print_report(report)
    sys.exit(EXIT_CODES.get(report["status"], 1))


def _or_dash(value: Any) -> Any:
    return "-" if value is None else value


def _print_report(report: dict[str, Any]) -> None:
    click.echo(f"title {report['title_id']}: {report['status']}")
    if report.get("error"):
        click.echo(f"  {report['error']['code']}: {report['error']['message']}")
    src = report.get("source")
    if src:
        click.echo(
            f"  source: {src['duration_s']:.2f} s, {src['width']}x{src['height']} "
            f"@ {src['fps']} fps, {plural(src['frames'], 'frame')}, "
            f"{plural(src['streams'], 'stream')}"
        )
    rows = [
        (
            r["name"],
            r["codec"],
            f"{r['width']}x{r['height']}" if r.get("width") else "-",
            r.get("bitrate_kbps") or "-",
            r.get("frames") or "-",
            *(_or_dash(r.get(k)) for k in ("fidelity_vmaf", "psnr", "display_vmaf")),
        )
        for r in report.get("renditions", [])
    ]
    if rows:
        _table(
            rows,
            ("RENDITION", "CODEC", "SIZE", "KBIT/S", "FRAMES", "FIDELITY", "PSNR", "DISPLAY"),
        )

    for kind, where in report.get("outputs", {}).items():
        click.echo(f"  {kind}: {where}")
    timings = report.get("timings", {})
    if timings:
        click.echo("  timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    click.echo(f"  home: {report.get('home')}")


def _checked_qc(value: str | None) -> str | None:
    from reelay.media.config import qc_every

    try:
        if value is not None:
            qc_every(value)
        return value
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
