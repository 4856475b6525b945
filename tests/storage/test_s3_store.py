"""What only the s3:// store does: URL options, prefixes, multipart etags, failing fast.

Runs against a real S3-protocol server (moto's server mode) on loopback.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig

from reelay.errors import (
    ConfigError,
    NoSuchKeyError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)
from reelay.storage import ObjectStore, open_store
from reelay.storage import _s3 as s3_module
from reelay.storage._s3 import S3Store

pytestmark = pytest.mark.s3

CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def raw_client(endpoint: str, region: str = "us-east-1") -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- opening ---------------------------------------------------------------------


def test_url_forms(s3_endpoint: str) -> None:
    store = open_store(f"s3://home-1?endpoint={s3_endpoint}&region=eu-west-1", **CREDENTIALS)
    assert isinstance(store, S3Store)
    assert (store.prefix, store.endpoint_url, store.region) == ("home-1", s3_endpoint, "eu-west-1")
    store = open_store("s3://", endpoint_url=s3_endpoint, region="us-east-1", **CREDENTIALS)
    assert isinstance(store, S3Store)
    assert store.prefix == ""
    assert store.endpoint_url == s3_endpoint
    # Options win over the URL.
    store = open_store("s3://?region=eu-west-1", region="ap-south-1", **CREDENTIALS)
    assert isinstance(store, S3Store)
    assert store.region == "ap-south-1"
    assert store.endpoint == "AWS S3 in ap-south-1"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("s3://?colour=blue", {}, "unknown query parameter 'colour'"),
        ("s3://?secret_key=x", {}, "secret_key does not go in the store URL"),
        ("s3://key:secret@prefix", {}, "credentials do not go in the store URL"),
        ("s3://prefix/path", {}, "has a path '/path'"),
        ("s3://Bad_Prefix", {}, "store prefix 'Bad_Prefix'"),
        ("s3://?connect_timeout=soon", {}, "must be a number"),
        ("s3://?max_attempts=0", {}, "must be positive"),
        ("s3://", {"access_key": "only-half"}, "both access_key and secret_key"),
        ("s3://", {"colour": "blue"}, "unknown option(s) colour"),
        ("s3://", {"multipart_chunksize": 1024}, "minimum part size"),
    ],
)
def test_bad_configuration(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_store(url, **options)
    assert message in str(caught.value)


def test_missing_boto3_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "boto3", None)
    with pytest.raises(ConfigError, match=r"pip install 'reelay\[s3\]'"):
        open_store("s3://")


# -- failing fast ----------------------------------------------------------------


def test_unreachable_endpoint_fails_fast_and_names_it(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    with open_store(f"s3://?endpoint={endpoint}", **CREDENTIALS) as store:
        calls = [
            lambda: store.put("bkt", "k", b"data"),
            lambda: store.get("bkt", "k"),
            lambda: store.head("bkt", "k"),
            lambda: store.delete("bkt", "k"),
            lambda: list(store.list("bkt")),
            lambda: store.create_bucket("bkt"),
            lambda: store.download("bkt", "k", tmp_path / "out"),
        ]
        for call in calls:
            with pytest.raises(StorageUnavailableError) as caught:
                call()
            assert endpoint in str(caught.value)
            assert "unreachable" in str(caught.value)
            assert isinstance(caught.value, ConnectionError)
    assert list(tmp_path.iterdir()) == []


# -- prefixes and buckets --------------------------------------------------------


def test_prefix_maps_bucket_names_and_isolates_homes(s3_endpoint: str, s3_prefix: str) -> None:
    with (
        open_store(f"s3://{s3_prefix}-a?endpoint={s3_endpoint}", **CREDENTIALS) as home_a,
        open_store(f"s3://{s3_prefix}-b?endpoint={s3_endpoint}", **CREDENTIALS) as home_b,
    ):
        info = home_a.put("media", "k", b"from a")
        assert info.bucket == "media"
        home_b.put("media", "k", b"from b")
        assert home_a.get("media", "k") == b"from a"
        assert home_b.get("media", "k") == b"from b"
    names = {b["Name"] for b in raw_client(s3_endpoint).list_buckets()["Buckets"]}
    assert {f"{s3_prefix}-a-media", f"{s3_prefix}-b-media"} <= names


def test_prefixed_bucket_name_must_stay_valid(s3_endpoint: str) -> None:
    store = open_store(f"s3://{'p' * 40}?endpoint={s3_endpoint}", **CREDENTIALS)
    with pytest.raises(StorageError, match="with the store prefix"):
        store.put("b" * 30, "k", b"x")


def test_bucket_in_another_region(s3_endpoint: str, s3_prefix: str) -> None:
    url = f"s3://{s3_prefix}?endpoint={s3_endpoint}&region=eu-central-1"
    with open_store(url, **CREDENTIALS) as store:
        store.create_bucket("regional")
        store.create_bucket("regional")
        store.put("regional", "k", b"v")
    location = raw_client(s3_endpoint, "eu-central-1").get_bucket_location(
        Bucket=f"{s3_prefix}-regional"
    )
    assert location["LocationConstraint"] == "eu-central-1"


# -- etags and integrity ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["path", "seekable", "pipe", "bytes"])
def test_multipart_uploads_still_report_the_md5(
    s3_endpoint: str, s3_prefix: str, tmp_path: Path, kind: str
) -> None:
    data = os.urandom(12 << 20)
    source: Any
    if kind == "path":
        source = tmp_path / "big.bin"
        source.write_bytes(data)
    elif kind == "seekable":
        source = io.BytesIO(data)
    elif kind == "pipe":
        read, write = os.pipe()
        source = os.fdopen(read, "rb")
        writer = os.fdopen(write, "wb")

        # Fill the pipe from a thread, as a producer process would.
        def produce() -> None:
            with writer:
                writer.write(data)

        thread = threading.Thread(target=produce)
        thread.start()
    else:
        source = data
    url = f"s3://{s3_prefix}?endpoint={s3_endpoint}"
    with open_store(
        url, multipart_threshold=5 << 20, multipart_chunksize=5 << 20, **CREDENTIALS
    ) as store:
        try:
            info = store.put("big", "video.bin", source)
        finally:
            if kind == "pipe":
                thread.join()
                source.close()
        assert (info.size, info.etag) == (12 << 20, md5(data))
        raw_etag = raw_client(s3_endpoint).head_object(Bucket=f"{s3_prefix}-big", Key="video.bin")[
            "ETag"
        ]
        assert raw_etag.strip('"').endswith("-3")  # S3's multipart ETag: not an MD5
        assert store.head("big", "video.bin").etag == md5(data)
        assert [o.etag for o in store.list("big")] == [md5(data)]
        assert store.get("big", "video.bin") == data


def test_corruption_is_detected(s3_endpoint: str, s3_prefix: str, tmp_path: Path) -> None:
    with open_store(f"s3://{s3_prefix}?endpoint={s3_endpoint}", **CREDENTIALS) as store:
        store.create_bucket("bkt")
        # An object whose recorded MD5 does not match its bytes.
        raw_client(s3_endpoint).put_object(
            Bucket=f"{s3_prefix}-bkt",
            Key="bad",
            Body=b"damaged bytes",
            Metadata={"reelay-md5": md5(b"original bytes")},
        )
        with pytest.raises(StorageError, match="'bad' in bucket 'bkt' is corrupt"):
            store.get("bkt", "bad")
        with pytest.raises(StorageError, match="is corrupt"):
            store.download("bkt", "bad", tmp_path / "bad")
        assert list(tmp_path.iterdir()) == []


def test_objects_written_by_other_tools_are_readable(s3_endpoint: str, s3_prefix: str) -> None:
    store: ObjectStore
    with open_store(f"s3://{s3_prefix}?endpoint={s3_endpoint}", **CREDENTIALS) as store:
        store.create_bucket("bkt")
        raw_client(s3_endpoint).put_object(Bucket=f"{s3_prefix}-bkt", Key="plain", Body=b"abc")
        assert store.head("bkt", "plain").etag == md5(b"abc")
        assert store.get("bkt", "plain") == b"abc"


def test_missing_bucket_errors_name_it(s3_store: ObjectStore) -> None:
    with pytest.raises(NoSuchKeyError, match="bucket does not exist"):
        s3_store.get("nowhere", "k")


def test_copies_stay_on_the_server_and_keep_the_md5_above_the_part_limit(
    s3_endpoint: str, s3_prefix: str
) -> None:
    data = os.urandom(12 << 20)
    url = f"s3://{s3_prefix}?endpoint={s3_endpoint}"
    with open_store(url, **CREDENTIALS) as store:
        assert isinstance(store, S3Store)
        store.put("big", "video.bin", data)
        # The 5 GiB limit of one CopyObject, lowered so that 12 MiB takes 3 parts.
        store._copy_transfer = TransferConfig(
            multipart_threshold=5 << 20, multipart_chunksize=5 << 20
        )
        info = store.copy("big", "video.bin", "big", "pinned.bin", if_match=md5(data))
        raw = raw_client(s3_endpoint).head_object(Bucket=f"{s3_prefix}-big", Key="pinned.bin")
        assert raw["ETag"].strip('"').endswith("-3")  # copied in parts
        assert (info.size, info.etag) == (12 << 20, md5(data))
        assert store.get("big", "pinned.bin") == data
        # S3's own ETag names the version as well: the one S3's notifications carry.
        again = store.copy("big", "pinned.bin", "big", "again.bin", if_match=raw["ETag"].strip('"'))
        assert again.etag == md5(data)


def test_a_source_replaced_during_its_copy_copies_nothing(
    s3_endpoint: str, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{s3_prefix}?endpoint={s3_endpoint}"
    with open_store(url, **CREDENTIALS) as store:
        assert isinstance(store, S3Store)
        old = store.put("bkt", "in/a.mp4", b"old bytes")
        copy = store._client.copy

        def replaced_first(**kwargs: Any) -> None:
            store.put("bkt", "in/a.mp4", b"new bytes")  # after the check, before the copy
            copy(**kwargs)

        monkeypatch.setattr(store._client, "copy", replaced_first)
        with pytest.raises(PreconditionFailedError, match="replaced while it was being copied"):
            store.copy("bkt", "in/a.mp4", "bkt", "pin/a.mp4", if_match=old.etag)
        assert [o.key for o in store.list("bkt")] == ["in/a.mp4"]
