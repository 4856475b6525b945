"""Fixtures shared by every test package."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on loopback, shared by the session."""
    from moto.server import ThreadedMotoServer  # a dev dependency: never skipped

    # werkzeug logs every request to stderr; the tests do not need that noise.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


# -- PostgreSQL ---------------------------------------------------------------------------
# The server is a real one: REELAY_TEST_POSTGRES names it (an admin URL; default: the
# one on loopback that scripts/system-deps.sh installs and starts). Each test run makes
# a database of its own and drops it; each test that asks gets a schema of its own in
# it, so no test sees another's state. REELAY_TEST_STATE=postgresql runs every test
# that opens a home with its state there.

POSTGRES_ADMIN = os.environ.get(
    "REELAY_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a PostgreSQL database made for this test run (dropped after it)."""
    import psycopg  # a dev dependency: never skipped

    try:
        admin = psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"no PostgreSQL server at {POSTGRES_ADMIN} ({exc}); run scripts/system-deps.sh "
            "(as root) to install and start one, or set REELAY_TEST_POSTGRES",
            pytrace=False,
        )
    # A run that was killed could not drop its database: those of dead runs of this
    # machine go first (on a server of this machine: its pids are ours to judge).
    local = admin.info.host in ("127.0.0.1", "localhost", "::1") or admin.info.host.startswith("/")
    for (stale,) in admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'reelay\\_test\\_%'"
    ).fetchall():
        pid = stale.split("_")[2]
        if local and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            admin.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
    name = f"reelay_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def new_schema(postgres_database: str) -> Iterator[Callable[[], str]]:
    """Make state URLs, each of a schema of this test's own (all dropped after it)."""
    import psycopg

    schemas: list[str] = []

    def make() -> str:
        schemas.append(f"t_{uuid.uuid4().hex[:12]}")
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schemas[-1]}")
        return f"{postgres_database}?options=-csearch_path%3D{schemas[-1]}"

    try:
        yield make
    finally:
        with psycopg.connect(postgres_database, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def postgres_url(new_schema: Callable[[], str]) -> str:
    """A state URL of a schema of this test's own."""
    return new_schema()


@pytest.fixture
def separate_state(request: pytest.FixtureRequest) -> Callable[[], str]:
    """State URLs for a second, independent home in one test: '' (SQLite in that home),
    or, when the suite runs on PostgreSQL, a schema of its own."""
    if os.environ.get("REELAY_TEST_STATE", "sqlite") != "postgresql":
        return lambda: ""
    return request.getfixturevalue("new_schema")  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def _state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With REELAY_TEST_STATE=postgresql, every home a test opens keeps its state in
    PostgreSQL, in a schema of the test's own."""
    if os.environ.get("REELAY_TEST_STATE", "sqlite") == "postgresql":
        monkeypatch.setenv("REELAY_STATE", request.getfixturevalue("postgres_url"))


# -- Redis --------------------------------------------------------------------------------
# The server is a real one: REELAY_TEST_REDIS names it (default: the one on loopback
# that scripts/system-deps.sh installs and starts). Each test that asks gets a key
# prefix of its own; its keys are deleted after it (never FLUSHALL: others share it).

REDIS_SERVER = os.environ.get("REELAY_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A streams URL on the test Redis server with a key prefix of this test's own."""
    import redis  # a dev dependency: never skipped

    client = redis.Redis.from_url(REDIS_SERVER, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        pytest.fail(
            f"no Redis server at {REDIS_SERVER} ({exc}); run scripts/system-deps.sh "
            "(as root) to install and start one, or set REELAY_TEST_REDIS",
            pytrace=False,
        )
    prefix = f"reelay-test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_SERVER}{'&' if '?' in REDIS_SERVER else '?'}prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()
