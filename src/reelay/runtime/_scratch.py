"""Scratch space of worker processes: one directory each, swept when its worker dies.

A handler's temporary files (``tempfile``, an ffmpeg's work files) go to its worker's
scratch, ``<home>/cache/tmp/<host>-<pid>-<random>/tmp``, as a Lambda handler's go to
its sandbox's ``/tmp``: the worker points ``TMPDIR`` there. Beside that directory, out
of the handler's reach (a handler may empty its ``/tmp``), is a lock file on which the
worker holds an exclusive ``flock`` for as long as it lives; the kernel drops the lock
when the process ends, however it ends (``kill -9`` included). So `sweep_scratch` can
tell the scratch of a dead worker from a live one's without trusting process ids (which
are reused): if it can take the lock, nobody holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

LOCK = ".owner.lock"
# Entries of the scratch root that are not a worker's (left by an older reelay, which
# made per-call directories there), and worker scratch still being made (a dot name),
# are removed only once no handler can still be using them: after Lambda's longest
# timeout, and then some.
STRAY_AGE_S = 3600.0

_held: dict[Path, tuple[Path, int]] = {}  # scratch root -> (this process's tmp dir, lock fd)


def scratch_root(home: Path) -> Path:
    """Where the workers of ``home`` keep their scratch directories."""
    return home / "cache" / "tmp"


def worker_scratch(root: Path) -> Path:
    """This process's temporary directory under ``root``, made and locked on first use.

    Raises `OSError` if it cannot be made (no room, no permission)."""
    held = _held.get(root)
    if held is not None and held[0].is_dir():
        return held[0]
    name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Made under a dot name and renamed once locked: a sweep leaves young dot entries
    # alone, so it never sees the lock file of a live worker unlocked.
    making = root / f".{name}"
    (making / "tmp").mkdir(parents=True)
    fd = os.open(making / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        making.rename(root / name)
    except OSError:
        os.close(fd)
        raise
    if held is not None:
        os.close(held[1])
    _held[root] = (root / name / "tmp", fd)
    return root / name / "tmp"


def sweep_scratch(home: Path) -> list[Path]:
    """Remove the scratch of workers that are gone (and stray old entries); return what
    was removed. A live worker's scratch is never touched: its lock is held."""
    root = scratch_root(home)
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:  # no scratch yet
        return removed
    for entry in entries:
        if not entry.name.startswith(".") and (entry / LOCK).exists():
            if _owner_alive(entry / LOCK):
                continue
        elif not _stray(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def _owner_alive(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return True  # vanished or unreadable: not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the lock if we took it
    return False


def _stray(entry: Path) -> bool:
    try:
        return time.time() - entry.lstat().st_mtime > STRAY_AGE_S
    except OSError:
        return False
