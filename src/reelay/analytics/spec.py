"""Aggregates declared in YAML, validated completely before anything runs.

::

    # analytics.yaml
    aggregates:
      flows_by_app:                   # a table in SQL: window_start, window_end,
        stream: vpc-flows             #   the dimensions, the metrics
        format: vpc-flow-log          # json | vpc-flow-log | cloudwatch-logs
        time: start                   # the event-time field, or `arrival` (see below)
        enrich:                       # lookups that add fields (see reelay.analytics.lookups)
          - lookup: cidr
            file: applications.yaml
            fields: {srcaddr: src_app, dstaddr: dst_app}
            default: unknown
        where: {log_status: OK}       # the rows aggregated (NODATA, SKIPDATA left out)
        window: {size: 1m}            # tumbling; {size: 5m, hop: 1m} is hopping
        watermark: {lateness: 30s}    # how late a record may be and still count
        deadLetter: vpc-flows-late    # late and unreadable records go there
        groupBy: [src_app, dst_app]
        metrics:
          bytes: {sum: bytes}
          packets: {sum: packets}
          flows: count
          rejected: {count: "*", where: {action: REJECT}}
          sources: {distinct: srcaddr}          # HyperLogLog
          p95_bytes: {quantile: bytes, q: 0.95} # DDSketch, 1% relative accuracy
        horizon: 6h                   # how long windows are kept (default 6h)

``time``: a field (``time: start``, or ``{field: ts, unit: ms}``; numbers are epoch
seconds unless ``unit`` says ``ms``, ``us`` or ``ns``, text is ISO 8601), or
``arrival`` (when the stream stored the record). The defaults: ``start`` for
``vpc-flow-log``, ``timestamp`` (ms) for ``cloudwatch-logs``, ``arrival`` for ``json``.

``where`` (of the aggregate, or of a metric): each field must equal the value given,
or one of a list of them, or with ``{not: ...}`` none of them. A metric's ``count``
counts rows (``"*"``), or the rows where a field has a value. ``sum``, ``min``, ``max``
and ``quantile`` take the numbers of a field (a row without one is skipped). Durations
are seconds, or a number with ``s``, ``m``, ``h`` or ``d``; windows are whole seconds.

Names are SQL identifiers (letters, digits and ``_``; case does not tell two apart).
`load_aggregates` raises `reelay.errors.AggregatesError` listing every problem, each
naming the file, the key path, the bad value and the valid choices.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelay._yamlfile import Problems, parse_yaml, read_yaml
from reelay.analytics.formats import FORMATS, KNOWN_FIELDS, field_value
from reelay.analytics.lookups import Lookup, lookup_kinds
from reelay.errors import AggregatesError, ConfigError
from reelay.streams import check_stream_name

__all__ = [
    "ENVIRONMENT",
    "METRIC_KINDS",
    "Aggregate",
    "Aggregates",
    "Enrichment",
    "Metric",
    "TimeField",
    "Where",
    "Window",
    "aggregates_from_environment",
    "load_aggregates",
    "parse_aggregates",
]

ENVIRONMENT = "REELAY_ANALYTICS"  # the aggregating function's aggregates: a file, or YAML
TOP_KEYS = ("aggregates",)
AGGREGATE_KEYS = (
    "deadLetter",
    "description",
    "enrich",
    "format",
    "groupBy",
    "horizon",
    "metrics",
    "stream",
    "time",
    "watermark",
    "where",
    "window",
)
METRIC_KINDS = ("count", "distinct", "max", "min", "quantile", "sum")
METRIC_EXTRAS = {"quantile": ("accuracy", "q"), "distinct": ("precision",)}
TIME_UNITS = ("s", "ms", "us", "ns")
ENRICH_KEYS = ("default", "fields", "lookup")
RESERVED_COLUMNS = ("window_start", "window_end")
DEFAULT_HORIZON = 6 * 3600.0
MAX_WINDOWS_PER_ROW = 100  # size / hop: the windows each row is added to
DAY = 86400.0
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": DAY, None: 1.0}
_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@dataclass(frozen=True)
class Window:
    """Windows of ``size`` seconds starting every ``hop`` seconds (tumbling when equal),
    aligned to the epoch."""

    size: int
    hop: int

    @property
    def tumbling(self) -> bool:
        return self.size == self.hop

    def starts(self, t: float) -> list[int]:
        """The starts of the windows that hold time ``t``, newest first."""
        newest = math.floor(t / self.hop) * self.hop
        return list(range(newest, math.floor(t - self.size), -self.hop))

    def describe(self) -> str:
        if self.tumbling:
            return f"tumbling {_duration(self.size)}"
        return f"hopping {_duration(self.size)} every {_duration(self.hop)}"


@dataclass(frozen=True)
class TimeField:
    """Where a row's event time comes from: a field (in ``unit``), or None for the
    record's arrival."""

    field: str | None
    unit: str = "s"

    def of(self, row: Mapping[str, Any], arrival: float) -> float | None:
        """The row's event time in epoch seconds, or None when it has none."""
        if self.field is None:
            return arrival
        value = field_value(row, self.field)
        if isinstance(value, bool) or value is None:
            return None
        if isinstance(value, int | float):
            seconds = float(value) * _SCALE[self.unit]
            return seconds if math.isfinite(seconds) else None
        if isinstance(value, str):
            return _iso_seconds(value)
        return None

    def describe(self) -> str:
        return "arrival" if self.field is None else f"{self.field} ({self.unit})"


