"""Object storage: one small protocol, backends chosen by URL.

>>> with open_store("file:///var/lib/reelay/objects") as store:  # doctest: +SKIP
...     info = store.put("uploads", "videos/intro.mp4", Path("intro.mp4"))

===========  ===========================================  =====================
scheme       backend                                      needs
===========  ===========================================  =====================
``file``     `FileStore`: a local directory (default)      nothing
``s3``       `S3Store`: AWS S3, MinIO, Ceph... via boto3   ``pip install 'reelay[s3]'``
===========  ===========================================  =====================

`open_store` also takes a plain path (no ``scheme://``) for ``file``, a convenience for
code; a store URL read from the settings (``REELAY_STORE``) must name its scheme, which
`check_store_url` enforces, so that a typo such as ``REELAY_STORE=notaurl`` is an error
instead of a directory made relative to wherever each process happens to run.
Implementations are imported only when their scheme is opened, so the embedded default
never imports boto3.
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
    "check_store_url",
    "open_store",
    "validate_bucket",
    "validate_key",
]

#: URL scheme -> "module:Class" implementing `ObjectStore`, imported on first use.
STORE_SCHEMES: dict[str, str] = {
    "file": "reelay.storage._file:FileStore",
    "s3": "reelay.storage._s3:S3Store",
}


def _scheme(url: str) -> str | None:
    """The URL's scheme, lower-cased; None for a plain path."""
    if "://" in url or url.startswith("file:"):
        return urlsplit(url).scheme.lower()
    return None


def _known(scheme: str, url: str) -> str:
    target = STORE_SCHEMES.get(scheme)
    if target is None:
        raise ConfigError(
            f"unknown object store scheme {scheme!r} in {url!r}; "
            f"valid schemes: {', '.join(sorted(STORE_SCHEMES))}"
        )
    return target


def check_store_url(url: str) -> str:
    """Check that ``url`` is an object store URL of a known scheme; return the scheme.

    Imports no backend. Raises `reelay.errors.ConfigError` naming the valid schemes for
    a plain path, an empty string or an unknown scheme.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"object store URL must be a non-empty string, got {url!r}")
    scheme = _scheme(url)
    if not scheme:
        raise ConfigError(
            f"object store URL {url!r} names no scheme; valid schemes: "
            f"{', '.join(sorted(STORE_SCHEMES))} (as in file:///abs/dir or s3://PREFIX)"
        )
    _known(scheme, url)
    return scheme


def open_store(url: str, **options: Any) -> ObjectStore:
    """Open the object store named by ``url``; ``options`` go to the backend.

    ``file:///abs/path`` or a plain path opens a `FileStore`;
    ``s3://[PREFIX][?endpoint=URL&region=NAME]`` an `S3Store` (see
    `reelay.storage._s3` for its options). An unknown scheme or option raises
    `reelay.errors.ConfigError` listing the valid ones.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"object store URL must be a non-empty string, got {url!r}")
    target = _known(_scheme(url) or "file", url)
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    store: ObjectStore = cls.from_url(url, **options)
    return store
