"""Alerts: metric and event rules fire and resolve as events and Alertmanager webhook
posts, survive a restart, never raise on a dead webhook, and every broken rule file is
refused naming the key, the bad value and the valid choices."""

from __future__ import annotations

import functools
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reelay.client import Client
from reelay.config import Settings
from reelay.errors import AlertRulesError, AppError
from reelay.observe.alerts import (
    DEFAULT_ALERTS,
    SOURCE,
    Alerter,
    AlertRules,
    builtin_alert_files,
    load_alert_rules,
    metric_names,
    parse_alert_rules,
    post_json,
)

fast_post = functools.partial(post_json, backoff=0.01, timeout=2.0)


class Receiver:
    """A webhook receiver on loopback that records each JSON body it is posted."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(tmp_path / "home")


@pytest.fixture
def client(settings: Settings) -> Iterator[Client]:
    with Client(settings) as c:
        yield c


def rules(*alerts: dict[str, Any], webhook: str | None = None) -> AlertRules:
    doc: dict[str, Any] = {"alerts": list(alerts)}
    if webhook:
        doc["webhook"] = webhook
    return parse_alert_rules(doc, "test.yaml")


def alert_events(client: Client) -> list[tuple[str, dict[str, Any]]]:
    events = sorted(client.state.events(limit=1000, source=SOURCE), key=lambda e: e.seq)
    return [(e.detail_type, json.loads(e.body)["detail"]) for e in events]


def put_title(client: Client, detail_type: str, title_id: str) -> None:
    client.put_events(
        [
            {
                "Source": "reelay.media",
                "DetailType": detail_type,
                "Detail": {"title": {"id": title_id}},
            }
        ]
    )


HELD = {"source": ["reelay.media"], "detail-type": ["Media Title Held"]}
PUBLISHED = {"source": ["reelay.media"], "detail-type": ["Media Title Published"]}


# -- metric rules ----------------------------------------------------------------------


def test_metric_rule_fires_after_for_and_resolves(client: Client, receiver: Receiver) -> None:
    high = {"name": "HighErrorRate", "metric": "error_rate", "above": 0.2, "for": "60s"}
    alerter = Alerter(rules(high, webhook=receiver.url), client, send=fast_post)
    t0 = time.time()
    assert alerter.evaluate({"error_rate": 0.5}, t0) == []
    assert alerter.evaluate({"error_rate": 0.1}, t0 + 30) == []  # cleared: the timer restarts
    assert alerter.evaluate({"error_rate": 0.5}, t0 + 40) == []
    assert alerter.evaluate({"error_rate": 0.5}, t0 + 99) == []
    assert alerter.active() == []
    [fired] = alerter.evaluate({"error_rate": 0.6}, t0 + 100)
    assert (fired.rule.name, fired.status, fired.value, fired.since) == (
        "HighErrorRate",
        "firing",
        0.6,
        t0 + 100,
    )
    assert alerter.evaluate({"error_rate": 0.7}, t0 + 101) == []  # still firing: no news
    [active] = alerter.active()
    assert active["name"] == "HighErrorRate" and active["value"] == 0.7
    assert active["severity"] == "warning" and active["summary"] == "error_rate above 0.2"
    assert active["key"] == "" and active["since"].endswith("Z")
    [resolved] = alerter.evaluate({"error_rate": 0.2}, t0 + 130)  # not strictly above
    assert resolved.status == "resolved" and resolved.since == t0 + 100
    assert alerter.active() == []

    events = alert_events(client)
    assert [kind for kind, _ in events] == ["Alert Firing", "Alert Resolved"]
    firing = events[0][1]
    assert firing == {
        "alert": "HighErrorRate",
        "key": "",
        "severity": "warning",
        "summary": "error_rate above 0.2",
        "value": 0.6,
        "threshold": 0.2,
        "since": firing["since"],
        "status": "firing",
    }
    assert events[1][1]["status"] == "resolved" and events[1][1]["value"] == 0.2

    assert [p["status"] for p in receiver.posts] == ["firing", "resolved"]
    first, second = (p["alerts"][0] for p in receiver.posts)
    assert first["labels"] == {"alertname": "HighErrorRate", "severity": "warning", "key": ""}
    assert first["annotations"] == {"summary": "error_rate above 0.2"}
    assert first["endsAt"] == "0001-01-01T00:00:00Z" and first["value"] == 0.6
    assert second["startsAt"] == first["startsAt"] and second["endsAt"] > first["startsAt"]
    assert second["fingerprint"] == first["fingerprint"]


def test_below_threshold_and_missing_data(client: Client) -> None:
    idle = {"name": "NothingRuns", "metric": "running", "below": 1, "severity": "info"}
    alerter = Alerter(rules(idle), client)
    now = time.time()
    assert alerter.evaluate({}, now) == []  # no data: nothing happens
    [fired] = alerter.evaluate({"running": 0}, now + 1)
    assert fired.status == "firing" and fired.rule.threshold == 1.0
    assert alerter.evaluate({"queue_depth": 3}, now + 2) == []  # no data: still firing
    assert alerter.evaluate({"running": float("nan")}, now + 3) == []
    assert len(alerter.active()) == 1
    [resolved] = alerter.evaluate({"running": 2}, now + 4)
    assert resolved.status == "resolved" and resolved.value == 2.0


# -- event rules -----------------------------------------------------------------------


def test_event_rule_fires_per_key_and_resolves_on_until_and_timeout(
    client: Client, receiver: Receiver
) -> None:
    put_title(client, "Media Title Held", "old")  # history from before the alerter: ignored
    held = {
        "name": "TitleHeld",
        "event": HELD,
        "by": "detail.title.id",
        "until": PUBLISHED,
        "for": "10m",
        "severity": "critical",
        "webhook": receiver.url,
    }
    alerter = Alerter(rules(held), client, send=fast_post)
    put_title(client, "Media Title Held", "a")
    put_title(client, "Media Title Inspected", "c")  # does not match
    put_title(client, "Media Title Held", "b")
    put_title(client, "Media Title Held", "a")
    now = time.time()
    fired = alerter.evaluate({}, now)
    assert [(t.key, t.status) for t in fired] == [("a", "firing"), ("b", "firing")]
    assert {a["key"]: a["value"] for a in alerter.active()} == {"a": 2.0, "b": 1.0}

    put_title(client, "Media Title Published", "a")
    put_title(client, "Media Title Published", "zzz")  # nothing fires for zzz: nothing to do
    [resolved] = alerter.evaluate({}, now + 1)
    assert (resolved.key, resolved.status) == ("a", "resolved")
    assert alerter.evaluate({}, now + 300) == []
    [timed_out] = alerter.evaluate({}, now + 601)  # 10 minutes after b's last event
    assert (timed_out.key, timed_out.status) == ("b", "resolved")
    assert alerter.active() == []

    details = [(kind, d["key"]) for kind, d in alert_events(client)]
    assert details == [
        ("Alert Firing", "a"),
        ("Alert Firing", "b"),
        ("Alert Resolved", "a"),
        ("Alert Resolved", "b"),
    ]
    labels = [(p["status"], p["alerts"][0]["labels"]["key"]) for p in receiver.posts]
    assert labels == [("firing", "a"), ("firing", "b"), ("resolved", "a"), ("resolved", "b")]
    assert receiver.posts[0]["alerts"][0]["labels"]["severity"] == "critical"


def test_event_rule_resolves_after_five_minutes_without_until(client: Client) -> None:
    [rule] = rules({"name": "Failed", "event": {"detail-type": ["Media Title Failed"]}})
    assert rule.for_s == 300 and rules({**held_rule(), "until": PUBLISHED}).rules[0].for_s is None
    alerter = Alerter(AlertRules((rule,)), client)
    put_title(client, "Media Title Failed", "a")
    put_title(client, "Media Title Failed", "b")  # no `by`: one alert for every event
    now = time.time()
    [fired] = alerter.evaluate({}, now)
    assert fired.key == "" and alerter.active()[0]["value"] == 2.0
    assert alerter.evaluate({}, now + 200) == []
    [resolved] = alerter.evaluate({}, now + 301)
    assert resolved.status == "resolved"


def held_rule() -> dict[str, Any]:
    return {"name": "TitleHeld", "event": HELD, "by": "detail.title.id"}


def test_own_events_never_trigger_rules(client: Client) -> None:
    everything = {"name": "Anything", "event": {}, "by": "detail-type"}
    alerter = Alerter(rules(everything), client)
    client.put_events([{"Source": "app", "DetailType": "Hello", "Detail": {}}])
    client.invoke("fn", {"x": 1})  # an invocation request, not a bus event
    [fired] = alerter.evaluate({})
    assert fired.key == "Hello"
    assert alerter.evaluate({}) == []  # its own Alert Firing event is not a match
    assert [d["key"] for _, d in alert_events(client)] == ["Hello"]


# -- restarts and failures -------------------------------------------------------------


def test_restart_neither_refires_nor_forgets(settings: Settings, client: Client) -> None:
    slow = {"name": "Slow", "metric": "duration_p99_seconds", "above": 5, "for": "1m"}
    dlq = {"name": "DeadLetters", "metric": "dlq_depth", "above": 0}
    both = rules(slow, dlq, held_rule())
    first = Alerter(both, client)
    now = time.time()
    put_title(client, "Media Title Held", "a")
    fired = first.evaluate({"dlq_depth": 2, "duration_p99_seconds": 9}, now)
    assert sorted(t.rule.name for t in fired) == ["DeadLetters", "TitleHeld"]  # Slow pending

    with Client(settings) as again:
        second = Alerter(both, again)
        assert sorted(a["name"] for a in second.active()) == ["DeadLetters", "TitleHeld"]
        # Same conditions, the same events in the log: nothing fires again, but the
        # pending timer of Slow carried over and completes.
        [slow_fired] = second.evaluate({"dlq_depth": 2, "duration_p99_seconds": 9}, now + 60)
        assert slow_fired.rule.name == "Slow"
        [resolved] = second.evaluate({"dlq_depth": 0, "duration_p99_seconds": 9}, now + 61)
        assert resolved.rule.name == "DeadLetters"
    kinds = [(kind, d["alert"]) for kind, d in alert_events(client)]
    assert kinds.count(("Alert Firing", "DeadLetters")) == 1
    assert kinds.count(("Alert Firing", "TitleHeld")) == 1


def test_dead_webhook_becomes_an_event_not_an_exception(client: Client) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    dlq = {"name": "DeadLetters", "metric": "dlq_depth", "above": 0, "webhook": dead}
    alerter = Alerter(rules(dlq), client)  # the default sender, with its retries
    [fired] = alerter.evaluate({"dlq_depth": 1})
    assert fired.status == "firing"
    (first, _), (kind, failed) = alert_events(client)
    assert first == "Alert Firing"
    assert kind == "Alert Webhook Failed"
    assert failed["alert"] == "DeadLetters" and failed["status"] == "firing"
    assert failed["webhook"] == dead and dead in failed["error"]
    assert "3 attempt(s)" in failed["error"]
    assert len(alerter.active()) == 1  # still firing


def test_webhook_server_errors_are_retried(client: Client, receiver: Receiver) -> None:
    receiver.status = 503
    dlq = {"name": "DeadLetters", "metric": "dlq_depth", "above": 0}
    alerter = Alerter(rules(dlq, webhook=receiver.url), client, send=fast_post)
    alerter.evaluate({"dlq_depth": 1})
    assert len(receiver.posts) == 3
    assert [kind for kind, _ in alert_events(client)] == ["Alert Firing", "Alert Webhook Failed"]
    receiver.status = 400  # refused: not retried
    alerter.evaluate({"dlq_depth": 0})
    assert len(receiver.posts) == 4


def test_a_raising_sender_never_escapes(client: Client) -> None:
    def broken(url: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    dlq = {"name": "DeadLetters", "metric": "dlq_depth", "above": 0, "webhook": "http://x/"}
    alerter = Alerter(rules(dlq), client, send=broken)
    alerter.evaluate({"dlq_depth": 1})
    assert alert_events(client)[-1] == (
        "Alert Webhook Failed",
        {
            "alert": "DeadLetters",
            "key": "",
            "status": "firing",
            "webhook": "http://x/",
            "error": "boom",
        },
    )


# -- rule files ------------------------------------------------------------------------


def test_default_rules_load() -> None:
    # The core's rules watch the runtime; the media app's (its plugin's), its titles.
    core = load_alert_rules(DEFAULT_ALERTS)
    assert [r.name for r in core] == ["HighErrorRate", "DeadLetters"]
    assert not any(r.kind == "event" and "reelay.media" in r.condition for r in core)
    media = Path(__file__).parents[2] / "src" / "reelay" / "media" / "alerts.yaml"
    assert builtin_alert_files() == [DEFAULT_ALERTS, media]
    defaults = load_alert_rules()
    assert [r.name for r in defaults] == [
        "HighErrorRate",
        "DeadLetters",
        "TitleHeld",
        "TitleFailed",
    ]
    assert defaults.webhook is None and all(r.webhook is None for r in defaults)
    high = defaults.rules[0]
    assert (high.metric, high.above, high.for_s) == ("error_rate", 0.2, 60.0)
    assert defaults.rules[:2] == core.rules


def test_an_app_rule_named_as_a_core_rule_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "alerts.yaml"
    mine.write_text("alerts: [{name: DeadLetters, metric: dlq_depth, above: 5}]\n")
    monkeypatch.setattr("reelay.observe.alerts.builtin_alert_files", lambda: [DEFAULT_ALERTS, mine])
    with pytest.raises(AlertRulesError, match=r"alerts\[0\]\.name: duplicate name 'DeadLetters'"):
        load_alert_rules()


def test_a_full_rule_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(
        "webhook: http://127.0.0.1:9000/hook\n"
        "alerts:\n"
        "  - {name: A, metric: queue_depth, above: 100, for: 1h30m, severity: critical}\n"
        "  - {name: B, metric: running, below: 1, for: 90, webhook: 'https://h.example/x'}\n"
        "  - {name: c.d-e_1, event: {source: [x]}, for: 500ms, summary: hello}\n"
    )
    a, b, c = load_alert_rules(path)
    assert (a.for_s, a.severity, a.webhook) == (5400.0, "critical", "http://127.0.0.1:9000/hook")
    assert (b.for_s, b.below, b.webhook) == (90.0, 1.0, "https://h.example/x")
    assert (c.kind, c.for_s, c.summary) == ("event", 0.5, "hello")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alerts: [\n", "alerts.yaml: invalid YAML"),
        ("", "alerts.yaml: an alert rule file must be a mapping with an 'alerts' list"),
    ],
)
def test_unreadable_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    with pytest.raises(AlertRulesError, match=message):
        load_alert_rules(path)
    with pytest.raises(AlertRulesError, match="no such file"):
        load_alert_rules(tmp_path / "missing.yaml")


def metric(**extra: Any) -> dict[str, Any]:
    return {"name": "A", "metric": "error_rate", "above": 0.2, **extra}


def event(**extra: Any) -> dict[str, Any]:
    return {"name": "A", "event": HELD, **extra}


def without(rule: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k != key}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (["a"], "f.yaml: an alert rule file must be a mapping with an 'alerts' list"),
        ({"alerts": {"name": "A"}}, "f.yaml: alerts: {'name': 'A'} is not valid: must be a list"),
        ({"webhook": "http://h/"}, "f.yaml: alerts: missing: must be a list of alert rules"),
        (
            {"alerts": [], "alert": []},
            "f.yaml: alert: unknown key 'alert'; valid keys: webhook, alerts",
        ),
        ({"alerts": ["A"]}, "f.yaml: alerts[0]: 'A' is not valid: each alert must be a mapping"),
        (
            {"alerts": [metric(treshold=1)]},
            "f.yaml: alerts[0].treshold: unknown key 'treshold'; valid keys: name, metric, above, below, event, by, until, for, severity, summary, webhook",
        ),
        ({"alerts": [without(metric(), "name")]}, "f.yaml: alerts[0].name: missing"),
        (
            {"alerts": [metric(name="a b")]},
            "f.yaml: alerts[0].name: 'a b' is not valid: use 1 to 128 letters, digits, _ . -",
        ),
        (
            {"alerts": [metric(), event()]},
            "f.yaml: alerts[1].name: duplicate name 'A' (also alerts[0])",
        ),
        (
            {"alerts": [metric(metric="errors")]},
            f"f.yaml: alerts[0].metric: 'errors' is not valid: one of {', '.join(metric_names())}",
        ),
        (
            {"alerts": [metric(below=0.1)]},
            "f.yaml: alerts[0]: has both 'above' and 'below'; give exactly one",
        ),
        (
            {"alerts": [without(metric(), "above")]},
            "f.yaml: alerts[0]: a metric rule needs one of 'above' or 'below'",
        ),
        (
            {"alerts": [metric(above="high")]},
            "f.yaml: alerts[0].above: 'high' is not valid: must be a number",
        ),
        (
            {"alerts": [metric(above=True)]},
            "f.yaml: alerts[0].above: True is not valid: must be a number",
        ),
        (
            {"alerts": [{"name": "A"}]},
            "f.yaml: alerts[0]: has neither: give exactly one of 'metric' (one of invocations_per_second, ",
        ),
        (
            {"alerts": [metric(event=HELD)]},
            "f.yaml: alerts[0]: has both 'metric' and 'event': give exactly one of",
        ),
        (
            {"alerts": [metric(**{"for": "5 minutes"})]},
            "f.yaml: alerts[0].for: '5 minutes' is not a valid duration: seconds (90) or a number with a unit (30s, 5m, 1h, 1h30m; units ms, s, m, h, d)",
        ),
        ({"alerts": [metric(**{"for": -1})]}, "f.yaml: alerts[0].for: -1 is not a valid duration"),
        (
            {"alerts": [event(**{"for": "5x"})]},
            "f.yaml: alerts[0].for: '5x' is not a valid duration",
        ),
        (
            {"alerts": [metric(severity="page")]},
            "f.yaml: alerts[0].severity: 'page' is not valid: one of info, warning, critical",
        ),
        (
            {"alerts": [metric(summary=3)]},
            "f.yaml: alerts[0].summary: 3 is not valid: must be text",
        ),
        (
            {"alerts": [event(event={"source": "x"})]},
            "f.yaml: alerts[0].event: pattern key 'source': must be an array of values",
        ),
        (
            {"alerts": [event(event="Media Title Held")]},
            "f.yaml: alerts[0].event: 'Media Title Held' is not valid: must be an EventBridge event pattern",
        ),
        (
            {"alerts": [event(until={"detail-type": [{"nope": 1}]})]},
            "f.yaml: alerts[0].until: pattern key 'detail-type': unknown operator 'nope'; valid operators: anything-but",
        ),
        (
            {"alerts": [event(by="detail..id")]},
            "f.yaml: alerts[0].by: 'detail..id' is not valid: must be a dotted path into the event, such as detail.title.id",
        ),
        (
            {"alerts": [metric(by="detail.id")]},
            "f.yaml: alerts[0].by: only event rules take 'by'; this rule has 'metric'",
        ),
        (
            {"alerts": [metric(until=PUBLISHED)]},
            "f.yaml: alerts[0].until: only event rules take 'until'",
        ),
        (
            {"alerts": [event(above=1)]},
            "f.yaml: alerts[0].above: only metric rules take 'above'; this rule has 'event'",
        ),
        (
            {"alerts": [], "webhook": "ftp://h/x"},
            "f.yaml: webhook: 'ftp://h/x' is not valid: must be an http:// or https:// URL, such as http://127.0.0.1:9000/hook",
        ),
        (
            {"alerts": [metric(webhook="localhost:9000")]},
            "f.yaml: alerts[0].webhook: 'localhost:9000' is not valid: must be an http:// or https:// URL",
        ),
        (
            {"alerts": [metric(webhook="http://h:port/")]},
            "f.yaml: alerts[0].webhook: 'http://h:port/' is not valid",
        ),
        (
            {"alerts": [metric(webhook=["http://h/"])]},
            "f.yaml: alerts[0].webhook: ['http://h/'] is not valid",
        ),
    ],
)
def test_broken_rule_files_name_the_key(doc: Any, message: str) -> None:
    with pytest.raises(AlertRulesError) as caught:
        parse_alert_rules(doc, "f.yaml")
    assert isinstance(caught.value, AppError) and isinstance(caught.value, ValueError)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once() -> None:
    doc = {
        "webhook": "nope",
        "alerts": [
            metric(metric="cpu", severity="loud"),
            {"name": "B", "event": {"source": "x"}, "for": "soon"},
            metric(),
        ],
    }
    with pytest.raises(AlertRulesError) as caught:
        parse_alert_rules(doc, "f.yaml")
    wheres = [p.split(": ")[1] for p in caught.value.problems]
    assert wheres == [
        "webhook",
        "alerts[0].severity",
        "alerts[0].metric",
        "alerts[1].for",
        "alerts[1].event",
        "alerts[2].name",
    ]
