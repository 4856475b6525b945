"""The built-in demo: uploads trigger a checksum function whose results are catalogued.

``reelay demo`` makes a handful of files with random content, puts them in the
``uploads`` bucket (each put emits an S3 ``ObjectCreated:Put`` event), and serves the
app in ``reelay.yaml`` beside this file on embedded defaults: ``checksum`` hashes each
object and stores its digest, its success destination emits an event, and ``catalog``
(triggered by an EventBridge pattern on that event) records it once. One file is
marked broken, so the demo also shows retries and the dead-letter queue.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import click

from reelay._text import plural
from reelay.config import Settings
from reelay.runtime import Runtime, load_app
from reelay.state import FAILED, SUCCEEDED

APP_FILE = Path(__file__).with_name("reelay.yaml")


def run_demo(home: Path | None = None, *, files: int = 12) -> int:
    """Run the demo; return the exit status (0 when every result checks out)."""
    home = home or Path(tempfile.mkdtemp(prefix="reelay-demo-"))
    settings = Settings.load(home, retry_delays=(0.2, 0.4))
    app = load_app(APP_FILE)
    click.echo(f"reelay demo: home {settings.home}")
    click.echo(f"app {app.name}: {', '.join(sorted(app.functions))} ({APP_FILE})")
    expected: dict[str, str] = {}
    started = time.perf_counter()
    with Runtime(app, settings) as runtime:
        runtime.start()
        client = runtime.client
        for i in range(files):
            data = os.urandom(256 * 1024 * (1 + i % 4))
            key = f"incoming/file-{i:03d}.bin"
            client.put_object("uploads", key, data)
            expected[key] = hashlib.sha256(data).hexdigest()
        client.put_object("uploads", "incoming/file.broken", b"this one fails on purpose")
        click.echo(f"uploaded {files + 1} files to s3://uploads/incoming/ (one marked broken)")
        idle = runtime.wait_idle(timeout=120)
    elapsed = time.perf_counter() - started
    with runtime.client as client:
        state = client.state
        counts = state.counts()
        wrong = [
            key
            for key, digest in expected.items()
            if client.get_object("results", f"checksums/{key}.sha256").split()[0].decode() != digest
        ]
        catalogued = sum(1 for _ in client.list_objects("results", "catalog/"))
        dead = state.invocations(status=FAILED)
        events = state.last_seq()
    click.echo(
        f"done in {elapsed:.2f} s: {plural(events, 'event')}, "
        f"{plural(counts[SUCCEEDED], 'invocation')} "
        f"succeeded, {counts[FAILED]} in the DLQ"
    )
    click.echo(
        f"checksums verified: {len(expected) - len(wrong)}/{len(expected)}; "
        f"catalog entries: {catalogued}"
    )
    for inv in dead:
        click.echo(
            f"DLQ: {inv.function} {inv.id} after "
            f"{plural(inv.attempts, 'attempt')}: "
            f"{(inv.error or {}).get('errorMessage')}"
        )
    click.echo("look around:")
    for command in ("invocations", "events", "logs checksum", "dlq list"):
        click.echo(f"  reelay {command} --home {settings.home}")
    ok = idle and not wrong and catalogued == len(expected) and len(dead) == 1
    if not ok:
        click.echo("demo FAILED: results above do not check out", err=True)
    return 0 if ok else 1
