"""Publish rules: whether a packaged, checked title may be published.

::

    name: default
    require:
      renditions_complete: true       # every planned rendition and audio output is there
      frames_match: true              # each rendition has the source's frame count
      duration_tolerance_frames: 1    # each rendition lasts as long as the source, +- N frames
      av_sync_ms: 100                 # audio and video start together and end within N ms
      seams: true                     # no frame repeated or skipped at a chunk boundary
      min_fidelity: 60                # every chunk's fidelity VMAF (did the encode come out right)
      min_psnr: 0                     # every rendition's fidelity PSNR-Y, dB
      min_display_vmaf: 0             # every rendition's display VMAF (upscaled to the display)
      min_display_vmaf_top: 0         # the top rendition's display VMAF

Every key is optional; an absent key is not checked. `evaluate` returns the reasons a
title is held (empty: publish); a reason about a chunk names the rendition, the chunk
and its time span. *Fidelity* measures an encode against the source scaled to the
rendition's own size, so a low rung a user chose on purpose is not held for being low;
*display* quality (what a big screen shows) is reported and may be demanded. The quality
rules are skipped when quality control is off (``REELAY_MEDIA_QC=off``).
``frames_match`` applies to constant-frame-rate sources; a variable-frame-rate source is
judged by duration. `load_rules` takes ``default`` or a path and raises `LadderError`
naming every problem.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reelay._text import plural
from reelay._yamlfile import Problems, number_in, parse_yaml, read_yaml
from reelay.errors import LadderError

RULE_KEYS = ("name", "require")
REQUIRE_KEYS = (
    "av_sync_ms",
    "duration_tolerance_frames",
    "frames_match",
    "min_display_vmaf",
    "min_display_vmaf_top",
    "min_fidelity",
    "min_psnr",
    "renditions_complete",
    "seams",
)
# Keys of reelay before fidelity and display quality were told apart (their VMAF was
# display quality): a rule file that names one is told what to write instead.
RENAMED = {"min_vmaf": "min_display_vmaf", "min_vmaf_top": "min_display_vmaf_top"}
BOOLEAN_KEYS = ("frames_match", "renditions_complete", "seams")
RANGES = {
    "av_sync_ms": (0, 10000),
    "duration_tolerance_frames": (0, 1000),
    "min_display_vmaf": (0, 100),
    "min_display_vmaf_top": (0, 100),
    "min_fidelity": (0, 100),
    "min_psnr": (0, 100),
}


@dataclass(frozen=True)
class Rules:
    name: str = "default"
    renditions_complete: bool = True
    frames_match: bool = True
    seams: bool = True
    duration_tolerance_frames: float | None = 1
    av_sync_ms: float | None = 100
    min_fidelity: float | None = 60
    min_psnr: float | None = None
    min_display_vmaf: float | None = None
    min_display_vmaf_top: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_rules(name_or_path: str | Path | None = None) -> Rules:
    """``default`` (or None) for the defaults above, else a rule file, or the rules
    themselves as YAML text (several lines; see `reelay.media.ladder.load_ladder`)."""
    if name_or_path in (None, "", "default"):
        return Rules()
    if "\n" in str(name_or_path):
        source = "publish rules given by content"
        return parse_rules(parse_yaml(str(name_or_path), source, LadderError), source=source)
    path = Path(name_or_path)
    return parse_rules(read_yaml(path, LadderError), source=str(path))


def parse_rules(doc: Any, *, source: str = "<rules>") -> Rules:
    problems = Problems(source)
    if not isinstance(doc, dict) or not isinstance(doc.get("require", {}), dict):
        problems.add("", "a rule file must be a mapping with a 'require' mapping")
        raise LadderError(problems.items)
    problems.unknown_keys("", doc, RULE_KEYS)
    require = doc.get("require") or {}
    for old, new in RENAMED.items():
        if old in require:
            problems.add(
                f"require.{old}",
                f"is now {new} (display quality); fidelity, each chunk against the source "
                "at the rendition's size, is min_fidelity",
            )
    problems.unknown_keys(
        "require", {k: v for k, v in require.items() if k not in RENAMED}, REQUIRE_KEYS
    )
    values: dict[str, Any] = {k: None for k in RANGES} | {k: False for k in BOOLEAN_KEYS}
    for key, value in require.items():
        if key in BOOLEAN_KEYS:
            if not isinstance(value, bool):
                problems.add(f"require.{key}", f"{value!r} is not valid: must be true or false")
            values[key] = value
        elif key in RANGES:
            values[key] = number_in(problems, f"require.{key}", value, *RANGES[key])
    if problems.items:
        raise LadderError(problems.items)
    return Rules(name=str(doc.get("name") or Path(source).stem), **values)


def evaluate(rules: Rules, report: dict[str, Any]) -> list[str]:
    """The reasons ``report`` (a title's report) may not be published; empty if it may."""
    reasons: list[str] = []
    source = report["source"]
    fps = source.get("fps") or 0
    cfr = not report.get("vfr", False)
    renditions = report["renditions"]
    quality = report.get("qc", True)  # quality rules do not apply when QC is turned off
    video = [r for r in renditions if r.get("kind") == "video"]
    if rules.renditions_complete:
        missing = [r["name"] for r in renditions if not r.get("present")]
        if missing:
            reasons.append(f"renditions missing: {', '.join(missing)}")
    for r in video:
        if rules.frames_match and cfr and r.get("frames") != source["frames"]:
            frames = plural(r.get("frames") or 0, "frame")
            reasons.append(f"{r['name']}: {frames}, source has {source['frames']}")
        if rules.duration_tolerance_frames is not None and fps and r.get("duration_s") is not None:
            off = abs(r["duration_s"] - source["duration_s"]) * fps
            if off > rules.duration_tolerance_frames + 1e-6:
                reasons.append(
                    f"{r['name']}: lasts {r['duration_s']:.3f} s, the source "
                    f"{source['duration_s']:.3f} s ({off:.1f} frames apart)"
                )
        if quality:
            reasons += _quality_reasons(rules, r)
    if rules.min_display_vmaf_top is not None and video and quality:
        top = max(video, key=lambda r: (r.get("height") or 0, r.get("bitrate_kbps") or 0))
        shown = top.get("display_vmaf")
        if shown is None or shown < rules.min_display_vmaf_top:
            reasons.append(
                f"top rendition {top['name']}: display VMAF {shown} "
                f"is below {rules.min_display_vmaf_top:g}"
            )
    if rules.av_sync_ms is not None:
        for r in renditions:
            drift = r.get("av_drift_ms")
            if drift is not None and drift > rules.av_sync_ms:
                reasons.append(
                    f"{r['name']}: audio and video are {drift:.0f} ms apart "
                    f"(limit {rules.av_sync_ms:g})"
                )
    return reasons


def _quality_reasons(rules: Rules, r: dict[str, Any]) -> list[str]:
    """Why one video rendition's measured quality holds the title."""
    reasons = list(r.get("seam_faults") or []) if rules.seams else []
    if rules.min_fidelity is not None:
        if not r.get("chunks"):
            reasons.append(f"{r['name']}: no chunk was scored")
        for c in r.get("chunks") or []:
            if c["vmaf"] < rules.min_fidelity:
                reasons.append(
                    f"{r['name']} chunk {c['chunk']} ({c['start_s']:.2f}-{c['end_s']:.2f} s): "
                    f"fidelity VMAF {c['vmaf']:g} is below {rules.min_fidelity:g} "
                    f"(lowest {c['vmaf_min']:g} at frame {c['worst_frame']})"
                )
    psnr, shown = r.get("psnr"), r.get("display_vmaf")
    if rules.min_psnr is not None and (psnr is None or psnr < rules.min_psnr):
        reasons.append(f"{r['name']}: PSNR {psnr} dB is below {rules.min_psnr:g}")
    if rules.min_display_vmaf is not None and (shown is None or shown < rules.min_display_vmaf):
        reasons.append(f"{r['name']}: display VMAF {shown} is below {rules.min_display_vmaf:g}")
    return reasons
