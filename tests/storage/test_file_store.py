"""What only the file store does: its URL, layout, integrity checks and file-system limits."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.errors import (
    ConfigError,
    InvalidKeyError,
    NoSuchKeyError,
    PreconditionFailedError,
    StorageError,
)
from reelay.storage import STORE_SCHEMES, open_store
from reelay.storage._file import FileStore


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "home" / "objects"


@pytest.fixture
def store(root: Path) -> Iterator[FileStore]:
    with FileStore(root) as opened:
        yield opened


# -- opening ---------------------------------------------------------------------


def test_urls_and_plain_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "dir with space"
    for url in (
        target.as_uri(),
        str(target),
        f"file://localhost{target.as_posix()}",
        f"file://{target.as_posix()}?fsync=false",
    ):
        store = open_store(url)
        assert isinstance(store, FileStore)
        assert store.root == target
        assert store.url == target.as_uri()
    monkeypatch.chdir(tmp_path)
    relative = open_store("relative/objects")
    assert isinstance(relative, FileStore)
    assert relative.root == tmp_path / "relative" / "objects"


def test_fsync_option(tmp_path: Path) -> None:
    store = open_store(f"{tmp_path.as_uri()}?fsync=false")
    store.put("bkt", "k", b"v")
    assert store.get("bkt", "k") == b"v"
    assert open_store(tmp_path.as_uri(), fsync=False).get("bkt", "k") == b"v"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("file://otherhost/x", {}, "names host 'otherhost'"),
        ("file:///x?colour=blue", {}, "unknown query parameter 'colour'"),
        ("file:///x?fsync=maybe", {}, "must be true or false"),
        ("file:///x", {"colour": "blue"}, "unknown option(s) colour"),
        ("ftp://host/x", {}, "unknown object store scheme 'ftp'"),
        ("", {}, "non-empty"),
    ],
)
def test_bad_urls(url: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url, **options)
    assert message in str(caught.value)


def test_unknown_scheme_lists_valid_schemes() -> None:
    with pytest.raises(ConfigError, match="valid schemes: file, s3"):
        open_store("gs://bucket")
    assert sorted(STORE_SCHEMES) == ["file", "s3"]


def test_opening_does_not_touch_the_disk(root: Path) -> None:
    store = FileStore(root)
    assert not root.exists()
    assert list(store.list("bkt")) == []
    with pytest.raises(NoSuchKeyError):
        store.head("bkt", "k")
    assert not root.exists()


# -- layout ----------------------------------------------------------------------


def test_layout_keeps_metadata_outside_the_key_namespace(store: FileStore, root: Path) -> None:
    info = store.put("bkt", "a/b.mp4", b"video")
    assert (root / "bkt" / "a" / "b.mp4").read_bytes() == b"video"
    sidecar = json.loads((root / ".reelay-meta" / "bkt" / "a" / "b.mp4").read_text())
    assert sidecar["etag"] == md5(b"video") == info.etag
    assert sidecar["size"] == 5
    assert list((root / ".reelay-tmp").iterdir()) == []
    # Names that look like reelay's own cannot be buckets, and as keys they are
    # ordinary objects inside a bucket.
    with pytest.raises(InvalidKeyError):
        store.put(".reelay-meta", "k", b"x")
    store.put("bkt", ".reelay-meta/bkt/a/b.mp4", b"not metadata")
    assert store.get("bkt", "a/b.mp4") == b"video"
    assert [o.key for o in store.list("bkt")] == [".reelay-meta/bkt/a/b.mp4", "a/b.mp4"]


def test_delete_removes_empty_folders_only(store: FileStore, root: Path) -> None:
    store.put("bkt", "x/y/z/deep.txt", b"1")
    store.put("bkt", "x/sibling.txt", b"2")
    assert store.delete("bkt", "x/y/z/deep.txt")
    assert not (root / "bkt" / "x" / "y").exists()
    assert not (root / ".reelay-meta" / "bkt" / "x" / "y").exists()
    assert (root / "bkt" / "x" / "sibling.txt").exists()
    assert store.delete("bkt", "x/sibling.txt")
    assert list((root / "bkt").iterdir()) == []
    assert (root / "bkt").is_dir()  # the bucket itself stays


def test_object_and_folder_of_the_same_name_conflict(store: FileStore) -> None:
    store.put("bkt", "a", b"object")
    with pytest.raises(InvalidKeyError, match="'a' is an object"):
        store.put("bkt", "a/b", b"under it")
    store.put("bkt", "c/d", b"under")
    with pytest.raises(InvalidKeyError, match="objects exist under 'c/'"):
        store.put("bkt", "c", b"object")
    assert store.get("bkt", "a") == b"object"
    assert store.get("bkt", "c/d") == b"under"
    assert [o.key for o in store.list("bkt")] == ["a", "c/d"]


def test_segment_longer_than_a_file_name(store: FileStore) -> None:
    with pytest.raises(InvalidKeyError, match="at most 255 bytes between slashes"):
        store.put("bkt", "x" * 256, b"")
    store.put("bkt", "x" * 255, b"fits")
    assert store.get("bkt", "x" * 255) == b"fits"


def test_failed_put_keeps_the_old_object_and_no_temp_files(store: FileStore, root: Path) -> None:
    store.put("bkt", "k", b"original")

    class Broken:
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("the network went away")
            return b"partial data"

    with pytest.raises(StorageError, match="the network went away"):
        store.put("bkt", "k", Broken())  # type: ignore[arg-type]
    assert store.get("bkt", "k") == b"original"
    assert list((root / ".reelay-tmp").iterdir()) == []


# -- integrity -------------------------------------------------------------------


def _corrupt_in_place(path: Path, offset: int, data: bytes) -> None:
    """Damage bytes without replacing the file, as a failing disk would."""
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_corruption_is_detected_on_get_and_download(
    store: FileStore, root: Path, tmp_path: Path
) -> None:
    store.put("bkt", "clips/a.mp4", b"0123456789" * 100)
    _corrupt_in_place(root / "bkt" / "clips" / "a.mp4", 500, b"XX")
    with pytest.raises(StorageError, match=r"'clips/a.mp4' in bucket 'bkt' is corrupt"):
        store.get("bkt", "clips/a.mp4")
    target = tmp_path / "restore" / "a.mp4"
    with pytest.raises(StorageError, match="is corrupt"):
        store.download("bkt", "clips/a.mp4", target)
    assert list(target.parent.iterdir()) == []  # no partial or temporary file
    # Corruption is not "healed" by reading: it stays detectable.
    with pytest.raises(StorageError, match="is corrupt"):
        store.get("bkt", "clips/a.mp4")
    # Writing the object again repairs it.
    store.put("bkt", "clips/a.mp4", b"fresh")
    assert store.get("bkt", "clips/a.mp4") == b"fresh"


def test_truncation_is_detected(store: FileStore, root: Path) -> None:
    store.put("bkt", "k", b"complete content")
    with open(root / "bkt" / "k", "r+b") as handle:
        handle.truncate(4)
    with pytest.raises(StorageError, match="4 bytes"):
        store.get("bkt", "k")


def test_replaced_file_is_adopted_not_reported(store: FileStore, root: Path) -> None:
    store.put("bkt", "k", b"old")
    # A new file moved into place (new inode): a crash between reelay's two renames
    # looks like this, and so does a user copying a file in.
    replacement = root / "replacement"
    replacement.write_bytes(b"replaced by hand")
    os.replace(replacement, root / "bkt" / "k")
    assert store.get("bkt", "k") == b"replaced by hand"
    assert store.head("bkt", "k").etag == md5(b"replaced by hand")
    assert store.head("bkt", "k").size == 16


def test_files_without_sidecar_are_adopted(store: FileStore, root: Path, tmp_path: Path) -> None:
    (root / "bkt" / "dropped" / "in").mkdir(parents=True)
    (root / "bkt" / "dropped" / "in" / "file.txt").write_bytes(b"dropped")
    [info] = store.list("bkt")
    assert (info.key, info.size, info.etag) == ("dropped/in/file.txt", 7, md5(b"dropped"))
    assert (root / ".reelay-meta" / "bkt" / "dropped" / "in" / "file.txt").exists()
    assert store.download("bkt", "dropped/in/file.txt", tmp_path / "x").etag == md5(b"dropped")


def test_unreadable_sidecar_is_rebuilt(store: FileStore, root: Path) -> None:
    store.put("bkt", "k", b"data")
    (root / ".reelay-meta" / "bkt" / "k").write_text("{not json")
    assert store.head("bkt", "k").etag == md5(b"data")
    assert store.get("bkt", "k") == b"data"


def test_stray_files_that_no_key_could_name_are_not_listed(store: FileStore, root: Path) -> None:
    store.put("bkt", "good", b"1")
    (root / "bkt" / "bad\\name").write_bytes(b"2")
    (root / "bkt" / "link").symlink_to(root / "bkt" / "good")
    assert [o.key for o in store.list("bkt")] == ["good"]


def test_orphan_sidecar_does_not_block_writes(store: FileStore, root: Path) -> None:
    store.put("bkt", "a", b"1")
    (root / "bkt" / "a").unlink()  # object removed behind reelay's back
    with pytest.raises(NoSuchKeyError):
        store.head("bkt", "a")
    store.put("bkt", "a/b", b"2")
    assert store.get("bkt", "a/b") == b"2"


# -- streaming -------------------------------------------------------------------


@pytest.mark.slow
def test_large_files_are_streamed_not_loaded(store: FileStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    chunk = os.urandom(1 << 20)
    with open(source, "wb") as out:
        for _ in range(20):
            out.write(chunk)
    tracemalloc.start()
    try:
        info = store.put("bkt", "big.bin", source)
        store.download("bkt", "big.bin", tmp_path / "copy.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 20 << 20
    # 20 MiB went through in both directions; memory never held more than a few chunks.
    assert peak < 6 << 20
    assert (tmp_path / "copy.bin").stat().st_size == 20 << 20


@pytest.mark.slow
def test_concurrent_writers_and_readers_never_see_corruption(
    store: FileStore, tmp_path: Path
) -> None:
    # At-least-once delivery means duplicate tasks may write one key at the same
    # time; readers must always get one whole version, never a corruption report.
    contents = [bytes([i]) * (4000 + i) for i in range(4)]
    store.put("bkt", "shared/key", contents[0])
    writers_done = threading.Event()
    failures: list[BaseException] = []

    def writer(data: bytes) -> None:
        for _ in range(100):
            store.put("bkt", "shared/key", data)

    def reader(number: int) -> None:
        target = tmp_path / f"copy-{number}"
        try:
            while not writers_done.is_set():
                assert store.get("bkt", "shared/key") in contents
                store.head("bkt", "shared/key")
                store.download("bkt", "shared/key", target)
                assert target.read_bytes() in contents
                assert [o.key for o in store.list("bkt")] == ["shared/key"]
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=writer, args=(data,)) for data in contents]
    readers = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    for thread in readers:
        thread.join()
    assert failures == []
    final = store.get("bkt", "shared/key")
    assert final in contents
    assert store.head("bkt", "shared/key").etag == md5(final)
    assert list((store.root / ".reelay-tmp").iterdir()) == []


# -- copies ----------------------------------------------------------------------


def test_a_copy_is_a_hard_link_that_an_overwrite_leaves_alone(store: FileStore, root: Path) -> None:
    store.put("bkt", "in/a.mp4", b"the first upload")
    store.copy("bkt", "in/a.mp4", "bkt", "work/t/source.mp4")
    source, copy = root / "bkt" / "in" / "a.mp4", root / "bkt" / "work" / "t" / "source.mp4"
    assert source.stat().st_ino == copy.stat().st_ino  # no bytes copied
    assert source.stat().st_nlink == 2
    store.copy("bkt", "in/a.mp4", "bkt", "work/t/source.mp4")  # again: one file, two names
    assert source.stat().st_nlink == 2
    store.put("bkt", "in/a.mp4", b"a second upload")  # a rename: a new inode for the key
    assert source.stat().st_ino != copy.stat().st_ino
    assert store.get("bkt", "work/t/source.mp4") == b"the first upload"
    assert store.head("bkt", "work/t/source.mp4").etag == md5(b"the first upload")
    assert list((root / ".reelay-tmp").iterdir()) == []


def test_without_hard_links_a_copy_copies_the_bytes(
    store: FileStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("bkt", "a", b"content" * 1000)

    def no_links(src: object, dst: object, **kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # as on a FAT or some FUSE mounts

    monkeypatch.setattr(os, "link", no_links)
    info = store.copy("bkt", "a", "bkt", "b", if_match=md5(b"content" * 1000))
    assert (root / "bkt" / "a").stat().st_ino != (root / "bkt" / "b").stat().st_ino
    assert info.etag == md5(b"content" * 1000) and store.get("bkt", "b") == b"content" * 1000
    # A corrupt source is refused, not copied.
    _corrupt_in_place(root / "bkt" / "a", 3, b"XX")
    with pytest.raises(StorageError, match="'a' in bucket 'bkt' is corrupt"):
        store.copy("bkt", "a", "bkt", "c")
    with pytest.raises(NoSuchKeyError):
        store.copy("bkt", "missing", "bkt", "c")
    assert [o.key for o in store.list("bkt")] == ["a", "b"]
    assert list((root / ".reelay-tmp").iterdir()) == []


def test_a_file_copied_in_by_hand_is_copied_as_it_is(store: FileStore, root: Path) -> None:
    store.put("bkt", "k", b"old")
    replacement = root / "replacement"
    replacement.write_bytes(b"replaced by hand")
    os.replace(replacement, root / "bkt" / "k")  # the sidecar still says "old"
    with pytest.raises(PreconditionFailedError):
        store.copy("bkt", "k", "bkt", "copy", if_match=md5(b"old"))
    info = store.copy("bkt", "k", "bkt", "copy", if_match=md5(b"replaced by hand"))
    assert (info.size, info.etag) == (16, md5(b"replaced by hand"))
    assert store.get("bkt", "copy") == b"replaced by hand"
