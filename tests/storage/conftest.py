"""Fixtures for the object-store tests: a real S3-protocol server on loopback.

moto's server mode speaks the S3 HTTP API on 127.0.0.1 (a port the OS picks); it
runs in a thread for the whole session and is stopped at the end. Each test gets
its own bucket-name prefix, so tests never see each other's buckets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelay.storage import ObjectStore, open_store

S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}


@pytest.fixture
def s3_prefix() -> str:
    """A bucket-name prefix unique to the test."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def s3_store(s3_endpoint: str, s3_prefix: str) -> Iterator[ObjectStore]:
    """An S3Store on the moto server, isolated from other tests by its prefix."""
    with open_store(f"s3://{s3_prefix}?endpoint={s3_endpoint}", **S3_CREDENTIALS) as store:
        yield store


@pytest.fixture
def file_store(tmp_path: Path) -> Iterator[ObjectStore]:
    """A FileStore rooted in a fresh temporary directory."""
    with open_store((tmp_path / "objects").as_uri()) as store:
        yield store


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each backend in turn, for the conformance tests."""
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend
