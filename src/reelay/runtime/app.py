"""Apps: functions and their triggers, declared in a serverless.yml-shaped YAML file.

::

    service: photos
    provider:                       # defaults for every function (optional)
      timeout: 30
      environment: {STAGE: dev}
    functions:
      thumbnail:
        handler: handlers/images.thumbnail      # file handlers/images.py, function thumbnail
        timeout: 60                             # seconds, 1-900 (default 6)
        memorySize: 512                         # MB, 128-10240 (default 1024), given to the context
        reservedConcurrency: 4                  # at most 4 run at once (0 disables the function)
        maximumRetryAttempts: 2                 # 0-2 (default 2)
        maximumEventAge: 3600                   # seconds, 60-21600 (default 21600)
        destinations: {onSuccess: notify, onFailure: event}
        events:
          - s3: {bucket: uploads, event: "s3:ObjectCreated:*", rules: [{prefix: in/}]}
          - eventBridge: {pattern: {source: [my.app]}}
          - schedule: rate(5 minutes)
          - stream: {stream: clicks, batchSize: 100, startingPosition: TRIM_HORIZON}

``include: [media]`` brings in the functions of an installed app, and an ``events:``
entry may also be of a kind an installed app registers (see `reelay.plugins`).
``sources:`` names the SQS queues that bring a real bucket's S3 events to the log
(see `reelay.sources`).

`reelay.runtime.load_app` validates the whole file before anything runs and raises
`AppError` listing every problem, each naming the file, the key path, the bad value and
the valid choices.
Handler paths resolve against the directory of the app file, as serverless.yml does.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reelay._yamlfile import Problems, int_in, kinded, number_in, read_yaml
from reelay.errors import (
    AppError,
    FunctionNotFoundError,
    InvalidEventError,
    InvalidPatternError,
    InvalidScheduleError,
)
from reelay.events import Pattern, Schedule, compile_pattern, parse_schedule, s3_event_matches
from reelay.plugins import TriggerKind, TriggerSite, installed, trigger_kinds
from reelay.runtime._task import AppCode
from reelay.sources import SQSSource, parse_sources
from reelay.streams import check_stream_name

FUNCTION_KEYS = (
    "description",
    "destinations",
    "environment",
    "events",
    "handler",
    "maximumEventAge",
    "maximumRetryAttempts",
    "memorySize",
    "reservedConcurrency",
    "timeout",
)
PROVIDER_KEYS = ("environment", "memorySize", "name", "region", "runtime", "stage", "timeout")
TOP_KEYS = ("functions", "include", "package", "provider", "service", "sources")
PACKAGE_KEYS = ("modules",)
S3_KEYS = ("bucket", "event", "existing", "rules")
SCHEDULE_KEYS = ("description", "enabled", "input", "name", "rate")
EVENTBRIDGE_KEYS = ("eventBus", "pattern")
STREAM_KEYS = (
    "batchSize",
    "bisectBatchOnFunctionError",
    "destinations",
    "enabled",
    "functionResponseTypes",
    "maximumBatchingWindowInSeconds",
    "maximumRecordAgeInSeconds",
    "maximumRetryAttempts",
    "parallelizationFactor",
    "startingPosition",
    "startingPositionTimestamp",
    "stream",
    "tumblingWindowInSeconds",
    "type",
)
STARTING_POSITIONS = ("LATEST", "TRIM_HORIZON", "AT_TIMESTAMP")
STREAM_ARN = re.compile(r"^arn:aws:kinesis:[^:]*:[0-9]*:stream/(.+)$")
DESTINATION_KEYS = ("onFailure", "onSuccess")
EVENT_DESTINATIONS = ("event", "eventBus")  # a destination value that means "emit an event"
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Variables the Lambda runtime sets itself; Lambda refuses them in a function's environment.
RESERVED_ENVIRONMENT = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)


@dataclass(frozen=True)
class S3Trigger:
    bucket: str
    event: str  # e.g. "s3:ObjectCreated:*"
    prefix: str = ""
    suffix: str = ""

    def matches(self, bucket: str, event_name: str, key: str) -> bool:
        return (
            bucket == self.bucket
            and key.startswith(self.prefix)
            and key.endswith(self.suffix)
            and s3_event_matches(self.event, event_name)
        )

    def describe(self) -> str:
        return f"{self.event} s3://{self.bucket}/{self.prefix}*{self.suffix}"


@dataclass(frozen=True)
class PatternTrigger:
    pattern: dict[str, Any]
    compiled: Pattern = field(compare=False, repr=False)

    def describe(self) -> str:
        return f"pattern {json.dumps(self.pattern, separators=(',', ':'))}"


@dataclass(frozen=True)
class ScheduleTrigger:
    expression: str
    schedule: Schedule = field(compare=False, repr=False)
    name: str = ""
    input: Any = None

    def describe(self) -> str:
        return self.expression


@dataclass(frozen=True)
class StreamTrigger:
    """Lambda's event source mapping for a Kinesis stream (see `reelay.runtime.mappings`):
    the function gets the shard's records in batches, in order, one batch of a shard
    (of each of its ``parallelization`` partition-key groups) at a time."""

    stream: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    starting_timestamp: float | None = None
    batching_window_s: float = 0.0
    parallelization: int = 1
    bisect: bool = False
    max_retry_attempts: int = -1  # -1: until the records expire
    max_record_age_s: float = -1.0  # -1: no limit
    report_item_failures: bool = False
    tumbling_window_s: float = 0.0
    on_failure: Destination | None = None
    index: int = 0  # its place among the function's triggers: part of its checkpoints' key

    def describe(self) -> str:
        return f"stream {self.stream} (batches of {self.batch_size}, {self.starting_position})"


Trigger = S3Trigger | PatternTrigger | ScheduleTrigger | StreamTrigger


@dataclass(frozen=True)
class Destination:
    """Where a result goes: another function of the app, or the event bus."""

    function: str | None = None  # None means "emit an event"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout_s: float = 6.0
    memory_mb: int = 1024
    reserved_concurrency: int | None = None
    max_retry_attempts: int = 2
    max_event_age_s: float = 21600.0
    environment: dict[str, str] = field(default_factory=dict)
    on_success: Destination | None = None
    on_failure: Destination | None = None
    s3: tuple[S3Trigger, ...] = ()
    patterns: tuple[PatternTrigger, ...] = ()
    schedules: tuple[ScheduleTrigger, ...] = ()
    streams: tuple[StreamTrigger, ...] = ()

    @property
    def max_attempts(self) -> int:
        return 1 + self.max_retry_attempts

    @property
    def triggers(self) -> list[str]:
        """Each trigger in a line a person reads: S3 events, patterns, schedules."""
        triggers: tuple[Trigger, ...] = (
            *self.s3,
            *self.patterns,
            *self.schedules,
            *self.streams,
        )
        return [t.describe() for t in triggers]


@dataclass(frozen=True)
class App:
    """A loaded, validated app: its functions by name, the directory handlers resolve in,
    and the event sources `reelay up` consumes for it (``sources:``)."""

    name: str
    root: Path
    functions: dict[str, FunctionSpec]
    path: Path | None = None
    sources: tuple[SQSSource, ...] = ()
    modules: tuple[Path, ...] = ()  # package directories the handlers import (package.modules)

    @property
    def code(self) -> AppCode:
        """What a worker needs to import this app's handlers: what an executor ships."""
        return AppCode(str(self.root), tuple(map(str, self.modules)))

    def with_environment(self, environment: dict[str, str]) -> App:
        """This app with ``environment`` laid over every function's own."""
        functions = {
            name: replace(spec, environment=spec.environment | environment)
            for name, spec in self.functions.items()
        }
        return replace(self, functions=functions)

    def triggers(self, name: str) -> list[str]:
        """What invokes function ``name``, in lines a person reads: its own triggers,
        then the functions whose destination it is."""
        spec = self.function(name)
        callers = [
            (kind, other.name)
            for other in self.functions.values()
            for kind, dest in (("onSuccess", other.on_success), ("onFailure", other.on_failure))
            if dest is not None and dest.function == name
        ]
        kinds = dict.fromkeys(kind for kind, _ in callers)
        return spec.triggers + [
            f"{kind} destination of {', '.join(n for k, n in callers if k == kind)}"
            for kind in kinds
        ]

    def function(self, name: str) -> FunctionSpec:
        """The named function; `FunctionNotFoundError` listing the valid names."""
        if name not in self.functions:
            raise FunctionNotFoundError(
                f"function {name!r} is not in app {self.name!r}; "
                f"functions: {', '.join(sorted(self.functions))}"
            )
        return self.functions[name]


