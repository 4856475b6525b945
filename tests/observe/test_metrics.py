"""Metrics read from a real home after a real runtime ran real functions."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry
from prometheus_client.utils import floatToGoString

from reelay.config import Settings
from reelay.observe.alerts import METRICS, metric_names
from reelay.observe.metrics import BUCKETS, Metrics
from reelay.runtime import Runtime, load_app
from reelay.state import NewEvent, NewInvocation, Start, open_state

pytestmark = pytest.mark.slow

HANDLERS = """
import time

def ok(event, context):
    return {"ok": True}

def boom(event, context):
    raise RuntimeError("boom")

def slow(event, context):
    time.sleep(30)

def limited(event, context):
    time.sleep(0.5)

def encoder(event, context):
    return {"throughput": {"frames": 250, "media_seconds": 10.0}}

def odd(event, context):  # Python writes NaN into JSON; SQLite's JSON functions refuse it
    return {"throughput": {"frames": float("nan"), "media_seconds": 1.0}}
"""
APP = """
service: metered
functions:
  ok: {handler: fns.ok}
  boom: {handler: fns.boom, maximumRetryAttempts: 1}
  slow: {handler: fns.slow, timeout: 1, maximumRetryAttempts: 0}
  limited: {handler: fns.limited, reservedConcurrency: 1}
  encoder: {handler: fns.encoder}
  odd: {handler: fns.odd}
