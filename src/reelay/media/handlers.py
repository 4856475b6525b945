"""The media pipeline's functions: plain Lambda handlers that talk only through events.

::

  s3 ObjectCreated ingest/*  -> inspect --Media Title Inspected--> plan
  (a per-title ladder first: plan --Media Trial Requested (codec x height)--> trial
   --+ barrier trials:T --Media Trials Finished--> choose_ladder --Media Ladder Chosen--> plan)
  plan --Media Chunk Encode Requested (chunk x group)--> encode -------+ barrier assemble:T:R
       --Media Audio Encode Requested (per output)--> encode_audio --+
       --Media Subtitles Requested--> subtitles --------------------+ barrier package:T
  barrier assemble:T:R --Media Rendition Encoded--> assemble --------+
  barrier package:T --Media Title Assembled--> package --Media QC Requested--> qc
  barrier publish:T --Media Title Checked--> publish --> Media Title Published | Held
  inspect refuses --> Media Title Rejected;  any stage out of retries --> fail --> Failed

Every stage is idempotent: it writes objects whose content depends only on its input,
and guards the events it emits with `reelay.once`. The joins are barriers
(`Client.arrive`): the arrival that completes one emits the next stage's event in the
same transaction, so each assemble and the package run exactly once per title however
often an encode is retried or redelivered. Progress follows MediaConvert's job states
(``Media Title State Change``): every stage says PROGRESSING when it starts and
STATUS_UPDATE with the weight of each part of the work it finishes (the plan gives the
title's whole weight); then COMPLETE or ERROR. `reelay.media.progress` folds them into
a stage and a percent.

Errors name the source by its object key (``s3://bucket/key``), never by the worker's
local copy of it.

A title is pinned to the bytes it started from: its first stage copies them inside the
store (`Title.snapshot_key`: S3 copies on the server, a directory makes a hard link),
checked against the etag of the upload's event, and every stage reads that copy. So an
upload of other bytes under the same key while a title runs is another title, and
changes nothing of this one; if the key holds other bytes before the title could copy
its own, the title fails with ``REPLACED`` (its bytes are gone). The copy is deleted
when the title is published, held or refused; a failed title keeps it, so that a
redrive goes on from the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from reelay.client import Client, default_client
from reelay.errors import (
    InvalidEventError,
    NoSuchKeyError,
    PreconditionFailedError,
    SourceRejectedError,
)
from reelay.idempotency import once
from reelay.media import encode as enc
from reelay.media import per_title
from reelay.media._records import load
from reelay.media.config import SOURCE, MediaConfig, Title, env_number, title_id_for
from reelay.media.ladder import Ladder
from reelay.media.package import Track
from reelay.media.package import package as write_package
from reelay.media.plan import Chunk, Plan, Rendition, make_plan
from reelay.media.probe import SourceInfo, probe
from reelay.media.progress import STAGE_OF, part_of_encode, work
from reelay.media.quality import QUALITY_FIGURES, rendition_quality
from reelay.media.rules import evaluate
from reelay.media.seams import seam_faults
from reelay.runtime._scratch import cache_root, trim_cache

# -- helpers ---------------------------------------------------------------------------


def _event(detail_type: str, title: Title, **detail: Any) -> dict[str, Any]:
    """A PutEvents entry of the pipeline: every detail names its title."""
    return {
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": {"title": title.as_dict(), **detail},
    }


def _emit(client: Client, detail_type: str, title: Title, **detail: Any) -> None:
    client.put_events([_event(detail_type, title, **detail)])


def _state(client: Client, title: Title, status: str, stage: str, **extra: Any) -> None:
    """A ``Media Title State Change``, in the spirit of MediaConvert's job state events."""
    _emit(client, "Media Title State Change", title, status=status, stage=stage, **extra)


def _started(client: Client, title: Title, stage: str, context: Any) -> None:
    """Say that a stage runs; a redriven part says how often it was redriven (a title
    that failed before that redrive goes on: see `TitleProgress`)."""
    redrives = _redrives(client, getattr(context, "aws_request_id", None))
    extra = {"redrive": redrives} if redrives else {}
    _state(client, title, "PROGRESSING", stage, **extra)


def _redrives(client: Client, request_id: Any) -> int:
    """How often the invocation ``request_id`` was redriven from the DLQ (0 if it is
    not an invocation of this home: a handler called directly, a foreign record)."""
    if not isinstance(request_id, str):
        return 0
    try:
        return client.state.invocation(request_id).redrives
    except LookupError:
        return 0


def _finished(
    client: Client,
    title: Title,
    stage: str,
    part: str,
    weights: dict[str, float],
    **extra: Any,
) -> None:
    """Say that one part of the title's work is done, and what it weighed (a part the
    plan did not weigh weighs nothing: progress never fails work that is done)."""
    work = weights.get(part, 0.0)
    _state(client, title, "STATUS_UPDATE", stage, part=part, work=work, **extra)


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    """A temporary directory in the worker's scratch (``TMPDIR``): the runtime sweeps
    it if the worker dies in the middle."""
    with tempfile.TemporaryDirectory(prefix="media-") as tmp:
        yield Path(tmp)


