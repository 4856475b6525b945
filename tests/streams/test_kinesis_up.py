"""The Kinesis API of ``reelay up`` as a user runs it: a key made with ``reelay keys
create``, boto3 pointed at the address ``reelay up`` prints, on the embedded log and on
Redis; a key revoked while it serves; records still there after a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

APP = Path(__file__).parents[1] / "runtime" / "apps" / "basic" / "reelay.yaml"


def reelay(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reelay.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"REELAY_SECRET_KEY": ""},
    )


@pytest.fixture
def up_with(tmp_path: Path) -> Iterator[Any]:
    """Start `reelay up` on a home (with extra arguments): its Kinesis endpoint, and a
    function that stops it (Ctrl-C) and checks it stopped cleanly."""
    started: list[subprocess.Popen[str]] = []

    def stop(process: subprocess.Popen[str]) -> None:
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0 and "Traceback" not in err, err

    def start(home: Path, *extra: str) -> tuple[str, Any]:
        command = [sys.executable, "-m", "reelay.cli", "up", "--app", str(APP), "--workers", "1"]
        command += ["--home", str(home), "--http", "127.0.0.1:0", *extra]
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=os.environ | {"REELAY_SECRET_KEY": ""},
        )
        started.append(process)
        assert process.stderr is not None
        lines: list[str] = []
        while not lines or "Kinesis API: " not in lines[-1]:
            lines.append(process.stderr.readline())
            assert lines[-1], f"reelay up exited while starting:\n{''.join(lines)}"
        return lines[-1].split("Kinesis API: ", 1)[1].split()[0], lambda: stop(process)

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                stop(process)


def kinesis_client(url: str, key: dict[str, str]) -> Any:
    return boto3.client(
        "kinesis",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def everything(kinesis: Any, stream: str) -> list[bytes]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator)
            out += [r["Data"] for r in page["Records"]]
            iterator = page["NextShardIterator"]
            if not page["Records"]:
                break
    return sorted(out)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_boto3_against_reelay_up(
    up_with: Any, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    home = tmp_path / "home"
    made = reelay(home, "keys", "create", "--name", "producer", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    extra = ("--streams", request.getfixturevalue("redis_url")) if backend == "redis" else ()
    url, _ = up_with(home, *extra)

    kinesis = kinesis_client(url, key)
    kinesis.create_stream(StreamName="flows", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="flows")
    records = [{"Data": b"flow %03d" % i, "PartitionKey": f"10.0.0.{i}"} for i in range(200)]
    assert kinesis.put_records(StreamName="flows", Records=records)["FailedRecordCount"] == 0
    assert everything(kinesis, "flows") == sorted(r["Data"] for r in records)
    listed = json.loads(reelay(home, "keys", "list", "--json").stdout)
    assert listed[0]["last_used"] is not None

    # Revoked while it serves: refused from the next request on, and audited.
    assert reelay(home, "keys", "revoke", key["AccessKeyId"]).returncode == 0
    with pytest.raises(ClientError) as refused:
        kinesis.list_streams()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    events = json.loads(reelay(home, "events", "--source", "reelay.web", "--json").stdout)
    assert [e["event"]["detail"]["reason"] for e in events] == [
        f"Kinesis API: revoked access key {key['AccessKeyId']}"
    ]


@pytest.mark.slow
def test_records_outlive_a_restart_of_reelay_up(up_with: Any, tmp_path: Path) -> None:
    home = tmp_path / "home"
    key = json.loads(reelay(home, "keys", "create", "--json").stdout)
    url, stop = up_with(home)
    kinesis = kinesis_client(url, key)
    kinesis.create_stream(StreamName="kept", ShardCount=1)
    kinesis.put_record(StreamName="kept", Data=b"before", PartitionKey="k")
    stop()
    url, _ = up_with(home)
    kinesis = kinesis_client(url, key)
    kinesis.put_record(StreamName="kept", Data=b"after", PartitionKey="k")
    assert everything(kinesis, "kept") == [b"after", b"before"]


def test_up_refuses_a_streams_url_it_cannot_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    for url, said in (
        ("mysql://x", "REELAY_STREAMS: streams URL 'mysql://x': unknown scheme"),
        ("redis://127.0.0.1:1/0", "127.0.0.1:1"),
    ):
        result = reelay(home, "up", "--app", str(APP), "--http", "127.0.0.1:0", "--streams", url)
        assert result.returncode == 1, result.stderr
        assert said in result.stderr and "Traceback" not in result.stderr
