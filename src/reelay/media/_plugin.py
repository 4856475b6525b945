"""The media app as a plugin (entry point ``media`` in the ``reelay.apps`` group).

What the media app adds to reelay: its functions (``reelay.yaml`` beside this file),
the ``ladder`` and ``rules`` files ``reelay validate`` checks, the ``transcode``
command, its titles (an entity), metrics and live figures, its ``/api/titles``
routes, its dashboard pages (``static/``: the titles list, a title's page with its
timeline, QC charts and player, the overview's Titles section) and its alert rules
(``alerts.yaml``: titles held or failed). This module only names them: each is
imported when reelay first needs it, so finding the installed apps stays cheap.
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


def _check_ladder(path: Path) -> str:
    from reelay.media.ladder import load_ladder

    ladder = load_ladder(path)
    outputs = [r.name for r in ladder.video] + [r.name for r in ladder.audio]
    described = f"ladder {ladder.name}: {plural(len(outputs), 'output')}: {', '.join(outputs)}"
    auto = ladder.auto
    if auto is None:
        return described
    low, high = auto.vmaf
    return (
        f"{described}; video picked per title: {'/'.join(auto.codecs)}, up to "
        f"{plural(auto.max_rungs, 'rung')} from VMAF {low:g} to {high:g}"
    )


def _check_rules(path: Path) -> str:
    from reelay.media.rules import load_rules

    rules = load_rules(path)
    checked = [k for k, v in rules.as_dict().items() if k != "name" and v not in (None, False)]
    return f"rules {rules.name}: {', '.join(checked) or 'nothing'}"


def _commands() -> list[click.Command]:
    from reelay.media._cli import transcode

    return [transcode]


def _observe(state: State) -> Observer:
    from reelay.media._observe import MediaObserver

    return MediaObserver(state)


def _routes(api: FastAPI, client: Client, observer: Observer | None) -> None:
    from reelay.media._web import add_routes

    add_routes(api, client, observer)


plugin = Plugin(
    name="media",
    app_file=HERE / "reelay.yaml",
    validate_kinds={
        "ladder": ValidateKind("a media ladder (renditions)", _check_ladder),
        "rules": ValidateKind("media publish rules", _check_rules),
    },
    commands=_commands,
    figures=("titles_in_progress", "titles_held", "titles_failed"),
    observe=_observe,
    routes=_routes,
    pages=HERE / "static",
    alert_rules=HERE / "alerts.yaml",
)