@dataclass(frozen=True)
class Where:
    """Conditions on fields, all of which a row must meet: each field's value is one of
    ``values`` (or, ``negated``, none of them)."""

    conditions: tuple[tuple[str, tuple[Any, ...], bool], ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        for name, values, negated in self.conditions:
            value = field_value(row, name)
            hit = any(_same(value, v) for v in values)
            if hit == negated:
                return False
        return True

    def plain(self) -> dict[str, Any]:
        return {
            name: {"not": list(values)} if negated else list(values)
            for name, values, negated in self.conditions
        }


@dataclass(frozen=True)
class Metric:
    """One metric: ``kind`` of ``field`` (None: every row, for ``count``) over the rows
    that meet ``where``; ``q`` and ``accuracy`` for quantiles, ``precision`` for
    distinct counts."""

    name: str
    kind: str
    field: str | None = None
    where: Where | None = None
    q: float | None = None
    accuracy: float = 0.01
    precision: int = 12

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "field": self.field}
        if self.where is not None:
            out["where"] = self.where.plain()
        if self.kind == "quantile":
            out |= {"q": self.q, "accuracy": self.accuracy}
        if self.kind == "distinct":
            out["precision"] = self.precision
        return out


@dataclass(frozen=True)
class Enrichment:
    """An ``enrich:`` entry: ``lookup`` maps each of ``fields``' inputs to its output
    (``default`` when nothing matches)."""

    kind: str
    fields: tuple[tuple[str, str], ...]
    default: str | None
    spec: dict[str, Any] = field(compare=False)
    lookup: Lookup = field(compare=False, repr=False)

    def apply(self, row: dict[str, Any]) -> None:
        for source, target in self.fields:
            found = self.lookup(field_value(row, source))
            row[target] = self.default if found is None else found


