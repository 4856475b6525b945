#!/usr/bin/env python3
"""Set up `.venv/` with reelay installed, then run the demo or the test suite.

    python3 dev.py demo     # set up, then `reelay demo` on embedded defaults
    python3 dev.py test     # set up, then the suite on SQLite, then the State's users on PostgreSQL
    python3 dev.py test tests/web -x    # set up, then pytest with these arguments, once

Needs only Python 3.11+ (and, for `test`, a PostgreSQL server on 127.0.0.1:5432:
scripts/system-deps.sh brings one). The environment is rebuilt when pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".reelay-installed"
WEB = ROOT / "src" / "reelay" / "web"  # the dashboard's npm packages (hls.js)
# What `dev.py test` runs a second time with every test's State in PostgreSQL
# (tests/conftest.py gives each test a schema of its own in a database made for the run).
POSTGRES_TESTS = [
    "tests/state",
    "tests/runtime",
    "tests/media",
    "tests/web",
    "tests/sources",
    "tests/streams",
    "tests/test_client.py",
    "tests/test_client_crash.py",
    "tests/test_idempotency.py",
    "tests/test_keys.py",
]


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"reelay needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted and (BIN / "reelay").exists():
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    print("installing reelay with its test and cluster extras into .venv", flush=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def ensure_web() -> None:
    """Install the dashboard's browser libraries from the npm registry (`npm ci`)."""
    lock = WEB / "package-lock.json"
    stamp = WEB / "node_modules" / ".reelay-installed"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        print(
            "npm not found: the dashboard works, but its video player needs hls.js from the "
            "npm registry; install Node.js (Debian: apt-get install npm) and run this again",
            file=sys.stderr,
        )
        return
    print("installing the dashboard's hls.js with npm ci", flush=True)
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=WEB)
    if done.returncode != 0:  # the dashboard works without it; only its player needs it
        print(
            f"npm ci failed (exit {done.returncode}): the dashboard's player is missing",
            file=sys.stderr,
        )
        return
    stamp.write_text(wanted)


def run_tests(args: list[str]) -> int:
    """Pytest with `args`, once; without args, the whole suite on SQLite and then, if it
    passed, POSTGRES_TESTS on PostgreSQL. The exit status is the first failure's."""
    if args:
        return pytest(args)
    code = pytest([], "the whole suite on SQLite", state="sqlite")
    if code != 0:
        print("the SQLite pass failed, so the PostgreSQL pass did not run", file=sys.stderr)
        return code
    title = "state, runtime, media, web, sources and client tests on PostgreSQL"
    return pytest(POSTGRES_TESTS, title, state="postgresql")


def pytest(args: list[str], title: str = "", state: str = "") -> int:
    """Run pytest in .venv; with a title, print it as a header, and with a state, run
    every test's State on that backend (REELAY_TEST_STATE, read by tests/conftest.py)."""
    env = dict(os.environ)
    if state:
        env["REELAY_TEST_STATE"] = state
    if title:
        print(f"\n=== {title} (REELAY_TEST_STATE={state}) ===", flush=True)
    return subprocess.run([str(BIN / "python"), "-m", "pytest", *args], env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test"):
        print(__doc__.strip())
        return 2
    ensure_venv()
    ensure_web()
    os.chdir(ROOT)
    if argv[0] == "test":
        return run_tests(argv[1:])
    return subprocess.run([str(BIN / "reelay"), "demo", *argv[1:]]).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
