"""Ladders and publish rules: the built-ins load; every broken form is named."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from reelay.errors import LadderError
from reelay.media.ladder import BUILTIN_LADDERS, load_ladder, parse_ladder
from reelay.media.rules import Rules, evaluate, load_rules


def test_builtin_ladders() -> None:
    ladders = {name: load_ladder(name) for name in BUILTIN_LADDERS}
    assert [r.name for r in ladders["demo"].video] == ["240p", "360p"]
    assert {r.codec for r in ladders["default"].video} == {"h264"}
    full = ladders["full"]
    assert len(full.video) + len(full.audio) == 60
    assert {r.codec for r in full.video} == {"h264", "hevc", "av1", "vp9"}
    assert {r.codec for r in full.audio} == {"aac", "opus"}


def test_a_ladder_file(tmp_path: Path) -> None:
    path = tmp_path / "bench.yaml"
    path.write_text(
        "name: bench\nsegment_seconds: 4\nvideo:\n"
        "  - {name: 360p, codec: h264, height: 360, crf: 23, maxrate_kbps: 800, preset: veryfast}\n"
        "  - {name: 720p, codec: av1, height: 720, crf: 35, maxrate_kbps: 3000, preset: 8, bit_depth: 10}\n"
        "audio:\n  - {name: aac128, codec: aac, bitrate_kbps: 128, channels: 2}\n"
    )
    ladder = load_ladder(path)
    assert ladder.video[1].preset == "8" and ladder.video[1].bit_depth == 10
    assert ladder.audio[0].bitrate_kbps == 128


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "a ladder must be a mapping"),
        ({"name": "x"}, "needs at least one video or audio rendition"),
        (
            {
                "name": "bad name!",
                "video": [{"name": "a", "codec": "h264", "height": 360, "maxrate_kbps": 500}],
            },
            "name: 'bad name!' is not valid",
        ),
        (
            {
                "name": "x",
                "segment_seconds": 0,
                "audio": [{"name": "a", "codec": "aac", "bitrate_kbps": 96}],
            },
            "segment_seconds: 0 is not valid: must be a number from 1 to 20",
        ),
        (
            {"name": "x", "video": [{"name": "a", "codec": "mpeg4", "height": 360}]},
            "video[0].codec: 'mpeg4' is not valid; valid codecs: h264, hevc, av1, vp9",
        ),
        (
            {
                "name": "x",
                "video": [{"name": "a", "codec": "h264", "height": 361, "maxrate_kbps": 500}],
            },
            "video[0].height: 361 is not valid: must be even",
        ),
        (
            {
                "name": "x",
                "video": [
                    {"name": "a", "codec": "h264", "height": 360, "crf": 60, "maxrate_kbps": 500}
                ],
            },
            "video[0].crf: 60 is not valid: must be an integer from 0 to 51",
        ),
        (
            {
                "name": "x",
                "video": [
                    {
                        "name": "a",
                        "codec": "h264",
                        "height": 360,
                        "maxrate_kbps": 500,
                        "preset": "quick",
                    }
                ],
            },
            "video[0].preset: 'quick' is not a h264 preset; valid presets: ultrafast",
        ),
        (
            {
                "name": "x",
                "video": [
                    {"name": "a", "codec": "av1", "height": 360, "maxrate_kbps": 500, "preset": 14}
                ],
            },
            "video[0].preset: 14 is not a av1 preset",
        ),
        (
            {
                "name": "x",
                "video": [
                    {
                        "name": "a",
                        "codec": "h264",
                        "height": 360,
                        "maxrate_kbps": 500,
                        "bit_depth": 10,
                    }
                ],
            },
            "video[0].bit_depth: 10 is not valid for h264: 8",
        ),
        (
            {"name": "x", "video": [{"name": "a", "codec": "h264", "height": 360}]},
            "video[0].maxrate_kbps: None is not valid",
        ),
        (
            {
                "name": "x",
                "video": [
                    {"name": "a", "codec": "h264", "height": 360, "maxrate_kbps": 500, "fps": 30}
                ],
            },
            "video[0].fps: unknown key 'fps'; valid keys:",
        ),
        (
            {"name": "x", "audio": [{"name": "a", "codec": "mp3", "bitrate_kbps": 128}]},
            "audio[0].codec: 'mp3' is not valid; valid codecs: aac, opus",
        ),
        (
            {
                "name": "x",
                "audio": [{"name": "a", "codec": "aac", "bitrate_kbps": 128, "channels": 4}],
            },
            "audio[0].channels: 4 is not valid; valid values: 1, 2, 6",
        ),
        (
            {
                "name": "x",
                "audio": [
                    {"name": "a", "codec": "aac", "bitrate_kbps": 128},
                    {"name": "a", "codec": "opus", "bitrate_kbps": 64},
                ],
            },
            "audio[1].name: 'a' is used twice",
        ),
        ({"name": "x", "video": "360p"}, "video: must be a list of renditions, not str"),
    ],
)
def test_broken_ladders_name_the_problem(doc: object, message: str) -> None:
    with pytest.raises(LadderError) as info:
        parse_ladder(doc, source="l.yaml")
    assert any(message in p and p.startswith("l.yaml") for p in info.value.problems), (
        info.value.problems
    )


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "name": "x",
        "video": [{"name": "a", "codec": "h264", "height": 7, "crf": -1, "maxrate_kbps": 1}],
    }
    with pytest.raises(LadderError) as info:
        parse_ladder(doc)
    assert len(info.value.problems) == 3


def test_ladder_files_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(LadderError, match="no such ladder; built-in ladders: demo, default, full"):
        load_ladder("fancy")
    with pytest.raises(LadderError, match="no such file"):
        load_ladder(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(LadderError, match="invalid YAML: line 2"):
        load_ladder(bad)


def test_rules_load_and_validate(tmp_path: Path) -> None:
    assert load_rules("default") == Rules()
    path = tmp_path / "strict.yaml"
    path.write_text("require:\n  min_display_vmaf_top: 95\n  frames_match: true\n")
    rules = load_rules(path)
    assert rules.name == "strict" and rules.min_display_vmaf_top == 95
    assert rules.av_sync_ms is None and rules.min_fidelity is None
    for doc, message in [
        ("require: 3", "a rule file must be a mapping with a 'require' mapping"),
        ("require: {min_fidelity: 120}", "require.min_fidelity: 120 is not valid"),
        (
            "require: {min_vmaf_top: 80}",
            "require.min_vmaf_top: is now min_display_vmaf_top (display quality); fidelity, "
            "each chunk against the source at the rendition's size, is min_fidelity",
        ),
        (
            "require: {frames_match: 1}",
            "require.frames_match: 1 is not valid: must be true or false",
        ),
        ("require: {max_bitrate: 3}", "require.max_bitrate: unknown key 'max_bitrate'"),
    ]:
        path.write_text(doc)
        with pytest.raises(LadderError, match=re.escape(message)):
            load_rules(path)


def _report(**video: object) -> dict:
    rendition = {
        "name": "720p",
        "kind": "video",
        "present": True,
        "frames": 100,
        "duration_s": 4.0,
        "height": 720,
        "fidelity_vmaf": 93.0,
        "psnr": 40.0,
        "display_vmaf": 75.0,
        "chunks": [
            {"chunk": 0, "start_s": 0.0, "end_s": 2.0, "vmaf": 95.0, "vmaf_min": 90.0},
            {"chunk": 1, "start_s": 2.0, "end_s": 4.0, "vmaf": 91.0, "vmaf_min": 88.0},
        ],
        "av_drift_ms": 10.0,
    }
    return {
        "source": {"frames": 100, "duration_s": 4.0, "fps": 25.0},
        "renditions": [rendition | video],
    }


def test_rules_pass_a_good_title_and_name_each_failure() -> None:
    rules = Rules(min_display_vmaf=50, min_psnr=30, min_display_vmaf_top=70)
    assert evaluate(rules, _report()) == []
    assert evaluate(rules, _report(present=False)) == ["renditions missing: 720p"]
    assert evaluate(rules, _report(frames=99, duration_s=3.96)) == [
        "720p: 99 frames, source has 100"
    ]
    assert "lasts 3.900 s" in evaluate(rules, _report(frames=100, duration_s=3.9))[0]
    assert evaluate(rules, _report(display_vmaf=60)) == [
        "top rendition 720p: display VMAF 60 is below 70"
    ]
    assert evaluate(rules, _report(display_vmaf=40)) == [
        "720p: display VMAF 40 is below 50",
        "top rendition 720p: display VMAF 40 is below 70",
    ]
    bad = {"chunk": 1, "start_s": 2.0, "end_s": 4.0, "vmaf": 31.5, "vmaf_min": 12.0}
    chunks = [_report()["renditions"][0]["chunks"][0], bad | {"worst_frame": 77}]
    assert evaluate(rules, _report(chunks=chunks)) == [
        "720p chunk 1 (2.00-4.00 s): fidelity VMAF 31.5 is below 60 (lowest 12 at frame 77)"
    ]
    assert evaluate(rules, _report(chunks=[])) == ["720p: no chunk was scored"]
    seam = (
        "720p seam before chunk 1 (2.00 s): frame 50 skips a frame (it shows the source's frame 51)"
    )
    assert evaluate(rules, _report(seam_faults=[seam])) == [seam]
    assert evaluate(dataclasses.replace(rules, seams=False), _report(seam_faults=[seam])) == []
    # Quality control off: no quality rule applies.
    assert evaluate(rules, _report(chunks=[], display_vmaf=None) | {"qc": False}) == []
    assert evaluate(rules, _report(psnr=20)) == ["720p: PSNR 20 dB is below 30"]
    assert evaluate(rules, _report(av_drift_ms=250)) == [
        "720p: audio and video are 250 ms apart (limit 100)"
    ]


def test_a_ladder_and_rules_travel_by_content(tmp_path: Path) -> None:
    """What `reelay transcode` sends a worker: the file's text, not the driver's path."""
    from reelay.media.transcode import _content

    ladder_file = tmp_path / "mine.yaml"
    ladder_file.write_text(
        "name: mine\nvideo:\n  - {name: 240p, codec: h264, height: 240, crf: 26, maxrate_kbps: 500}\n"
    )
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("require:\n  min_display_vmaf: 70\n")
    from_files = load_ladder(ladder_file), load_rules(rules_file)
    sent = _content(str(ladder_file)), _content(str(rules_file))
    assert all(text is not None and str(tmp_path) not in text for text in sent)
    ladder_file.unlink()  # gone, as they are on another machine
    rules_file.unlink()
    assert (load_ladder(sent[0] or ""), load_rules(sent[1])) == from_files
    assert from_files[1].min_display_vmaf == 70
    assert _content("demo") == "demo"  # a built-in name stays a name
    with pytest.raises(LadderError, match="a ladder given by content: invalid YAML: line 2"):
        load_ladder("name: x\n  video: [\n")
