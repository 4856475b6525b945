"""Scratch space of worker processes: one directory each, swept when its worker dies.

A handler's temporary files (``tempfile``, an ffmpeg's work files) go to its worker's
scratch, ``<cache>/tmp/<host>-<pid>-<random>/tmp`` (see `cache_root`: ``<home>/cache``
on the dispatcher's machine), as a Lambda handler's go to
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


def cache_root(home: Path) -> Path:
    """This machine's cache for ``home`` (scratch, fetched sources): ``REELAY_CACHE``
    where the machine sets it, else ``<home>/cache`` where the home is on this machine,
    else the user's cache directory (``$XDG_CACHE_HOME/reelay``, ``~/.cache/reelay``): a
    worker on a machine without its dispatcher's home makes nothing at that path."""
    given = os.environ.get("REELAY_CACHE")
    if given:
        return Path(given)
    if home.is_dir() and os.access(home, os.W_OK):
        return home / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "reelay"


def scratch_root(home: Path) -> Path:
    """Where the workers of ``home`` on this machine keep their scratch directories."""
    return cache_root(home) / "tmp"


def trim_cache(root: Path, limit_bytes: int, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used entries of ``root`` (by modification time: touch
    an entry when it is used) until what is left weighs at most ``limit_bytes``; never
    ``keep``. Returns what was removed."""
    entries = []
    for entry in root.iterdir() if root.is_dir() else ():
        with contextlib.suppress(OSError):
            entries.append((entry.stat().st_mtime, entry, _weight(entry)))
    total = sum(weight for _, _, weight in entries)
    removed = []
    for _, entry, weight in sorted(entries, key=lambda e: e[0]):
        if total <= limit_bytes:
            break
        if entry == keep:
            continue
        shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(True)
        total -= weight
        removed.append(entry)
    return removed


def _weight(path: Path) -> int:
    if not path.is_dir():
        return path.stat().st_size
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(dirpath, name)).st_size
    return total


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
