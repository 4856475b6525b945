"""Object storage: one small protocol, backends chosen by URL.

>>> with open_store("file:///var/lib/reelay/objects") as store:  # doctest: +SKIP
...     info = store.put("uploads", "videos/intro.mp4", Path("intro.mp4"))

===========  ===========================================  =====================
scheme       backend                                      needs
===========  ===========================================  =====================
``file``     `FileStore`: a local directory (default)      nothing
``s3``       `S3Store`: AWS S3, MinIO, Ceph... via boto3   ``pip install 'reelay[s3]'``
===========  ===========================================  =====================

A plain path (no ``scheme://``) means ``file``. Implementations are imported only
when their scheme is opened, so the embedded default never imports boto3.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import urlsplit

from reelay.errors import ConfigError

from ._base import ObjectInfo, ObjectStore, validate_bucket, validate_key

__all__ = [
    "STORE_SCHEMES",
    "ObjectInfo",
    "ObjectStore",
    "open_store",
    "validate_bucket",
    "validate_key",
]

#: URL scheme -> "module:Class" implementing `ObjectStore`, imported on first use.
STORE_SCHEMES: dict[str, str] = {
    "file": "reelay.storage._file:FileStore",
    "s3": "reelay.storage._s3:S3Store",
}


def open_store(url: str, **options: Any) -> ObjectStore:
    """Open the object store named by ``url``; ``options`` go to the backend.

    ``file:///abs/path`` or a plain path opens a `FileStore`;
    ``s3://[PREFIX][?endpoint=URL&region=NAME]`` an `S3Store` (see
    `reelay.storage._s3` for its options). An unknown scheme or option raises
    `reelay.errors.ConfigError` listing the valid ones.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"object store URL must be a non-empty string, got {url!r}")
    scheme = urlsplit(url).scheme.lower() if "://" in url or url.startswith("file:") else ""
    if not scheme:
        scheme = "file"
    target = STORE_SCHEMES.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown object store scheme {scheme!r} in {url!r}; "
            f"valid schemes: {', '.join(sorted(STORE_SCHEMES))}"
        )
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    store: ObjectStore = cls.from_url(url, **options)
    return store