@dataclass(frozen=True)
class Aggregate:
    """One declared aggregate (see the module's docstring)."""

    name: str
    stream: str
    format: str
    time: TimeField
    window: Window
    lateness: float
    dead_letter: str
    dimensions: tuple[str, ...]
    metrics: tuple[Metric, ...]
    where: Where | None = None
    enrich: tuple[Enrichment, ...] = ()
    horizon: float = DEFAULT_HORIZON
    description: str = ""

    def plain(self) -> dict[str, Any]:
        """What the results are made of (stored beside them, for queries)."""
        return {
            "name": self.name,
            "stream": self.stream,
            "format": self.format,
            "time": {"field": self.time.field, "unit": self.time.unit},
            "window": {"size": self.window.size, "hop": self.window.hop},
            "lateness": self.lateness,
            "deadLetter": self.dead_letter,
            "dimensions": list(self.dimensions),
            "metrics": [m.plain() for m in self.metrics],
            "where": self.where.plain() if self.where else None,
            "enrich": [
                {"lookup": e.kind, "fields": dict(e.fields), "default": e.default, **e.spec}
                for e in self.enrich
            ],
            "horizon": self.horizon,
            "description": self.description,
        }

    @property
    def fingerprint(self) -> str:
        """What the stored partial aggregates depend on: a change starts them afresh
        (lateness, horizon, the dead-letter stream and the description do not count)."""
        plain = self.plain()
        for key in ("lateness", "horizon", "deadLetter", "description"):
            plain.pop(key)
        text = json.dumps(plain, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (
            f"{self.name}: {self.stream} ({self.format}), {self.window.describe()} windows by "
            f"{self.time.describe()}, lateness {_duration(self.lateness)}, by "
            f"{', '.join(self.dimensions) or 'nothing'}: "
            f"{', '.join(m.name for m in self.metrics)}"
        )


@dataclass(frozen=True)
class Aggregates:
    """A loaded aggregates file: its aggregates by name."""

    aggregates: dict[str, Aggregate]
    source: str = "<aggregates>"

    def for_stream(self, stream: str) -> list[Aggregate]:
        return [a for a in self.aggregates.values() if a.stream == stream]

    @property
    def streams(self) -> list[str]:
        return sorted({a.stream for a in self.aggregates.values()})


# -- loading ----------------------------------------------------------------------------------


def load_aggregates(path: Path) -> Aggregates:
    """Load and fully validate an aggregates file; `AggregatesError` lists every problem.
    Relative file names in it (an applications file) resolve in its directory."""
    doc = read_yaml(path, AggregatesError)
    return parse_aggregates(doc, source=str(path), base=path.parent)


def aggregates_from_environment(root: Path | None = None) -> Aggregates:
    """The aggregates ``REELAY_ANALYTICS`` names: a file (relative to ``root``, the
    app's directory, where the aggregating function runs), or the YAML itself."""
    value = os.environ.get(ENVIRONMENT, "")
    if not value.strip():
        raise ConfigError(
            f"{ENVIRONMENT} is not set: set it (in the function's environment) to an "
            "aggregates file, relative to the app's directory, or to the aggregates as YAML"
        )
    base = root or Path(os.environ.get("LAMBDA_TASK_ROOT") or ".")
    if "\n" in value or value.lstrip().startswith("aggregates:"):
        doc = parse_yaml(value, ENVIRONMENT, AggregatesError)
        return parse_aggregates(doc, source=ENVIRONMENT, base=base)
    path = Path(value)
    return load_aggregates(path if path.is_absolute() else base / path)


def parse_aggregates(doc: Any, *, source: str = "<aggregates>", base: Path) -> Aggregates:
    """Validate aggregates already parsed from YAML and build them."""
    problems = Problems(source)
    if not isinstance(doc, dict) or not isinstance(doc.get("aggregates"), dict):
        problems.add(
            "aggregates" if isinstance(doc, dict) else "",
            "the file must be a mapping with 'aggregates': a mapping of names to aggregates",
        )
        raise AggregatesError(problems.items)
    problems.unknown_keys("", doc, TOP_KEYS)
    found: dict[str, Aggregate] = {}
    folded: dict[str, str] = {}
    if not doc["aggregates"]:
        problems.add("aggregates", "declares no aggregate: give at least one")
    for name, body in doc["aggregates"].items():
        where = f"aggregates.{name}"
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            problems.add(where, f"aggregate name {name!r} is not valid: {_NAME_RULE}")
            continue
        if name.lower() in folded:
            problems.add(
                where, f"{name!r} and {folded[name.lower()]!r} are one name to SQL: rename one"
            )
            continue
        folded[name.lower()] = name
        aggregate = _aggregate(problems, where, name, body, base)
        if aggregate is not None:
            found[name] = aggregate
    if problems.items:
        raise AggregatesError(problems.items)
    return Aggregates(found, source)


_NAME_RULE = "1 to 63 letters, digits or '_', not starting with a digit (a SQL name)"


def _aggregate(problems: Problems, at: str, name: str, body: Any, base: Path) -> Aggregate | None:
    if not isinstance(body, dict):
        problems.add(at, "must be a mapping with stream, format, window, groupBy and metrics")
        return None
    before = len(problems.items)
    problems.unknown_keys(at, body, AGGREGATE_KEYS)
    for key in ("stream", "metrics"):
        if key not in body:
            problems.add(f"{at}.{key}", "is missing")
    stream = body.get("stream")
    if stream is not None:
        try:
            check_stream_name(stream)
        except ValueError as exc:
            problems.add(f"{at}.stream", str(exc))
    form = body.get("format", "json")
    if form not in FORMATS:
        problems.add(f"{at}.format", f"{form!r} is not valid; valid choices: {', '.join(FORMATS)}")
        form = None
    known = dict(KNOWN_FIELDS[form]) if form in KNOWN_FIELDS else None  # json: any field
    # (the fields the lookups write join the known ones)
    enrich = _enrichments(problems, f"{at}.enrich", body.get("enrich"), base, known)
    time = _time(problems, f"{at}.time", body.get("time"), form, known)
    where = _where(problems, f"{at}.where", body.get("where"), known)
    window = _window(problems, f"{at}.window", body.get("window"))
    lateness = _lateness(problems, f"{at}.watermark", body.get("watermark"))
    dead = body.get("deadLetter", f"{name}-late")
    try:
        check_stream_name(dead)
    except ValueError as exc:
        problems.add(f"{at}.deadLetter", f"{exc} (the stream late records go to)")
    if dead == stream and stream is not None:
        problems.add(f"{at}.deadLetter", f"{dead!r} is the source stream: name another stream")
    dimensions = _dimensions(problems, f"{at}.groupBy", body.get("groupBy", []), known)
    metrics = _metrics(problems, f"{at}.metrics", body.get("metrics"), known)
    columns = {d.lower(): f"groupBy {d}" for d in dimensions}
    for m in metrics:
        if m.name.lower() in columns:
            problems.add(
                f"{at}.metrics.{m.name}", f"{m.name!r} is also {columns[m.name.lower()]}: rename it"
            )
        columns[m.name.lower()] = f"metric {m.name}"
    horizon = DEFAULT_HORIZON
    if "horizon" in body:
        given = _seconds(problems, f"{at}.horizon", body["horizon"], 1, 366 * DAY)
        if given is not None and window is not None and lateness is not None:
            least = window.size + lateness
            if given < least:
                problems.add(
                    f"{at}.horizon",
                    f"{body['horizon']!r} is shorter than a window and its lateness "
                    f"({_duration(least)}): results would go before their window closes",
                )
        horizon = given or horizon
    elif window is not None and lateness is not None:
        horizon = max(horizon, 2.0 * (window.size + lateness))
    description = body.get("description", "")
    if not isinstance(description, str):
        problems.add(f"{at}.description", "must be text")
    if len(problems.items) > before or window is None or lateness is None or time is None:
        return None
    assert isinstance(stream, str) and isinstance(form, str)
    return Aggregate(
        name=name,
        stream=stream,
        format=form,
        time=time,
        window=window,
        lateness=lateness,
        dead_letter=str(dead),
        dimensions=tuple(dimensions),
        metrics=tuple(metrics),
        where=where,
        enrich=tuple(enrich),
        horizon=horizon,
        description=str(description),
    )


def _check_field(
    problems: Problems,
    at: str,
    value: Any,
    known: dict[str, str] | None,
    *,
    number: bool = False,
) -> str | None:
    """A field name: text; one of a known format's fields (a number where ``number``)."""
    if not isinstance(value, str) or not value.strip():
        problems.add(at, f"{value!r} is not valid: name a field of the records")
        return None
    if known is None:
        return value
    if value not in known:
        problems.add(
            at,
            f"unknown field {value!r}; valid fields: {', '.join(known)}"
            + (" (with '_' for '-')" if "-" in value else ""),
        )
        return None
    if number and known[value] != "number":
        numbers = [k for k, v in known.items() if v == "number"]
        problems.add(at, f"{value!r} is text, not a number; number fields: {', '.join(numbers)}")
        return None
    return value


def _time(
    problems: Problems, at: str, value: Any, form: str | None, known: dict[str, str] | None
) -> TimeField | None:
    if value is None:
        return {
            "vpc-flow-log": TimeField("start", "s"),
            "cloudwatch-logs": TimeField("timestamp", "ms"),
        }.get(form or "", TimeField(None))
    if value == "arrival":
        return TimeField(None)
    if isinstance(value, str):
        value = {"field": value}
    if not isinstance(value, dict):
        problems.add(at, f"{value!r} is not valid: a field name, {{field, unit}}, or arrival")
        return None
    problems.unknown_keys(at, value, ("field", "unit"))
    default_unit = "ms" if form == "cloudwatch-logs" and value.get("field") == "timestamp" else "s"
    unit = value.get("unit", default_unit)
    if unit not in TIME_UNITS:
        problems.add(f"{at}.unit", f"{unit!r} is not valid; valid choices: {', '.join(TIME_UNITS)}")
        return None
    name = _check_field(problems, f"{at}.field", value.get("field"), known, number=True)
    return TimeField(name, unit) if name else None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _where(problems: Problems, at: str, value: Any, known: dict[str, str] | None) -> Where | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        problems.add(
            at,
            "must map fields to a value, a list of values, or {not: value or list}, "
            "such as {action: REJECT}",
        )
        return None
    conditions = []
    for name, wanted in value.items():
        here = f"{at}.{name}"
        if _check_field(problems, here, name, known) is None:
            continue
        negated = isinstance(wanted, dict)
        if negated:
            if set(wanted) != {"not"}:
                problems.add(here, f"{wanted!r} is not valid: the one operator is 'not'")
                continue
            wanted = wanted["not"]
        values = wanted if isinstance(wanted, list) else [wanted]
        if not values or not all(_scalar(v) for v in values):
            problems.add(
                here,
                f"{wanted!r} is not valid: a value (text, number, true, false, null) or "
                "a non-empty list of them",
            )
            continue
        conditions.append((str(name), tuple(values), negated))
    return Where(tuple(conditions)) if conditions else None


def _seconds(problems: Problems, at: str, value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        seconds = None
    if seconds is None or not low <= seconds <= high:
        problems.add(
            at,
            f"{value!r} is not valid: a duration from {_duration(low)} to {_duration(high)}, "
            "as seconds or with a unit (500ms, 30s, 5m, 6h, 7d)",
        )
        return None
    return seconds


def _window(problems: Problems, at: str, value: Any) -> Window | None:
    if value is None:
        problems.add(at, "is missing: give {size: 1m} (tumbling) or {size: 5m, hop: 1m}")
        return None
    if not isinstance(value, dict):
        value = {"size": value}
    problems.unknown_keys(at, value, ("hop", "size"))
    size = _seconds(problems, f"{at}.size", value.get("size"), 1, DAY)
    hop = _seconds(problems, f"{at}.hop", value["hop"], 1, DAY) if "hop" in value else size
    if size is None or hop is None:
        return None
    ok = True
    for key, seconds in (("size", size), ("hop", hop)):
        if key in value and seconds != int(seconds):
            problems.add(f"{at}.{key}", f"{value.get(key)!r} is not valid: whole seconds")
            ok = False
    if hop > size:
        problems.add(f"{at}.hop", f"{value['hop']!r} is longer than the window: at most its size")
        ok = False
    elif size / hop > MAX_WINDOWS_PER_ROW:
        problems.add(
            f"{at}.hop",
            f"{value['hop']!r} puts each row in {math.ceil(size / hop)} windows: at most "
            f"{MAX_WINDOWS_PER_ROW} (a hop of at least {_duration(size / MAX_WINDOWS_PER_ROW)})",
        )
        ok = False
    return Window(int(size), int(hop)) if ok else None


def _lateness(problems: Problems, at: str, value: Any) -> float | None:
    if value is None:
        return 0.0
    if not isinstance(value, dict):
        problems.add(at, "must be a mapping such as {lateness: 30s}")
        return None
    problems.unknown_keys(at, value, ("lateness",))
    return _seconds(problems, f"{at}.lateness", value.get("lateness", 0), 0, DAY)


def _identifier(problems: Problems, at: str, value: Any, what: str) -> str | None:
    if not isinstance(value, str) or not _IDENTIFIER.match(value):
        problems.add(at, f"{what} {value!r} is not valid: {_NAME_RULE}")
        return None
    if value.lower() in RESERVED_COLUMNS:
        problems.add(at, f"{what} {value!r} is a column every aggregate has: choose another")
        return None
    return value


def _dimensions(problems: Problems, at: str, value: Any, known: dict[str, str] | None) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        problems.add(at, "must be a list of fields, such as [src_app, dst_app]")
        return []
    out: list[str] = []
    for i, name in enumerate(value):
        here = f"{at}[{i}]"
        if _check_field(problems, here, name, known) is None:
            continue
        if _identifier(problems, here, name, "dimension") is None:
            continue
        if name.lower() in (d.lower() for d in out):
            problems.add(here, f"{name!r} is listed twice")
            continue
        out.append(name)
    return out


def _metrics(problems: Problems, at: str, value: Any, known: dict[str, str] | None) -> list[Metric]:
    if not isinstance(value, dict) or not value:
        if value is not None:
            problems.add(at, "must map metric names to metrics, such as {bytes: {sum: bytes}}")
        return []
    out = []
    for name, spec in value.items():
        here = f"{at}.{name}"
        if _identifier(problems, here, name, "metric name") is None:
            continue
        if spec == "count":
            out.append(Metric(name, "count"))
            continue
        kinds = [k for k in METRIC_KINDS if isinstance(spec, dict) and k in spec]
        if not isinstance(spec, dict) or len(kinds) != 1:
            problems.add(
                here,
                f"{spec!r} is not valid: a mapping with exactly one of {', '.join(METRIC_KINDS)} "
                "(and optionally where), or the word count",
            )
            continue
        kind = kinds[0]
        problems.unknown_keys(here, spec, (kind, "where", *METRIC_EXTRAS.get(kind, ())))
        target = spec[kind]
        field_name: str | None
        if kind == "count" and target in ("*", True, None):
            field_name = None
        else:
            numeric = kind in ("sum", "min", "max", "quantile")
            field_name = _check_field(problems, f"{here}.{kind}", target, known, number=numeric)
            if field_name is None:
                continue
        where = _where(problems, f"{here}.where", spec.get("where"), known)
        metric = Metric(name, kind, field_name, where)
        if kind == "quantile":
            q = spec.get("q")
            if isinstance(q, bool) or not isinstance(q, int | float) or not 0 <= q <= 1:
                problems.add(f"{here}.q", f"{q!r} is not valid: the quantile, from 0 to 1 (0.95)")
                continue
            accuracy = spec.get("accuracy", 0.01)
            if (
                isinstance(accuracy, bool)
                or not isinstance(accuracy, int | float)
                or not 0.0001 <= accuracy <= 0.1
            ):
                problems.add(
                    f"{here}.accuracy",
                    f"{accuracy!r} is not valid: a relative accuracy from 0.0001 to 0.1",
                )
                continue
            metric = Metric(name, kind, field_name, where, q=float(q), accuracy=float(accuracy))
        if kind == "distinct":
            precision = spec.get("precision", 12)
            if (
                isinstance(precision, bool)
                or not isinstance(precision, int)
                or not (4 <= precision <= 16)
            ):
                problems.add(
                    f"{here}.precision",
                    f"{precision!r} is not valid: an integer from 4 to 16 (HyperLogLog's "
                    "registers are 2^precision; 12: about 1.6% error)",
                )
                continue
            metric = Metric(name, kind, field_name, where, precision=precision)
        out.append(metric)
    return out


def _enrichments(
    problems: Problems, at: str, value: Any, base: Path, known: dict[str, str] | None
) -> list[Enrichment]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add(
            at, "must be a list of lookups, such as [{lookup: cidr, file: ..., fields: ...}]"
        )
        return []
    kinds = lookup_kinds()
    out = []
    for i, entry in enumerate(value):
        here = f"{at}[{i}]"
        if not isinstance(entry, dict):
            problems.add(here, "must be a mapping with lookup, fields and the lookup's own keys")
            continue
        kind_name = entry.get("lookup")
        if kind_name not in kinds:
            problems.add(
                f"{here}.lookup",
                f"unknown lookup kind {kind_name!r}; valid kinds: {', '.join(kinds.names())}",
            )
            continue
        kind = kinds.get(str(kind_name))
        problems.unknown_keys(here, entry, (*ENRICH_KEYS, *kind.keys))
        fields = entry.get("fields")
        pairs: list[tuple[str, str]] = []
        if not isinstance(fields, dict) or not fields:
            problems.add(
                f"{here}.fields",
                "must map the fields read to the fields written, such as {srcaddr: src_app}",
            )
        else:
            for source, target in fields.items():
                spot = f"{here}.fields.{source}"
                if _check_field(problems, spot, source, known) is None:
                    continue
                if _identifier(problems, spot, target, "field written") is None:
                    continue
                pairs.append((str(source), str(target)))
        default = entry.get("default")
        if default is not None and not isinstance(default, str | int | float):
            problems.add(f"{here}.default", f"{default!r} is not valid: text, or leave it out")
            default = None
        own = {k: entry[k] for k in kind.keys if k in entry}
        lookup = kind.build(own, here, problems, base)
        if lookup is not None and pairs:
            out.append(
                Enrichment(
                    str(kind_name),
                    tuple(pairs),
                    None if default is None else str(default),
                    own,
                    lookup,
                )
            )
        if known is not None:  # later steps may read what this one writes
            known.update({target: "text" for _, target in pairs})
    return out


# -- helpers ----------------------------------------------------------------------------------


def _same(value: Any, wanted: Any) -> bool:
    if value is None or wanted is None:
        return value is wanted
    if isinstance(value, bool) or isinstance(wanted, bool):
        return value is wanted or str(value).lower() == str(wanted).lower()
    if value == wanted:
        return True
    return str(value) == str(wanted)


def _iso_seconds(text: str) -> float | None:
    from datetime import UTC, datetime

    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def _duration(seconds: float) -> str:
    for unit, size in (("d", DAY), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
