"""Package assembled renditions as HLS (CMAF/fMP4 segments) and DASH over the same files.

ffmpeg's DASH muxer segments every rendition by stream copy (``-seg_duration``: the
segments fall on the keyframes the encoder put at every segment boundary) and writes
the MPD and one HLS media playlist per representation over the same ``.m4s`` segments.
reelay then writes the HLS master playlist itself, with what players and Apple's
authoring rules ask for: ``BANDWIDTH`` (peak segment bit rate), ``AVERAGE-BANDWIDTH``,
``RESOLUTION``, ``CODECS``, ``FRAME-RATE``, an audio group per audio rung with one
member per language, and WebVTT subtitles (also added to the MPD).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from reelay._text import plural
from reelay.media._ffmpeg import run_ffmpeg

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
MASTER = "master.m3u8"
MANIFEST = "manifest.mpd"


@dataclass(frozen=True)
class Track:
    """One input of the package: an assembled rendition, audio output or subtitle file."""

    name: str
    kind: str  # video | audio | subtitles
    path: Path
    codec: str = ""  # the ladder's codec word (h264, aac...), groups adaptation sets
    language: str = "und"
    width: int = 0
    height: int = 0
    fps: float = 0.0
    channels: int = 0
    group: str = ""  # audio: the rung's name, the HLS GROUP-ID


def package(
    tracks: list[Track], out: Path, *, segment_seconds: float, duration_s: float
) -> dict[str, str]:
    """Write the HLS and DASH presentation of ``tracks`` into ``out``; return the
    relative paths of the master playlist and the manifest."""
    media = [t for t in tracks if t.kind != "subtitles"]
    subs = [t for t in tracks if t.kind == "subtitles"]
    inputs: list[str] = []
    maps: list[str] = []
    sets: dict[tuple[str, str, str], list[int]] = {}
    for i, t in enumerate(media):
        inputs += ["-i", str(t.path)]
        maps += ["-map", f"{i}:{'v' if t.kind == 'video' else 'a'}:0"]
        key = (t.kind, t.codec, t.language if t.kind == "audio" else "")
        sets.setdefault(key, []).append(i)
        if t.kind == "audio":
            maps += [f"-metadata:s:{i}", f"language={t.language}"]
    adaptation = " ".join(
        f"id={n},streams={','.join(map(str, idx))}" for n, idx in enumerate(sets.values())
    )
    run_ffmpeg(
        [
            *inputs,
            *maps,
            "-c",
            "copy",
            "-f",
            "dash",
            "-seg_duration",
            f"{segment_seconds:g}",
            "-use_template",
            "1",
            "-use_timeline",
            "1",
            "-hls_playlist",
            "1",
            "-dash_segment_type",
            "mp4",
            "-adaptation_sets",
            adaptation,
            "-init_seg_name",
            "init-$RepresentationID$.$ext$",
            "-media_seg_name",
            "seg-$RepresentationID$-$Number%05d$.$ext$",
            str(out / MANIFEST),
        ],
        input=f"packaging {plural(len(media), 'rendition')}",
    )
    codecs = _mpd_codecs(out / MANIFEST)
    for i, t in enumerate(media):
        if not codecs.get(i) and t.codec == "hevc":  # ffmpeg's DASH muxer leaves HEVC's empty
            codecs[i] = hevc_codec_string((out / f"init-{i}.m4s").read_bytes())
    _set_mpd_codecs(out / MANIFEST, codecs)
    for i in range(len(media)):
        _tidy_media_playlist(out / f"media_{i}.m3u8")
    for n, t in enumerate(subs):
        target = out / f"subs_{n}.vtt"
        target.write_bytes(t.path.read_bytes())
        (out / f"subs_{n}.m3u8").write_text(_subtitle_playlist(target.name, duration_s))
    _add_mpd_subtitles(out / MANIFEST, subs)
    (out / MASTER).write_text(_master(media, subs, codecs, out), encoding="utf-8")
    return {"hls": MASTER, "dash": MANIFEST}


def _mpd_codecs(mpd: Path) -> dict[int, str]:
    """Representation index -> its RFC 6381 codecs string, as ffmpeg wrote it in the MPD."""
    root = ET.parse(mpd).getroot()
    out = {}
    for rep in root.iter(f"{{{MPD_NS}}}Representation"):
        out[int(rep.get("id", "0"))] = rep.get("codecs", "")
    return out


def hevc_codec_string(init: bytes) -> str:
    """The RFC 6381 ``hvc1.`` string from the ``hvcC`` box of an init segment
    (ISO/IEC 14496-15 annex E: profile space and idc, compatibility flags bit-reversed,
    tier and level, constraint bytes without trailing zeros)."""
    at = init.find(b"hvcC")
    if at < 0:
        return "hvc1"
    c = init[at + 4 : at + 4 + 13]
    space = "" if c[1] >> 6 == 0 else "ABC"[(c[1] >> 6) - 1]
    tier = "H" if c[1] & 0x20 else "L"
    profile = c[1] & 0x1F
    compat = int(f"{int.from_bytes(c[2:6], 'big'):032b}"[::-1], 2)
    constraints = c[6:12].rstrip(b"\0")
    parts = [f"hvc1.{space}{profile}", f"{compat:X}", f"{tier}{c[12]}"]
    parts += [f"{b:02X}" for b in constraints]
    return ".".join(parts)


def _set_mpd_codecs(mpd: Path, codecs: dict[int, str]) -> None:
    text = mpd.read_text()
    for i, codec in codecs.items():
        text = text.replace(
            f'<Representation id="{i}" mimeType="video/mp4" codecs=""',
            f'<Representation id="{i}" mimeType="video/mp4" codecs="{codec}"',
        )
    mpd.write_text(text)


def _tidy_media_playlist(path: Path) -> None:
    """ffmpeg stamps each segment with the wall clock; a VOD playlist says VOD instead,
    and packaging the same renditions twice then writes the same bytes."""
    lines = [
        ln for ln in path.read_text().splitlines() if not ln.startswith("#EXT-X-PROGRAM-DATE-TIME")
    ]
    head = lines.index("#EXTM3U") + 1 if "#EXTM3U" in lines else 0
    lines[head:head] = ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-INDEPENDENT-SEGMENTS"]
    path.write_text("\n".join(lines) + "\n")


def _segment_rates(playlist: Path, out: Path) -> tuple[float, float]:
    """(peak, average) bits per second over a media playlist's segments (init included)."""
    text = playlist.read_text()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    init_bytes = (out / init.group(1)).stat().st_size if init else 0
    peak = total_bits = total_s = 0.0
    for dur, name in re.findall(r"#EXTINF:([0-9.]+),\s*\n([^\n#]+)", text):
        seconds = float(dur)
        bits = (out / name.strip()).stat().st_size * 8
        total_bits += bits
        total_s += seconds
        if seconds > 0:
            peak = max(peak, bits / seconds)
    average = (total_bits + init_bytes * 8) / total_s if total_s else 0.0
    return peak, average