def load_yaml_app(path: Path) -> App:
    """Load and fully validate a ``reelay.yaml``; raise `AppError` listing every problem.
    (`reelay.runtime.load_app` takes any app: a YAML, a Python file, a built-in name.)"""
    doc = read_yaml(path)
    app = parse_app(doc, root=path.parent.resolve(), source=str(path))
    return replace(app, path=path.resolve())


def parse_app(
    doc: Any, *, root: Path, source: str = "<app>", problems: Problems | None = None
) -> App:
    """Validate an app already parsed from YAML (or built in Python) and build it."""
    problems = problems or Problems(source)
    if not isinstance(doc, dict):
        problems.add(
            "", f"the file must be a mapping with a 'functions' key, not {type(doc).__name__}"
        )
        raise AppError(problems.items)
    problems.unknown_keys("", doc, TOP_KEYS)
    provider = doc.get("provider") or {}
    if not isinstance(provider, dict):
        problems.add("provider", "must be a mapping")
        provider = {}
    problems.unknown_keys("provider", provider, PROVIDER_KEYS)
    included = _included(problems, doc.get("include"), provider)
    functions = doc.get("functions") or {}
    if not isinstance(functions, dict) or not (functions or included):
        problems.add(
            "functions",
            "must be a mapping of function names to definitions, with at least one function "
            "(or an 'include' of an installed app)",
        )
        raise AppError(problems.items)
    specs: dict[str, FunctionSpec] = dict(included)
    for name, body in functions.items():
        if str(name) in included:
            problems.add(
                f"functions.{name}", "is already a function of an included app; choose another name"
            )
            continue
        spec = _function(problems, str(name), body, provider, root)
        if spec is not None:
            specs[spec.name] = spec
    sources = parse_sources(problems, doc.get("sources"))
    modules = _modules(problems, doc.get("package"), root)
    valid = sorted({*map(str, functions), *included})
    for spec in specs.values():
        destinations = [
            (f"destinations.{key}", dest)
            for key, dest in (("onSuccess", spec.on_success), ("onFailure", spec.on_failure))
        ] + [
            (f"events[{t.index}].stream.destinations.onFailure", t.on_failure) for t in spec.streams
        ]
        for key, dest in destinations:
            if dest and dest.function and dest.function not in valid:
                problems.add(
                    f"functions.{spec.name}.{key}",
                    f"{dest.function!r} is not a function of this app nor 'event'; "
                    f"valid choices: event, {', '.join(valid)}",
                )
    if problems.items:
        raise AppError(problems.items)
    service = doc.get("service") or root.name
    return App(str(service), root, specs, sources=sources, modules=modules)


