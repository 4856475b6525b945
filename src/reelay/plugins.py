"""Apps are plugins: what an app adds to reelay, and how reelay finds it.

The spine (events, state, runtime, storage, web, observe) knows no app. An app, built in
or a user's package, describes what it adds in one `Plugin` and names it in its package
metadata, under the entry-point group ``reelay.apps``::

    # pyproject.toml of the app's package
    [project.entry-points."reelay.apps"]
    thumbs = "thumbs._plugin:plugin"      # a `reelay.plugins.Plugin` named "thumbs"

reelay's own apps (``media``, ``demo``) are found the same way. What a plugin adds:

- ``app_file``: its functions (a reelay.yaml): ``include: [thumbs]`` in a user's app,
  or ``reelay up --app thumbs``;
- ``trigger_kinds``: the kinds of ``events:`` entries it understands (each turns its
  YAML into the runtime's triggers: object events, event patterns, schedules);
- ``validate_kinds``: the files ``reelay validate --kind KIND`` checks for it;
- ``commands``: its ``reelay`` subcommands;
- ``observe``: for one home's state, its entities (media's titles), Prometheus metrics
  and the live figures alert rules read (named in ``figures``);
- ``routes``: adds its HTTP API routes to the server's FastAPI app (after reelay's own,
  before the dashboard's);
- ``pages``: its dashboard pages, a directory of static files the server serves under
  ``/apps/NAME/``; the dashboard loads every ``*.css`` and ``*.js`` file at its top at
  start (by name), and the scripts register their pages, nav links and overview sections
  on ``window.reelay`` (see web/static/app.js; media's are in media/static/);
- ``alert_rules``: its built-in alert rules (a rule file), loaded with reelay's own.

Trigger kinds and validate kinds are `Registry` objects (names to things, each name
registered once, an unknown name an error that lists the valid ones), holding the
core's kinds and every plugin's. Discovery runs once per process; `reload` runs it again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeAlias, TypeVar

from reelay._yamlfile import Problems
from reelay.errors import ConfigError

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI
    from prometheus_client.core import Metric

    from reelay.client import Client
    from reelay.runtime.app import PatternTrigger, S3Trigger, ScheduleTrigger, StreamTrigger
    from reelay.state import State

    Trigger: TypeAlias = S3Trigger | PatternTrigger | ScheduleTrigger | StreamTrigger

__all__ = [
    "GROUP",
    "Entities",
    "Observer",
    "Plugin",
    "Problems",
    "Registry",
    "TriggerKind",
    "TriggerSite",
    "ValidateKind",
    "installed",
    "reload",
    "trigger_kinds",
    "validate_kinds",
]

GROUP = "reelay.apps"  # the entry-point group apps register under
CORE = "reelay"  # who registered the core's own kinds, in messages

T = TypeVar("T")


class Registry(Generic[T]):
    """Names to things of one kind, each name registered once (cloud-custodian's
    registries): a second registration, or a lookup of a name nobody registered, is a
    `ConfigError` that says who registered what, or lists the valid names."""

    def __init__(self, what: str) -> None:
        self.what = what  # "trigger kind", in messages
        self._items: dict[str, T] = {}
        self._owners: dict[str, str] = {}

    def register(self, name: str, item: T, *, by: str) -> None:
        if name in self._items:
            raise ConfigError(
                f"{self.what} {name!r} is registered twice: by {self._owners[name]!r} and "
                f"by {by!r}; uninstall one of the two apps"
            )
        self._items[name] = item
        self._owners[name] = by

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(f"unknown {self.what} {name!r}; valid: {', '.join(self.names())}")
        return self._items[name]

    def owner(self, name: str) -> str:
        """Who registered ``name``: ``reelay`` or an app's name."""
        self.get(name)
        return self._owners[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


@dataclass(frozen=True)
class TriggerSite:
    """Where a trigger is declared: function ``function``'s ``events[index]``, at key
    path ``at`` (``functions.f.events[0].s3``), for messages and default names."""

    function: str
    index: int
    at: str


#: Reads one ``events:`` entry's value into the runtime's triggers, adding every
#: problem to ``problems`` (at ``site.at`` or below it) instead of raising.
TriggerKind = Callable[[Any, TriggerSite, Problems], "Sequence[Trigger]"]


@dataclass(frozen=True)
class ValidateKind:
    """A file kind ``reelay validate --kind`` checks.

    ``check`` loads and validates the whole file, raising `reelay.errors.AppError` (or
    a subclass) that lists every problem; it returns what the file holds, in a line
    (``ladder demo: 3 outputs: ...``). ``about`` says what such a file is.
    """

    about: str
    check: Callable[[Path], str]


class Entities(Protocol):
    """Things an app shows as its own (media: titles), listed and followed live.

    The API's ``/api/live`` stream sends ``all()`` under ``name``, and both it and
    ``/api/invocations`` take ``param`` (``?title=ID``) to follow one of them.
    """

    name: str  # plural, as the live stream's key: "titles"
    param: str  # the query parameter naming one: "title"
    about: str  # what its id is, for the API's documentation: "a media title's id"

    def all(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every one, newest first (only those in ``status``, if given)."""
        ...

    def detail(self, entity_id: str, client: Client) -> dict[str, Any]:
        """One, with whatever the app shows of it; `LookupError` if there is none."""
        ...

    def invocation_ids(self, entity_id: str) -> list[str]:
        """Its invocations' ids, newest first; `LookupError` if there is none."""
        ...


class Observer(Protocol):
    """What an app adds to the observation of one home: its entities, its Prometheus
    metric families, and its live figures (the names in `Plugin.figures`)."""

    @property
    def entities(self) -> Sequence[Entities]: ...

    def collect(self) -> Iterable[Metric]: ...

    def snapshot(self, now: float) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Plugin:
    """Everything one app adds to reelay. Every field but ``name`` is optional.

    The callables run only when reelay needs what they make, so a plugin's module stays
    light to import: it names things, and imports its app where it builds them.
    """

    name: str
    app_file: Path | None = None
    trigger_kinds: Mapping[str, TriggerKind] = field(default_factory=dict)
    validate_kinds: Mapping[str, ValidateKind] = field(default_factory=dict)
    commands: Callable[[], Sequence[click.Command]] | None = None
    figures: tuple[str, ...] = ()
    observe: Callable[[State], Observer] | None = None
    routes: Callable[[FastAPI, Client, Observer | None], None] | None = None
    pages: Path | None = None
    alert_rules: Path | None = None


def load_entry_point(point: EntryPoint, kind: type[T], what: str) -> T:
    """What an entry point names, a ``kind``; else a `ConfigError` naming the entry point
    and what went wrong (a broken package, or one that names something else)."""
    try:
        loaded = point.load()
    except Exception as exc:  # a broken package: name it, and what went wrong
        raise ConfigError(
            f"{what} {point.name!r} ({point.value}, entry point group {point.group!r}) cannot "
            f"be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(loaded, kind):
        raise ConfigError(
            f"entry point {point.name!r} = {point.value!r} in group {point.group!r} must name "
            f"a {kind.__module__}.{kind.__qualname__}, not {loaded!r}"
        )
    return loaded


@functools.cache
def installed() -> Mapping[str, Plugin]:
    """Every installed app's plugin by name, read from the ``reelay.apps`` entry points."""
    found: dict[str, Plugin] = {}
    where: dict[str, str] = {}
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        plugin = load_entry_point(point, Plugin, "app")
        if plugin.name != point.name:
            raise ConfigError(
                f"entry point {point.name!r} = {point.value!r} in group {GROUP!r} must name a "
                f"reelay.plugins.Plugin whose name is {point.name!r}, not {plugin!r}"
            )
        if point.name in found and where[point.name] != point.value:
            raise ConfigError(
                f"app {point.name!r} is registered twice: by {where[point.name]!r} and by "
                f"{point.value!r}; uninstall one of the two packages"
            )
        found[point.name] = plugin
        where[point.name] = point.value
    return found


@functools.cache
def trigger_kinds() -> Registry[TriggerKind]:
    """The kinds an ``events:`` entry may be: the core's (s3, eventBridge, schedule),
    then every installed app's."""
    from reelay.runtime.app import CORE_TRIGGER_KINDS

    registry: Registry[TriggerKind] = Registry("trigger kind")
    for name, kind in CORE_TRIGGER_KINDS.items():
        registry.register(name, kind, by=CORE)
    for plugin in installed().values():
        for name, kind in plugin.trigger_kinds.items():
            registry.register(name, kind, by=plugin.name)
    return registry


@functools.cache
def validate_kinds() -> Registry[ValidateKind]:
    """The file kinds ``reelay validate`` checks: the core's (app, alerts), then every
    installed app's."""
    from reelay.observe.alerts import VALIDATE_ALERTS
    from reelay.runtime.loading import VALIDATE_APP

    registry: Registry[ValidateKind] = Registry("validate kind")
    registry.register("app", VALIDATE_APP, by=CORE)
    registry.register("alerts", VALIDATE_ALERTS, by=CORE)
    for plugin in installed().values():
        for name, kind in plugin.validate_kinds.items():
            registry.register(name, kind, by=plugin.name)
    return registry


def reload() -> None:
    """Find the installed apps again (after installing one into a running process)."""
    for cached in (installed, trigger_kinds, validate_kinds):
        cached.cache_clear()