def _source_file(client: Client, title: Title) -> Path:
    """The title's source bytes (its snapshot, `_pin_source`) as a local file, fetched
    once per machine and title. The machine's source cache is bounded
    (``REELAY_SOURCE_CACHE_GB``, default 20): a fetch makes room by dropping the sources
    least recently used."""
    cache = _source_cache(client, title)
    path = cache / Path(title.snapshot_key).name
    if path.exists():
        with contextlib.suppress(OSError):
            os.utime(cache)  # used: the last to go
    else:
        _pin_source(client, title)
        # Fetched outside the cache directory, then renamed in: a title that fails
        # meanwhile removes that directory (`_drop_source`) under a sibling's download.
        with _workdir() as tmp:
            client.download(title.bucket, title.snapshot_key, tmp / path.name)
            cache.mkdir(parents=True, exist_ok=True)
            # A rename where the scratch shares the home's file system (under the
            # runtime it does), else a copy and a rename within the cache.
            part = cache / f".{tmp.name}.part"  # this task's: tmp's name is unique
            shutil.move(tmp / path.name, part)
            os.replace(part, path)
        limit = env_number("REELAY_SOURCE_CACHE_GB", 20, 0, 10**6) * 2**30
        trim_cache(cache.parent, int(limit), keep=cache)
    return path


def _pin_source(client: Client, title: Title) -> None:
    """Make the title's snapshot of its source bytes, unless it has one: a copy inside
    the store of the upload's key, if the key still holds the bytes of the upload's
    event (its etag). `SourceRejectedError` ``REPLACED`` if it holds others by now: they
    are another upload's, another title's."""
    with contextlib.suppress(NoSuchKeyError):
        client.head_object(title.bucket, title.snapshot_key)
        return
    try:
        client.copy_object(
            title.bucket, title.key, title.bucket, title.snapshot_key, if_match=title.etag
        )
    except PreconditionFailedError:
        try:
            other = title_id_for(title.key, client.head_object(title.bucket, title.key).etag)
        except NoSuchKeyError:
            other = "since deleted"
        raise SourceRejectedError(
            "REPLACED",
            f"{title.url} was overwritten before this title could copy its bytes: it holds "
            f"another upload now, another title ({other}); the bytes of this upload "
            f"(etag {title.etag}) are gone",
        ) from None


def _drop_source(client: Client, title: Title, *, keep_snapshot: bool = False) -> None:
    """Forget the title's source once the title is settled (published, held, refused):
    its snapshot in the store and this machine's cached copy. A failed title keeps its
    snapshot (``keep_snapshot``): a redrive of its parts goes on from the same bytes."""
    if not keep_snapshot:
        client.delete_object(title.bucket, title.snapshot_key)
    shutil.rmtree(_source_cache(client, title), ignore_errors=True)


def _settled(client: Client, title: Title) -> bool:
    """Whether the title was published, held or refused already (its report says so):
    an upload of the same bytes again, or a late delivery, has nothing left to do."""
    try:
        report = json.loads(client.get_object(title.bucket, title.report_key))
    except NoSuchKeyError:
        return False
    return isinstance(report, dict) and report.get("status") in ("published", "held", "rejected")


def _source_cache(client: Client, title: Title) -> Path:
    # Per title, not per content: the same bytes uploaded under two keys are two titles,
    # and one settling (which drops its cache) must not pull the file from under the other.
    return cache_root(client.settings.home) / "sources" / title.id


def _load(client: Client, title: Title, name: str) -> Any:
    return json.loads(client.get_object(title.bucket, title.work(name)))


def _save(client: Client, title: Title, name: str, value: Any) -> None:
    client.put_object(title.bucket, title.work(name), json.dumps(value, indent=1).encode())


def _job(client: Client, title: Title) -> tuple[MediaConfig, SourceInfo, Plan]:
    job = _load(client, title, "job.json")
    return (
        load(MediaConfig, job["config"]),
        load(SourceInfo, job["source"]),
        load(Plan, job["plan"]),
    )


def _title(event: dict[str, Any]) -> Title:
    detail = event.get("detail") if isinstance(event, dict) else None
    return Title.from_dict(detail.get("title") if isinstance(detail, dict) else None)


# -- stages ----------------------------------------------------------------------------


