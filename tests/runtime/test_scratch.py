"""Worker scratch: a live worker's is never swept, a dead one's always is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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
