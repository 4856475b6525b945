"""Quality control judges the encode: fidelity gates, display quality is reported; a
chunk damaged after its encode measured it is found and encoded again on its own; audio
that drifted from the video holds the title, naming it; a chunk a frame off is found at
its seams."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media._ffmpeg import run_ffmpeg
from reelay.media.encode import concatenate, encode_chunk, stream_stats
from reelay.media.ladder import load_ladder
from reelay.media.plan import make_plan
from reelay.media.probe import probe
from reelay.media.seams import seam_faults
from reelay.media.titles import Titles
from reelay.media.transcode import transcode
from reelay.runtime import Runtime, load_app
from reelay.runtime.app import App

from .conftest import ClipFactory

pytestmark = pytest.mark.media

LOW = """name: low
segment_seconds: 2
video:
  - {name: 240p, codec: h264, height: 240, crf: 23, maxrate_kbps: 400, preset: veryfast}
"""
FROZEN = "trim=end_frame=1,loop=loop=49:size=1:start=0,setpts=N/25/TB"  # 50 frames of one
BROKEN = """name: broken
segment_seconds: 2
video:
  - {name: 240p, codec: h264, height: 240, crf: 23, maxrate_kbps: 400, preset: veryfast}
  - {name: smeared, codec: h264, height: 360, crf: 51, maxrate_kbps: 50, preset: veryfast}
