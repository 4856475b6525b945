"""Seams: at each chunk boundary, does the rendition show the source's frames in order?

An encode scores its chunk against its own input, so a chunk that starts one frame
early or late (a duplicated or a dropped frame at the seam, a frame-rate conversion that
picked other frames mid-title than a whole decode picks) looks perfect to it. Here the
two frames on either side of each boundary are compared with the source decoded
independently, from well before the boundary: frame ``n`` of the rendition must look
more like the source's frame ``n`` than like its neighbours ``n-1`` or ``n+1``. Where
the source barely changes (a still shot) the comparison cannot tell, and passes.
"""

from __future__ import annotations

from pathlib import Path

from reelay.media._ffmpeg import run_ffmpeg, source_input
from reelay.media.encode import prepare_filter
from reelay.media.plan import Plan, Rendition
from reelay.media.probe import SourceInfo

#: How far before a boundary the source is decoded from: more than the encodes' own
#: margin, so that this decode starts elsewhere than the chunk's did.
LEAD_S = 3.0
#: How much better (PSNR-Y, dB) a neighbour must match than the frame itself to count
#: as shifted: encoding noise moves PSNR by far less between adjacent frames.
MARGIN_DB = 1.0


def seam_faults(
    rendition_path: Path,
    start_s: float,
    src: Path,
    source: SourceInfo,
    plan: Plan,
    rendition: Rendition,
    work: Path,
) -> list[str]:
    """What is wrong at the rendition's chunk boundaries (empty: nothing); each fault
    names the rendition, the chunk, the time and the frame. ``start_s``: the time of
    the rendition's first frame."""
    faults = []
    for chunk in plan.chunks[1:]:
        shown = _shifts(
            rendition_path, start_s, src, source, plan, rendition, chunk.start_frame, work
        )
        for frame, shift in shown:
            what = "repeats an earlier frame" if shift < 0 else "skips a frame"
            faults.append(
                f"{rendition.name} seam before chunk {chunk.index} "
                f"({plan.seconds(chunk.start_frame):.2f} s): frame {frame} {what} "
                f"(it shows the source's frame {frame + shift})"
            )
    return faults


def _shifts(
    rendition_path: Path,
    start_s: float,
    src: Path,
    source: SourceInfo,
    plan: Plan,
    rendition: Rendition,
    boundary: int,
    work: Path,
) -> list[tuple[int, int]]:
    """(frame, shift) for each of the frames ``boundary - 1`` and ``boundary`` that
    matches the source's frame ``frame + shift`` better than its own."""
    v = source.video
    assert v is not None
    first = boundary - 2  # the source's frames first .. first + 3 around the two
    # Near the start, a decode of the title from its first frame (as chunk 0's encode
    # does); further on, one from LEAD_S before the frames (as no encode did).
    whole = plan.seconds(first) <= LEAD_S
    seek = 0.0 if whole else v.start_s + plan.seconds(first) - LEAD_S
    prepare = (
        f"{prepare_filter(plan, source)},trim=start_frame={first},setpts=PTS-STARTPTS"
        if whole
        else prepare_filter(plan, source, start_frame=first, seek_s=seek)
    )
    size = f"scale={rendition.width}:{rendition.height}:flags=bicubic,setsar=1,format=yuv420p"
    stats = [work / f"seam-{boundary}-{k}.txt" for k in range(3)]
    graph = [
        "[0:v]trim=end_frame=2,setpts=PTS-STARTPTS,setsar=1,format=yuv420p,split=3[g0][g1][g2]",
        f"[1:v]{prepare},{size},trim=end_frame=4,split=3[r0][r1][r2]",
    ]
    for k in range(3):  # the rendition's two frames against the source's, shifted by k - 1
        graph += [
            f"[r{k}]trim=start_frame={k}:end_frame={k + 2},setpts=PTS-STARTPTS[s{k}]",
            f"[g{k}][s{k}]psnr=stats_file={stats[k].as_posix()}[o{k}]",
        ]
    args = [
        *("-ss", f"{start_s + plan.seconds(boundary - 1) - 0.5 / plan.fps:.6f}"),
        *("-i", str(rendition_path)),
        *source_input(src, seek_s=seek),
        *("-filter_complex", ";".join(graph)),
        *(arg for k in range(3) for arg in ("-map", f"[o{k}]")),
        *("-f", "null", "-"),
    ]
    run_ffmpeg(args, input=f"seam at frame {boundary} of {rendition.name}")
    psnr = [_psnr_y(path) for path in stats]
    shifts = []
    for j in range(2):
        aligned = psnr[1][j]
        best = max((-1, 1), key=lambda shift: psnr[1 + shift][j])
        if psnr[1 + best][j] > aligned + MARGIN_DB:
            shifts.append((boundary - 1 + j, best))
    return shifts


def _psnr_y(stats: Path) -> list[float]:
    values = []
    for line in stats.read_text().splitlines():
        fields = dict(f.split(":", 1) for f in line.split())
        values.append(float(fields["psnr_y"]))
    stats.unlink()
    return values
