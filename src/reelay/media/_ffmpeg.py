"""Finding and running ffmpeg, the one place the media pipeline shells out.

ffmpeg comes from the ``imageio-ffmpeg`` wheel (it carries libx264, libx265, SVT-AV1,
libvpx, libopus and libvmaf) unless ``REELAY_FFMPEG`` names another binary. Every run
reads only local files: the protocol whitelist is ``file`` (plus ``pipe`` for our own
output), so no input can make ffmpeg open a URL, and a failure raises `FfmpegError`
with the exit code, the input and the tail of stderr.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from reelay.errors import FfmpegError, FfmpegNotFoundError

#: Only local files, never a URL, whatever a playlist or concat list inside says.
PROTOCOLS = "file,pipe"
#: The containers a source may be (ffmpeg demuxer names); playlists are not among them.
SOURCE_FORMATS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "mpegts",
    "avi",
    "mxf",
    "flv",
    "ogg",
    "wav",
    "mp3",
    "aac",
    "flac",
    "w64",
    "asf",
    "mpeg",
    "m4v",
    "h264",
    "hevc",
    "ivf",
    "yuv4mpegpipe",
    "caf",
)
STDERR_TAIL = 2000

INSTALL_HINT = (
    "install the imageio-ffmpeg wheel (pip install imageio-ffmpeg), or set REELAY_FFMPEG "
    "to an ffmpeg binary built with libx264 (and libvmaf for quality control)"
)


@functools.cache
def ffmpeg_path() -> str:
    """The ffmpeg binary to run: ``REELAY_FFMPEG``, else the imageio-ffmpeg one."""
    configured = os.environ.get("REELAY_FFMPEG")
    if configured:
        found = shutil.which(configured) or (configured if Path(configured).is_file() else None)
        if found is None or not os.access(found, os.X_OK):
            raise FfmpegNotFoundError(
                f"REELAY_FFMPEG={configured!r} is not an executable file; {INSTALL_HINT}"
            )
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        raise FfmpegNotFoundError(f"no ffmpeg: {INSTALL_HINT}") from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise FfmpegNotFoundError(f"no usable ffmpeg ({exc}); {INSTALL_HINT}") from None


def run_ffmpeg(args: Sequence[str], *, input: str, timeout: float | None = None) -> str:
    """Run ffmpeg with ``args`` (after the global options); return its stderr.

    ``input`` names what is being processed, for the error message.
    """
    cmd = [
        ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-protocol_whitelist",
        PROTOCOLS,
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            errors="replace",
            # SVT-AV1 prints a banner to stderr at every start unless told to log errors only
            env={"SVT_LOG": "1", **os.environ},
        )
    except subprocess.TimeoutExpired:
        raise FfmpegError(-1, input, f"timed out after {timeout:g} s") from None
    except OSError as exc:
        raise FfmpegNotFoundError(f"cannot run {cmd[0]}: {exc}; {INSTALL_HINT}") from None
    if proc.returncode != 0:
        raise FfmpegError(proc.returncode, input, _local_names(proc.stderr, args)[-STDERR_TAIL:])
    return proc.stderr


def _local_names(stderr: str, args: Sequence[str]) -> str:
    """ffmpeg's messages with each file it was given called by its name alone: the
    worker's directories (scratch, caches) mean nothing to whoever reads the error."""
    for arg in sorted(args, key=len, reverse=True):
        if os.path.isabs(arg) and os.sep in arg:
            stderr = stderr.replace(arg, os.path.basename(arg))
    return stderr.strip()


def source_input(path: str | os.PathLike[str], *, seek_s: float = 0.0) -> list[str]:
    """The ffmpeg options that open a source safely: only whitelisted containers."""
    seek = ["-ss", f"{seek_s:.6f}"] if seek_s > 0 else []
    return [*seek, "-format_whitelist", ",".join(SOURCE_FORMATS), "-i", os.fspath(path)]
