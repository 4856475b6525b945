"""What a title is, and how the pipeline is configured for it.

The pipeline's functions read their configuration from their environment (set under
``provider.environment`` in the app file, or by ``reelay transcode``), once, when a
title is inspected; the resolved configuration then travels with the title's events,
so every stage of one title works to the same ladder and rules.

=================================  =========================================  =========
variable                           meaning                                    default
=================================  =========================================  =========
``REELAY_MEDIA_LADDER``            a built-in ladder name (``auto``: per      default
                                   title), a ladder file, or the ladder
                                   itself as YAML (several lines)
``REELAY_MEDIA_RULES``             ``default``, a publish-rule file, or the   default
                                   rules themselves as YAML
``REELAY_MEDIA_CHUNK_SECONDS``     chunk length (rounded to whole segments)   300
``REELAY_MEDIA_GROUP``             renditions per encode task (0: all share   0
                                   one decode)
``REELAY_MEDIA_SCENES``            1: chunk boundaries on shot changes        0
``REELAY_MEDIA_QC``                quality control: ``N`` scores one frame    25
                                   in N of every rendition (`qc_every`),
                                   ``full`` every frame, ``off`` none
``REELAY_MEDIA_MAX_WIDTH`` ...     source limits (see `reelay.media.probe`)
``REELAY_SOURCE_CACHE_GB``         a machine's cache of fetched sources, LRU  20
=================================  =========================================  =========

Objects of a title ``T`` in the media bucket: ``ingest/...`` (uploads start the
pipeline), ``work/T/...`` (intermediate; ``work/T/source.EXT`` is the title's snapshot of
its source bytes, until it settles), ``published/T/...`` (the published title),
``quarantine/T/...`` (refused sources) and ``reports/T.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

from reelay.errors import ConfigError, InvalidEventError
from reelay.media.ladder import Ladder, load_ladder
from reelay.media.probe import Limits
from reelay.media.rules import Rules, load_rules

SOURCE = "reelay.media"  # the source of every event the pipeline emits
BUCKET = "media"
INGEST_PREFIX = "ingest/"


def title_id_for(key: str, etag: str) -> str:
    """A title's id: the source's name and content, so a re-upload of the same bytes
    under the same name is the same title and a changed file is a new one."""
    stem = os.path.splitext(key.rsplit("/", 1)[-1])[0]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-").lower()[:48] or "title"
    return f"{slug}-{etag[:10]}"


@dataclass(frozen=True)
class Title:
    """A source being turned into a title; its id comes from its name and content."""

    id: str
    bucket: str
    key: str
    etag: str

    @property
    def url(self) -> str:
        """The source's object, as errors and reports name it."""
        return f"s3://{self.bucket}/{self.key}"

    def work(self, name: str) -> str:
        return f"work/{self.id}/{name}"

    @property
    def snapshot_key(self) -> str:
        """The title's own copy of the bytes it started from: what its stages read,
        whatever is uploaded under its source's key meanwhile."""
        return self.work(f"source{PurePosixPath(self.key).suffix.lower()[:8]}")

    @property
    def published_prefix(self) -> str:
        return f"published/{self.id}/"

    @property
    def quarantine_prefix(self) -> str:
        return f"quarantine/{self.id}/"

    @property
    def report_key(self) -> str:
        return f"reports/{self.id}.json"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> Title:
        """A title from an event's ``detail.title``; `InvalidEventError` if malformed."""
        fields = ("id", "bucket", "key", "etag")
        if not isinstance(d, dict) or not all(isinstance(d.get(f), str) and d[f] for f in fields):
            raise InvalidEventError(
                f"the event's detail.title must be an object with {', '.join(fields)}; "
                f"got {json.dumps(d)[:200]}"
            )
        return cls(d["id"], d["bucket"], d["key"], d["etag"])

    @classmethod
    def from_s3_record(cls, record: dict[str, Any]) -> Title:
        """The title an S3 event record of an upload starts."""
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])
        etag = s3["object"]["eTag"]
        return cls(title_id_for(key, etag), s3["bucket"]["name"], key, etag)


def qc_every(value: str | int) -> int:
    """How often quality control scores a frame: ``off`` (0), ``full`` (1: every frame)
    or ``N``, one frame in N (spread as pairs of consecutive frames, one pair in every
    2N, so that VMAF's motion feature compares neighbours, as it does on every frame)."""
    text = str(value).strip().lower()
    if text in ("off", "full"):
        return 0 if text == "off" else 1
    if text.isdigit() and 1 <= int(text) <= 10**6:
        return int(text)
    raise ConfigError(
        f"quality control {value!r} is not valid: off, full, or N to score one frame in N"
        " (1 to 1000000)"
    )


def env_number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is not valid: must be a number from {low:g} to {high:g}")
    return value


@dataclass(frozen=True)
class MediaConfig:
    ladder: Ladder
    rules: Rules = field(default_factory=Rules)
    chunk_seconds: float = 300.0
    group_size: int = 0
    scenes: bool = False
    qc_every: int = 25  # score one frame in N; 1: every frame; 0: no quality control
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls) -> MediaConfig:
        return cls(
            ladder=load_ladder(os.environ.get("REELAY_MEDIA_LADDER") or "default"),
            rules=load_rules(os.environ.get("REELAY_MEDIA_RULES") or "default"),
            chunk_seconds=env_number("REELAY_MEDIA_CHUNK_SECONDS", 300, 1, 86400),
            group_size=int(env_number("REELAY_MEDIA_GROUP", 0, 0, 1000)),
            scenes=bool(env_number("REELAY_MEDIA_SCENES", 0, 0, 1)),
            qc_every=qc_every(os.environ.get("REELAY_MEDIA_QC") or "25"),
            limits=Limits.from_env(),
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