def _master(media: list[Track], subs: list[Track], codecs: dict[int, str], out: Path) -> str:
    rates = {i: _segment_rates(out / f"media_{i}.m3u8", out) for i in range(len(media))}
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", ""]
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(media):
        if t.kind == "audio":
            groups.setdefault(t.group, []).append(i)
    for group, members in groups.items():
        for n, i in enumerate(members):
            t = media[i]
            lines.append(
                f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{group}",NAME="{t.language} ({t.name})",'
                f'LANGUAGE="{t.language}",DEFAULT={"YES" if n == 0 else "NO"},AUTOSELECT=YES,'
                f'CHANNELS="{t.channels}",URI="media_{i}.m3u8"'
            )
    for n, t in enumerate(subs):
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="{t.language} ({t.name})",'
            f'LANGUAGE="{t.language}",DEFAULT=NO,AUTOSELECT=YES,URI="subs_{n}.m3u8"'
        )
    if groups or subs:
        lines.append("")
    subs_attr = ',SUBTITLES="subs"' if subs else ""
    videos = [i for i, t in enumerate(media) if t.kind == "video"]
    for i in sorted(videos, key=lambda i: rates[i][1]):
        t = media[i]
        for group, members in groups.items() or [("", [])]:
            peak = rates[i][0] + max((rates[m][0] for m in members), default=0)
            avg = rates[i][1] + max((rates[m][1] for m in members), default=0)
            codec_list = ",".join([codecs[i], *([codecs[members[0]]] if members else [])])
            audio_attr = f',AUDIO="{group}"' if group else ""
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={math.ceil(peak)},AVERAGE-BANDWIDTH={math.ceil(avg)},"
                f'RESOLUTION={t.width}x{t.height},FRAME-RATE={t.fps:.3f},CODECS="{codec_list}"'
                f"{audio_attr}{subs_attr}"
            )
            lines.append(f"media_{i}.m3u8")
    if not videos:  # audio only: each audio group is a variant of its own
        for group, members in groups.items():
            first = members[0]
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={math.ceil(rates[first][0])},"
                f'AVERAGE-BANDWIDTH={math.ceil(rates[first][1])},CODECS="{codecs[first]}",'
                f'AUDIO="{group}"{subs_attr}'
            )
            lines.append(f"media_{first}.m3u8")
    return "\n".join(lines) + "\n"


def _subtitle_playlist(vtt: str, duration_s: float) -> str:
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration_s))}",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{duration_s:.3f},",
            vtt,
            "#EXT-X-ENDLIST",
            "",
        ]
    )


def _add_mpd_subtitles(mpd: Path, subs: list[Track]) -> None:
    if not subs:
        return
    ET.register_namespace("", MPD_NS)
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    tree = ET.parse(mpd)
    period = tree.getroot().find(f"{{{MPD_NS}}}Period")
    assert period is not None
    next_id = len(period.findall(f"{{{MPD_NS}}}AdaptationSet"))
    for n, t in enumerate(subs):
        aset = ET.SubElement(
            period,
            f"{{{MPD_NS}}}AdaptationSet",
            {
                "id": str(next_id + n),
                "contentType": "text",
                "mimeType": "text/vtt",
                "lang": t.language,
            },
        )
        rep = ET.SubElement(
            aset, f"{{{MPD_NS}}}Representation", {"id": f"subs{n}", "bandwidth": "256"}
        )
        ET.SubElement(rep, f"{{{MPD_NS}}}BaseURL").text = f"subs_{n}.vtt"
    tree.write(mpd, encoding="utf-8", xml_declaration=True)
