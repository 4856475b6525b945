"""Ten titles queued at once on two workers: when does each publish?

    .venv/bin/python benchmarks/scheduling.py [--titles 10] [--seconds 8] [--workers 2]

The same titles go through the media pipeline twice in one run, on fresh homes: once
with first-in-first-out claiming (what the dispatcher did before) and once with
``oldest-first`` (the default: ready work of older event chains first, so each title's
later steps run before younger titles' early ones). Every upload is in the log before
the runtime starts, as when ten publishers upload at once. It prints, for each
policy, the time from start to the first, median and last publish, and the first
publish as a share of the total (ideal with N titles: about 1/N).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from reelay.config import Settings
from reelay.media.config import BUCKET, INGEST_PREFIX, SOURCE
from reelay.media.samples import make_clip
from reelay.runtime import Runtime, load_app
from reelay.state import SCHEDULING, Scheduling

TIMEOUT_S = 1800.0


def publish_times(
    clip: Path, titles: int, workers: int, scheduling: Scheduling, root: Path
) -> list[float]:
    """Seconds from the runtime's start to each title's publish, in publish order."""
    settings = Settings.load(root / scheduling, retry_delays=(1.0, 3.0))
    app = load_app("media").with_environment(
        {"REELAY_MEDIA_LADDER": "demo", "REELAY_MEDIA_CHUNK_SECONDS": "4"}
    )
    with Runtime(app, settings, max_workers=workers, scheduling=scheduling) as runtime:
        client = runtime.client
        for n in range(titles):
            client.put_object(BUCKET, f"{INGEST_PREFIX}title-{n:02d}.mp4", clip)
        started = time.monotonic()
        runtime.start()
        done: list[float] = []
        cursor = 0
        while len(done) < titles:
            if time.monotonic() - started > TIMEOUT_S:
                raise SystemExit(
                    f"{scheduling}: {len(done)} of {titles} published in {TIMEOUT_S:g} s"
                )
            for event in client.state.events_after(cursor):
                cursor = event.seq
                if event.source != SOURCE:
                    continue
                if event.detail_type == "Media Title Published":
                    done.append(time.monotonic() - started)
                elif event.detail_type in ("Media Title Failed", "Media Title Held"):
                    detail = json.loads(event.body)["detail"]
                    raise SystemExit(f"{scheduling}: a title did not publish: {detail}")
            time.sleep(0.05)
        if not runtime.wait_idle(60):
            raise SystemExit(f"{scheduling}: work still pending a minute after the last publish")
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--titles", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each title")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelay-bench-scheduling-") as tmp:
        root = Path(tmp)
        clip = make_clip(root / "clip.mp4", seconds=args.seconds, size="640x360")
        print(
            f"{args.titles} titles of {args.seconds:g} s 640x360 (ladder 'demo': 240p, 360p, "
            f"AAC; 4 s chunks; QC on), queued at once, {args.workers} workers"
        )
        print(f"{'scheduling':14} {'first':>8} {'median':>8} {'last':>8} {'first/last':>11}")
        results = {}
        for scheduling in reversed(SCHEDULING):  # fifo (the old behaviour) first
            times = publish_times(clip, args.titles, args.workers, scheduling, root)
            results[scheduling] = times
            print(
                f"{scheduling:14} {times[0]:7.1f}s {statistics.median(times):7.1f}s "
                f"{times[-1]:7.1f}s {times[0] / times[-1]:11.2f}"
            )
        old, new = results["fifo"], results["oldest-first"]
        median = statistics.median(new) / statistics.median(old)
        print(
            f"oldest-first vs fifo: first publish {new[0] / old[0]:.2f}x the time, "
            f"median {median:.2f}x, total {new[-1] / old[-1]:.2f}x"
        )


if __name__ == "__main__":
    main()
