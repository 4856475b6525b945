"""Worker scratch: a live worker's is never swept, a dead one's always is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reelay.runtime._scratch import STRAY_AGE_S, scratch_root, sweep_scratch

HOLDER = (
    "import sys, time; from pathlib import Path; "
    "from reelay.runtime._scratch import scratch_root, worker_scratch; "
    "print(worker_scratch(scratch_root(Path(sys.argv[1]))), flush=True); time.sleep(120)"
)


def hold(home: Path) -> tuple[subprocess.Popen[str], Path]:
    """A process that made its scratch and lives on: (the process, its TMPDIR)."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    return child, Path(child.stdout.readline().strip())


def test_a_live_workers_scratch_stays_even_if_its_handler_empties_it(tmp_path: Path) -> None:
    child, tmp = hold(tmp_path)
    try:
        (tmp / "work.bin").write_bytes(b"x")
        # A handler that empties its /tmp cannot remove the lock: it is beside it.
        for entry in tmp.iterdir():
            entry.unlink()
        os.utime(tmp.parent, (time.time() - 2 * STRAY_AGE_S,) * 2)  # and looks old
        assert sweep_scratch(tmp_path) == []
        assert tmp.is_dir()
    finally:
        child.kill()
        child.wait()
    assert sweep_scratch(tmp_path) == [tmp.parent]
    assert not tmp.parent.exists()


def test_entries_being_made_and_strays_wait_until_they_are_old(tmp_path: Path) -> None:
    root = scratch_root(tmp_path)
    making = root / ".host-1-abc"  # a worker between mkdir and its lock
    (making / "tmp").mkdir(parents=True)
    (making / ".owner.lock").touch()
    stray = root / "tmpq1w2e3"  # an older reelay's per-call directory
    stray.mkdir()
    assert sweep_scratch(tmp_path) == []
    for entry in (making, stray):
        os.utime(entry, (time.time() - 2 * STRAY_AGE_S,) * 2)
    assert sorted(sweep_scratch(tmp_path)) == sorted([making, stray])
    assert list(root.iterdir()) == []


def test_no_scratch_yet_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep_scratch(tmp_path) == []
    assert not (tmp_path / "cache").exists()


def test_the_cache_is_this_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reelay.runtime._scratch import cache_root

    monkeypatch.delenv("REELAY_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    home = tmp_path / "home"
    home.mkdir()
    assert cache_root(home) == home / "cache"  # the dispatcher's machine: in the home
    # A worker on a machine without the dispatcher's home: the user's cache, and the
    # home's path is left alone.
    missing = tmp_path / "driver-only" / "home"
    assert cache_root(missing) == tmp_path / "xdg" / "reelay"
    assert scratch_root(missing) == tmp_path / "xdg" / "reelay" / "tmp"
    assert not missing.parent.exists()
    monkeypatch.setenv("REELAY_CACHE", str(tmp_path / "fast-disk"))
    assert cache_root(home) == tmp_path / "fast-disk"  # the machine's own choice first


def test_a_cache_is_trimmed_least_recently_used_first(tmp_path: Path) -> None:
    from reelay.runtime._scratch import trim_cache

    root = tmp_path / "sources"
    for age, name in enumerate(["newest", "middle", "oldest"]):
        (root / name).mkdir(parents=True)
        (root / name / "source.mp4").write_bytes(b"x" * 1000)
        then = time.time() - 100 * (age + 1)
        os.utime(root / name, (then, then))
    # The one in use is kept even when it is the oldest; the others go oldest first.
    assert trim_cache(root, 2500, keep=root / "oldest") == [root / "middle"]
    assert sorted(p.name for p in root.iterdir()) == ["newest", "oldest"]
    assert trim_cache(root, 2500) == []  # it fits
    assert trim_cache(root, 0) == [root / "oldest", root / "newest"]
    assert trim_cache(tmp_path / "none", 0) == []
