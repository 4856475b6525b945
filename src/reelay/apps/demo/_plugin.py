"""The runtime demo as a plugin (entry point ``demo`` in the ``reelay.apps`` group): its
functions, for ``include: [demo]`` and ``reelay up --app demo``."""

from __future__ import annotations

from pathlib import Path

from reelay.plugins import Plugin

plugin = Plugin(name="demo", app_file=Path(__file__).with_name("reelay.yaml"))