def _modules(problems: Problems, package: Any, root: Path) -> tuple[Path, ...]:
    """``package.modules``: Python packages outside the app directory that its handlers
    import (a library shared by several apps), as directories relative to the app file.
    Workers import them wherever they run: Ray ships them (``py_modules``)."""
    if package is None:
        return ()
    if not isinstance(package, dict):
        problems.add("package", "must be a mapping (key: modules)")
        return ()
    problems.unknown_keys("package", package, PACKAGE_KEYS)
    value = package.get("modules") or []
    if not isinstance(value, list):
        problems.add("package.modules", "must be a list of package directories")
        return ()
    found = []
    for i, entry in enumerate(value):
        where = f"package.modules[{i}]"
        if not isinstance(entry, str) or not entry.strip():
            problems.add(where, f"must be a directory path, not {entry!r}")
            continue
        path = (root / entry).resolve()
        if not path.is_dir():
            problems.add(where, f"{entry!r}: no such directory ({path})")
        elif not (path / "__init__.py").is_file():
            problems.add(where, f"{entry!r} is not a Python package: it has no __init__.py")
        elif not path.name.isidentifier():
            problems.add(where, f"{entry!r}: {path.name!r} cannot be imported (not an identifier)")
        else:
            found.append(path)
    return tuple(found)


