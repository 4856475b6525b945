"""The same runtime on its scale-out backends: a real local Ray, a real S3-protocol server."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from reelay.config import Settings
from reelay.runtime import Runtime, load_app
from reelay.state import FAILED, SUCCEEDED

BASIC = Path(__file__).parent / "apps" / "basic" / "reelay.yaml"
DEMO = Path(__file__).parents[2] / "src" / "reelay" / "apps" / "demo" / "reelay.yaml"


@pytest.mark.ray
@pytest.mark.slow
def test_runtime_on_ray_executor(tmp_path: Path) -> None:
    settings = Settings.load(tmp_path / "home", retry_delays=(0.05, 0.1))
    with Runtime(load_app(BASIC), settings, executor="ray:local", max_workers=2) as rt:
        rt.start()
        rt.client.put_object("uploads", "in/a.txt", b"hi")
        rt.client.put_events(
            [
                {"Source": "test.app", "DetailType": "flaky", "Detail": "{}"},
                {"Source": "test.app", "DetailType": "slow", "Detail": "{}"},
            ]
        )
        assert rt.wait_idle(120)
        state = rt.client.state
        (echo,) = state.invocations(function="echo")
        assert echo.status == SUCCEEDED
        (flaky,) = state.invocations(function="flaky")
        assert flaky.status == SUCCEEDED and flaky.attempts == 3
        (slow,) = state.invocations(function="slow")
        assert slow.status == FAILED and slow.error is not None
        assert slow.error["errorType"] == "Sandbox.Timedout"


@pytest.mark.s3
def test_runtime_on_s3_store_runs_demo_app(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Handlers reach the store through the environment, as on a cluster.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    prefix = "r" + uuid.uuid4().hex[:10]
    settings = Settings.load(
        tmp_path / "home",
        store_url=f"s3://{prefix}?endpoint={s3_endpoint}",
        retry_delays=(0.05, 0.1),
    )
    data = {f"incoming/{i}.bin": uuid.uuid4().bytes * 1000 for i in range(3)}
    with Runtime(load_app(DEMO), settings, max_workers=2) as rt:
        rt.start()
        for key, body in data.items():
            rt.client.put_object("uploads", key, body)
        assert rt.wait_idle(60)
        for key, body in data.items():
            stored = rt.client.get_object("results", f"checksums/{key}.sha256").decode()
            assert stored.split()[0] == hashlib.sha256(body).hexdigest()
            entry = json.loads(rt.client.get_object("results", f"catalog/{key}.json"))
            assert entry["size"] == len(body)
        assert rt.client.state.counts()[FAILED] == 0
