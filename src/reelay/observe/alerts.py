"""Alert rules on live metrics and on the event log, firing to webhooks.

A rule file is YAML::

    webhook: http://127.0.0.1:9000/hook    # optional: the receiver of every rule
    alerts:
      - name: HighErrorRate                # required, unique: letters, digits, _ . -
        metric: error_rate                 # one of metric_names()
        above: 0.2                         # exactly one of above / below
        for: 1m                            # held this long before it fires (default 0)
        severity: warning                  # info | warning | critical (default warning)
        summary: error rate above 20%      # optional text
        webhook: https://example.com/hook  # optional: this rule's receiver instead
      - name: TitleHeld
        event: {source: [reelay.media], detail-type: [Media Title Held]}
        by: detail.title.id                # one alert per distinct value of this field
        until: {source: [reelay.media], detail-type: [Media Title Published]}
        for: 10m                           # resolve 10 minutes after the last match

A *metric rule* (``metric``) watches one value of the snapshot the server computes every
second. It fires once its condition (strictly ``above`` or ``below`` the threshold) has
held for ``for``, and resolves as soon as the condition clears. A snapshot without the
metric, or with a value that is not a finite number, is "no data": nothing changes.

An *event rule* (``event``, an EventBridge pattern) fires when a matching event is
appended to the log. ``by`` names a dotted path into the event envelope (``detail.x.y``);
each distinct value there is its own alert, its ``key``. It resolves when an event
matching ``until`` arrives with the same key (an event matching both patterns counts as
``until``), or ``for`` after the last matching event: by default never when ``until`` is
given, else after 5 minutes. Its value is the number of matching events while it fires.

Durations are seconds (``90``) or numbers with units (``30s``, ``5m``, ``1h``, ``1h30m``;
units ``ms s m h d``). `load_alert_rules` validates a whole file and raises
`AlertRulesError` naming every problem: the file, the key path, the bad value and the
valid choices.

The built-in rules are the core's (`DEFAULT_ALERTS`: error rate, dead letters) and
every installed app's (a plugin's ``alert_rules``: media's held and failed titles),
merged in that order (`builtin_alert_files`); a rule file given instead replaces them all.

`Alerter.evaluate` is called with each snapshot. Every transition is appended to the
log as an EventBridge event (source ``reelay.alerts``, ``Alert Firing`` or ``Alert
Resolved``) and posted to the rule's webhook as an Alertmanager webhook message, so
Alertmanager receivers (chat bridges, pagers) understand it. A webhook that still fails
after retries becomes an ``Alert Webhook Failed`` event, never an exception. The
alerter's cursor in the log, its firing alerts and its pending timers live in the
state database, so a restarted server neither fires an alert again nor forgets one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from reelay._text import plural
from reelay._yamlfile import Problems, read_yaml
from reelay.client import Client
from reelay.errors import AlertRulesError, InvalidPatternError
from reelay.events import Pattern, compile_pattern
from reelay.plugins import ValidateKind, installed

__all__ = [
    "DEFAULT_ALERTS",
    "METRICS",
    "SEVERITIES",
    "SOURCE",
    "VALIDATE_ALERTS",
    "AlertRule",
    "AlertRules",
    "Alerter",
    "Transition",
    "builtin_alert_files",
    "load_alert_rules",
    "metric_names",
    "parse_alert_rules",
    "post_json",
]

#: The runtime's keys of the live metrics snapshot that `Alerter.evaluate` reads (apps
#: add their own figures: see `metric_names`).
METRICS: Final = (
    "invocations_per_second",
    "error_rate",
    "duration_p50_seconds",
    "duration_p99_seconds",
    "queue_depth",
    "claimed",
    "running",
    "dlq_depth",
    "oldest_pending_age_seconds",
)
SEVERITIES: Final = ("info", "warning", "critical")
SOURCE: Final = "reelay.alerts"  # the source of every event the alerter appends
#: The core's built-in rules (no webhook): high error rate, dead letters. The installed
#: apps add theirs (see `builtin_alert_files`).
DEFAULT_ALERTS: Final = Path(__file__).with_name("alerts.yaml")

FILE_KEYS = ("webhook", "alerts")
RULE_KEYS = (
    "name",
    "metric",
    "above",
    "below",
    "event",
    "by",
    "until",
    "for",
    "severity",
    "summary",
    "webhook",
)
EVENT_RESOLVE_AFTER_S = 300.0  # an event rule without `until` resolves this long after
STATE_KEY = "alerts"  # the state meta key holding the alerter's state, as one JSON value

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
# Invocation events are requests to run a function, not bus events: rules never see them.
_NOT_BUS = frozenset({"invoke", "invoke-async", "s3"})

Send = Callable[[str, dict[str, Any]], None]
log = logging.getLogger(__name__)


# -- rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRule:
    """One validated rule. A metric rule has ``metric`` and one of ``above``/``below``;
    an event rule has ``event`` and perhaps ``by`` and ``until``.

    ``for_s`` is the pending time of a metric rule, and the time after the last match
    at which an event rule resolves (None: only ``until`` resolves it). ``webhook`` is
    the rule's own receiver or the file's default.
    """

    name: str
    severity: str = "warning"
    summary: str = ""
    webhook: str | None = None
    for_s: float | None = 0.0
    metric: str | None = None
    above: float | None = None
    below: float | None = None
    event: Pattern | None = None
    by: tuple[str, ...] = ()
    until: Pattern | None = None

    @property
    def kind(self) -> Literal["metric", "event"]:
        return "metric" if self.metric is not None else "event"

    @property
    def condition(self) -> str:
        """The rule in one line, for people (the dashboard's rule table)."""
        if self.metric is not None:
            text = f"{self.metric} {'>' if self.above is not None else '<'} {self.threshold:g}"
            return text + (f" for {self.for_s:g} s" if self.for_s else "")
        text = f"event {self.event.text if self.event else ''}"
        text += f" by {'.'.join(self.by)}" if self.by else ""
        text += f" until {self.until.text}" if self.until else ""
        return text + (f" (resolves {self.for_s:g} s after the last)" if self.for_s else "")

    @property
    def threshold(self) -> float | None:
        return self.above if self.above is not None else self.below

    def breached(self, value: float) -> bool:
        if self.above is not None:
            return value > self.above
        return self.below is not None and value < self.below

    def key_of(self, event: Mapping[str, Any]) -> str:
        """The value at ``by`` in ``event``, as text ("" without ``by`` or value)."""
        value: Any = event
        for part in self.by:
            if not isinstance(value, Mapping) or part not in value:
                return ""
            value = value[part]
        if isinstance(value, str):
            return value
        return "" if value is None or value is event else json.dumps(value, sort_keys=True)


@dataclass(frozen=True)
class AlertRules:
    """The rules of one file (``source``), in file order. Iterable."""

    rules: tuple[AlertRule, ...] = ()
    source: str = "<alerts>"
    webhook: str | None = None

    def __iter__(self) -> Iterator[AlertRule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)


def metric_names() -> tuple[str, ...]:
    """The snapshot's keys a metric rule may watch: the runtime's (`METRICS`), then the
    figures of every installed app (media: ``titles_in_progress``, ...)."""
    return METRICS + tuple(f for p in installed().values() for f in p.figures)


def builtin_alert_files() -> list[Path]:
    """The files of the built-in rules: the core's (`DEFAULT_ALERTS`), then every
    installed app's ``alert_rules``, by the app's name."""
    apps = [p.alert_rules for p in installed().values() if p.alert_rules is not None]
    return [DEFAULT_ALERTS, *apps]


def load_alert_rules(path: str | Path | None = None) -> AlertRules:
    """Read and validate a rule file, or (no ``path``) the built-in rules of the core and
    every installed app, merged; raise `AlertRulesError` naming every problem (a name
    two files give is one)."""
    if path is not None:
        return _read_rules(Path(path))
    files = builtin_alert_files()
    rules: list[AlertRule] = []
    seen: dict[str, Path] = {}
    problems: list[str] = []
    for file in files:
        for i, rule in enumerate(_read_rules(file)):
            if rule.name in seen:
                problems.append(
                    f"{file}: alerts[{i}].name: duplicate name {rule.name!r} (also in "
                    f"{seen[rule.name]})"
                )
            seen.setdefault(rule.name, file)
            rules.append(rule)
    if problems:
        raise AlertRulesError(problems)
    return AlertRules(tuple(rules), " + ".join(map(str, files)))


def _read_rules(path: Path) -> AlertRules:
    return parse_alert_rules(read_yaml(path, AlertRulesError), str(path))


def parse_alert_rules(data: Any, source: str = "<alerts>") -> AlertRules:
    """Validate a parsed rule file (``source`` names it in messages)."""
    problems = Problems(source)
    if not isinstance(data, dict):
        problems.add("", "an alert rule file must be a mapping with an 'alerts' list")
        raise AlertRulesError(problems.items)
    problems.unknown_keys("", data, FILE_KEYS)
    default_webhook = _url(problems, "webhook", data["webhook"]) if "webhook" in data else None
    items = data.get("alerts")
    if not isinstance(items, list):
        problems.add(
            "alerts",
            "missing: must be a list of alert rules"
            if items is None
            else f"{_show(items)} is not valid: must be a list of alert rules",
        )
        items = []
    rules: list[AlertRule] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        at = f"alerts[{i}]"
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name in seen:
            problems.add(f"{at}.name", f"duplicate name {name!r} (also {seen[name]})")
        elif isinstance(name, str):
            seen[name] = at
        rule = _rule(problems, at, item, default_webhook)
        if rule is not None:
            rules.append(rule)
    if problems.items:
        raise AlertRulesError(problems.items)
    return AlertRules(tuple(rules), source, default_webhook)


def _check_alerts(path: Path) -> str:
    rules = load_alert_rules(path)
    names = ", ".join(r.name for r in rules) or "none"
    return f"{plural(len(rules), 'alert rule')}: {names}"


#: ``reelay validate --kind alerts``.
VALIDATE_ALERTS: Final = ValidateKind("alert rules (YAML)", _check_alerts)


def _rule(problems: Problems, at: str, item: Any, webhook: str | None) -> AlertRule | None:
    if not isinstance(item, dict):
        problems.add(at, f"{_show(item)} is not valid: each alert must be a mapping")
        return None
    before = len(problems.items)
    problems.unknown_keys(at, item, RULE_KEYS)
    name = item.get("name")
    if name is None:
        problems.add(f"{at}.name", "missing: every alert needs a name (letters, digits, _ . -)")
    elif not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.add(
            f"{at}.name", f"{_show(name)} is not valid: use 1 to 128 letters, digits, _ . -"
        )
    severity = item.get("severity", "warning")
    if severity not in SEVERITIES:
        problems.add(
            f"{at}.severity", f"{_show(severity)} is not valid: one of {', '.join(SEVERITIES)}"
        )
    summary = item.get("summary", "")
    if not isinstance(summary, str):
        problems.add(f"{at}.summary", f"{_show(summary)} is not valid: must be text")
    if "webhook" in item:
        webhook = _url(problems, f"{at}.webhook", item["webhook"])
    for_s = _duration(problems, f"{at}.for", item["for"]) if "for" in item else None

    fields: dict[str, Any]
    if ("metric" in item) == ("event" in item):
        both = "has both 'metric' and 'event'" if "metric" in item else "has neither"
        problems.add(
            at,
            f"{both}: give exactly one of 'metric' (one of {', '.join(metric_names())}) "
            "or 'event' (an EventBridge event pattern)",
        )
        return None
    if "metric" in item:
        fields = _metric_fields(problems, at, item)
        for_s = 0.0 if for_s is None else for_s
    else:
        fields = _event_fields(problems, at, item)
        if for_s is None and fields.get("until") is None:
            for_s = EVENT_RESOLVE_AFTER_S
    if len(problems.items) > before:
        return None
    if not summary:
        summary = _default_summary(item)
    return AlertRule(
        name=str(name), severity=severity, summary=summary, webhook=webhook, for_s=for_s, **fields
    )


def _metric_fields(problems: Problems, at: str, item: dict[str, Any]) -> dict[str, Any]:
    for key in ("by", "until"):
        if key in item:
            problems.add(f"{at}.{key}", f"only event rules take {key!r}; this rule has 'metric'")
    metric = item["metric"]
    if metric not in (names := metric_names()):
        problems.add(f"{at}.metric", f"{_show(metric)} is not valid: one of {', '.join(names)}")
    bounds = [key for key in ("above", "below") if key in item]
    if len(bounds) != 1:
        problems.add(
            at,
            "has both 'above' and 'below'; give exactly one"
            if bounds
            else "a metric rule needs one of 'above' or 'below' (a number)",
        )
        return {}
    value = item[bounds[0]]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        problems.add(f"{at}.{bounds[0]}", f"{_show(value)} is not valid: must be a number")
        return {}
    return {"metric": metric, bounds[0]: float(value)}


def _event_fields(problems: Problems, at: str, item: dict[str, Any]) -> dict[str, Any]:
    for key in ("above", "below"):
        if key in item:
            problems.add(f"{at}.{key}", f"only metric rules take {key!r}; this rule has 'event'")
    fields: dict[str, Any] = {"event": _pattern(problems, f"{at}.event", item["event"])}
    if "until" in item:
        fields["until"] = _pattern(problems, f"{at}.until", item["until"])
    by = item.get("by")
    if by is not None:
        parts = tuple(by.split(".")) if isinstance(by, str) else ()
        if not parts or not all(parts):
            problems.add(
                f"{at}.by",
                f"{_show(by)} is not valid: must be a dotted path into the event, "
                "such as detail.title.id",
            )
        fields["by"] = parts
    return fields


def _pattern(problems: Problems, at: str, value: Any) -> Pattern | None:
    if not isinstance(value, dict):
        problems.add(
            at,
            f"{_show(value)} is not valid: must be an EventBridge event pattern, such as "
            "{source: [reelay.media], detail-type: [Media Title Held]}",
        )
        return None
    try:
        return compile_pattern(value)
    except InvalidPatternError as exc:
        problems.add(at, str(exc))
        return None


def _duration(problems: Problems, at: str, value: Any) -> float | None:
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.fullmatch(value.strip()):
        seconds = sum(float(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(value.strip()))
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        problems.add(
            at,
            f"{_show(value)} is not a valid duration: seconds (90) or a number with a unit "
            "(30s, 5m, 1h, 1h30m; units ms, s, m, h, d)",
        )
        return None
    return seconds


def _url(problems: Problems, at: str, value: Any) -> str | None:
    ok = False
    if isinstance(value, str) and not any(c.isspace() for c in value):
        try:
            parts = urllib.parse.urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            _ = parts.port  # raises ValueError on a port that is not a number
        except ValueError:
            ok = False
    if not ok:
        problems.add(
            at,
            f"{_show(value)} is not valid: must be an http:// or https:// URL, "
            "such as http://127.0.0.1:9000/hook",
        )
        return None
    return str(value)


def _default_summary(item: dict[str, Any]) -> str:
    if "metric" in item:
        bound = "above" if "above" in item else "below"
        return f"{item['metric']} {bound} {float(item[bound]):g}"
    return f"{item['name']}: a matching event"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """An alert instance (a rule and a key) that began or stopped firing at ``at``.

    ``since`` is when it began firing; ``value`` the metric's value (a metric rule) or
    the number of matching events (an event rule).
    """

    rule: AlertRule
    key: str
    status: Literal["firing", "resolved"]
    since: float
    at: float
    value: float | None

    def detail(self) -> dict[str, Any]:
        """The detail of the ``Alert Firing`` / ``Alert Resolved`` event."""
        return {
            "alert": self.rule.name,
            "key": self.key,
            "severity": self.rule.severity,
            "summary": self.rule.summary,
            "value": self.value,
            "threshold": self.rule.threshold,
            "since": _iso(self.since),
            "status": self.status,
        }

    def webhook_payload(self) -> dict[str, Any]:
        """An Alertmanager webhook message (version 4) carrying this one alert."""
        labels = {"alertname": self.rule.name, "severity": self.rule.severity, "key": self.key}
        annotations = {"summary": self.rule.summary}
        fingerprint = hashlib.sha256(f"{self.rule.name}\0{self.key}".encode()).hexdigest()[:16]
        alert = {
            "status": self.status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": _iso(self.since),
            "endsAt": _iso(self.at) if self.status == "resolved" else _NEVER,
            "generatorURL": "",
            "fingerprint": fingerprint,
            "value": self.value,
        }
        return {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{self.rule.name}", key="{self.key}"}}',
            "truncatedAlerts": 0,
            "status": self.status,
            "receiver": "reelay",
            "groupLabels": {"alertname": self.rule.name},
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "externalURL": "",
            "alerts": [alert],
        }


@dataclass
class _Instance:
    """What the alerter remembers of one rule and key: pending, firing, or both."""

    pending: float | None = None  # a metric rule: since when the condition holds
    since: float | None = None  # when it began firing; None: not firing
    value: float | None = None
    last: float | None = None  # an event rule: time of the last matching event

    @classmethod
    def load(cls, data: Any) -> _Instance | None:
        if not isinstance(data, dict):
            return None
        fields = {k: data.get(k) for k in ("pending", "since", "value", "last")}
        if not all(v is None or isinstance(v, int | float) for v in fields.values()):
            return None
        return cls(**fields)


class Alerter:
    """Evaluates ``rules`` against metric snapshots and the event log of ``client``'s home.

    Call `evaluate` periodically from one loop; `active` may be called from any thread.
    ``send(url, payload)`` posts a webhook and raises on failure; the default is
    `post_json`, which retries. Webhooks are posted from `evaluate` once the transitions
    are in the log and the state is saved: a slow receiver delays the next evaluation
    (run `evaluate` off any event loop), but a transition is never lost with it.
    """

    def __init__(self, rules: AlertRules, client: Client, *, send: Send | None = None) -> None:
        self.rules = rules
        self.client = client
        self._send: Send = send or post_json
        self._lock = threading.Lock()
        self._saved: str | None = None
        self._cursor, self._instances = self._load()

    def evaluate(self, snapshot: Mapping[str, float], now: float | None = None) -> list[Transition]:
        """Apply one metrics snapshot and the events appended since the last call.

        ``now`` is the current Unix time (default: the clock). Returns the transitions,
        each already appended to the log; each webhook is posted before this returns.
        """
        now = time.time() if now is None else now
        with self._lock:
            transitions = self._metrics(snapshot, now)
            transitions += self._events(now)
            if transitions:
                self.client.put_events(
                    [
                        {
                            "Source": SOURCE,
                            "DetailType": f"Alert {t.status.capitalize()}",
                            "Detail": t.detail(),
                        }
                        for t in transitions
                    ]
                )
            # Saved after the events are appended: a crash in between repeats a
            # transition (at least once) rather than losing it.
            self._save()
        for transition in transitions:
            self._deliver(transition)
        return transitions

    def active(self) -> list[dict[str, Any]]:
        """The firing alerts, most severe first, then oldest first."""
        with self._lock:  # evaluate may be changing the instances in another thread
            firing = [
                (rule, key, inst.since, inst.value)
                for rule in self.rules
                for key, inst in self._instances.get(rule.name, {}).items()
                if inst.since is not None
            ]
        firing.sort(key=lambda f: (-SEVERITIES.index(f[0].severity), f[2], f[1]))
        return [
            {
                "name": rule.name,
                "key": key,
                "severity": rule.severity,
                "summary": rule.summary,
                "since": _iso(since),
                "value": value,
            }
            for rule, key, since, value in firing
        ]

    # -- metric rules ----------------------------------------------------------------

    def _metrics(self, snapshot: Mapping[str, float], now: float) -> list[Transition]:
        out: list[Transition] = []
        for rule in self.rules:
            if rule.metric is None:
                continue
            value = snapshot.get(rule.metric)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                continue  # no data: neither fire nor resolve
            instances = self._instances.setdefault(rule.name, {})
            inst = instances.get("")
            if rule.breached(value):
                inst = instances.setdefault("", _Instance())
                inst.value = float(value)
                if inst.since is None:
                    inst.pending = now if inst.pending is None else inst.pending
                    if now - inst.pending >= (rule.for_s or 0.0):
                        inst.since, inst.pending = now, None
                        out.append(Transition(rule, "", "firing", now, now, inst.value))
            elif inst is not None:
                del instances[""]
                if inst.since is not None:
                    out.append(Transition(rule, "", "resolved", inst.since, now, float(value)))
        return out

    # -- event rules -----------------------------------------------------------------

    def _events(self, now: float) -> list[Transition]:
        rules = [rule for rule in self.rules if rule.event is not None]
        out: list[Transition] = []
        while batch := self.client.state.events_after(self._cursor):
            self._cursor = batch[-1].seq
            for event in batch:
                if not rules or event.source == SOURCE or event.kind in _NOT_BUS:
                    continue
                try:
                    body = json.loads(event.body)
                except ValueError:
                    continue
                if isinstance(body, dict):
                    for rule in rules:
                        out += self._event(rule, body, event.time)
        for rule in rules:
            if rule.for_s is None:
                continue
            instances = self._instances.get(rule.name, {})
            for key, inst in list(instances.items()):
                if inst.last is not None and now - inst.last >= rule.for_s:
                    del instances[key]
                    out.append(
                        Transition(rule, key, "resolved", inst.since or 0.0, now, inst.value)
                    )
        return out

    def _event(self, rule: AlertRule, body: dict[str, Any], at: float) -> list[Transition]:
        instances = self._instances.setdefault(rule.name, {})
        if rule.until is not None and rule.until.matches(body):
            key = rule.key_of(body)
            inst = instances.pop(key, None)
            if inst is None or inst.since is None:
                return []
            return [Transition(rule, key, "resolved", inst.since, at, inst.value)]
        if rule.event is None or not rule.event.matches(body):
            return []
        key = rule.key_of(body)
        inst = instances.get(key)
        if inst is not None and inst.since is not None:
            inst.value = (inst.value or 0.0) + 1
            inst.last = at
            return []
        instances[key] = _Instance(since=at, value=1.0, last=at)
        return [Transition(rule, key, "firing", at, at, 1.0)]

    # -- webhooks and state ----------------------------------------------------------

    def _deliver(self, transition: Transition) -> None:
        url = transition.rule.webhook
        if url is None:
            return
        try:
            self._send(url, transition.webhook_payload())
        except Exception as exc:  # a receiver's failure, whatever it is, must not stop alerting
            log.warning("alert webhook %s failed: %s", url, exc)
            self.client.put_events(
                [
                    {
                        "Source": SOURCE,
                        "DetailType": "Alert Webhook Failed",
                        "Detail": {
                            "alert": transition.rule.name,
                            "key": transition.key,
                            "status": transition.status,
                            "webhook": url,
                            "error": str(exc) or type(exc).__name__,
                        },
                    }
                ]
            )

    def _load(self) -> tuple[int, dict[str, dict[str, _Instance]]]:
        """The saved cursor and instances; the first time, the log's end and nothing."""
        names = {rule.name for rule in self.rules}
        text = self.client.state.get_meta(STATE_KEY)
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("cursor"), int):
            return self.client.state.last_seq(), {}
        self._saved = text
        instances: dict[str, dict[str, _Instance]] = {}
        alerts = data.get("alerts")
        for name, keyed in (alerts if isinstance(alerts, dict) else {}).items():
            if name not in names or not isinstance(keyed, dict):
                continue  # a rule since removed from the file
            for key, saved in keyed.items():
                inst = _Instance.load(saved)
                if inst is not None:
                    instances.setdefault(name, {})[str(key)] = inst
        return data["cursor"], instances

    def _save(self) -> None:
        alerts = {
            name: {key: vars(inst) for key, inst in keyed.items()}
            for name, keyed in self._instances.items()
            if keyed
        }
        text = json.dumps({"cursor": self._cursor, "alerts": alerts}, sort_keys=True)
        if text != self._saved:  # most evaluations change nothing: skip the write
            self.client.state.set_meta(STATE_KEY, text)
            self._saved = text


def post_json(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = 5.0,
    attempts: int = 3,
    backoff: float = 0.25,
) -> None:
    """POST ``payload`` as JSON, retrying network errors and 5xx/408/429 answers with
    a doubling ``backoff``. Raises `ConnectionError` naming the URL and the last error."""
    data = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "reelay-alerts"}
    error: Exception | None = None
    tries = 0
    while tries < max(1, attempts):
        if tries:
            time.sleep(backoff * 2 ** (tries - 1))
        tries += 1
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            return
        except urllib.error.HTTPError as exc:
            error = exc
            if exc.code < 500 and exc.code not in (408, 429):
                break  # the receiver refuses this message: retrying cannot help
        except OSError as exc:  # URLError, refused connections, timeouts
            error = exc
    raise ConnectionError(f"POST {url} failed after {tries} attempt(s): {error}")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
