"""How far along a title is: which stage runs, and what share of its work is done.

Each stage of the pipeline says when it starts (a ``Media Title State Change`` with
status ``PROGRESSING`` and its stage) and, for each part of the work it finishes, what
that part weighed (``STATUS_UPDATE`` with ``part`` and ``work``); the plan says what the
whole title weighs (``work_total``). `TitleProgress` folds those events: the stage is
the furthest one that has started, the percent the work of the distinct parts done over
the total. Parts are counted once however often a task is retried or redelivered, and
events may come in any order, so neither goes backwards.

The weights come from `work`: a cost model of the ffmpeg work each part does, in
milliseconds of one core of the 2-core machine it was measured on (a 720p and a 1080p
title on the default ladder). Only their ratios matter: they say that encoding and
quality control are nearly all of a title, and inspect, plan, assemble, package and
publish very little.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from reelay.media.config import MediaConfig
from reelay.media.encode import display_size
from reelay.media.plan import Plan
from reelay.media.probe import SourceInfo

#: The pipeline's stages, in the order they run (audio and subtitles count as encode).
STAGES = ("inspect", "plan", "encode", "assemble", "package", "qc", "publish")
#: The stage of each function of the app (``fail`` reports the stage that failed).
STAGE_OF = {
    "inspect": "inspect",
    "plan": "plan",
    "trial": "plan",  # a per-title ladder's trials are part of planning the title
    "choose_ladder": "plan",
    "encode": "encode",
    "encode_audio": "encode",
    "subtitles": "encode",
    "assemble": "assemble",
    "package": "package",
    "qc": "qc",
    "publish": "publish",
}

# Milliseconds per megapixel of one frame: decoding the source, encoding (per codec,
# presets aside), scaling (bicubic) and scoring VMAF with PSNR.
_DECODE = 1.0
_ENCODE = {"h264": 6.5, "hevc": 25.0, "av1": 20.0, "vp9": 20.0}
_SCALE = 0.8
_VMAF = 6.7
_TASK = 50.0  # starting ffmpeg, reading and writing the objects of one task
_AUDIO_PER_S = 40.0


def work(config: MediaConfig, source: SourceInfo, plan: Plan) -> dict[str, float]:
    """Every part of a title's work and its weight, keyed as the parts report it."""
    return dict(_parts(config, source, plan))


def _parts(config: MediaConfig, source: SourceInfo, plan: Plan) -> Iterator[tuple[str, float]]:
    v = source.video
    src = v.width * v.height / 1e6 if v else 0.0
    sizes = {r.name: r.width * r.height / 1e6 for r in plan.renditions}
    codecs = {r.name: r.rung.codec for r in plan.renditions}
    # Inspect demuxes the whole source; scene detection decodes it.
    yield "plan", 2 * _TASK + plan.frames * src * (0.05 + (2.0 if config.scenes else 0.0))
    display = math.prod(display_size(source)) / 1e6 if v else 0.0
    for c in plan.chunks:
        # Quality control is part of each encode: its output decoded again, and the
        # sampled frames scored at its size and, upscaled, at the display size.
        scored = c.frames / config.qc_every if config.qc_every else 0.0
        for g in plan.groups:
            outputs = sum(sizes[n] * _ENCODE.get(codecs[n], 20.0) for n in g)
            checks = (
                sum(
                    c.frames * sizes[n] * _DECODE
                    + scored * ((sizes[n] + display) * _VMAF + display * _SCALE)
                    for n in g
                )
                if scored
                else 0.0
            )
            yield part_of_encode(c.index, g), _TASK + c.frames * (src * _DECODE + outputs) + checks
    for a in plan.audio:
        yield f"audio:{a.name}", _TASK + _AUDIO_PER_S * source.duration_s
    yield "subtitles", _TASK * (1 + len(plan.subtitles))
    for name, size in sizes.items():
        yield f"assemble:{name}", _TASK + plan.frames * size * 0.1
    smallest = min(sizes.values(), default=0.0)
    yield "package", 4 * _TASK + plan.frames * (smallest * _DECODE + 0.05 * sum(sizes.values()))
    for name in sizes:  # QC folds what the encodes measured
        yield f"qc:{name}", _TASK
    yield "publish", 2 * _TASK


def part_of_encode(chunk: int, renditions: tuple[str, ...] | list[str]) -> str:
    """The part one encode task (a chunk of a group of renditions) reports."""
    return f"encode:{chunk}:{renditions[0]}"


class TitleProgress:
    """A title's stage and percent, folded from its state changes (any order).

    ``settled`` is the status of a title that has come to an end (``COMPLETE`` or
    ``ERROR``). A failed title goes on only when a part of it starts after a redrive
    later than the one it failed in (the events say ``redrive``: how often the part
    was redriven), so the parts that were still running or retrying when it failed do
    not make it look alive again.
    """

    def __init__(self) -> None:
        self.stage: str | None = None
        self.settled: str | None = None
        self.failed_in = 0  # the redrive round the title failed in
        self.total: float | None = None
        self.done: dict[str, float] = {}
        self.chunks_done = 0
        self.chunks_total: int | None = None
        self._chunk_parts: dict[str, int] = {}

    def fold(self, detail: dict[str, Any], *, resumable: bool = True) -> bool:
        """Fold one ``Media Title State Change`` detail; False if it was ignored.

        ``resumable``: whether a settled title may go on (a failed one, not one that
        was published, held or rejected)."""
        status = detail.get("status")
        stage = detail.get("stage")
        given = detail.get("redrive")  # older events say True for the first round
        redrive = 1.0 if given is True else _number(given) or 0.0
        if status in ("COMPLETE", "ERROR"):
            self.settled = status
            self.failed_in = int(redrive)
            self.stage = stage if isinstance(stage, str) else self.stage
            return True
        if self.settled is not None:
            if not (resumable and self.settled == "ERROR" and redrive > self.failed_in):
                return False
            self.settled = None
        if stage in STAGES and (self.stage not in STAGES or _after(stage, self.stage)):
            self.stage = stage
        total = _number(detail.get("work_total"))
        if total is not None:
            self.total = total
        chunks_total = detail.get("chunks_total")
        if isinstance(chunks_total, int):
            self.chunks_total = chunks_total
        part, weight = detail.get("part"), _number(detail.get("work"))
        if isinstance(part, str) and weight is not None:
            self.done[part] = weight
            chunks = detail.get("chunks")
            if isinstance(chunks, int):
                self._chunk_parts[part] = chunks
                self.chunks_done = sum(self._chunk_parts.values())
        return True

    @property
    def percent(self) -> int:
        """Work done over the whole title's work: 100 only once it is published."""
        if self.settled == "COMPLETE":
            return 100
        if not self.total:
            return 0
        return min(99, math.floor(100 * sum(self.done.values()) / self.total))


def _after(stage: str, than: str | None) -> bool:
    return than is None or STAGES.index(stage) > STAGES.index(than)


def _number(value: Any) -> float | None:
    """A weight from an event: a number, not negative (anyone may put these events)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None
