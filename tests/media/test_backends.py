"""The pipeline on its scale-out backends (a real S3-protocol server, a real local Ray),
and its scene-aligned mode."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.media._ffmpeg import run_ffmpeg
from reelay.media.transcode import transcode

from .conftest import ClipFactory
from .test_pipeline import decode

pytestmark = pytest.mark.media


@pytest.mark.s3
def test_on_an_s3_store(
    clip: ClipFactory, tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("REELAY_STORE", f"s3://m{uuid.uuid4().hex[:10]}?endpoint={s3_endpoint}")
    report = transcode(
        clip("s3.mp4"), home=tmp_path / "home", ladder="demo", chunk_seconds=2, qc=10
    )
    assert report["status"] == "published", report.get("error")
    assert report["outputs"]["hls"].startswith("s3://media/published/")
    local = tmp_path / "fetched"
    with Client(Settings.load(tmp_path / "home")) as client:
        prefix = f"published/{report['title_id']}/"
        for info in client.list_objects("media", prefix):
            client.download("media", info.key, local / info.key[len(prefix) :])
    decode(str(local / "master.m3u8"))


@pytest.mark.ray
@pytest.mark.slow
def test_on_a_local_ray(clip: ClipFactory, tmp_path: Path) -> None:
    report = transcode(
        clip("ray.mp4", seconds=4),
        home=tmp_path / "home",
        ladder="demo",
        chunk_seconds=2,
        qc=10,
        executor="ray:local",
        workers=2,
    )
    assert report["status"] == "published", report.get("error")
    assert [r["frames"] for r in report["renditions"] if r["kind"] == "video"] == [100]
    decode(report["outputs"]["hls"])


def test_scene_aligned_chunks(tmp_path: Path) -> None:
    # 3 s of one picture, then 3 s of another: a shot change at frame 75
    src = tmp_path / "cut.mp4"
    run_ffmpeg(
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25:duration=3",
            "-f",
            "lavfi",
            "-i",
            "mandelbrot=size=320x240:rate=25,trim=duration=3",
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1[v]",
            "-map",
            "[v]",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(src),
        ],
        input="cut clip",
    )
    report = transcode(
        src, home=tmp_path / "home", ladder="demo", chunk_seconds=4, scenes=True, qc=10
    )
    assert report["status"] == "published", report.get("error")
    with Client(Settings.load(tmp_path / "home")) as client:
        job = json.loads(client.get_object("media", f"work/{report['title_id']}/job.json"))
    assert [c["start_frame"] for c in job["plan"]["chunks"]] == [0, 75]
    assert [r["frames"] for r in report["renditions"]] == [150]
    decode(report["outputs"]["hls"])
