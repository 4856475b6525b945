"""``reelay transcode`` and ``reelay demo``: exit codes, JSON report, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ClipFactory

pytestmark = pytest.mark.media


def reelay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reelay.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_transcode_json_report(clip: ClipFactory, tmp_path: Path) -> None:
    proc = reelay(
        "transcode",
        str(clip("cli.mp4")),
        "--ladder",
        "demo",
        "--chunk-seconds",
        "2",
        "--qc",
        "5",
        "--json",
        "--home",
        str(tmp_path / "h"),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["status"] == "published" and report["title_id"].startswith("cli-")
    assert set(report["source"]) >= {"duration_s", "frames", "width", "height", "fps", "streams"}
    for r in report["renditions"]:
        assert set(r) >= {
            "name",
            "codec",
            "width",
            "height",
            "bitrate_kbps",
            "frames",
            "duration_s",
            "fidelity_vmaf",
            "psnr",
            "display_vmaf",
        }
    assert Path(report["outputs"]["hls"]).is_file() and Path(report["outputs"]["dash"]).is_file()
    assert report["timings"]["total"] > 0 and "error" not in report
    assert "Traceback" not in proc.stderr


def test_transcode_exit_codes_and_text_report(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"nope" * 100)
    proc = reelay("transcode", str(bad), "--home", str(tmp_path / "h"))
    assert proc.returncode == 3
    assert "rejected" in proc.stdout
    assert "NOT_MEDIA: s3://media/ingest/bad.mp4: not a media file" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_transcode_bad_inputs_are_clear_errors(clip: ClipFactory, tmp_path: Path) -> None:
    ladder = tmp_path / "l.yaml"
    ladder.write_text("name: l\nvideo:\n  - {name: a, codec: h263, height: 360}\n")
    proc = reelay("transcode", str(clip("cli.mp4")), "--ladder", str(ladder))
    assert proc.returncode == 2
    assert "error: " in proc.stderr and "video[0].codec: 'h263' is not valid" in proc.stderr
    proc = reelay("transcode", str(clip("cli.mp4")), "--ladder", "huge")
    assert proc.returncode == 2 and "huge: no such ladder" in proc.stderr
    proc = reelay("transcode", str(tmp_path / "missing.mp4"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = reelay("transcode", str(clip("cli.mp4")), "--chunk-seconds", "0")
    assert proc.returncode == 2 and "--chunk-seconds" in proc.stderr
    for out in (proc.stdout, proc.stderr):
        assert "Traceback" not in out
    for qc in ("0", "most", "-3"):
        proc = reelay("transcode", str(clip("cli.mp4")), "--qc", qc, "--home", str(tmp_path / "q"))
        assert proc.returncode == 2, proc.stderr
        assert f"quality control {qc!r} is not valid: off, full, or N" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "q").exists()  # refused before any work


def test_demo_publishes_a_title(tmp_path: Path) -> None:
    proc = reelay("demo", "--home", str(tmp_path / "demo"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ": published in" in proc.stdout
    master = next(
        line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("published:")
    )
    assert Path(master).is_file() and master.endswith("master.m3u8")
    assert "any HLS player" in proc.stdout


def test_transcode_draws_a_progress_bar_on_a_terminal(clip: ClipFactory, tmp_path: Path) -> None:
    import os
    import pty

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reelay.cli",
            "transcode",
            str(clip("cli.mp4")),
            "--ladder",
            "demo",
            "--chunk-seconds",
            "1",
            "--qc",
            "5",
            "--home",
            str(tmp_path / "h"),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the other end closed: the command is done
            break
        if not data:
            break
        screen += data
    os.close(leader)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    text = screen.decode(errors="replace")
    assert "\r" in text and "%" in text and "[" in text and "]" in text
    assert "100%" in text and "chunks 2/2" in text  # 3 s in 2 s chunks (one segment each)
    assert "published" in out


def validate(kind: str, path: Path) -> tuple[int, str]:
    from click.testing import CliRunner

    from reelay.cli import main

    result = CliRunner().invoke(main, ["validate", "--kind", kind, str(path)])
    return result.exit_code, result.output


def test_validate_ladders_and_rules(tmp_path: Path) -> None:
    ladder = tmp_path / "l.yaml"
    ladder.write_text("name: l\naudio:\n  - {name: a, codec: aac, bitrate_kbps: 96}\n")
    code, out = validate("ladder", ladder)
    assert code == 0 and "ok (ladder l: 1 output: a)" in out
    ladder.write_text("name: l\naudio:\n  - {name: a, codec: mp3, bitrate_kbps: 9}\n")
    code, out = validate("ladder", ladder)
    assert code == 2
    assert "audio[0].codec: 'mp3' is not valid" in out
    assert "audio[0].bitrate_kbps: 9 is not valid" in out
    rules = tmp_path / "r.yaml"
    rules.write_text("require: {min_display_vmaf_top: 90}\n")
    code, out = validate("rules", rules)
    assert code == 0 and "ok (rules r: min_display_vmaf_top)" in out
    rules.write_text("require: {min_fidelity: high}\n")
    code, out = validate("rules", rules)
    assert code == 2 and "require.min_fidelity: 'high' is not valid" in out
