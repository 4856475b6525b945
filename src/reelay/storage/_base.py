"""The object-store contract shared by every backend.

An object store holds immutable blobs (*objects*) under *keys* inside *buckets*, with
the semantics of Amazon S3 that reelay relies on:

- ``put`` replaces an object atomically: a reader sees the old bytes or the new ones,
  never a mix, and never a partial object after a crash.
- Every object carries an ``etag``: the lowercase hex MD5 of its bytes, which is what
  S3 reports for a single-part upload. reelay keeps it the same for every backend and
  every upload size, so an etag can be compared across stores and against a local file.
- ``list`` yields objects in ascending key order (UTF-8 binary order, as S3 does).
- ``copy`` copies one whole version of an object inside the store, without its bytes
  passing through the caller, and ``if_match`` pins which version: the copy is of
  the bytes whose etag was checked, whatever is written to the source meanwhile.
- Keys and bucket names follow one set of rules, checked by `validate_key` and
  `validate_bucket` before a backend sees them, so a key that works on ``file://``
  works on ``s3://`` and the other way round.

Backends implement the `ObjectStore` protocol; `StoreBase` gives them the context
manager methods and the argument checks they all share.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import BinaryIO, Protocol, Self, runtime_checkable

from reelay._text import plural
from reelay.errors import InvalidKeyError, PreconditionFailedError

__all__ = [
    "CHUNK_SIZE",
    "MAX_KEY_BYTES",
    "Hasher",
    "ObjectInfo",
    "ObjectStore",
    "PutSource",
    "StoreBase",
    "new_md5",
    "validate_bucket",
    "validate_key",
]

#: The size of the reads and writes used when streaming object data.
CHUNK_SIZE = 1024 * 1024
#: S3's limit on the length of a key, in bytes of UTF-8.
MAX_KEY_BYTES = 1024

#: What ``put`` accepts: the bytes themselves, a binary file object to read to its
#: end, or the path of a local file.
PutSource = bytes | bytearray | memoryview | BinaryIO | os.PathLike[str]


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one object.

    ``etag`` is the lowercase hex MD5 of the content, without quotes. ``last_modified``
    is timezone-aware UTC. ``sequencer`` is the S3 event sequencer of the write that
    produced the object, when the producer knows it; stores leave it ``None``.
    """

    bucket: str
    key: str
    size: int
    etag: str
    last_modified: datetime
    sequencer: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """An object store: S3 semantics over some backend, chosen by URL.

    Every method validates its bucket and key first (raising
    `reelay.errors.InvalidKeyError`) and translates backend failures into the
    `reelay.errors.StorageError` tree. Stores are context managers; ``close``
    releases connections and is safe to call twice.
    """

    url: str

    def put(self, bucket: str, key: str, data: PutSource) -> ObjectInfo:
        """Store ``data`` under ``key``, replacing any object there, atomically.

        Files and file objects are streamed, never read whole into memory. A missing
        bucket is created on demand (reelay owns its buckets).
        """
        ...

    def get(self, bucket: str, key: str) -> bytes:
        """Return the whole content of an object, after checking it against its etag.

        Raises `reelay.errors.NoSuchKeyError` if there is no such object.
        """
        ...

    def download(self, bucket: str, key: str, path: os.PathLike[str] | str) -> ObjectInfo:
        """Stream an object into a local file, checked against its etag.

        The file appears atomically (a temporary file beside it, then a rename), so a
        failed download never leaves a truncated file at ``path``.
        """
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe an object; `reelay.errors.NoSuchKeyError` if there is none."""
        ...

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """Copy an object to ``dst_key``, replacing any object there, atomically.

        The bytes stay in the store (S3: a server-side copy; a directory: a hard link
        where the file system has them). ``if_match``: copy only if the source's etag
        is this one (on S3, its MD5 or its S3 ETag, which S3's event notifications
        carry), else raise `reelay.errors.PreconditionFailedError` and copy nothing; the
        check and the copy are of the same version, whatever is written to the source
        meanwhile. The copy has the source's etag (on S3, unless the
        source was uploaded in parts by a client other than reelay: its S3 ETag is then
        no MD5, and the copy gets one of its own). `reelay.errors.NoSuchKeyError` if
        there is no source; a missing destination bucket is created. Returns the copy.
        """
        ...

    def delete(self, bucket: str, key: str) -> bool:
        """Delete an object; return whether it existed. Deleting nothing is no error."""
        ...

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in ascending key order.

        A bucket that does not exist lists as empty.
        """
        ...

    def create_bucket(self, bucket: str) -> None:
        """Create a bucket; creating one that exists is no error."""
        ...

    def location(self, bucket: str) -> str:
        """Where the app's ``bucket`` really is, as a URL: ``s3://PREFIX-media`` on S3
        (the name S3 events carry), ``file:///.../objects/media`` in a directory."""
        ...

    def close(self) -> None:
        """Release the store's resources (connections, pools)."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StoreBase:
    """Context-manager plumbing and argument checks shared by the backends."""

    url: str

    def close(self) -> None:
        """Release resources; the base class holds none."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class Hasher(Protocol):
    """The part of a ``hashlib`` hash object that reelay uses."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


def new_md5() -> Hasher:
    """Return a fresh MD5 hasher, marked as not used for security (FIPS builds)."""
    return hashlib.md5(usedforsecurity=False)


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_put_source(data: object) -> None:
    """Reject what ``put`` cannot store, with a message that says what it takes.

    A ``str`` is refused on purpose: it could be either text or a file name, and
    guessing wrong would store the wrong thing silently.
    """
    if isinstance(data, bytes | bytearray | memoryview):
        return
    if isinstance(data, os.PathLike):
        if not os.path.isfile(data):
            raise FileNotFoundError(
                errno.ENOENT, "put() source is not an existing file", os.fspath(data)
            )
        return
    if isinstance(data, str):
        raise TypeError(
            "put() takes bytes, a binary file object or a path; got a str "
            f"({data[:40]!r}): pass pathlib.Path(...) for a file or .encode() for text"
        )
    if isinstance(data, io.TextIOBase):
        raise TypeError("put() needs a binary file object (open the file with 'rb')")
    if callable(getattr(data, "read", None)):
        return
    raise TypeError(f"put() takes bytes, a binary file object or a path; got {type(data).__name__}")


def check_copy(src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
    """Refuse a copy of an object onto itself (S3 refuses it too: it would change
    nothing). The names are checked by then."""
    if (src_bucket, src_key) == (dst_bucket, dst_key):
        raise InvalidKeyError(f"cannot copy {src_key!r} in bucket {src_bucket!r} onto itself")


def check_match(bucket: str, key: str, etag: str, if_match: str | None) -> None:
    """Raise `PreconditionFailedError` if ``if_match`` is given and is not ``etag``."""
    if if_match is not None and etag != if_match:
        raise PreconditionFailedError(
            f"object {key!r} in bucket {bucket!r} has etag {etag}, not {if_match} "
            "as asked (if_match): it was replaced; nothing was copied"
        )


def validate_key(key: str) -> str:
    """Check an object key against reelay's rules and return it unchanged.

    The rules are the intersection of what S3 accepts and what maps safely onto a
    file system, so that every backend accepts the same keys: a non-empty ``str`` of
    at most 1024 bytes of UTF-8; no control characters (NUL included); no backslash;
    not starting or ending with ``/``; no empty segment (``a//b``); no ``.`` or ``..``
    segment. Raises `reelay.errors.InvalidKeyError` naming the key and the rule.
    """
    if not isinstance(key, str):
        raise InvalidKeyError(f"object key must be a str, got {type(key).__name__}: {key!r}")
    if not key:
        raise InvalidKeyError("object key must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKeyError(
            f"object key {key!r} is not valid Unicode (it contains a lone surrogate)"
        ) from None
    if size > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"object key {key[:60]!r}... is {size} bytes of UTF-8; "
            f"the limit is {MAX_KEY_BYTES} bytes"
        )
    for index, char in enumerate(key):
        if unicodedata.category(char) == "Cc":
            raise InvalidKeyError(
                f"object key {key!r} contains the control character U+{ord(char):04X} "
                f"at position {index}; control characters (NUL included) are not allowed"
            )
    if "\\" in key:
        raise InvalidKeyError(
            f"object key {key!r} contains a backslash; use '/' to separate segments"
        )
    if key.startswith("/"):
        raise InvalidKeyError(f"object key {key!r} must not start with '/' (keys are relative)")
    if key.endswith("/"):
        raise InvalidKeyError(
            f"object key {key!r} must not end with '/' (that names a folder, not an object)"
        )
    for segment in key.split("/"):
        if not segment:
            raise InvalidKeyError(f"object key {key!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise InvalidKeyError(f"object key {key!r} has a {segment!r} segment")
    return key


_BUCKET_CHARS = re.compile(r"[a-z0-9.-]+")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")
# Prefixes and suffixes S3 reserves for its own features (access point aliases,
# Object Lambda, Multi-Region Access Points, directory and table buckets).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def validate_bucket(bucket: str) -> str:
    """Check a bucket name against the S3 naming rules and return it unchanged.

    3 to 63 characters; lowercase letters, digits, ``.`` and ``-`` only; starting and
    ending with a letter or digit; no two adjacent periods; not shaped like an IPv4
    address; none of the prefixes and suffixes S3 reserves. Raises
    `reelay.errors.InvalidKeyError` naming the bucket and the rule.
    """
    if not isinstance(bucket, str):
        raise InvalidKeyError(f"bucket name must be a str, got {type(bucket).__name__}: {bucket!r}")
    if not 3 <= len(bucket) <= 63:
        raise InvalidKeyError(
            f"bucket name {bucket!r} is {plural(len(bucket), 'character')} long; "
            "it must be 3 to 63 characters"
        )
    if not _BUCKET_CHARS.fullmatch(bucket):
        raise InvalidKeyError(
            f"bucket name {bucket!r} may contain only lowercase letters, digits, '.' and '-'"
        )
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        raise InvalidKeyError(
            f"bucket name {bucket!r} must start and end with a lowercase letter or a digit"
        )
    if ".." in bucket:
        raise InvalidKeyError(f"bucket name {bucket!r} must not contain two adjacent periods")
    if _IP_LIKE.fullmatch(bucket):
        raise InvalidKeyError(f"bucket name {bucket!r} must not be formatted as an IP address")
    for prefix in _RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            raise InvalidKeyError(
                f"bucket name {bucket!r} must not start with {prefix!r} (reserved by S3)"
            )
    for suffix in _RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            raise InvalidKeyError(
                f"bucket name {bucket!r} must not end with {suffix!r} (reserved by S3)"
            )
    return bucket


def validate_prefix(prefix: str) -> str:
    """Check a ``list`` prefix: any ``str`` without control characters or backslash.

    A prefix need not be a whole key (``"photos/20"`` is fine), so only the
    character rules apply.
    """
    if not isinstance(prefix, str):
        raise InvalidKeyError(f"prefix must be a str, got {type(prefix).__name__}: {prefix!r}")
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"prefix {prefix[:60]!r}... is longer than {MAX_KEY_BYTES} bytes")
    if any(unicodedata.category(c) == "Cc" for c in prefix) or "\\" in prefix:
        raise InvalidKeyError(
            f"prefix {prefix!r} contains a control character or a backslash, "
            "so no key can start with it"
        )
    return prefix
