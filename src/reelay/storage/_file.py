"""The embedded object store: buckets and objects as directories and files.

``file:///abs/path`` (or a plain path) names the root directory. The layout is plain
enough to browse with a file manager::

    <root>/<bucket>/<key>                 object content; '/' in keys makes folders
    <root>/.reelay-meta/<bucket>/<key>    sidecar JSON: etag (MD5), size, inode, time
    <root>/.reelay-tmp/                   files being written
    <root>/.reelay-locks/                 64 lock files, striped by key

These live side by side under the root, where bucket names (which cannot start
with ``.``) never reach, so no key can collide with the metadata or with a file
being written.

**Atomic writes.** ``put`` streams into a temporary file under ``.reelay-tmp`` (same
file system as the buckets), computing the MD5 on the way, fsyncs it, then moves it
into place with ``os.replace``, and does the same for the sidecar. A reader sees the
old object or the new one, never a partial file, whatever happens to the process.

**Integrity.** ``get`` and ``download`` hash what they read and compare it with the
stored etag; a mismatch raises `reelay.errors.StorageError` naming bucket and key.
The sidecar records the inode of the file it describes, which tells silent damage
apart from a legitimate replacement: the same inode with different bytes is
corruption, while a different inode means the file was replaced without its sidecar
(a crash between the two renames, or a file copied in by hand), and the sidecar is
rebuilt from the file instead. Files dropped into a bucket directory are adopted the
same way. A put does its two renames under a per-key lock (``flock`` on one of a few
striped lock files) and a suspected mismatch is confirmed under the same lock, so
concurrent writers of one key never make a reader report corruption.

**Copies are hard links.** ``copy`` links the source's file under the new key: the
two keys share one inode, which stays as it is because every write to a key is a
rename (an overwrite gives the key a new inode; the copy keeps the old one). A copy
thus costs no bytes and no time, and pins exactly the version linked. Where the file
system has no hard links (or the file has too many), the bytes are copied instead.

**Limits of a file system.** A key segment is at most 255 bytes, and one key cannot
be both an object and a folder (``a`` and ``a/b``): S3 allows both, the file store
raises `reelay.errors.InvalidKeyError` for the second.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from reelay._text import plural
from reelay.errors import ConfigError, InvalidKeyError, NoSuchKeyError, StorageError

from ._base import (
    CHUNK_SIZE,
    ObjectInfo,
    PutSource,
    StoreBase,
    check_copy,
    check_match,
    check_put_source,
    new_md5,
    validate_bucket,
    validate_key,
    validate_prefix,
)

__all__ = ["FileStore"]

META_DIR = ".reelay-meta"
TMP_DIR = ".reelay-tmp"
LOCK_DIR = ".reelay-locks"
_NAME_MAX = 255
_LOCK_STRIPES = 64
_THREAD_LOCKS = [threading.Lock() for _ in range(_LOCK_STRIPES)]
_OPTIONS = ("fsync",)


@dataclass(frozen=True)
class _Meta:
    md5: str
    size: int
    ino: int
    last_modified: datetime


class FileStore(StoreBase):
    """An `ObjectStore` over a local directory (see the module docstring).

    ``fsync=False`` skips the fsync calls: faster, still atomic against a crashing
    process, but not against a power cut. Safe to share between threads and
    processes: every write is a rename.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()
        self._fsync = fsync

    @classmethod
    def from_url(cls, url: str, **options: Any) -> FileStore:
        """Open ``file:///abs/path[?fsync=false]``, ``file://localhost/...`` or a path."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for the file store; "
                f"valid options: {', '.join(_OPTIONS)}"
            )
        if "://" not in url and not url.startswith("file:"):
            return cls(url, **options)
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"file store URL {url!r} names host {parts.netloc!r}; use file:///abs/path "
                "(three slashes) for a local directory"
            )
        if not parts.path:
            raise ConfigError(f"file store URL {url!r} has no path; use file:///abs/path")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for name, value in query.items():
            if name not in _OPTIONS:
                raise ConfigError(
                    f"unknown query parameter {name!r} in {url!r}; "
                    f"valid parameters: {', '.join(_OPTIONS)}"
                )
            options.setdefault(name, _parse_bool(url, name, value))
        return cls(unquote(parts.path), **options)

    # -- paths ---------------------------------------------------------------------

    def _data_path(self, bucket: str, key: str) -> Path:
        return self.root.joinpath(bucket, *key.split("/"))

    def _meta_path(self, bucket: str, key: str) -> Path:
        return self.root.joinpath(META_DIR, bucket, *key.split("/"))

    def _check(self, bucket: str, key: str) -> tuple[Path, Path]:
        validate_bucket(bucket)
        validate_key(key)
        for segment in key.split("/"):
            if len(segment.encode("utf-8")) > _NAME_MAX:
                raise InvalidKeyError(
                    f"object key {key[:60]!r}... has a segment of "
                    f"{len(segment.encode('utf-8'))} bytes; the file store allows at most "
                    f"{_NAME_MAX} bytes between slashes"
                )
        return self._data_path(bucket, key), self._meta_path(bucket, key)

    def _tmp_dir(self) -> Path:
        path = self.root / TMP_DIR
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- the protocol --------------------------------------------------------------

    def location(self, bucket: str) -> str:
        """``file:///<root>/<bucket>`` (see `ObjectStore.location`)."""
        validate_bucket(bucket)
        return (self.root / bucket).as_uri()

    def create_bucket(self, bucket: str) -> None:
        """Create the bucket's directory; an existing bucket is left as it is."""
        validate_bucket(bucket)
        path = self.root / bucket
        with _translate_os("create", bucket, None):
            try:
                path.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise StorageError(
                    f"cannot create bucket {bucket!r}: {path} exists and is not a directory"
                ) from None

    def put(self, bucket: str, key: str, data: PutSource) -> ObjectInfo:
        """Store ``data`` atomically under ``key``, creating the bucket if needed."""
        paths = self._check(bucket, key)
        check_put_source(data)
        self.create_bucket(bucket)
        tmp_dir = self._tmp_dir()
        data_tmp = None
        try:
            with _translate_os("put", bucket, key):
                fd, data_tmp = tempfile.mkstemp(dir=tmp_dir, prefix="data-")
                hasher = new_md5()
                with open(fd, "wb") as out:
                    for chunk in _iter_source(data):
                        hasher.update(chunk)
                        out.write(chunk)
                    out.flush()
                    if self._fsync:
                        os.fsync(out.fileno())
                    stat = os.fstat(out.fileno())
                meta = _Meta(
                    md5=hasher.hexdigest(),
                    size=stat.st_size,
                    ino=stat.st_ino,
                    last_modified=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC),
                )
                self._place(bucket, key, paths, Path(data_tmp), meta, tmp_dir)
        finally:
            if data_tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(data_tmp)  # gone already once placed
        return _info(bucket, key, meta)

    def get(self, bucket: str, key: str) -> bytes:
        """Return the object's bytes; `StorageError` if they no longer match the etag."""
        data_path, meta_path = self._check(bucket, key)
        with _translate_os("get", bucket, key), _open_object(data_path, bucket, key) as handle:
            stat = os.fstat(handle.fileno())
            content = handle.read()
            digest = new_md5()
            digest.update(content)
            # Verify while the file is still open: its inode number cannot be reused
            # by a newer file until it is closed.
            self._verified(bucket, key, meta_path, stat, digest.hexdigest(), len(content))
        return content

    def download(self, bucket: str, key: str, path: os.PathLike[str] | str) -> ObjectInfo:
        """Copy the object to ``path`` atomically, checking it against the etag."""
        data_path, meta_path = self._check(bucket, key)
        dest = Path(path)
        tmp: str | None = None
        try:
            with _translate_os("download", bucket, key):
                with _open_object(data_path, bucket, key) as handle:
                    stat = os.fstat(handle.fileno())
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    fd, tmp = tempfile.mkstemp(
                        dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
                    )
                    hasher = new_md5()
                    size = 0
                    with open(fd, "wb") as out:
                        while chunk := handle.read(CHUNK_SIZE):
                            hasher.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                        out.flush()
                        if self._fsync:
                            os.fsync(out.fileno())
                    meta = self._verified(bucket, key, meta_path, stat, hasher.hexdigest(), size)
                os.replace(tmp, dest)
                tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return _info(bucket, key, meta)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe the object from its sidecar (rebuilt if the file was replaced)."""
        data_path, meta_path = self._check(bucket, key)
        with _translate_os("head", bucket, key):
            try:
                stat = data_path.stat()
            except (FileNotFoundError, NotADirectoryError):
                raise _no_such_key(bucket, key) from None
            if not S_ISREG(stat.st_mode):
                raise _no_such_key(bucket, key)
            return _info(bucket, key, self._current_meta(data_path, meta_path, stat))

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """Copy the object as a hard link (else byte for byte), placed as ``put`` places."""
        self._check(src_bucket, src_key)
        paths = self._check(dst_bucket, dst_key)
        check_copy(src_bucket, src_key, dst_bucket, dst_key)
        self.create_bucket(dst_bucket)
        tmp_dir = self._tmp_dir()
        tmp: Path | None = None
        try:
            with _translate_os("copy", src_bucket, src_key):
                tmp, source = self._take_version(src_bucket, src_key, tmp_dir)
            check_match(src_bucket, src_key, source.md5, if_match)
            with _translate_os("copy", dst_bucket, dst_key):
                stat = os.stat(tmp)
                meta = _Meta(
                    md5=source.md5,
                    size=source.size,
                    ino=stat.st_ino,
                    last_modified=datetime.now(UTC),  # a copy is a new object, as on S3
                )
                self._place(dst_bucket, dst_key, paths, tmp, meta, tmp_dir)
        finally:
            # Removed even once placed: where the key already was a link to the same
            # file, the rename did nothing (POSIX) and the link is left to remove.
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return _info(dst_bucket, dst_key, meta)

    def delete(self, bucket: str, key: str) -> bool:
        """Delete the object and any folders left empty; return whether it existed."""
        data_path, meta_path = self._check(bucket, key)
        if not (self.root / bucket).is_dir():
            return False
        with _translate_os("delete", bucket, key):
            with self._key_lock(bucket, key):
                # Sidecar first: a crash in between leaves a file without a sidecar,
                # which is adopted as an object, never a sidecar without its object.
                with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    meta_path.unlink()
                try:
                    data_path.unlink()
                    existed = True
                except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                    existed = False
                except PermissionError:
                    # macOS reports unlink() of a directory as EPERM.
                    if data_path.is_dir():
                        existed = False
                    else:
                        raise
            _remove_empty_parents(data_path.parent, self.root / bucket)
            _remove_empty_parents(meta_path.parent, self.root / META_DIR / bucket)
        return existed

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects whose key starts with ``prefix``, in ascending key order."""
        validate_bucket(bucket)
        validate_prefix(prefix)
        return self._walk(bucket, self.root / bucket, "", prefix)

    # -- helpers -------------------------------------------------------------------

    def _walk(self, bucket: str, directory: Path, base: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in scan]
        except (FileNotFoundError, NotADirectoryError):
            return
        # Sorting a folder as "name/" puts its keys exactly where S3's byte order
        # would: "a-b" < "a/x" < "a0" because '-' < '/' < '0'.
        entries.sort(key=lambda entry: entry[0] + "/" if entry[1] else entry[0])
        for name, is_dir in entries:
            key = base + name
            if is_dir:
                folder = key + "/"
                if folder.startswith(prefix) or prefix.startswith(folder):
                    yield from self._walk(bucket, directory / name, folder, prefix)
                continue
            if not key.startswith(prefix):
                continue
            try:
                validate_key(key)
            except InvalidKeyError:
                continue  # a stray file no key could name; leave it alone
            data_path = directory / name
            meta_path = self._meta_path(bucket, key)
            with _translate_os("list", bucket, key):
                try:
                    stat = data_path.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we walked
                if not S_ISREG(stat.st_mode):
                    continue  # symlinks, sockets...: not objects
                yield _info(bucket, key, self._current_meta(data_path, meta_path, stat))

    def _take_version(self, bucket: str, key: str, tmp_dir: Path) -> tuple[Path, _Meta]:
        """A file under ``tmp_dir`` holding the object's current version, and that
        version's metadata: a hard link to it, else a copy of its bytes."""
        data_path, meta_path = self._data_path(bucket, key), self._meta_path(bucket, key)
        link = tmp_dir / f"link-{secrets.token_hex(8)}"
        try:
            os.link(data_path, link)
        except (FileNotFoundError, NotADirectoryError):
            raise _no_such_key(bucket, key) from None
        except OSError:
            # No hard links here (EPERM, EMLINK, EXDEV...), or a folder: copy the bytes
            # (a folder is then no such key, as for get).
            return self._copy_version(bucket, key, tmp_dir)
        stat = os.stat(link)
        if not S_ISREG(stat.st_mode):
            os.unlink(link)
            raise _no_such_key(bucket, key)
        meta = self._read_meta(meta_path)
        if meta is None or meta.ino != stat.st_ino:
            # A put may be between its two renames: look again under the key's lock.
            with self._key_lock(bucket, key):
                meta = self._read_meta(meta_path)
        if meta is None or meta.ino != stat.st_ino:
            # The file was replaced without its sidecar: describe what we linked.
            hasher = new_md5()
            size = 0
            with open(link, "rb") as handle:
                while chunk := handle.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    size += len(chunk)
            meta = self._rebuild_meta(data_path, meta_path, stat, hasher.hexdigest(), size)
        return link, meta

    def _copy_version(self, bucket: str, key: str, tmp_dir: Path) -> tuple[Path, _Meta]:
        """`_take_version` by copying the bytes, checked against the etag as ``get`` checks."""
        data_path, meta_path = self._data_path(bucket, key), self._meta_path(bucket, key)
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="data-")
        try:
            with open(fd, "wb") as out, _open_object(data_path, bucket, key) as handle:
                stat = os.fstat(handle.fileno())
                hasher = new_md5()
                size = 0
                while chunk := handle.read(CHUNK_SIZE):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                if self._fsync:
                    os.fsync(out.fileno())
                meta = self._verified(bucket, key, meta_path, stat, hasher.hexdigest(), size)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return Path(name), meta

    def _place(
        self,
        bucket: str,
        key: str,
        paths: tuple[Path, Path],
        data_tmp: Path,
        meta: _Meta,
        tmp_dir: Path,
    ) -> None:
        """Put ``data_tmp`` at ``key`` (``paths``: its data and sidecar paths, from
        `_check`) with its sidecar ``meta``: both renames under the key's lock, so that
        whoever holds the lock sees an object and its sidecar from the same write; then
        fsync the folders (when the store fsyncs)."""
        data_path, meta_path = paths
        meta_tmp = self._write_meta_tmp(meta, tmp_dir)
        placed = False
        try:
            with self._key_lock(bucket, key):
                self._move_into_place(bucket, key, data_tmp, data_path, meta_path)
                os.replace(meta_tmp, meta_path)
                placed = True
        finally:
            if not placed:
                with contextlib.suppress(OSError):
                    os.unlink(meta_tmp)
        if self._fsync:
            _fsync_dir(data_path.parent)
            _fsync_dir(meta_path.parent)

    def _move_into_place(
        self, bucket: str, key: str, tmp: Path, data_path: Path, meta_path: Path
    ) -> None:
        # A concurrent delete may remove a folder that just became empty between our
        # mkdir and our rename; try again a few times before giving up.
        for attempt in range(5):
            self._make_parents(bucket, key, data_path)
            self._clear_meta_parents(bucket, meta_path)
            try:
                os.replace(tmp, data_path)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise
            except OSError:
                if data_path.is_dir():
                    raise InvalidKeyError(
                        f"cannot store {key!r} in bucket {bucket!r}: objects exist under "
                        f"'{key}/', and the file store cannot hold an object and a "
                        "folder of the same name"
                    ) from None
                raise

    def _make_parents(self, bucket: str, key: str, data_path: Path) -> None:
        try:
            data_path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            parts = key.split("/")
            for i in range(1, len(parts)):
                if self._data_path(bucket, "/".join(parts[:i])).is_file():
                    raise InvalidKeyError(
                        f"cannot store {key!r} in bucket {bucket!r}: "
                        f"{'/'.join(parts[:i])!r} is an object, and the file store cannot "
                        "hold an object and a folder of the same name"
                    ) from None
            raise

    def _clear_meta_parents(self, bucket: str, meta_path: Path) -> None:
        # The sidecar tree mirrors the data tree, so anything in the way here is a
        # sidecar whose object is gone (an orphan); remove it.
        top = self.root / META_DIR / bucket
        top.mkdir(parents=True, exist_ok=True)
        current = top
        for part in meta_path.relative_to(top).parts[:-1]:
            current = current / part
            if current.is_file() or current.is_symlink():
                current.unlink()
            current.mkdir(exist_ok=True)
        if meta_path.is_dir() and not meta_path.is_symlink():
            shutil.rmtree(meta_path)

    def _write_meta_tmp(self, meta: _Meta, tmp_dir: Path) -> str:
        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix="meta-")
        with open(fd, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "etag": meta.md5,
                    "size": meta.size,
                    "inode": meta.ino,
                    "last_modified": meta.last_modified.isoformat(),
                },
                out,
            )
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        return name

    def _read_meta(self, meta_path: Path) -> _Meta | None:
        try:
            raw = json.loads(meta_path.read_text(encoding="utf-8"))
            return _Meta(
                md5=str(raw["etag"]),
                size=int(raw["size"]),
                ino=int(raw["inode"]),
                last_modified=datetime.fromisoformat(raw["last_modified"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            # Missing or unreadable: the caller rebuilds it from the file itself.
            return None

    def _current_meta(self, data_path: Path, meta_path: Path, stat: os.stat_result) -> _Meta:
        meta = self._read_meta(meta_path)
        if meta is not None and meta.ino == stat.st_ino:
            return meta
        hasher = new_md5()
        size = 0
        with open(data_path, "rb") as handle:
            # Identify the file by the handle we hash, not the earlier stat: the path
            # may point to a newer file by now.
            stat = os.fstat(handle.fileno())
            while chunk := handle.read(CHUNK_SIZE):
                hasher.update(chunk)
                size += len(chunk)
            return self._rebuild_meta(data_path, meta_path, stat, hasher.hexdigest(), size)

    def _rebuild_meta(
        self,
        data_path: Path,
        meta_path: Path,
        stat: os.stat_result,
        md5: str,
        size: int,
    ) -> _Meta:
        """Describe the file we just hashed, and record that if it is still current."""
        meta = _Meta(
            md5=md5,
            size=size,
            ino=stat.st_ino,
            last_modified=datetime.fromtimestamp(stat.st_mtime_ns / 1e9, UTC),
        )
        bucket, key = self._bucket_key(data_path)
        # Only if no writer is busy with the key (then its sidecar is coming), and
        # only if the file we hashed is still the object.
        with self._key_lock(bucket, key, blocking=False) as locked:
            if not locked:
                return meta
            with contextlib.suppress(OSError):
                if data_path.stat().st_ino != stat.st_ino:
                    return meta
                tmp = self._write_meta_tmp(meta, self._tmp_dir())
                try:
                    meta_path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, meta_path)
                except OSError:
                    os.unlink(tmp)
        return meta

    def _verified(
        self,
        bucket: str,
        key: str,
        meta_path: Path,
        stat: os.stat_result,
        md5: str,
        size: int,
    ) -> _Meta:
        """Check bytes read from the file ``stat`` describes against its sidecar."""
        data_path = self._data_path(bucket, key)
        meta = self._read_meta(meta_path)
        if meta is not None and meta.ino == stat.st_ino and (meta.md5, meta.size) == (md5, size):
            return meta
        # A mismatch is corruption only if it survives a look under the key's lock,
        # where no put is halfway through its two renames.
        with self._key_lock(bucket, key):
            meta = self._read_meta(meta_path)
            if meta is not None and meta.ino == stat.st_ino:
                if (meta.md5, meta.size) == (md5, size):
                    return meta
                raise StorageError(
                    f"object {key!r} in bucket {bucket!r} is corrupt: its content "
                    f"({plural(size, 'byte')}, MD5 {md5}) no longer "
                    f"matches what was stored ("
                    f"{plural(meta.size, 'byte')}, MD5 {meta.md5}); file {data_path}"
                )
        # The sidecar describes another file: ours was replaced without its sidecar
        # (a crash between renames, a file copied in), or the object was overwritten
        # while we read it. What we read is a whole, consistent version.
        return self._rebuild_meta(data_path, meta_path, stat, md5, size)

    def _bucket_key(self, data_path: Path) -> tuple[str, str]:
        parts = data_path.relative_to(self.root).parts
        return parts[0], "/".join(parts[1:])

    @contextlib.contextmanager
    def _key_lock(self, bucket: str, key: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold one of a fixed set of lock files, chosen by hashing the key.

        Striping keeps the number of lock files bounded; two keys sharing a stripe
        only serialize their renames, which take microseconds. ``flock`` excludes
        other processes and other threads alike (each open has its own lock).
        """
        stripe = hashlib.blake2b(f"{bucket}/{key}".encode(), digest_size=8).digest()[0]
        stripe %= _LOCK_STRIPES
        if fcntl is None:  # pragma: no cover - Windows: threads of this process only
            lock = _THREAD_LOCKS[stripe]
            acquired = lock.acquire(blocking)
            try:
                yield acquired
            finally:
                if acquired:
                    lock.release()
            return
        lock_dir = self.root / LOCK_DIR
        lock_dir.mkdir(parents=True, exist_ok=True)
        path = lock_dir / f"{stripe:02d}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
                acquired = True
            except BlockingIOError:
                acquired = False
            yield acquired
        finally:
            os.close(fd)  # releases the lock


def _info(bucket: str, key: str, meta: _Meta) -> ObjectInfo:
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=meta.size,
        etag=meta.md5,
        last_modified=meta.last_modified,
    )


def _no_such_key(bucket: str, key: str) -> NoSuchKeyError:
    return NoSuchKeyError(f"no object {key!r} in bucket {bucket!r}")


@contextlib.contextmanager
def _open_object(path: Path, bucket: str, key: str) -> Iterator[BinaryIO]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise _no_such_key(bucket, key) from None
    except PermissionError:
        if path.is_dir():  # Windows reports opening a directory as EACCES
            raise _no_such_key(bucket, key) from None
        raise
    with handle:
        yield handle


def _iter_source(data: PutSource) -> Iterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    if isinstance(data, os.PathLike):
        with open(data, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk
        return
    reader = data
    while chunk := reader.read(CHUNK_SIZE):
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(
                f"put() needs a binary file object; its read() returned {type(chunk).__name__}"
            )
        yield bytes(chunk)


def _remove_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return  # not empty (or already gone): stop climbing
        directory = directory.parent


def _fsync_dir(path: Path) -> None:
    # Makes the rename itself durable. Directories cannot be opened on Windows,
    # where os.replace is durable enough for reelay's purposes.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _parse_bool(url: str, name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"query parameter {name}={value!r} in {url!r} must be true or false")


@contextlib.contextmanager
def _translate_os(op: str, bucket: str, key: str | None) -> Iterator[None]:
    """Turn file-system errors into the reelay tree, naming what was being done."""
    try:
        yield
    except OSError as exc:
        where = f"{key!r} in bucket {bucket!r}" if key is not None else f"bucket {bucket!r}"
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidKeyError(
                f"object key {key!r} is too long for this file system ({exc.strerror})"
            ) from exc
        # The reason in words and the path it concerns, not Python's "[Errno N]" form.
        reason = exc.strerror or str(exc)
        path = f" ({exc.filename})" if exc.filename else ""
        raise StorageError(f"file store: {op} {where} failed: {reason}{path}") from exc