"""


def test_a_low_ladder_chosen_on_purpose_is_published_and_a_broken_rung_is_held(
    clip: ClipFactory, tmp_path: Path, separate_state: Callable[[], str]
) -> None:
    src = clip("wide.mp4", seconds=4, size="1280x720")
    options: dict[str, Any] = {"chunk_seconds": 2, "qc": 2}
    low = transcode(src, home=tmp_path / "low", ladder=LOW, **options)
    assert low["status"] == "published", low.get("error")
    (r240,) = [r for r in low["renditions"] if r["kind"] == "video"]
    # Against the source at its own size, the 240p encode is right; upscaled to the
    # 720p display, it looks like 240p. The first gates, the second is reported.
    assert r240["fidelity_vmaf"] > 80 and r240["display_vmaf"] < r240["fidelity_vmaf"] - 10
    # The same bytes again, so a state of its own: on one state they are one title.
    broken = transcode(
        src, home=tmp_path / "broken", ladder=BROKEN, state_url=separate_state(), **options
    )
    assert broken["status"] == "held"
    assert broken["reasons"] and all(
        reason.startswith("smeared chunk ") and "fidelity VMAF" in reason
        for reason in broken["reasons"]
    ), broken["reasons"]
    assert "smeared chunk 0 (0.00-2.00 s): fidelity VMAF" in broken["reasons"][0]
    assert "smeared chunk 1 (2.00-4.00 s): fidelity VMAF" in broken["reasons"][1]


# -- damage done after the encode measured it ---------------------------------------------


def staged(function: str) -> Callable[[App], App]:
    """The media app with ``function`` disabled (reserved concurrency 0): its invocations
    wait, queued, for a runtime with the whole app."""

    def hold(app: App) -> App:
        spec = dataclasses.replace(app.functions[function], reserved_concurrency=0)
        return dataclasses.replace(app, functions=app.functions | {function: spec})

    return hold


def run_in_two_stages(
    src: Path, home: Path, held: str, damage: Callable[[Client, str], None]
) -> dict[str, Any]:
    """Run a title until ``held`` would start, ``damage`` it, then finish it."""
    app = load_app("media").with_environment(
        {"REELAY_MEDIA_LADDER": "demo", "REELAY_MEDIA_CHUNK_SECONDS": "2"}
        | {"REELAY_MEDIA_QC": "1"}
    )
    settings = Settings.load(home, retry_delays=(0.5, 1.0))
    with Runtime(staged(held)(app), settings, max_workers=2) as rt:
        rt.start()
        info = rt.client.put_object("media", f"ingest/{src.name}", src)
        deadline = time.monotonic() + 120
        while not rt.client.state.invocations(function=held) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rt.client.state.invocations(function=held), f"{held} was never invoked"
        rt.wait_idle(0.5)  # whatever else runs now (a sibling stage) may finish
        (title,) = Titles(rt.client.state).all()
        damage(rt.client, title["id"])
    with Runtime(app, settings, max_workers=2) as rt:
        rt.start()
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            (title,) = Titles(rt.client.state).all()
            if title["status"] not in ("submitted", "processing"):
                break
            time.sleep(0.2)
        rt.wait_idle(30)
        report = json.loads(rt.client.get_object("media", f"reports/{title['id']}.json"))
        events = [
            json.loads(e.body)["detail"]
            for e in rt.client.state.events(limit=10_000)
            if e.detail_type == "Media Chunk Re-encoded"
        ]
    assert info.key.endswith(src.name)
    return report | {"reencoded": events}


def ffmpeg_replace(client: Client, key: str, work: Path, *filters: str) -> None:
    """Replace the object at ``key`` (an mp4 chunk) with itself passed through ffmpeg."""
    original, damaged = work / "original.mp4", work / "damaged.mp4"
    client.download("media", key, original)
    run_ffmpeg(["-i", str(original), *filters, "-y", str(damaged)], input="damage")
    client.put_object("media", key, damaged)


def test_chunks_damaged_after_their_encode_are_found_and_encoded_again(
    clip: ClipFactory, tmp_path: Path
) -> None:
    src = clip("damaged.mp4", seconds=6, size="640x360")
    work = tmp_path / "work"
    work.mkdir()

    def damage(client: Client, title: str) -> None:
        chunk = f"work/{title}/chunks/{{}}/{{:05d}}.mp4"
        # re-encoded at an absurd CRF; black; frozen on its first frame; gone
        ffmpeg_replace(client, chunk.format("360p", 0), work, "-c:v", "libx264", "-crf", "51")
        ffmpeg_replace(client, chunk.format("360p", 1), work, "-vf", "lutyuv=y=16:u=128:v=128")
        ffmpeg_replace(client, chunk.format("360p", 2), work, "-vf", FROZEN)
        client.delete_object("media", chunk.format("240p", 1))

    report = run_in_two_stages(src, tmp_path / "home", "assemble", damage)
    assert report["status"] == "published", report.get("error")
    reasons = sorted(e["reason"] for e in report["reencoded"])
    assert reasons == [
        "240p chunk 1 (2.00-4.00 s) is missing",
        "360p chunk 0 (0.00-2.00 s) changed after its encode measured it",
        "360p chunk 1 (2.00-4.00 s) changed after its encode measured it",
        "360p chunk 2 (4.00-6.00 s) changed after its encode measured it",
    ]
    for r in (r for r in report["renditions"] if r["kind"] == "video"):
        assert r["frames"] == 150
        assert min(c["vmaf"] for c in r["chunks"]) > 80, r["chunks"]


def test_audio_shifted_after_its_encode_holds_the_title_naming_it(
    clip: ClipFactory, tmp_path: Path
) -> None:
    src = clip("shifted.mp4", seconds=4, size="640x360")
    work = tmp_path / "work"
    work.mkdir()

    def shift(client: Client, title: str) -> None:
        key = f"work/{title}/audio/aac96-0.mp4"
        original, shifted = work / "audio.mp4", work / "shifted.mp4"
        client.download("media", key, original)
        run_ffmpeg(
            ["-itsoffset", "0.2", "-i", str(original), "-c", "copy", "-y", str(shifted)],
            input="shift",
        )
        client.put_object("media", key, shifted)

    report = run_in_two_stages(src, tmp_path / "home", "package", shift)
    assert report["status"] == "held"
    drifts = [r for r in report["reasons"] if "audio and video are" in r]
    assert drifts and all("are 200 ms apart (limit 100)" in r for r in drifts), report["reasons"]


@pytest.mark.parametrize(
    ("shift", "fault"), [(1, "skips a frame"), (-1, "repeats an earlier frame")]
)
def test_a_chunk_that_starts_a_frame_off_is_found_at_its_seams(
    clip: ClipFactory, tmp_path: Path, shift: int, fault: str
) -> None:
    src = clip("seams.mp4", seconds=6, size="640x360")
    source = probe(src)
    the_plan = make_plan("t", source, load_ladder("demo"), chunk_seconds=2)
    r = the_plan.renditions[0]

    def rendition(shifted: int) -> Path:
        parts = []
        for c in the_plan.chunks:
            start = c.start_frame + (shifted if c.index == 1 else 0)
            out = tmp_path / f"{shifted}-{c.index}"
            out.mkdir()
            paths, _ = encode_chunk(
                src, source, the_plan, dataclasses.replace(c, start_frame=start), [r], out
            )
            parts.append(paths[r.name])
        return concatenate(parts, tmp_path / f"{shifted}.mp4")

    right, wrong = rendition(0), rendition(shift)
    assert seam_faults(right, stream_stats(right).start_s, src, source, the_plan, r, tmp_path) == []
    faults = seam_faults(wrong, stream_stats(wrong).start_s, src, source, the_plan, r, tmp_path)
    assert faults == [
        f"240p seam before chunk 1 (2.00 s): frame 50 {fault} (it shows the source's frame "
        f"{50 + shift})",
        f"240p seam before chunk 2 (4.00 s): frame 99 {fault} (it shows the source's frame "
        f"{99 + shift})",
    ]


def test_sampled_quality_control_scores_what_every_frame_scores(
    clip: ClipFactory, tmp_path: Path
) -> None:
    """One frame in 10, in pairs of neighbours, gives the VMAF of all frames (within half
    a point here); frames scored alone, 10 apart, look like fast motion to VMAF's motion
    feature and score several points higher."""
    src = clip("motion.mp4", seconds=4, size="640x360")
    source = probe(src)
    the_plan = make_plan("t", source, load_ladder(LOW), chunk_seconds=60)
    chunk = the_plan.chunks[0]

    def measured(every: int) -> tuple[float, float, int, int]:
        out = tmp_path / str(every)
        out.mkdir()
        _, quality = encode_chunk(
            src, source, the_plan, chunk, list(the_plan.renditions), out, qc_every=every
        )
        q = quality["240p"]
        return q.vmaf, q.display_vmaf, q.frames_scored, q.worst_frame

    every_frame, sampled = measured(1), measured(10)
    assert every_frame[2] == chunk.frames == 100
    assert sampled[2] == 10  # frames 0, 1, 20, 21 ... 80, 81
    assert abs(sampled[0] - every_frame[0]) < 0.5, (sampled, every_frame)
    assert abs(sampled[1] - every_frame[1]) < 0.5, (sampled, every_frame)
    assert sampled[3] % 20 in (0, 1)  # a frame it scored, by its number in the title
