"""The object-store contract, run against every backend (file:// and s3:// on moto)."""

from __future__ import annotations

import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reelay.errors import InvalidKeyError, NoSuchKeyError, PreconditionFailedError, StorageError
from reelay.storage import ObjectInfo, ObjectStore

BUCKET = "media"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class OneShotReader:
    """A non-seekable stream, like a pipe: read() only."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = data
        self._pos = 0
        self._chunk = chunk

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = len(self._data)
        size = min(size, self._chunk) if size else 0
        out = self._data[self._pos : self._pos + size]
        self._pos += len(out)
        return out


def test_is_an_object_store(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert store.url


def test_bytes_round_trip(store: ObjectStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    info = store.put(BUCKET, "docs/hello.txt", b"hello world")
    assert info == ObjectInfo(
        bucket=BUCKET,
        key="docs/hello.txt",
        size=11,
        etag=md5(b"hello world"),
        last_modified=info.last_modified,
    )
    assert info.last_modified.tzinfo is not None
    assert info.last_modified.utcoffset() == timedelta(0)
    assert before <= info.last_modified <= datetime.now(UTC) + timedelta(seconds=5)
    assert store.get(BUCKET, "docs/hello.txt") == b"hello world"
    assert store.head(BUCKET, "docs/hello.txt") == info


def test_bytearray_and_memoryview(store: ObjectStore) -> None:
    store.put(BUCKET, "a", bytearray(b"abc"))
    store.put(BUCKET, "b", memoryview(b"def"))
    assert store.get(BUCKET, "a") == b"abc"
    assert store.get(BUCKET, "b") == b"def"


def test_file_path_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(3000))
    info = store.put(BUCKET, "in.bin", source)
    assert info.size == 3000
    assert info.etag == file_md5(source)
    assert store.get(BUCKET, "in.bin") == source.read_bytes()


def test_seekable_stream_round_trip_from_its_position(store: ObjectStore) -> None:
    stream = io.BytesIO(b"skip:payload")
    stream.seek(5)
    info = store.put(BUCKET, "stream", stream)
    assert info.size == 7
    assert info.etag == md5(b"payload")
    assert store.get(BUCKET, "stream") == b"payload"


def test_non_seekable_stream_round_trip(store: ObjectStore) -> None:
    data = os.urandom(1000)
    info = store.put(BUCKET, "pipe", OneShotReader(data))  # type: ignore[arg-type]
    assert info.etag == md5(data)
    assert store.get(BUCKET, "pipe") == data


def test_empty_object(store: ObjectStore, tmp_path: Path) -> None:
    info = store.put(BUCKET, "empty", b"")
    assert info.size == 0
    assert info.etag == md5(b"")  # d41d8cd98f00b204e9800998ecf8427e
    assert store.get(BUCKET, "empty") == b""
    target = tmp_path / "empty.out"
    assert store.download(BUCKET, "empty", target).size == 0
    assert target.read_bytes() == b""
    assert [o.key for o in store.list(BUCKET)] == ["empty"]


@pytest.mark.slow
def test_twenty_megabyte_file_streams_both_ways(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for _ in range(20):
            out.write(os.urandom(1 << 20))
    expected = file_md5(source)
    info = store.put(BUCKET, "videos/big.bin", source)
    assert (info.size, info.etag) == (20 << 20, expected)
    assert store.head(BUCKET, "videos/big.bin").etag == expected
    target = tmp_path / "out" / "nested" / "big.bin"
    downloaded = store.download(BUCKET, "videos/big.bin", target)
    assert (downloaded.size, downloaded.etag) == (20 << 20, expected)
    assert file_md5(target) == expected
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]  # no temp left


def test_download_replaces_an_existing_file(store: ObjectStore, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_bytes(b"old content that is longer")
    store.put(BUCKET, "k", b"new")
    store.download(BUCKET, "k", str(target))
    assert target.read_bytes() == b"new"


def test_download_of_missing_key_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    target = tmp_path / "dl" / "missing.bin"
    target.parent.mkdir()
    with pytest.raises(NoSuchKeyError, match=r"missing\.bin"):
        store.download(BUCKET, "missing.bin", target)
    assert list(target.parent.iterdir()) == []


def test_missing_keys_and_buckets(store: ObjectStore) -> None:
    store.put(BUCKET, "present", b"x")
    for op in (store.get, store.head):
        with pytest.raises(NoSuchKeyError, match="absent") as caught:
            op(BUCKET, "absent")
        assert isinstance(caught.value, LookupError)
        assert isinstance(caught.value, StorageError)
        with pytest.raises(NoSuchKeyError):
            op("no-such-bucket", "present")
    # A prefix of existing keys is not an object.
    store.put(BUCKET, "dir/file", b"x")
    with pytest.raises(NoSuchKeyError):
        store.head(BUCKET, "dir")
    with pytest.raises(NoSuchKeyError):
        store.get(BUCKET, "dir")


def test_delete(store: ObjectStore) -> None:
    store.put(BUCKET, "a/b/c.txt", b"1")
    store.put(BUCKET, "a/keep.txt", b"2")
    assert store.delete(BUCKET, "a/b/c.txt") is True
    assert store.delete(BUCKET, "a/b/c.txt") is False
    assert store.delete(BUCKET, "never-existed") is False
    assert store.delete("no-such-bucket", "x") is False
    assert store.delete(BUCKET, "a") is False  # a prefix, not an object
    with pytest.raises(NoSuchKeyError):
        store.head(BUCKET, "a/b/c.txt")
    assert [o.key for o in store.list(BUCKET)] == ["a/keep.txt"]
    # The key can be written again, and so can a key where the emptied folder was.
    store.put(BUCKET, "a/b", b"now an object")
    assert store.get(BUCKET, "a/b") == b"now an object"


def test_overwrite(store: ObjectStore) -> None:
    first = store.put(BUCKET, "k", b"first version")
    second = store.put(BUCKET, "k", b"second")
    assert first.etag != second.etag
    assert store.get(BUCKET, "k") == b"second"
    assert store.head(BUCKET, "k").etag == md5(b"second")
    assert [(o.key, o.size, o.etag) for o in store.list(BUCKET)] == [("k", 6, md5(b"second"))]


def test_list_is_sorted_in_utf8_byte_order(store: ObjectStore) -> None:
    keys = ["b", "a0", "a/y/z", "a-b", "é", "A", "a/x", "z", "日本", "a.b", "a/x0"]
    for key in keys:
        store.put(BUCKET, key, key.encode())
    listed = list(store.list(BUCKET))
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert [o.key for o in listed] == expected
    assert expected == ["A", "a-b", "a.b", "a/x", "a/x0", "a/y/z", "a0", "b", "z", "é", "日本"]
    for info in listed:
        assert info.bucket == BUCKET
        assert info.size == len(info.key.encode())
        assert info.etag == md5(info.key.encode())
        assert info.last_modified.utcoffset() == timedelta(0)


def test_list_prefixes(store: ObjectStore) -> None:
    for key in ["photos/2020/a.jpg", "photos/2021/b.jpg", "photos/2021/c.jpg", "photosx", "video"]:
        store.put(BUCKET, key, b"x")

    def keys(prefix: str) -> list[str]:
        return [o.key for o in store.list(BUCKET, prefix)]

    assert keys("photos/") == ["photos/2020/a.jpg", "photos/2021/b.jpg", "photos/2021/c.jpg"]
    assert keys("photos") == [
        "photos/2020/a.jpg",
        "photos/2021/b.jpg",
        "photos/2021/c.jpg",
        "photosx",
    ]
    assert keys("photos/2021") == ["photos/2021/b.jpg", "photos/2021/c.jpg"]
    assert keys("photos/2021/c") == ["photos/2021/c.jpg"]
    assert keys("photos/2021/c.jpg") == ["photos/2021/c.jpg"]
    assert keys("nothing") == []
    assert keys("") == [*keys("p"), "video"]
    assert list(store.list("no-such-bucket")) == []


def test_list_is_lazy_and_reusable(store: ObjectStore) -> None:
    store.put(BUCKET, "one", b"1")
    listing = store.list(BUCKET)
    store.put(BUCKET, "two", b"2")
    assert [o.key for o in listing] == ["one", "two"]
    assert [o.key for o in store.list(BUCKET)] == ["one", "two"]


def test_create_bucket_is_idempotent_and_put_creates_buckets(store: ObjectStore) -> None:
    store.create_bucket("fresh")
    store.create_bucket("fresh")
    assert list(store.list("fresh")) == []
    store.put("implicit", "k", b"v")
    assert store.get("implicit", "k") == b"v"
    store.create_bucket("implicit")
    assert store.get("implicit", "k") == b"v"


UNICODE_KEYS = [
    "vidéos/été 2024/clip ①.mp4",
    "日本語/ファイル名.mov",
    "emoji/😀🎬.txt",
    "spaces and+plus/%20literal?query=1&x#frag",
    "trailing space ",
    "ünïcödé/NFC-é/NFD-é",
    "!$&'()*+,;=:@~[]{}^`|<>\"",
]


@pytest.mark.parametrize("key", UNICODE_KEYS)
def test_unicode_and_punctuation_keys(store: ObjectStore, key: str, tmp_path: Path) -> None:
    data = key.encode("utf-8") * 3
    info = store.put(BUCKET, key, data)
    assert info.key == key
    assert store.get(BUCKET, key) == data
    assert store.head(BUCKET, key).etag == md5(data)
    assert [o.key for o in store.list(BUCKET)] == [key]
    assert [o.key for o in store.list(BUCKET, key[:3])] == [key]
    assert store.download(BUCKET, key, tmp_path / "dl").etag == md5(data)
    assert store.delete(BUCKET, key) is True
    assert list(store.list(BUCKET)) == []


def test_longest_key(store: ObjectStore) -> None:
    key = "/".join(["k" * 200] * 5) + "/" + "x" * 19  # 5*200 + 5 + 19 = 1024 bytes
    assert len(key.encode()) == 1024
    store.put(BUCKET, key, b"long")
    assert store.get(BUCKET, key) == b"long"
    assert [o.key for o in store.list(BUCKET)] == [key]


INVALID_KEYS = [
    ("", "empty"),
    ("/abs", "start with '/'"),
    ("dir/", "end with '/'"),
    ("a//b", "empty segment"),
    (".", "'.' segment"),
    ("..", "'..' segment"),
    ("a/./b", "'.' segment"),
    ("a/../b", "'..' segment"),
    ("../escape", "'..' segment"),
    ("a\\b", "backslash"),
    ("nul\x00byte", "U+0000"),
    ("new\nline", "U+000A"),
    ("tab\there", "U+0009"),
    ("del\x7f", "U+007F"),
    ("c1\x85control", "U+0085"),
    ("k" * 1025, "1025 bytes"),
    ("é" * 513, "1026 bytes"),
    ("lone\ud800surrogate", "surrogate"),
]


@pytest.mark.parametrize(("key", "rule"), INVALID_KEYS)
def test_invalid_keys_are_refused_everywhere(
    store: ObjectStore, key: str, rule: str, tmp_path: Path
) -> None:
    calls = [
        lambda: store.put(BUCKET, key, b"x"),
        lambda: store.get(BUCKET, key),
        lambda: store.head(BUCKET, key),
        lambda: store.delete(BUCKET, key),
        lambda: store.download(BUCKET, key, tmp_path / "out"),
        lambda: store.copy(BUCKET, key, BUCKET, "fine"),
        lambda: store.copy(BUCKET, "fine", BUCKET, key),
    ]
    store.put(BUCKET, "fine", b"x")
    for call in calls:
        with pytest.raises(InvalidKeyError) as caught:
            call()
        message = str(caught.value)
        assert rule in message
        assert isinstance(caught.value, ValueError)
    assert [o.key for o in store.list(BUCKET)] == ["fine"]
    assert not (tmp_path / "out").exists()


def test_non_str_key_is_refused(store: ObjectStore) -> None:
    with pytest.raises(InvalidKeyError, match="must be a str"):
        store.put(BUCKET, b"bytes-key", b"x")  # type: ignore[arg-type]


INVALID_BUCKETS = [
    ("ab", "3 to 63"),
    ("a" * 64, "3 to 63"),
    ("", "3 to 63"),
    ("Upper", "lowercase"),
    ("under_score", "lowercase"),
    ("spa ce", "lowercase"),
    ("-start", "start and end"),
    ("end-", "start and end"),
    (".dot", "start and end"),
    ("dot.", "start and end"),
    ("a..b", "adjacent periods"),
    ("192.168.1.10", "IP address"),
    ("xn--punycode", "'xn--'"),
    ("sthree-x", "'sthree-'"),
    ("name-s3alias", "'-s3alias'"),
    ("name--ol-s3", "'--ol-s3'"),
    ("ümlaut", "lowercase"),
]


@pytest.mark.parametrize(("bucket", "rule"), INVALID_BUCKETS)
def test_invalid_buckets_are_refused_everywhere(
    store: ObjectStore, bucket: str, rule: str, tmp_path: Path
) -> None:
    calls = [
        lambda: store.put(bucket, "k", b"x"),
        lambda: store.get(bucket, "k"),
        lambda: store.head(bucket, "k"),
        lambda: store.delete(bucket, "k"),
        lambda: store.download(bucket, "k", tmp_path / "out"),
        lambda: list(store.list(bucket)),
        lambda: store.create_bucket(bucket),
        lambda: store.copy(bucket, "k", BUCKET, "k"),
        lambda: store.copy(BUCKET, "k", bucket, "k"),
    ]
    for call in calls:
        with pytest.raises(InvalidKeyError) as caught:
            call()
        assert rule in str(caught.value)
        assert repr(bucket) in str(caught.value)


@pytest.mark.parametrize("bucket", ["abc", "a" * 40, "my.bucket-1", "1.2.3", "0-9"])
def test_valid_buckets(store: ObjectStore, bucket: str) -> None:
    store.put(bucket, "k", b"v")
    assert store.get(bucket, "k") == b"v"


def test_put_refuses_str_and_missing_files(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Path"):
        store.put(BUCKET, "k", "some text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="binary"):
        store.put(BUCKET, "k", io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError):
        store.put(BUCKET, "k", tmp_path / "does-not-exist")
    assert list(store.list(BUCKET)) == []


def test_context_manager_and_double_close(store: ObjectStore) -> None:
    with store as entered:
        assert entered is store
        store.put(BUCKET, "k", b"v")
    store.close()


def test_location_is_where_the_bucket_really_is(store: ObjectStore) -> None:
    store.put(BUCKET, "where.txt", b"here")
    where = store.location(BUCKET)
    scheme = "s3" if store.url.startswith("s3://") else "file"
    assert where.startswith(f"{scheme}://") and where.endswith(f"{BUCKET}"), where
    assert store.location("other") != where
    if scheme == "file":  # the object is a file there
        assert Path(where.removeprefix("file://"), "where.txt").read_bytes() == b"here"
    with pytest.raises(InvalidKeyError):
        store.location("Bad_Bucket")


def test_copy_is_a_whole_object_with_the_sources_etag(store: ObjectStore) -> None:
    data = os.urandom(70_000)
    source = store.put(BUCKET, "in/clip.mp4", data)
    before = datetime.now(UTC) - timedelta(seconds=5)
    copied = store.copy(BUCKET, "in/clip.mp4", "other", "pinned/clip.mp4")  # a new bucket
    assert copied == ObjectInfo(
        bucket="other",
        key="pinned/clip.mp4",
        size=len(data),
        etag=md5(data),
        last_modified=copied.last_modified,
    )
    assert copied.last_modified.utcoffset() == timedelta(0)
    assert copied.last_modified >= before  # a copy is a new object
    assert store.head("other", "pinned/clip.mp4") == copied
    assert store.get("other", "pinned/clip.mp4") == data
    assert store.head(BUCKET, "in/clip.mp4") == source  # the source is as it was
    assert [o.key for o in store.list("other")] == ["pinned/clip.mp4"]


def test_a_copy_keeps_its_version_whatever_happens_to_the_source(store: ObjectStore) -> None:
    store.put(BUCKET, "src", b"first version")
    store.copy(BUCKET, "src", BUCKET, "dst")
    store.put(BUCKET, "src", b"second version")
    assert store.get(BUCKET, "dst") == b"first version"
    assert store.head(BUCKET, "dst").etag == md5(b"first version")
    store.copy(BUCKET, "src", BUCKET, "dst")  # replaces the copy, atomically
    assert store.get(BUCKET, "dst") == b"second version"
    assert store.delete(BUCKET, "src") is True
    assert store.get(BUCKET, "dst") == b"second version"
    store.copy(BUCKET, "dst", BUCKET, "src")
    assert store.delete(BUCKET, "dst") is True
    assert store.get(BUCKET, "src") == b"second version"


def test_copy_if_match_copies_that_version_or_nothing(store: ObjectStore) -> None:
    old = store.put(BUCKET, "in/a.mp4", b"old bytes")
    store.copy(BUCKET, "in/a.mp4", BUCKET, "pin/a.mp4", if_match=old.etag)
    assert store.get(BUCKET, "pin/a.mp4") == b"old bytes"
    new = store.put(BUCKET, "in/a.mp4", b"new bytes")
    with pytest.raises(PreconditionFailedError) as caught:
        store.copy(BUCKET, "in/a.mp4", BUCKET, "pin/b.mp4", if_match=old.etag)
    message = str(caught.value)
    assert "'in/a.mp4'" in message and new.etag in message and old.etag in message
    assert isinstance(caught.value, StorageError)
    with pytest.raises(PreconditionFailedError):  # an existing destination is left alone
        store.copy(BUCKET, "in/a.mp4", BUCKET, "pin/a.mp4", if_match=old.etag)
    assert store.get(BUCKET, "pin/a.mp4") == b"old bytes"
    assert [o.key for o in store.list(BUCKET, "pin/")] == ["pin/a.mp4"]


def test_copy_of_nothing_and_onto_itself_are_refused(store: ObjectStore) -> None:
    with pytest.raises(NoSuchKeyError, match="'missing'"):
        store.copy(BUCKET, "missing", BUCKET, "dst")
    with pytest.raises(NoSuchKeyError):
        store.copy("no-such-bucket", "k", BUCKET, "dst")
    store.put(BUCKET, "folder/inside", b"x")
    with pytest.raises(NoSuchKeyError):
        store.copy(BUCKET, "folder", BUCKET, "dst")  # a folder is no object
    with pytest.raises(InvalidKeyError, match="onto itself"):
        store.copy(BUCKET, "folder/inside", BUCKET, "folder/inside")
    assert [o.key for o in store.list(BUCKET)] == ["folder/inside"]
    assert list(store.list("no-such-bucket")) == []