def app_file(name: str) -> Path | None:
    """The app file of the installed app ``name`` (``media``, ``demo``, or a plugin's);
    None when no installed app of that name has functions."""
    plugin = installed().get(name)
    return plugin.app_file if plugin is not None else None


def _app_names() -> str:
    return ", ".join(name for name, plugin in installed().items() if plugin.app_file) or "none"


def _included(problems: Problems, value: Any, provider: dict[str, Any]) -> dict[str, FunctionSpec]:
    """The functions of the installed apps named by ``include``, with this file's
    ``provider.environment`` laid over theirs (so a user configures them here)."""
    if value is None:
        return {}
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add("include", f"must be a list of installed app names: {_app_names()}")
        return {}
    env = _environment(problems, "provider", provider.get("environment"))
    out: dict[str, FunctionSpec] = {}
    for i, name in enumerate(value):
        path = app_file(name)
        if path is None:
            problems.add(
                f"include[{i}]",
                f"unknown app {name!r}; installed apps: {_app_names()}",
            )
            continue
        out |= load_yaml_app(path).with_environment(env).functions
    return out


def _function(
    problems: Problems, name: str, body: Any, provider: dict[str, Any], root: Path
) -> FunctionSpec | None:
    where = f"functions.{name}"
    if not FUNCTION_NAME.match(name):
        problems.add(
            where, f"function name {name!r} is not valid: use 1-64 letters, digits, '-' or '_'"
        )
    if not isinstance(body, dict):
        problems.add(where, "must be a mapping with at least a 'handler' key")
        return None
    problems.unknown_keys(where, body, FUNCTION_KEYS)
    handler = body.get("handler")
    if not isinstance(handler, str) or not handler:
        problems.add(
            f"{where}.handler",
            f"{handler!r} is not valid: expected 'module.function', "
            "e.g. 'handler.main' or 'src/handlers.main'",
        )
        handler = ""
    else:
        _check_handler(problems, f"{where}.handler", handler, root)
    merged = {k: provider[k] for k in ("timeout", "memorySize") if k in provider} | body
    timeout = int_in(problems, f"{where}.timeout", merged.get("timeout", 6), 1, 900)
    memory = int_in(problems, f"{where}.memorySize", merged.get("memorySize", 1024), 128, 10240)
    reserved = body.get("reservedConcurrency")
    if reserved is not None:
        reserved = int_in(problems, f"{where}.reservedConcurrency", reserved, 0, 1000)
    retries = int_in(
        problems, f"{where}.maximumRetryAttempts", body.get("maximumRetryAttempts", 2), 0, 2
    )
    age = int_in(
        problems, f"{where}.maximumEventAge", body.get("maximumEventAge", 21600), 60, 21600
    )
    environment = _environment(
        problems, where, provider.get("environment"), body.get("environment")
    )
    on_success, on_failure = _destinations(problems, where, body.get("destinations"))
    triggers = _triggers(problems, name, body.get("events"))
    return FunctionSpec(
        name=name,
        handler=handler,
        timeout_s=float(timeout or 6),
        memory_mb=memory or 1024,
        reserved_concurrency=reserved,
        max_retry_attempts=2 if retries is None else retries,
        max_event_age_s=float(age or 21600),
        environment=environment,
        on_success=on_success,
        on_failure=on_failure,
        s3=tuple(t for t in triggers if isinstance(t, S3Trigger)),
        patterns=tuple(t for t in triggers if isinstance(t, PatternTrigger)),
        schedules=tuple(t for t in triggers if isinstance(t, ScheduleTrigger)),
        streams=tuple(t for t in triggers if isinstance(t, StreamTrigger)),
    )