"""


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[tuple, float]]]:
    """Run every kind of outcome once, then scrape: {sample name: {labels: value}}."""
    root = tmp_path_factory.mktemp("metered")
    (root / "fns.py").write_text(HANDLERS)
    (root / "reelay.yaml").write_text(textwrap.dedent(APP))
    settings = Settings.load(root / "home", retry_delays=(0.1, 0.1))
    with Runtime(load_app(root / "reelay.yaml"), settings, max_workers=3) as runtime:
        client = runtime.client
        for name in ("ok", "ok", "ok", "boom", "slow", "encoder", "encoder", "odd"):
            client.invoke(name, {})
        for _ in range(3):  # one runs, two wait for the reserved concurrency of 1
            client.invoke("limited", {})
        runtime.start()
        assert runtime.wait_idle(timeout=120)
        metrics = Metrics(client.state)
        snapshot = metrics.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        text = generate_latest(registry).decode()
    samples: dict[str, dict[tuple, float]] = {"snapshot": {(k,): v for k, v in snapshot.items()}}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    yield samples


def by_function(samples: dict[tuple, float]) -> dict[str, float]:
    return {dict(labels)["function"]: v for labels, v in samples.items()}


def test_invocations_by_function_and_outcome(scraped: dict[str, dict[tuple, float]]) -> None:
    got = {
        (dict(k)["function"], dict(k)["outcome"]): v
        for k, v in scraped["reelay_invocations_total"].items()
    }
    assert got == {
        ("ok", "success"): 3,
        ("boom", "error"): 2,  # the first attempt and its one retry
        ("slow", "timeout"): 1,
        ("encoder", "success"): 2,
        ("limited", "success"): 3,
        ("odd", "success"): 1,
    }


def test_retries_timeouts_cold_starts_and_throttles(scraped: dict[str, dict[tuple, float]]) -> None:
    assert by_function(scraped["reelay_retries_total"])["boom"] == 1
    assert by_function(scraped["reelay_retries_total"])["ok"] == 0
    timeouts = by_function(scraped["reelay_timeouts_total"])
    assert timeouts["slow"] == 1 and timeouts["ok"] == 0
    cold = by_function(scraped["reelay_cold_starts_total"])
    assert 1 <= cold["ok"] <= 3 and 1 <= cold["limited"] <= 3  # once per fresh worker
    assert by_function(scraped["reelay_throttles_total"]) == {"limited": 2}


def test_duration_histograms(scraped: dict[str, dict[tuple, float]]) -> None:
    buckets = {
        (dict(k)["function"], dict(k)["le"]): v
        for k, v in scraped["reelay_invocation_duration_seconds_bucket"].items()
    }
    counts = by_function(scraped["reelay_invocation_duration_seconds_count"])
    sums = by_function(scraped["reelay_invocation_duration_seconds_sum"])
    assert counts["limited"] == 3 and buckets[("limited", "+Inf")] == 3
    assert buckets[("limited", "0.25")] == 0 and buckets[("limited", "1.0")] == 3
    assert 1.5 <= sums["limited"] < 3
    assert buckets[("slow", "0.5")] == 0 and sums["slow"] >= 1  # killed at its 1 s timeout
    for fn in counts:  # cumulative buckets never decrease
        values = [buckets[(fn, floatToGoString(b))] for b in BUCKETS]
        assert values == sorted(values)


def test_depths_dlq_and_encode_throughput(scraped: dict[str, dict[tuple, float]]) -> None:
    assert by_function(scraped["reelay_dlq_depth"]) == {"boom": 1, "slow": 1}
    assert scraped["reelay_queue_depth"] == {(): 0}
    assert scraped["reelay_oldest_pending_event_age_seconds"] == {(): 0}
    assert by_function(scraped["reelay_encoded_frames_total"]) == {"encoder": 500}
    assert by_function(scraped["reelay_encoded_media_seconds_total"]) == {"encoder": 20}
    fps = by_function(scraped["reelay_encode_frames_per_second"])["encoder"]
    realtime = by_function(scraped["reelay_encode_realtime_factor"])["encoder"]
    assert fps > 0 and realtime == pytest.approx(fps / 25)
    assert {dict(k)["state"] for k in scraped["reelay_titles"]} == {
        "submitted",
        "processing",
        "published",
        "held",
        "rejected",
        "failed",
    }


def test_the_snapshot_has_every_metric_alert_rules_may_name(
    scraped: dict[str, dict[tuple, float]],
) -> None:
    snapshot = {k[0]: v for k, v in scraped["snapshot"].items()}
    # The runtime's figures, and the installed apps' (media: titles_in_progress...).
    assert set(snapshot) == set(metric_names()) > set(METRICS)
    assert {"titles_in_progress", "titles_held", "titles_failed"} <= set(snapshot)
    assert snapshot["dlq_depth"] == 2 and snapshot["queue_depth"] == 0
    assert snapshot["invocations_per_second"] == pytest.approx(12 / 60)
    assert snapshot["error_rate"] == pytest.approx(3 / 12)
    assert 0 < snapshot["duration_p50_seconds"] <= snapshot["duration_p99_seconds"]


def test_claimed_and_running_are_apart(tmp_path: Path) -> None:
    """Claimed (waiting for a worker) and running (a handler started) are two depths."""
    with open_state("", tmp_path) as state:
        events = state.append([NewEvent("event", "{}") for _ in range(3)])
        state.route([NewInvocation(e.seq, e.time, "enc", 3, 60) for e in events], events[-1].seq)
        (first, _), _ = state.claim(time.time(), 2)
        state.start([Start(first.id, 1, time.time(), "1@host")])
        metrics = Metrics(state)
        snapshot = metrics.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        text = generate_latest(registry).decode()
    assert (snapshot["queue_depth"], snapshot["claimed"], snapshot["running"]) == (1, 1, 1)
    pending = {
        s.labels["status"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "reelay_invocations_pending"
    }
    assert pending == {"queued": 1, "claimed": 1, "running": 1}


def test_a_title_just_uploaded_is_in_progress(tmp_path: Path) -> None:
    from reelay.client import Client

    with Client(Settings.load(tmp_path / "home")) as client:
        client.put_object("media", "ingest/new.mp4", b"not yet inspected")
        assert Metrics(client.state).snapshot()["titles_in_progress"] == 1
