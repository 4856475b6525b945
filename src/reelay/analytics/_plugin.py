"""The analytics app as a plugin (entry point ``analytics`` in the ``reelay.apps`` group).

What it adds to reelay: its functions (``flows/reelay.yaml``: Netflix's flow-log
example and reelay's own logs, aggregated by `reelay.analytics.handler.aggregate`),
the ``aggregates`` and ``applications`` files ``reelay validate`` checks, the
``query`` and ``analytics`` commands, its aggregates (an entity the live stream
sends), metrics and live figures, its ``/api/analytics/...`` routes and its dashboard
page (``static/``: each aggregate's newest windows, drawn live, and a SQL console).
This module only names them: each is imported when reelay first needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reelay._text import plural
from reelay.plugins import Observer, Plugin, ValidateKind

if TYPE_CHECKING:
    import click
    from fastapi import FastAPI

    from reelay.client import Client
    from reelay.state import State

HERE = Path(__file__).parent


def _check_aggregates(path: Path) -> str:
    from reelay.analytics.spec import load_aggregates

    found = load_aggregates(path)
    return f"{plural(len(found.aggregates), 'aggregate')}: " + "; ".join(
        a.describe() for a in found.aggregates.values()
    )


def _check_applications(path: Path) -> str:
    from reelay.analytics.lookups import load_applications

    found = load_applications(path)
    names = sorted(set(found.networks.values()))
    return (
        f"{plural(len(names), 'application')} on {plural(len(found.networks), 'network')}: "
        + ", ".join(names)
    )


def _commands() -> list[click.Command]:
    from reelay.analytics._cli import analytics, query

    return [query, analytics]


def _observe(state: State) -> Observer:
    from reelay.analytics._observe import AnalyticsObserver

    return AnalyticsObserver(state)


def _routes(api: FastAPI, client: Client, observer: Observer | None) -> None:
    from reelay.analytics._web import add_routes

    add_routes(api, client, observer)


plugin = Plugin(
    name="analytics",
    app_file=HERE / "flows" / "reelay.yaml",
    validate_kinds={
        "aggregates": ValidateKind("analytics aggregates over streams", _check_aggregates),
        "applications": ValidateKind(
            "addresses to application names (for an aggregate's cidr lookup)", _check_applications
        ),
    },
    commands=_commands,
    figures=("analytics_late_records", "analytics_unreadable_records"),
    observe=_observe,
    routes=_routes,
    pages=HERE / "static",
)
