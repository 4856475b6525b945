"""A rendition's quality, from what its encodes measured chunk by chunk.

Each encode task scores the chunks it makes (`reelay.media.encode.ChunkQuality`:
fidelity VMAF and PSNR against the encoder's own input, display VMAF upscaled to the
display size) on a sample of frames spread over the title. `rendition_quality` folds a
rendition's chunk records into its figures, keeping each chunk's own so that a rule can
name the chunk, and the time, that fails it.
"""

from __future__ import annotations

from typing import Any

#: A rendition's figures in a title's report (None for audio and with QC off).
QUALITY_FIGURES = (
    "fidelity_vmaf",
    "fidelity_vmaf_min",
    "psnr",
    "display_vmaf",
    "display_vmaf_min",
    "frames_scored",
)
CHUNK_FIGURES = ("vmaf", "vmaf_min", "psnr", "display_vmaf", "display_vmaf_min", "worst_frame")


def rendition_quality(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """``fidelity_vmaf`` (mean over the scored frames), ``fidelity_vmaf_min``, ``psnr``,
    ``display_vmaf``, ``display_vmaf_min``, ``frames_scored`` and ``chunks`` (each
    chunk's figures with its index and time span) of one rendition."""
    scored = [(c, c["quality"]) for c in chunks if c.get("quality")]
    frames: int = sum(q["frames_scored"] for _, q in scored)

    def mean(key: str) -> float | None:
        if not frames:
            return None
        return round(float(sum(q[key] * q["frames_scored"] for _, q in scored)) / frames, 2)

    def least(key: str) -> float | None:
        return min((float(q[key]) for _, q in scored), default=None)

    return {
        "fidelity_vmaf": mean("vmaf"),
        "fidelity_vmaf_min": least("vmaf_min"),
        "psnr": mean("psnr"),
        "display_vmaf": mean("display_vmaf"),
        "display_vmaf_min": least("display_vmaf_min"),
        "frames_scored": frames,
        "chunks": [
            {"chunk": c["chunk"], "start_s": c["start_s"], "end_s": c["end_s"]}
            | {k: q[k] for k in CHUNK_FIGURES}
            for c, q in scored
        ],
    }