def _environment(problems: Problems, where: str, *layers: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    for layer in layers:
        if layer is None:
            continue
        if not isinstance(layer, dict):
            problems.add(f"{where}.environment", "must be a mapping of variable names to values")
            continue
        for key, value in layer.items():
            if str(key) in RESERVED_ENVIRONMENT:
                problems.add(
                    f"{where}.environment.{key}",
                    "is reserved: the Lambda runtime sets it for every function",
                )
            elif isinstance(value, dict | list) or value is None:
                problems.add(
                    f"{where}.environment.{key}",
                    f"{value!r} is not valid: values must be strings or numbers",
                )
            else:
                env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _destinations(
    problems: Problems,
    where: str,
    value: Any,
) -> tuple[Destination | None, Destination | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict):
        problems.add(f"{where}.destinations", "must be a mapping with onSuccess and/or onFailure")
        return None, None
    problems.unknown_keys(f"{where}.destinations", value, DESTINATION_KEYS)
    out: list[Destination | None] = []
    for key in ("onSuccess", "onFailure"):
        target = value.get(key)
        if isinstance(target, dict):  # serverless's long form: {type: ..., arn: ...}
            target = target.get("type") or target.get("arn")
        if target is None:
            out.append(None)
        elif not isinstance(target, str) or not target:
            problems.add(
                f"{where}.destinations.{key}",
                f"{target!r} is not valid: name a function of this app, or 'event'",
            )
            out.append(None)
        elif target in EVENT_DESTINATIONS or target.startswith("arn:aws:events:"):
            out.append(Destination())
        else:
            out.append(Destination(function=target.rsplit(":", 1)[-1]))
    return out[0], out[1]


def _triggers(problems: Problems, function: str, events: Any) -> list[Trigger]:
    """A function's ``events:``, each entry read by the trigger kind it names (the
    core's, or one an installed app registers: see `reelay.plugins.trigger_kinds`)."""
    where = f"functions.{function}"
    if events is None:
        return []
    if not isinstance(events, list):
        problems.add(f"{where}.events", "must be a list of triggers")
        return []
    kinds = trigger_kinds()
    out: list[Trigger] = []
    for i, at, kind, spec in kinded(
        problems, f"{where}.events", events, kinds, each="trigger", kind="event kind"
    ):
        out.extend(kinds.get(kind)(spec, TriggerSite(function, i, f"{at}.{kind}"), problems))
    return out


def _s3_kind(spec: Any, site: TriggerSite, problems: Problems) -> list[Trigger]:
    trigger = _s3_trigger(problems, site.at, spec)
    return [trigger] if trigger else []


def _pattern_kind(spec: Any, site: TriggerSite, problems: Problems) -> list[Trigger]:
    trigger = _pattern_trigger(problems, site.at, spec)
    return [trigger] if trigger else []


def _schedule_kind(spec: Any, site: TriggerSite, problems: Problems) -> list[Trigger]:
    # The default name is the schedule's key in the state: it must not change.
    name = f"functions.{site.function}-{site.index}"
    trigger = _schedule_trigger(problems, site.at, spec, name)
    return [trigger] if trigger else []


def _s3_trigger(problems: Problems, at: str, spec: Any) -> S3Trigger | None:
    if isinstance(spec, str):
        spec = {"bucket": spec}
    if not isinstance(spec, dict):
        problems.add(at, "must be a bucket name or a mapping with bucket, event and rules")
        return None
    problems.unknown_keys(at, spec, S3_KEYS)
    bucket = spec.get("bucket")
    if not isinstance(bucket, str) or not bucket:
        problems.add(f"{at}.bucket", f"{bucket!r} is not valid: name a bucket")
        return None
    event = spec.get("event", "s3:ObjectCreated:*")
    try:
        s3_event_matches(str(event), "ObjectCreated:Put")
    except InvalidEventError as exc:
        problems.add(f"{at}.event", str(exc))
        return None
    prefix = suffix = ""
    rules = spec.get("rules") or []
    if not isinstance(rules, list):
        problems.add(f"{at}.rules", "must be a list such as [{prefix: uploads/}, {suffix: .mp4}]")
        rules = []
    for j, rule in enumerate(rules):
        if (
            not isinstance(rule, dict)
            or len(rule) != 1
            or next(iter(rule)) not in ("prefix", "suffix")
            or not isinstance(next(iter(rule.values())), str)
        ):
            problems.add(
                f"{at}.rules[{j}]",
                f"{rule!r} is not valid: each rule is {{prefix: TEXT}} or {{suffix: TEXT}}",
            )
        elif "prefix" in rule:
            prefix = rule["prefix"]
        else:
            suffix = rule["suffix"]
    return S3Trigger(bucket, str(event), prefix, suffix)


def _pattern_trigger(problems: Problems, at: str, spec: Any) -> PatternTrigger | None:
    if not isinstance(spec, dict) or "pattern" not in spec:
        problems.add(at, "must be a mapping with a 'pattern' (an EventBridge event pattern)")
        return None
    problems.unknown_keys(at, spec, EVENTBRIDGE_KEYS)
    try:
        return PatternTrigger(spec["pattern"], compile_pattern(spec["pattern"]))
    except InvalidPatternError as exc:
        problems.add(f"{at}.pattern", str(exc))
        return None


def _schedule_trigger(
    problems: Problems, at: str, spec: Any, default_name: str
) -> ScheduleTrigger | None:
    if isinstance(spec, str):
        spec = {"rate": spec}
    if not isinstance(spec, dict) or "rate" not in spec:
        problems.add(at, "must be 'rate(...)' / 'cron(...)' or a mapping with a 'rate' key")
        return None
    problems.unknown_keys(at, spec, SCHEDULE_KEYS)
    if spec.get("enabled", True) is False:
        return None
    expressions = spec["rate"] if isinstance(spec["rate"], list) else [spec["rate"]]
    name = str(spec.get("name") or default_name)
    out = None
    for expression in expressions:
        try:
            out = ScheduleTrigger(
                str(expression), parse_schedule(str(expression)), name, spec.get("input")
            )
        except InvalidScheduleError as exc:
            problems.add(f"{at}.rate", str(exc))
    if len(expressions) != 1:
        problems.add(f"{at}.rate", "give exactly one expression per schedule trigger")
        return None
    return out


def _stream_kind(spec: Any, site: TriggerSite, problems: Problems) -> list[Trigger]:
    trigger = _stream_trigger(problems, site.at, spec, site.index)
    return [trigger] if trigger else []


def _stream_trigger(problems: Problems, at: str, spec: Any, index: int) -> StreamTrigger | None:
    """A ``stream:`` trigger: a stream name or ARN, or a mapping with Lambda's event
    source mapping settings (serverless.yml's names)."""
    if isinstance(spec, str):
        spec = {"stream": spec}
    if not isinstance(spec, dict):
        problems.add(at, "must be a stream name or a mapping with stream, batchSize...")
        return None
    problems.unknown_keys(at, spec, STREAM_KEYS)
    if spec.get("type", "kinesis") != "kinesis":
        problems.add(f"{at}.type", f"{spec['type']!r} is not valid: the one type is kinesis")
    if spec.get("enabled", True) is False:
        return None
    stream = spec.get("stream")
    arn = STREAM_ARN.match(stream) if isinstance(stream, str) else None
    name = arn.group(1) if arn else stream
    try:
        check_stream_name(name)
    except ValueError as exc:
        problems.add(
            f"{at}.stream", f"{exc} (a name or arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"
        )
        return None

    def number(key: str, default: int, low: int, high: int, *, whole: bool = True) -> Any:
        value = spec.get(key, default)
        if whole:
            found: float | None = int_in(problems, f"{at}.{key}", value, low, high)
        else:
            found = number_in(problems, f"{at}.{key}", value, low, high)
        return default if found is None else found

    position = spec.get("startingPosition", "TRIM_HORIZON")
    if position not in STARTING_POSITIONS:
        problems.add(
            f"{at}.startingPosition",
            f"{position!r} is not valid; valid choices: {', '.join(STARTING_POSITIONS)}",
        )
    stamp = spec.get("startingPositionTimestamp")
    if (position == "AT_TIMESTAMP") != (stamp is not None):
        problems.add(
            f"{at}.startingPositionTimestamp",
            "give it (epoch seconds) with startingPosition AT_TIMESTAMP, and only then",
        )
    elif stamp is not None:
        stamp = number_in(problems, f"{at}.startingPositionTimestamp", stamp, 0, 4102444800)
    age = number("maximumRecordAgeInSeconds", -1, -1, 604800)
    if age not in (-1,) and age < 60:
        problems.add(f"{at}.maximumRecordAgeInSeconds", f"{age} is not valid: -1, or 60 to 604800")
    types = spec.get("functionResponseTypes", [])
    if not isinstance(types, list) or not set(types) <= {"ReportBatchItemFailures"}:
        problems.add(
            f"{at}.functionResponseTypes",
            f"{types!r} is not valid: a list of ReportBatchItemFailures (the one type)",
        )
        types = []
    for key in ("bisectBatchOnFunctionError",):
        if not isinstance(spec.get(key, False), bool):
            problems.add(f"{at}.{key}", f"{spec[key]!r} is not valid: true or false")
    _, on_failure = _destinations(problems, at, spec.get("destinations"))
    if isinstance(spec.get("destinations"), dict) and "onSuccess" in spec["destinations"]:
        problems.add(f"{at}.destinations.onSuccess", "a stream trigger has only onFailure")
    return StreamTrigger(
        stream=str(name),
        batch_size=number("batchSize", 100, 1, 10000),
        starting_position=str(position),
        starting_timestamp=stamp,
        batching_window_s=number("maximumBatchingWindowInSeconds", 0, 0, 300, whole=False),
        parallelization=number("parallelizationFactor", 1, 1, 10),
        bisect=spec.get("bisectBatchOnFunctionError") is True,
        max_retry_attempts=number("maximumRetryAttempts", -1, -1, 10000),
        max_record_age_s=float(age),
        report_item_failures="ReportBatchItemFailures" in types,
        tumbling_window_s=number("tumblingWindowInSeconds", 0, 0, 900, whole=False),
        on_failure=on_failure,
        index=index,
    )


#: The trigger kinds of the runtime itself (`reelay.plugins.trigger_kinds` adds apps').
CORE_TRIGGER_KINDS: dict[str, TriggerKind] = {
    "eventBridge": _pattern_kind,
    "s3": _s3_kind,
    "schedule": _schedule_kind,
    "stream": _stream_kind,
}


def _check_handler(problems: Problems, at: str, handler: str, root: Path) -> None:
    """Check, without running any user code, that the handler's module and function exist."""
    module, _, function = handler.rpartition(".")
    if not module or not function.isidentifier():
        problems.add(
            at,
            f"{handler!r} is not valid: expected 'module.function', e.g. "
            "'handler.main' or 'src/handlers.main'",
        )
        return
    relative = module.replace(".", "/") if "/" not in module else module
    candidates = [root / f"{relative}.py", root / relative / "__init__.py"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None and "/" not in module:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            path = Path(spec.origin)
    if path is None:
        problems.add(
            at, f"{handler!r}: module not found: looked for {', '.join(str(c) for c in candidates)}"
        )
        return
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        problems.add(at, f"{handler!r}: cannot parse {path}: {exc}")
        return
    if function not in _top_level_names(tree):
        problems.add(at, f"{handler!r}: {path} defines no top-level {function!r}")


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names
