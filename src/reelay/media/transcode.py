"""``reelay transcode SRC``: put one file through the media pipeline and wait for it.

It serves the media app on a home (a fresh temporary one unless given), uploads the
source under ``ingest/`` (the upload event starts the pipeline, as any upload would),
follows the title's events to draw progress, and returns the title's report once the
title is published, held, rejected or failed.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import yaml

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import NoSuchKeyError
from reelay.media.config import BUCKET, INGEST_PREFIX, SOURCE, qc_every, title_id_for
from reelay.media.ladder import load_ladder
from reelay.media.progress import TitleProgress
from reelay.media.rules import load_rules
from reelay.runtime import Runtime, load_app
from reelay.state import FAILED

TERMINAL = {
    "Media Title Published": "published",
    "Media Title Held": "held",
    "Media Title Rejected": "rejected",
    "Media Title Failed": "failed",
}
EXIT_CODES = {"published": 0, "rejected": 3}
IDLE_WAIT_S = 60.0


def transcode(
    source: str | os.PathLike[str],
    *,
    home: str | os.PathLike[str] | None = None,
    state_url: str | None = None,
    ladder: str | None = None,
    rules: str | None = None,
    chunk_seconds: float | None = None,
    group_size: int | None = None,
    qc: str | int | None = None,
    scenes: bool = False,
    workers: int | None = None,
    executor: str | None = None,
    timeout: float = 6 * 3600,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Run the pipeline on one file; return its report (``status``, ``title_id``...).

    The object store comes from the environment (``REELAY_STORE``), as for every
    command, and so does the state unless ``state_url`` names one; ``executor`` is a
    URL as for ``reelay up`` (``local``, ``ray:local``...)."""
    src = Path(source)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    # Check the ladder and rules here, so that a bad file is an error (naming the file)
    # before any work. Files then travel by content: a worker on another machine has
    # none of the driver's paths.
    load_ladder(ladder or "default")
    load_rules(rules)
    if qc is not None:
        qc_every(qc)
    env = {
        "REELAY_MEDIA_LADDER": _content(ladder) or "default",
        "REELAY_MEDIA_RULES": _content(rules) or "default",
    }
    for name, value in (
        ("REELAY_MEDIA_CHUNK_SECONDS", chunk_seconds),
        ("REELAY_MEDIA_GROUP", group_size),
        ("REELAY_MEDIA_QC", qc),
    ):
        if value is not None:
            env[name] = str(value)
    if scenes:
        env["REELAY_MEDIA_SCENES"] = "1"
    settings = Settings.load(
        home or tempfile.mkdtemp(prefix="reelay-transcode-"),
        retry_delays=(1.0, 3.0),
        state_url=state_url,
    )
    started = time.monotonic()
    progress = Progress()
    app = load_app("media").with_environment(env)
    with Runtime(app, settings, executor=executor, max_workers=workers) as runtime:
        runtime.start()
        client = runtime.client
        # From the start of the log: the same bytes uploaded again are the same title, and
        # a title this home already settled is answered by its earlier events.
        cursor = 0
        started_at = time.time()
        stuck: dict[str, str] | None = None
        info = client.put_object(BUCKET, f"{INGEST_PREFIX}{src.name}", src)
        title_id = title_id_for(info.key, info.etag)
        progress.title_id = title_id
        deadline = time.monotonic() + timeout
        status = None
        while status is None:
            # Read before the events: if nothing was left to run then, the events read
            # next hold all that this title will ever get.
            idle = client.state.idle()
            for event in client.state.events_after(cursor):
                cursor = event.seq
                if event.source != SOURCE:
                    continue
                detail = json.loads(event.body).get("detail", {})
                if (detail.get("title") or {}).get("id") != title_id:
                    continue
                progress.update(event.detail_type, detail)
                status = TERMINAL.get(event.detail_type, status)
            if on_progress is not None:
                on_progress(progress)
            if status is None:
                if time.monotonic() > deadline:
                    status = "failed"
                    break
                if idle:
                    # Nothing is queued, running or due, and the title has not settled:
                    # its work failed where even the failure could not be recorded (a
                    # worker that cannot reach the state). Waiting would wait forever.
                    stuck = _last_failure(client, since=started_at)
                    status = "failed"
                    break
                time.sleep(0.1)
        # Let what the title still has in flight (a duplicate delivery, the retries of a
        # failing part) settle, rather than leave it queued in the home.
        runtime.wait_idle(timeout=IDLE_WAIT_S)
        try:
            report: dict[str, Any] = json.loads(
                client.get_object(BUCKET, f"reports/{title_id}.json")
            )
        except NoSuchKeyError:
            report = {
                "status": status,
                "title_id": title_id,
                "source": None,
                "renditions": [],
                "outputs": {},
                "timings": {},
            }
        if status == "failed" and "error" not in report:
            report["error"] = stuck or {
                "code": "TIMEOUT",
                "message": f"no result within {timeout:g} s",
            }
        report["home"] = str(settings.home)
        report["outputs"] = {k: _local(settings, v) for k, v in report.get("outputs", {}).items()}
    report["timings"]["wall_s"] = round(time.monotonic() - started, 3)
    return report


