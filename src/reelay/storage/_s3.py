"""The scale-out object store: Amazon S3 or any S3-compatible server, via boto3.

URL form::

    s3://[PREFIX][?endpoint=URL&region=NAME]

- ``PREFIX`` (optional) is prepended to every bucket name as ``PREFIX-bucket``, so
  several reelay homes can share one account: ``s3://prod`` stores bucket ``media``
  in the S3 bucket ``prod-media``. Callers always see the short name.
- ``endpoint`` is the S3 API endpoint for MinIO, Ceph, moto, etc.
  (``s3://?endpoint=http://127.0.0.1:9000``); without it, AWS S3 itself. With an
  endpoint, path-style addressing is used, which S3-compatible servers expect.
- ``region`` defaults to the AWS configuration (``AWS_DEFAULT_REGION``...), then
  ``us-east-1``.

The same settings can be given as keyword options to `reelay.storage.open_store`
(which win over the URL): ``endpoint_url``, ``region``, ``access_key``,
``secret_key``, ``session_token``, ``prefix``, ``connect_timeout`` (seconds, default 2),
``read_timeout`` (default 60), ``max_attempts`` (default 2), ``multipart_threshold``
(bytes, default 64 MiB) and ``multipart_chunksize`` (default 16 MiB). Credentials
never go in the URL; without options boto3 finds them as usual (environment,
``~/.aws``, instance role).

**Etags.** S3 reports the MD5 of the content as the ETag only for single-part
uploads. reelay computes the MD5 itself while reading the source and stores it as
object metadata (``x-amz-meta-reelay-md5``), so `ObjectInfo.etag` is the MD5 for
multipart uploads too. Single-part uploads also send it as ``Content-MD5``, which
makes S3 reject bytes damaged in transit; ``get`` and ``download`` check what they
receive against it.

**Copies** stay on the server: CopyObject up to 5 GiB, a multipart copy (UploadPartCopy)
above, both conditioned on the source's S3 ETag as read just before (CopySourceIfMatch),
so the copy is of the version checked. The MD5 metadata goes with the bytes.

**Failing fast.** Short connect timeouts and few retries make an unreachable
endpoint fail within seconds with `reelay.errors.StorageUnavailableError` naming the
endpoint. Every botocore error is translated into the `reelay.errors.StorageError`
tree at this boundary.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import parse_qsl, urlsplit

from reelay._text import plural
from reelay.errors import (
    ConfigError,
    InvalidKeyError,
    NoSuchKeyError,
    PreconditionFailedError,
    StorageError,
    StorageUnavailableError,
)

from ._base import (
    CHUNK_SIZE,
    ObjectInfo,
    PutSource,
    StoreBase,
    check_copy,
    check_match,
    check_put_source,
    new_md5,
    utc,
    validate_bucket,
    validate_key,
    validate_prefix,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig
except ImportError:  # pragma: no cover - exercised only without the s3 extra
    boto3 = None

__all__ = ["S3Store"]

#: The object metadata entry holding reelay's MD5 of the content.
MD5_METADATA = "reelay-md5"
_MIB = 1024 * 1024
#: The largest object one CopyObject request may copy; above it, a multipart copy.
COPY_PART_LIMIT = 5 * 1024 * _MIB
_QUERY_OPTIONS = {
    "endpoint": "endpoint_url",
    "endpoint_url": "endpoint_url",
    "region": "region",
    "connect_timeout": "connect_timeout",
    "read_timeout": "read_timeout",
    "max_attempts": "max_attempts",
}
_SECRET_OPTIONS = ("access_key", "secret_key", "session_token")
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound", "NoSuchVersion"})
_DENIED = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AllAccessDisabled",
    }
)
_CHANGED = frozenset({"PreconditionFailed", "412"})
_BUSY = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"}
)


@dataclass
class _Source:
    """A put source, hashed and ready to be sent (and sent again after a retry)."""

    md5: str
    size: int
    data: bytes | None = None
    path: str | None = None
    open: Callable[[], IO[bytes]] | None = None


class S3Store(StoreBase):
    """An `ObjectStore` over the S3 API (see the module docstring for the options).

    Holds one boto3 client (thread-safe) with its connection pool; ``close`` releases
    it.
    """

    def __init__(
        self,
        url: str = "s3://",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        prefix: str | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 60.0,
        max_attempts: int = 2,
        multipart_threshold: int = 64 * _MIB,
        multipart_chunksize: int = 16 * _MIB,
    ) -> None:
        if boto3 is None:
            raise ConfigError(
                "the s3:// object store needs boto3, which is not installed; "
                "install it with: pip install 'reelay[s3]'"
            )
        if (access_key is None) != (secret_key is None):
            raise ConfigError("give both access_key and secret_key for the s3:// store, or neither")
        if multipart_chunksize < 5 * _MIB:
            raise ConfigError(
                f"multipart_chunksize={multipart_chunksize} is below S3's minimum part "
                f"size of 5 MiB ({5 * _MIB} bytes)"
            )
        self.url = url
        self.prefix = _check_prefix(url, prefix or "")
        session = boto3.session.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            aws_session_token=session_token,
            region_name=region,
        )
        self.region: str = session.region_name or "us-east-1"
        self.endpoint_url = endpoint_url
        self.endpoint = endpoint_url or f"AWS S3 in {self.region}"
        config = botocore.config.Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self._client: Any = session.client(
            "s3", endpoint_url=endpoint_url, region_name=self.region, config=config
        )
        self._threshold = multipart_threshold
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
        )
        # Copies: one request while S3 allows it; large parts above (s3transfer makes
        # them larger still if 10,000 parts would not hold the object).
        self._copy_transfer = TransferConfig(
            multipart_threshold=COPY_PART_LIMIT, multipart_chunksize=512 * _MIB
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Store:
        """Open ``s3://[PREFIX][?endpoint=URL&region=NAME]``; options win over the URL."""
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ConfigError(
                f"credentials do not go in the store URL ({parts.scheme}://...@...); "
                "pass access_key=/secret_key= options or use the usual AWS environment"
            )
        if parts.path not in ("", "/"):
            raise ConfigError(
                f"s3 store URL {url!r} has a path {parts.path!r}; the form is "
                "s3://[PREFIX][?endpoint=URL&region=NAME]"
            )
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in _SECRET_OPTIONS:
                raise ConfigError(
                    f"{name} does not go in the store URL; pass it as an option or use "
                    "the usual AWS environment variables"
                )
            if name not in _QUERY_OPTIONS:
                raise ConfigError(
                    f"unknown query parameter {name!r} in {url!r}; valid parameters: "
                    f"{', '.join(sorted(_QUERY_OPTIONS))}"
                )
            option = _QUERY_OPTIONS[name]
            if option in options:
                continue
            if option in ("connect_timeout", "read_timeout"):
                options[option] = _number(url, name, value, float)
            elif option == "max_attempts":
                options[option] = _number(url, name, value, int)
            else:
                options[option] = value
        options.setdefault("prefix", parts.netloc)
        valid = {
            "endpoint_url",
            "region",
            "access_key",
            "secret_key",
            "session_token",
            "prefix",
            "connect_timeout",
            "read_timeout",
            "max_attempts",
            "multipart_threshold",
            "multipart_chunksize",
        }
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(unknown)} for the s3 store; "
                f"valid options: {', '.join(sorted(valid))}"
            )
        return cls(url, **options)

    def close(self) -> None:
        """Close the client's connection pool."""
        with contextlib.suppress(Exception):
            self._client.close()

    # -- the protocol --------------------------------------------------------------

    def location(self, bucket: str) -> str:
        """``s3://<prefix>-<bucket>`` (see `ObjectStore.location`)."""
        return f"s3://{self._physical(bucket)}"

    def create_bucket(self, bucket: str) -> None:
        """Create the (prefixed) bucket in the store's region; existing is no error."""
        self._create(self._physical(bucket), bucket)

    def put(self, bucket: str, key: str, data: PutSource) -> ObjectInfo:
        """Upload ``data`` (streamed; multipart above the threshold), creating the bucket."""
        physical = self._checked(bucket, key)
        check_put_source(data)
        with self._prepare(data) as source:
            try:
                self._upload(physical, key, source)
            except Exception as exc:
                if _code(exc) != "NoSuchBucket":
                    raise self._translate(exc, "put", bucket, key) from exc
                self._create(physical, bucket)
                try:
                    self._upload(physical, key, source)
                except Exception as again:
                    raise self._translate(again, "put", bucket, key) from again
        info = self.head(bucket, key)
        if info.etag != source.md5:
            # Someone else wrote the key between our upload and our head.
            return ObjectInfo(bucket, key, source.size, source.md5, info.last_modified)
        return info

    def get(self, bucket: str, key: str) -> bytes:
        """Return the object's bytes, checked against its MD5."""
        physical = self._checked(bucket, key)
        try:
            response = self._client.get_object(Bucket=physical, Key=key)
            content = cast(bytes, response["Body"].read())
        except Exception as exc:
            raise self._translate(exc, "get", bucket, key) from exc
        hasher = new_md5()
        hasher.update(content)
        _verify(bucket, key, response, hasher.hexdigest(), len(content))
        return content

    def download(self, bucket: str, key: str, path: os.PathLike[str] | str) -> ObjectInfo:
        """Stream the object into ``path`` atomically, checked against its MD5."""
        physical = self._checked(bucket, key)
        dest = Path(path)
        tmp: str | None = None
        try:
            try:
                response = self._client.get_object(Bucket=physical, Key=key)
                dest.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
                hasher = new_md5()
                size = 0
                with open(fd, "wb") as out:
                    for chunk in response["Body"].iter_chunks(CHUNK_SIZE):
                        hasher.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            except Exception as exc:
                raise self._translate(exc, "download", bucket, key) from exc
            md5 = _verify(bucket, key, response, hasher.hexdigest(), size)
            os.replace(tmp, dest)
            tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return ObjectInfo(bucket, key, size, md5, utc(response["LastModified"]))

    def head(self, bucket: str, key: str) -> ObjectInfo:
        """Describe the object; `NoSuchKeyError` if it (or its bucket) is missing."""
        physical = self._checked(bucket, key)
        try:
            response = self._client.head_object(Bucket=physical, Key=key)
        except Exception as exc:
            raise self._translate(exc, "head", bucket, key) from exc
        return ObjectInfo(
            bucket=bucket,
            key=key,
            size=int(response["ContentLength"]),
            etag=_md5_of(response) or _plain_etag(response.get("ETag", "")),
            last_modified=utc(response["LastModified"]),
        )

    def copy(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        if_match: str | None = None,
    ) -> ObjectInfo:
        """A server-side copy of the version read by a HEAD just before (see the module
        docstring); the destination bucket is created if missing."""
        src_physical = self._checked(src_bucket, src_key)
        dst_physical = self._checked(dst_bucket, dst_key)
        check_copy(src_bucket, src_key, dst_bucket, dst_key)
        try:
            source = self._client.head_object(Bucket=src_physical, Key=src_key)
        except Exception as exc:
            raise self._translate(exc, "copy", src_bucket, src_key) from exc
        s3_etag = _plain_etag(source["ETag"])
        if if_match != s3_etag:  # S3's own ETag, as its notifications carry it, is as good
            check_match(src_bucket, src_key, _md5_of(source) or s3_etag, if_match)
        args = {
            "CopySource": {"Bucket": src_physical, "Key": src_key},
            "Bucket": dst_physical,
            "Key": dst_key,
            # This version and no other, however the source changes meanwhile.
            "ExtraArgs": {"CopySourceIfMatch": source["ETag"]},
            "Config": self._copy_transfer,
        }
        try:
            try:
                self._client.copy(**args)
            except Exception as exc:
                if _code(exc) != "NoSuchBucket":
                    raise
                self._create(dst_physical, dst_bucket)  # the source's bucket was there
                self._client.copy(**args)
        except Exception as exc:
            if _code(exc) in _CHANGED:
                raise PreconditionFailedError(
                    f"object {src_key!r} in bucket {src_bucket!r} was replaced while it was "
                    f"being copied to {dst_key!r} in bucket {dst_bucket!r}; nothing was copied"
                ) from exc
            raise self._translate(exc, "copy", src_bucket, src_key) from exc
        return self.head(dst_bucket, dst_key)

    def delete(self, bucket: str, key: str) -> bool:
        """Delete the object; return whether it existed.

        S3's DeleteObject does not say whether there was anything to delete, so this
        asks first; a concurrent writer can make the answer stale, never wrong about
        the object being gone afterwards.
        """
        physical = self._checked(bucket, key)
        try:
            self.head(bucket, key)
        except NoSuchKeyError:
            return False
        try:
            self._client.delete_object(Bucket=physical, Key=key)
        except Exception as exc:
            if _code(exc) in ("NoSuchBucket", "NoSuchKey"):
                return False
            raise self._translate(exc, "delete", bucket, key) from exc
        return True

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield objects under ``prefix`` in key order; a missing bucket is empty."""
        physical = self._physical(bucket)
        validate_prefix(prefix)
        return self._list(physical, bucket, prefix)

    # -- helpers -------------------------------------------------------------------

    def _physical(self, bucket: str) -> str:
        validate_bucket(bucket)
        if not self.prefix:
            return bucket
        name = f"{self.prefix}-{bucket}"
        try:
            return validate_bucket(name)
        except InvalidKeyError as exc:
            raise InvalidKeyError(
                f"bucket {bucket!r} with the store prefix {self.prefix!r} gives the S3 "
                f"bucket name {name!r}, which is invalid: {exc}"
            ) from None

    def _checked(self, bucket: str, key: str) -> str:
        physical = self._physical(bucket)
        validate_key(key)
        return physical

    def _create(self, physical: str, bucket: str) -> None:
        args: dict[str, Any] = {"Bucket": physical}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**args)
        except Exception as exc:
            code = _code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return
            if code == "BucketAlreadyExists":
                raise StorageError(
                    f"cannot create bucket {bucket!r}: the S3 bucket name {physical!r} "
                    "belongs to another account; choose a store prefix (s3://PREFIX) "
                    "to make reelay's bucket names unique"
                ) from exc
            raise self._translate(exc, "create", bucket, None) from exc

    @contextlib.contextmanager
    def _prepare(self, data: PutSource) -> Iterator[_Source]:
        """Hash the source in one streaming pass and say how to read it again."""
        if isinstance(data, bytes | bytearray | memoryview):
            content = bytes(data)
            hasher = new_md5()
            hasher.update(content)
            yield _Source(md5=hasher.hexdigest(), size=len(content), data=content)
            return
        if isinstance(data, os.PathLike):
            filename = os.fspath(data)
            md5, size = _hash_stream(open(filename, "rb"), close=True)  # noqa: SIM115
            yield _Source(md5=md5, size=size, path=filename)
            return
        reader = data
        seekable = False
        with contextlib.suppress(AttributeError, OSError, ValueError):
            seekable = bool(reader.seekable())
        if seekable:
            start = reader.tell()
            md5, size = _hash_stream(reader, close=False)

            def rewind() -> IO[bytes]:
                reader.seek(start)
                return reader

            yield _Source(md5=md5, size=size, open=rewind)
            return
        # A pipe or socket can be read only once: spool it to disk (not memory) so
        # the MD5 is known before the upload starts and a retry can re-read it.
        with tempfile.TemporaryFile() as spool:
            hasher = new_md5()
            size = 0
            while chunk := reader.read(CHUNK_SIZE):
                hasher.update(chunk)
                spool.write(chunk)
                size += len(chunk)

            def from_spool() -> IO[bytes]:
                spool.seek(0)
                return spool

            yield _Source(md5=hasher.hexdigest(), size=size, open=from_spool)

    def _upload(self, physical: str, key: str, source: _Source) -> None:
        metadata = {MD5_METADATA: source.md5}
        if source.size <= self._threshold:
            content_md5 = base64.b64encode(bytes.fromhex(source.md5)).decode("ascii")
            if source.data is not None:
                self._put_object(physical, key, source.data, metadata, content_md5)
            elif source.path is not None:
                with open(source.path, "rb") as body:
                    self._put_object(physical, key, body, metadata, content_md5)
            else:
                assert source.open is not None
                self._put_object(physical, key, source.open(), metadata, content_md5)
            return
        extra = {"Metadata": metadata}
        if source.path is not None:
            self._client.upload_file(
                source.path, physical, key, ExtraArgs=extra, Config=self._transfer
            )
            return
        if source.data is not None:
            fileobj: IO[bytes] = io.BytesIO(source.data)
        else:
            assert source.open is not None
            fileobj = source.open()
        self._client.upload_fileobj(fileobj, physical, key, ExtraArgs=extra, Config=self._transfer)

    def _put_object(
        self,
        physical: str,
        key: str,
        body: bytes | IO[bytes],
        metadata: dict[str, str],
        content_md5: str,
    ) -> None:
        self._client.put_object(
            Bucket=physical, Key=key, Body=body, Metadata=metadata, ContentMD5=content_md5
        )

    def _list(self, physical: str, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=physical, Prefix=prefix))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as exc:
                if _code(exc) == "NoSuchBucket":
                    return
                raise self._translate(exc, "list", bucket, None) from exc
            for item in page.get("Contents", ()):
                key = item["Key"]
                etag = _plain_etag(item.get("ETag", ""))
                if not _is_md5(etag):
                    # A multipart ETag: the MD5 is in the object's metadata.
                    try:
                        etag = self.head(bucket, key).etag
                    except NoSuchKeyError:
                        continue  # deleted since the listing
                yield ObjectInfo(
                    bucket=bucket,
                    key=key,
                    size=int(item["Size"]),
                    etag=etag,
                    last_modified=utc(item["LastModified"]),
                )

    def _translate(self, exc: BaseException, op: str, bucket: str, key: str | None) -> StorageError:
        """Map a boto3/botocore exception onto the reelay tree."""
        where = f"{key!r} in bucket {bucket!r}" if key is not None else f"bucket {bucket!r}"
        if isinstance(exc, StorageError):
            return exc
        cause = _client_error(exc)
        if cause is not None:
            error = cause.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = error.get("Message") or str(cause)
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _NOT_FOUND:
                if code == "NoSuchBucket" or key is None:
                    return NoSuchKeyError(f"no object {where}: the bucket does not exist")
                return NoSuchKeyError(f"no object {where}")
            if code in ("InvalidBucketName", "KeyTooLongError", "InvalidArgument"):
                return InvalidKeyError(f"S3 rejected {where}: {code}: {message}")
            if code in _DENIED:
                return StorageError(
                    f"S3 at {self.endpoint} denied {op} of {where}: {code}: {message} "
                    "(check the credentials and the bucket policy)"
                )
            if code in _BUSY or status >= 500:
                return StorageUnavailableError(
                    f"S3 at {self.endpoint} could not {op} {where}: {code}: {message}"
                )
            return StorageError(f"S3 at {self.endpoint}: {op} {where} failed: {code}: {message}")
        if isinstance(
            exc,
            botocore.exceptions.EndpointConnectionError
            | botocore.exceptions.ConnectTimeoutError
            | botocore.exceptions.ReadTimeoutError
            | botocore.exceptions.HTTPClientError,
        ):
            return StorageUnavailableError(
                f"S3 endpoint {self.endpoint} is unreachable ({op} {where}): {exc}"
            )
        if isinstance(
            exc,
            botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError,
        ):
            return StorageError(
                f"no usable AWS credentials for S3 at {self.endpoint}: {exc}; pass "
                "access_key=/secret_key= options or set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, botocore.exceptions.BotoCoreError | S3UploadFailedError):
            return StorageError(f"S3 at {self.endpoint}: {op} {where} failed: {exc}")
        if isinstance(exc, OSError):
            return StorageError(f"{op} {where} failed locally: {exc}")
        raise exc


def _client_error(exc: BaseException) -> Any:
    """The botocore ClientError behind ``exc``, if any.

    boto3's upload helpers re-raise a ClientError as S3UploadFailedError, keeping it
    only as the implicit ``__context__``.
    """
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return None
        if isinstance(seen, botocore.exceptions.ClientError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _code(exc: BaseException) -> str:
    error = _client_error(exc)
    if error is None:
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def _hash_stream(reader: IO[bytes], *, close: bool) -> tuple[str, int]:
    hasher = new_md5()
    size = 0
    try:
        while chunk := reader.read(CHUNK_SIZE):
            hasher.update(chunk)
            size += len(chunk)
    finally:
        if close:
            reader.close()
    return hasher.hexdigest(), size


def _plain_etag(etag: str) -> str:
    return etag.strip('"').lower()


def _is_md5(etag: str) -> bool:
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag)


def _md5_of(response: dict[str, Any]) -> str | None:
    value = (response.get("Metadata") or {}).get(MD5_METADATA)
    return value.lower() if isinstance(value, str) and _is_md5(value.lower()) else None


def _verify(bucket: str, key: str, response: dict[str, Any], md5: str, size: int) -> str:
    """Check received bytes against the stored MD5 (or a single-part ETag)."""
    expected = _md5_of(response)
    if expected is None:
        etag = _plain_etag(response.get("ETag", ""))
        expected = etag if _is_md5(etag) else None
    if expected is not None and expected != md5:
        raise StorageError(
            f"object {key!r} in bucket {bucket!r} is corrupt: received "
            f"{plural(size, 'byte')} with "
            f"MD5 {md5}, but the object was stored with MD5 {expected}"
        )
    return expected or md5


def _check_prefix(url: str, prefix: str) -> str:
    if prefix and not (
        prefix[0].isalnum()
        and prefix.isascii()
        and all(c.islower() or c.isdigit() or c in ".-" for c in prefix)
        and len(prefix) <= 40
    ):
        raise ConfigError(
            f"store prefix {prefix!r} (from {url!r}) must be at most 40 lowercase letters, "
            "digits, '.' or '-', starting with a letter or digit"
        )
    return prefix


def _number(url: str, name: str, value: str, kind: Callable[[str], Any]) -> Any:
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"query parameter {name}={value!r} in {url!r} must be a number") from None
    if number <= 0:
        raise ConfigError(f"query parameter {name}={value!r} in {url!r} must be positive")
    return number