def inspect(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An upload under the ingest prefix: probe it, then accept or quarantine it."""
    client = default_client()
    config = MediaConfig.from_env()
    out: dict[str, Any] = {}
    for record in event["Records"]:
        title = Title.from_s3_record(record)
        started = time.time()
        if _settled(client, title):  # and its snapshot gone: not to be made again
            out[title.id] = "settled"
            continue
        try:
            src = _source_file(client, title)
        except NoSuchKeyError:  # moved to quarantine by an earlier delivery of this event
            out[title.id] = "gone"
            continue
        except SourceRejectedError as exc:  # REPLACED: not this upload's bytes
            _fail(client, title, "inspect", {"code": exc.code, "message": str(exc)}, "replaced")
            out[title.id] = "replaced"
            continue
        _started(client, title, "inspect", context)
        try:
            source = probe(src, config.limits, name=title.url)
        except SourceRejectedError as exc:
            _reject(client, title, exc, started)
            out[title.id] = "rejected"
            continue
        _save(
            client,
            title,
            "inspect.json",
            {
                "stage": "inspect",
                "source": source.as_dict(),
                "started": started,
                "finished": time.time(),
            },
        )
        once(f"media:inspected:{title.id}", _announcer(client, title, config, source))
        out[title.id] = "accepted"
    return out


def _announcer(client: Client, title: Title, config: MediaConfig, source: SourceInfo) -> Any:
    def announce() -> bool:
        _emit(client, "Media Title Inspected", title, config=config.as_dict())
        _state(client, title, "PROGRESSING", "inspect", source=source.summary())
        return True

    return announce


def _reject(client: Client, title: Title, exc: SourceRejectedError, started: float) -> None:
    def effect() -> bool:
        target = f"{title.quarantine_prefix}{Path(title.key).name}"
        _pin_source(client, title)
        client.copy_object(title.bucket, title.snapshot_key, title.bucket, target)
        # The upload goes, unless the key holds another upload's bytes by now (that one
        # is another title). S3 has no conditional delete: a put in between these two
        # calls would be deleted too.
        with contextlib.suppress(NoSuchKeyError):
            if client.head_object(title.bucket, title.key).etag == title.etag:
                client.delete_object(title.bucket, title.key)
        error = {"code": exc.code, "message": str(exc)}
        report = _base_report(title, "rejected") | {
            "error": error,
            "quarantine": target,
            "timings": {"inspect": round(time.time() - started, 3)},
        }
        client.put_object(title.bucket, title.report_key, json.dumps(report, indent=1).encode())
        _emit(client, "Media Title Rejected", title, error=error, quarantine=target)
        _state(client, title, "ERROR", "inspect", error=error)
        return True

    once(f"media:rejected:{title.id}", effect)
    _drop_source(client, title)


def plan(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Plan chunks and renditions; fan out one encode per chunk and rendition group."""
    client = default_client()
    title = _title(event)
    try:
        config = load(MediaConfig, event["detail"]["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidEventError(
            f"the event's detail.config is not a media configuration: {exc!r}"
        ) from None
    if config.ladder.auto is not None:  # a per-title ladder: trial encodes pick its rungs
        return _request_trials(client, title, config, context)
    started = time.time()
    source = load(SourceInfo, _load(client, title, "inspect.json")["source"])
    _started(client, title, "plan", context)  # a title inspect accepted, not any event's
    cuts = None
    if config.scenes and source.video:
        with _workdir() as tmp:
            cuts = enc.scene_cuts(_source_file(client, title), source, float(source.video.fps), tmp)
    the_plan = make_plan(
        title.id,
        source,
        config.ladder,
        chunk_seconds=config.chunk_seconds,
        group_size=config.group_size,
        scene_cuts=cuts,
    )
    if not the_plan.renditions and not the_plan.audio:
        _reject(
            client,
            title,
            SourceRejectedError(
                "NO_RENDITIONS",
                f"{title.url}: the ladder {config.ladder.name!r} has no rendition for its streams",
            ),
            started,
        )
        return {"rejected": True}
    _save(
        client,
        title,
        "job.json",
        {
            "stage": "plan",
            "config": config.as_dict(),
            "source": source.as_dict(),
            "plan": the_plan.as_dict(),
            "started": started,
            "finished": time.time(),
        },
    )
    entries = [
        *(
            _event("Media Chunk Encode Requested", title, chunk=c.index, renditions=list(g))
            for c in the_plan.chunks
            for g in the_plan.groups
        ),
        *(_event("Media Audio Encode Requested", title, output=a.name) for a in the_plan.audio),
        _event("Media Subtitles Requested", title),
    ]
    weights = work(config, source, the_plan)
    _finished(
        client,
        title,
        "plan",
        "plan",
        weights,
        work_total=round(sum(weights.values()), 1),
        chunks_total=len(the_plan.chunks) * len(the_plan.renditions),
    )
    once(f"media:planned:{title.id}", lambda: len(client.put_events(entries)))
    return {
        "chunks": len(the_plan.chunks),
        "renditions": len(the_plan.renditions),
        "audio": len(the_plan.audio),
        "tasks": len(entries),
    }


def _package_parts(p: Plan) -> int:
    return len(p.renditions) + len(p.audio) + 1


def encode(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Encode one chunk into a group of renditions (one decode), check, store, arrive."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "encode", context)
    chunk = the_plan.chunk(event["detail"].get("chunk"))
    renditions = [the_plan.rendition(n) for n in event["detail"].get("renditions") or [None]]
    started = time.time()
    src = _source_file(client, title)
    with _workdir() as tmp:
        paths, quality = enc.encode_chunk(
            src, source, the_plan, chunk, renditions, tmp, qc_every=config.qc_every
        )
        for r in renditions:
            _store_chunk(client, title, the_plan, chunk, r.name, paths[r.name], quality.get(r.name))
    _save(
        client,
        title,
        f"times/encode-{chunk.index:05d}-{renditions[0].name}.json",
        {"stage": "encode", "started": started, "finished": time.time()},
    )
    for r in renditions:
        client.arrive(
            _assemble_barrier(title, r.name),
            str(chunk.index),
            len(the_plan.chunks),
            _event("Media Rendition Encoded", title, rendition=r.name),
        )
    _finished(
        client,
        title,
        "encode",
        part_of_encode(chunk.index, [r.name for r in renditions]),
        work(config, source, the_plan),
        chunks=len(renditions),
    )
    return {
        "chunk": chunk.index,
        "renditions": [r.name for r in renditions],
        # read by reelay.observe.metrics: frames written and media time covered
        "throughput": {
            "frames": chunk.frames * len(renditions),
            "media_seconds": round(chunk.frames / the_plan.fps, 6),
        },
    }


def _chunk_key(title: Title, rendition: str, index: int) -> str:
    return title.work(f"chunks/{rendition}/{index:05d}.mp4")


def _chunk_record(rendition: str, index: int) -> str:
    """What the encode measured of a chunk, and the ETag of the chunk it measured."""
    return f"qc/chunks/{rendition}/{index:05d}.json"


def _store_chunk(
    client: Client,
    title: Title,
    the_plan: Plan,
    chunk: Chunk,
    rendition: str,
    path: Path,
    quality: enc.ChunkQuality | None,
) -> None:
    info = client.put_object(title.bucket, _chunk_key(title, rendition, chunk.index), path)
    _save(
        client,
        title,
        _chunk_record(rendition, chunk.index),
        {
            "chunk": chunk.index,
            "start_s": round(the_plan.seconds(chunk.start_frame), 3),
            "end_s": round(the_plan.seconds(chunk.start_frame + chunk.frames), 3),
            "etag": info.etag,
            "quality": quality.as_dict() if quality is not None else None,
        },
    )


def _checked_chunk(
    client: Client, title: Title, config: MediaConfig, source: SourceInfo, the_plan: Plan,
    rendition: Rendition, chunk: Chunk, path: Path,
) -> None:  # fmt: skip
    """Fetch a chunk to ``path``, the very bytes its encode measured; a chunk that is
    missing or changed since is encoded again, here, on its own (and measured again)."""
    where = f"{rendition.name} chunk {chunk.index} ({_span(the_plan, chunk)})"
    try:
        record = _load(client, title, _chunk_record(rendition.name, chunk.index))
        info = client.download(title.bucket, _chunk_key(title, rendition.name, chunk.index), path)
    except NoSuchKeyError:
        problem = "is missing"
    else:
        if info.etag == record.get("etag"):
            return
        problem = "changed after its encode measured it"
    _emit(client, "Media Chunk Re-encoded", title, rendition=rendition.name, chunk=chunk.index,
          reason=f"{where} {problem}")  # fmt: skip
    with _workdir() as tmp:
        paths, quality = enc.encode_chunk(
            _source_file(client, title), source, the_plan, chunk, [rendition], tmp,
            qc_every=config.qc_every,
        )  # fmt: skip
        _store_chunk(client, title, the_plan, chunk, rendition.name, paths[rendition.name],
                     quality.get(rendition.name))  # fmt: skip
        shutil.move(paths[rendition.name], path)


def _span(the_plan: Plan, chunk: Chunk) -> str:
    start = the_plan.seconds(chunk.start_frame)
    return f"{start:.2f}-{the_plan.seconds(chunk.start_frame + chunk.frames):.2f} s"


def _assemble_barrier(title: Title, rendition: str) -> str:
    """Completed by every chunk of one rendition."""
    return f"media:assemble:{title.id}:{rendition}"


def encode_audio(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Encode one audio output over the whole track; then arrive at the package barrier."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "encode", context)
    output = the_plan.audio_output(event["detail"].get("output"))
    started = time.time()
    with _workdir() as tmp:
        path = enc.encode_audio(
            _source_file(client, title), source, output, tmp / f"{output.name}.mp4"
        )
        stats = enc.stream_stats(path, "audio")
        client.put_object(title.bucket, title.work(f"audio/{output.name}.mp4"), path)
    _save(
        client,
        title,
        f"audio/{output.name}.json",
        {
            "stage": "encode",
            "started": started,
            "finished": time.time(),
            "duration_s": stats.duration_s,
            "start_s": stats.start_s,
            "bitrate_kbps": stats.bitrate_kbps,
        },
    )
    _finished(client, title, "encode", f"audio:{output.name}", work(config, source, the_plan))
    _arrive_package(client, title, the_plan, f"audio:{output.name}")
    return {"output": output.name, "duration_s": stats.duration_s}


def subtitles(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Subtitles (to WebVTT), beside the encodes."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "encode", context)
    started = time.time()
    made = []
    with _workdir() as tmp:
        files = [
            enc.extract_subtitles(_source_file(client, title), t, tmp / f"subs_{t}.vtt")
            for t in the_plan.subtitles
        ]
        for f in files:
            client.put_object(title.bucket, title.work(f"subtitles/{f.name}"), f)
            made.append(f.name)
    _save(
        client,
        title,
        "times/subtitles.json",
        {"stage": "subtitles", "started": started, "finished": time.time(), "files": made},
    )
    _finished(client, title, "encode", "subtitles", work(config, source, the_plan))
    _arrive_package(client, title, the_plan, "subtitles")
    return {"files": made}


def _arrive_package(client: Client, title: Title, the_plan: Plan, part: str) -> None:
    client.arrive(
        f"media:package:{title.id}",
        part,
        _package_parts(the_plan),
        _event("Media Title Assembled", title),
    )


def assemble(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Join a rendition's chunks without re-encoding and verify it against the source."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "assemble", context)
    r = the_plan.rendition(event["detail"].get("rendition"))
    started = time.time()
    with _workdir() as tmp:
        parts = []
        for c in the_plan.chunks:
            part = tmp / f"{c.index:05d}.mp4"
            _checked_chunk(client, title, config, source, the_plan, r, c, part)
            parts.append(part)
        path = enc.concatenate(parts, tmp / f"{r.name}.mp4")
        stats = enc.check_video(path, the_plan.frames, the_plan, what=f"rendition {r.name}")
        client.put_object(title.bucket, title.work(f"renditions/{r.name}.mp4"), path)
    _save(
        client,
        title,
        f"renditions/{r.name}.json",
        {
            "stage": "assemble",
            "started": started,
            "finished": time.time(),
            "frames": stats.frames,
            "duration_s": stats.duration_s,
            "start_s": stats.start_s,
            "bitrate_kbps": stats.bitrate_kbps,
        },
    )
    _finished(client, title, "assemble", f"assemble:{r.name}", work(config, source, the_plan))
    _arrive_package(client, title, the_plan, f"video:{r.name}")
    return {"rendition": r.name, "frames": stats.frames, "duration_s": stats.duration_s}


def package(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """HLS (fMP4) and DASH over the same segments; then quality control per rendition."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "package", context)
    started = time.time()
    tracks: list[Track] = []
    with _workdir() as tmp:
        for r in the_plan.renditions:
            path = tmp / f"{r.name}.mp4"
            client.download(title.bucket, title.work(f"renditions/{r.name}.mp4"), path)
            tracks.append(
                Track(
                    r.name,
                    "video",
                    path,
                    r.rung.codec,
                    width=r.width,
                    height=r.height,
                    fps=the_plan.fps,
                )
            )
        for a in the_plan.audio:
            path = tmp / f"{a.name}.mp4"
            client.download(title.bucket, title.work(f"audio/{a.name}.mp4"), path)
            tracks.append(
                Track(
                    a.name,
                    "audio",
                    path,
                    a.rung.codec,
                    language=a.language,
                    channels=a.rung.channels,
                    group=a.rung.name,
                )
            )
        for t in the_plan.subtitles:
            path = tmp / f"subs_{t}.vtt"
            client.download(title.bucket, title.work(f"subtitles/subs_{t}.vtt"), path)
            lang = next(s.language for s in source.subtitles if s.track == t)
            tracks.append(Track(f"subs_{t}", "subtitles", path, language=lang))
        # What is packaged is what the report describes: each track's own stream, as
        # found in the file (not as its encode left it: a file may have changed since).
        measured = {
            t.name: _stats(enc.stream_stats(t.path, t.kind))
            for t in tracks
            if t.kind in ("video", "audio")
        }
        out = tmp / "package"
        out.mkdir()
        outputs = write_package(
            tracks, out, segment_seconds=config.ladder.segment_seconds, duration_s=source.duration_s
        )
        videos = [t for t in tracks if t.kind == "video"]
        if videos:  # trick play from the smallest rendition: a cheap decode
            enc.thumbnails(min(videos, key=lambda t: t.height).path, source, out)
        # Manifests last: a reader that sees a manifest finds every file it names.
        files = sorted(out.iterdir(), key=lambda f: (f.suffix in (".m3u8", ".mpd"), f.name))
        for f in files:
            client.put_object(title.bucket, title.work(f"package/{f.name}"), f)
    _save(
        client,
        title,
        "package.json",
        {
            "stage": "package",
            "started": started,
            "finished": time.time(),
            "outputs": outputs,
            "files": [f.name for f in files],
            "tracks": measured,
        },
    )
    entries = [_event("Media QC Requested", title, rendition=r.name) for r in the_plan.renditions]
    _finished(client, title, "package", "package", work(config, source, the_plan))
    if entries:
        once(f"media:qc-requested:{title.id}", lambda: len(client.put_events(entries)))
    _arrive_publish(client, title, the_plan, "package")
    return {"files": len(files)}


def _stats(stats: enc.StreamStats) -> dict[str, Any]:
    return asdict(stats) | {"bitrate_kbps": stats.bitrate_kbps}


def _arrive_publish(client: Client, title: Title, the_plan: Plan, part: str) -> None:
    client.arrive(
        f"media:publish:{title.id}",
        part,
        len(the_plan.renditions) + 1,
        _event("Media Title Checked", title),
    )


def qc(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One rendition's quality, from what its encodes measured chunk by chunk (the
    encodes scored their own output as they made it), and its seams (`seam_faults`:
    the frames on either side of each chunk boundary against the source's)."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "qc", context)
    name = the_plan.rendition(event["detail"].get("rendition")).name
    started = time.time()
    scores: dict[str, Any] = {}
    if config.qc_every:
        chunks = [
            _load(client, title, _chunk_record(name, c.index)) | {"chunk": c.index}
            for c in the_plan.chunks
        ]
        scores = rendition_quality(chunks)
        rendition = the_plan.rendition(name)
        with _workdir() as tmp:
            path = tmp / f"{name}.mp4"
            client.download(title.bucket, title.work(f"renditions/{name}.mp4"), path)
            start = _load(client, title, f"renditions/{name}.json")["start_s"]
            src = _source_file(client, title)
            scores["seam_faults"] = seam_faults(path, start, src, source, the_plan, rendition, tmp)
    _save(
        client,
        title,
        f"qc/{name}.json",
        scores | {"stage": "qc", "started": started, "finished": time.time()},
    )
    _finished(client, title, "qc", f"qc:{name}", work(config, source, the_plan))
    _arrive_publish(client, title, the_plan, f"qc:{name}")
    return {"rendition": name, **{k: v for k, v in scores.items() if k != "chunks"}}


def publish(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Judge the title by the publish rules; publish it atomically, or hold it."""
    client = default_client()
    title = _title(event)
    config, source, the_plan = _job(client, title)
    _started(client, title, "publish", context)
    started = time.time()
    report = _report(client, title, config, source, the_plan)
    reasons = evaluate(config.rules, report)
    if not reasons:
        listing = _load(client, title, "package.json")
        with _workdir() as tmp:
            for name in listing["files"]:  # manifests are last in the listing
                client.download(title.bucket, title.work(f"package/{name}"), tmp / name)
                client.put_object(title.bucket, f"{title.published_prefix}{name}", tmp / name)
                (tmp / name).unlink()
    status = "held" if reasons else "published"
    report["status"] = status
    report["timings"]["publish"] = round(time.time() - started, 3)
    report["timings"]["total"] = round(time.time() - report.pop("_first_start"), 3)
    if reasons:
        report["error"] = {"code": "HELD", "message": "; ".join(reasons)}
        report["reasons"] = reasons
    client.put_object(title.bucket, title.report_key, json.dumps(report, indent=1).encode())

    def announce() -> bool:
        if reasons:
            _emit(client, "Media Title Held", title, report=title.report_key, reasons=reasons)
            _state(client, title, "ERROR", "publish", error=report["error"])
        else:
            _emit(
                client,
                "Media Title Published",
                title,
                report=title.report_key,
                outputs=report["outputs"],
            )
            _state(client, title, "COMPLETE", "publish", outputs=report["outputs"])
        return True

    once(f"media:announced:{title.id}", announce)
    _drop_source(client, title)
    return {"status": status, "reasons": reasons}


def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A stage ran out of retries (its onFailure destination): the title failed."""
    client = default_client()
    payload = event.get("requestPayload") or {}
    response = event.get("responsePayload") or {}
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME:$LATEST
    arn = event.get("requestContext", {}).get("functionArn", "")
    function = arn.partition(":function:")[2].split(":")[0] or "a stage"
    reason = _in_words(str(response.get("errorMessage", "")))
    try:
        title = (
            Title.from_s3_record(payload["Records"][0]) if "Records" in payload else _title(payload)
        )
    except (InvalidEventError, KeyError, IndexError, TypeError):
        # Not one of the pipeline's own events (it stays in the DLQ with its error).
        error = {
            "code": response.get("errorType", "Failed"),
            "message": f"{function} failed: {reason}",
        }
        print(f"{error['message']}; the event names no title, so no title is marked failed")
        return {"title_id": None, "error": error}
    error = {
        "code": response.get("errorType", "Failed"),
        "message": f"{function} failed on {title.url}: {reason}",
    }
    # The failed part's redrive round: a title redriven that fails again says so again.
    redrives = _redrives(client, event.get("requestContext", {}).get("requestId"))
    _fail(client, title, STAGE_OF.get(function, function), error, str(redrives), redrive=redrives)
    return {"title_id": title.id, "error": error}


def _fail(
    client: Client, title: Title, stage: str, error: dict[str, str], occasion: str, **extra: Any
) -> None:
    """Mark the title failed: its report, then ``Media Title Failed`` once per ``occasion``
    (however many parts fail and however often this is delivered)."""
    report = _base_report(title, "failed") | {"error": error}
    client.put_object(title.bucket, title.report_key, json.dumps(report, indent=1).encode())

    def announce() -> bool:
        _emit(client, "Media Title Failed", title, error=error)
        _state(client, title, "ERROR", stage, error=error, **extra)
        return True

    once(f"media:failed:{title.id}:{occasion}", announce)
    _drop_source(client, title, keep_snapshot=True)


# -- per-title ladders: trial encodes of samples, the hull, the title's own ladder -------


def _request_trials(
    client: Client, title: Title, config: MediaConfig, context: Any
) -> dict[str, Any]:
    """A title with a per-title ladder (``auto``): choose the sample windows and fan out
    one trial task per codec and height; `choose_ladder` then plans the title."""
    spec = config.ladder.auto
    assert spec is not None
    _started(client, title, "plan", context)
    started = time.time()
    source = load(SourceInfo, _load(client, title, "inspect.json")["source"])
    grid = per_title.trial_grid(spec, source)
    v = source.video
    if v is None or not grid:  # nothing to try: the ladder's audio alone
        _choose(client, title, replace(config.ladder, auto=None), config)
        return {"trials": 0}
    windows = per_title.sample_windows(
        v.frames,
        float(v.fps),
        share=spec.sample_share,
        windows=spec.windows,
        starts=per_title.window_starts(_source_file(client, title), source),
    )
    _save(
        client,
        title,
        "analysis.json",
        {
            "stage": "analyse",
            "config": config.as_dict(),
            "source": source.as_dict(),
            "windows": [asdict(w) for w in windows],
            "grid": [list(cell) for cell in grid],
            "started": started,
            "finished": time.time(),
        },
    )
    entries = [_event("Media Trial Requested", title, codec=c, height=h) for c, h in grid]
    once(f"media:trials-requested:{title.id}", lambda: len(client.put_events(entries)))
    return {"trials": len(grid), "windows": len(windows)}


def _analysis(client: Client, title: Title) -> tuple[MediaConfig, SourceInfo, dict[str, Any]]:
    job = _load(client, title, "analysis.json")
    return load(MediaConfig, job["config"]), load(SourceInfo, job["source"]), job


def _trials_barrier(title: Title) -> str:
    return f"media:trials:{title.id}"


def trial(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Trial-encode the title's sample at one codec and height, at every trial CRF, and
    score each (display VMAF); then arrive at the trials barrier."""
    client = default_client()
    title = _title(event)
    config, source, job = _analysis(client, title)
    spec = config.ladder.auto
    assert spec is not None
    detail = event["detail"]
    cell = [detail.get("codec"), detail.get("height")]
    if cell not in job["grid"]:
        raise InvalidEventError(
            f"title {title.id} has no trial {cell!r}; trials: "
            + ", ".join(f"{c} {h}" for c, h in job["grid"])
        )
    codec, height = cell
    _started(client, title, "plan", context)
    started = time.time()
    windows = [Chunk(**w) for w in job["windows"]]
    ladder = per_title.trial_ladder(
        codec, height, per_title.trial_crfs(spec, codec), config.ladder.segment_seconds
    )
    with _workdir() as tmp:
        points = per_title.run_trials(
            _source_file(client, title),
            source,
            windows,
            ladder,
            trial_frames=spec.trial_frames,
            work=tmp,
        )
    _save(
        client,
        title,
        f"trials/{codec}-{height}.json",
        {
            "stage": "analyse",
            "started": started,
            "finished": time.time(),
            "points": [p.as_dict() for p in points],
        },
    )
    client.arrive(
        _trials_barrier(title),
        f"{codec}-{height}",
        len(job["grid"]),
        _event("Media Trials Finished", title),
    )
    return {"codec": codec, "height": height, "trials": len(points)}


def choose_ladder(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every trial is in: the hull of (bitrate, VMAF), the rungs picked on it, and the
    title's own ladder; then plan the title with it."""
    client = default_client()
    title = _title(event)
    config, source, job = _analysis(client, title)
    spec = config.ladder.auto
    assert spec is not None
    _started(client, title, "plan", context)
    started = time.time()
    trials = [
        per_title.Point(**p)
        for codec, height in job["grid"]
        for p in _load(client, title, f"trials/{codec}-{height}.json")["points"]
    ]
    analysis = per_title.analyse(spec, trials)
    ladder = per_title.picked_ladder(config.ladder, analysis)
    sampled = sum(w["frames"] for w in job["windows"])
    _save(
        client,
        title,
        "ladder.json",
        {
            "spec": asdict(spec),
            "windows": job["windows"],
            "sampled_frames": sampled,
            "sampled_share": round(sampled / source.video.frames, 4) if source.video else 0,
            **analysis.as_dict(),
            "ladder": [asdict(r) for r in ladder.video],
        },
    )
    _save(
        client,
        title,
        "times/choose-ladder.json",
        {"stage": "analyse", "started": started, "finished": time.time()},
    )
    _choose(client, title, ladder, config)
    return {"rungs": [r.name for r in ladder.video]}


def _choose(client: Client, title: Title, ladder: Ladder, config: MediaConfig) -> None:
    """Plan the title with its own ladder (``Media Ladder Chosen``: `plan` takes it)."""
    entry = _event("Media Ladder Chosen", title, config=replace(config, ladder=ladder).as_dict())
    once(f"media:ladder-chosen:{title.id}", lambda: len(client.put_events([entry])))


# Where an error still names a local file (an OSError's message, a library's), its name
# alone is kept: the worker's directories mean nothing to whoever reads the reason.
_LOCAL_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"/]+/)+([^\s'\"/]+)")
_ERRNO = re.compile(r"\[Errno -?\d+\] ")


def _in_words(message: str) -> str:
    """An error message as a title's reason: no server paths, no raw error numbers."""
    return _ERRNO.sub("", _LOCAL_PATH.sub(r"\1", message))


# -- the report --------------------------------------------------------------------------


def _base_report(title: Title, status: str) -> dict[str, Any]:
    return {
        "status": status,
        "title_id": title.id,
        "source_key": title.url,
        "source": None,
        "renditions": [],
        "outputs": {},
        "timings": {},
    }


def _report(
    client: Client, title: Title, config: MediaConfig, source: SourceInfo, the_plan: Plan
) -> dict[str, Any]:
    def maybe(name: str) -> dict[str, Any]:
        try:
            value = _load(client, title, name)
        except NoSuchKeyError:
            return {}
        return value if isinstance(value, dict) else {}

    listing = maybe("package.json")
    packaged = listing.get("tracks", {})

    def measured(name: str, record: str) -> dict[str, Any]:
        """A track as packaged, else as its encode recorded it."""
        return packaged.get(name) or maybe(record)

    audio_spans = [
        (a["start_s"], a["start_s"] + a["duration_s"])
        for a in (measured(o.name, f"audio/{o.name}.json") for o in the_plan.audio)
        if a
    ]
    renditions = []
    for r in the_plan.renditions:
        stats, scores = measured(r.name, f"renditions/{r.name}.json"), maybe(f"qc/{r.name}.json")
        drifts = [
            max(abs(start - stats["start_s"]), abs(end - stats["start_s"] - stats["duration_s"]))
            * 1000
            for start, end in audio_spans
            if stats
        ]
        renditions.append(
            {
                "name": r.name,
                "kind": "video",
                "codec": r.rung.codec,
                "width": r.width,
                "height": r.height,
                "bitrate_kbps": round(stats.get("bitrate_kbps", 0), 1) or None,
                "frames": stats.get("frames"),
                "duration_s": stats.get("duration_s"),
                **{k: scores.get(k) for k in QUALITY_FIGURES},
                "chunks": scores.get("chunks", []),
                "seam_faults": scores.get("seam_faults"),
                "present": bool(stats),
                "av_drift_ms": round(max(drifts), 1) if drifts else None,
            }
        )
    for a in the_plan.audio:
        stats = measured(a.name, f"audio/{a.name}.json")
        renditions.append(
            {
                "name": a.name,
                "kind": "audio",
                "codec": a.rung.codec,
                "language": a.language,
                "channels": a.rung.channels,
                "bitrate_kbps": round(stats.get("bitrate_kbps", 0), 1) or None,
                "duration_s": stats.get("duration_s"),
                "present": bool(stats),
                "frames": None,
                "width": None,
                "height": None,
                **dict.fromkeys(QUALITY_FIGURES),
            }
        )
    stages: dict[str, list[float]] = {}
    for info in client.list_objects(title.bucket, title.work("")):
        if info.key.endswith(".json") and "/chunks/" not in info.key:
            record = json.loads(client.get_object(title.bucket, info.key))
            if isinstance(record, dict) and "started" in record:
                span = stages.setdefault(record["stage"], [])
                span += [record["started"], record["finished"]]
    timings = {stage: round(max(s) - min(s), 3) for stage, s in stages.items()}
    first = min((min(s) for s in stages.values()), default=time.time())
    outputs = {
        kind: f"s3://{title.bucket}/{title.published_prefix}{rel}"
        for kind, rel in listing.get("outputs", {}).items()
    }
    if "thumbnails.vtt" in listing.get("files", []):
        outputs["thumbnails"] = f"s3://{title.bucket}/{title.published_prefix}thumbnails.vtt"
    return _base_report(title, "checking") | {
        "source": source.summary(),
        "vfr": bool(source.video and source.video.vfr),
        "notes": list(source.notes),
        "ladder": config.ladder.name,
        "per_title": maybe("ladder.json") or None,  # a per-title ladder: how it was made
        "rules": config.rules.name,
        "qc": config.qc_every > 0,
        "chunks": len(the_plan.chunks),
        "renditions": renditions,
        "outputs": outputs,
        "timings": timings,
        "_first_start": first,
    }