def _last_failure(client: Client, since: float) -> dict[str, str]:
    """The error of the invocation that last failed for good since ``since``, as a
    report's error: what stopped a title that will not settle."""
    failed = [
        i
        for i in client.state.invocations(status=FAILED, limit=100)
        if i.created >= since and i.error
    ]
    if not failed:
        return {"code": "STALLED", "message": "the title stopped with nothing left to run"}
    last = max(failed, key=lambda i: i.finished or 0.0)
    error = last.error or {}
    return {
        "code": "STALLED",
        "message": f"function {last.function!r} failed for good and left the title unsettled: "
        f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}",
    }


def _content(name_or_path: str | None) -> str | None:
    """A (checked) file's YAML, for its environment variable, with the name it takes
    from the file's stem written in; else the name as given."""
    if not (name_or_path and Path(name_or_path).is_file()):
        return name_or_path
    path = Path(name_or_path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict):
        doc.setdefault("name", path.stem)
    return yaml.safe_dump(doc, sort_keys=False)


def _local(settings: Settings, url: str) -> str:
    """An s3:// URL of the home's own file store as a local path (what a player opens)."""
    if settings.store_url.startswith("file://") and url.startswith("s3://"):
        return str(Path(settings.store_url[len("file://") :]) / url[len("s3://") :])
    return url


class Progress:
    """What is known of a title so far, from its events (folded as the title index
    folds them: `reelay.media.progress.TitleProgress`)."""

    def __init__(self) -> None:
        self.title_id = ""
        self.started = time.monotonic()
        self._fold = TitleProgress()

    def update(self, detail_type: str, detail: dict[str, Any]) -> None:
        if detail_type == "Media Title State Change":
            self._fold.fold(detail)

    @property
    def stage(self) -> str:
        return self._fold.stage or "upload"

    @property
    def percent(self) -> int:
        return self._fold.percent

    @property
    def chunks_done(self) -> int:
        return self._fold.chunks_done

    @property
    def chunks_total(self) -> int:
        return self._fold.chunks_total or 0

    @property
    def eta_s(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.percent <= 5 or self.percent >= 100:
            return None
        return elapsed * (100 - self.percent) / self.percent


def progress_bar(stream: TextIO = sys.stderr, width: int = 30) -> Callable[[Progress], None]:
    """A one-line progress bar redrawn in place on a terminal."""
    last = [""]

    def draw(p: Progress) -> None:
        filled = math.floor(width * p.percent / 100)
        eta = f"ETA {p.eta_s:4.0f} s" if p.eta_s is not None else ""
        chunks = f"chunks {p.chunks_done}/{p.chunks_total}" if p.chunks_total else ""
        line = (
            f"\r{p.title_id[:32]:32} {p.stage:9} [{'#' * filled}{'.' * (width - filled)}] "
            f"{p.percent:3d}% {chunks:14} {eta}"
        )
        if line != last[0]:
            stream.write(line)
            stream.flush()
            last[0] = line

    return draw
