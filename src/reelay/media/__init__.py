"""The media pipeline: an upload becomes a chunked, parallel-encoded, quality-checked,
packaged (HLS + DASH) and published title, as an app of ordinary functions.

- `transcode`: the one-shot convenience behind ``reelay transcode``
- `probe`, `SourceInfo`, `Limits`: inspect a source
- `load_ladder`, `Ladder`: renditions; `load_rules`, `Rules`: publish rules
- `make_plan`, `Plan`: chunks and renditions of a title
- ``reelay/media/reelay.yaml``: the app (``include: [media]`` in a user's app file)
- ``reelay.media._plugin``: what the app adds to reelay (entry point ``media`` in the
  ``reelay.apps`` group: see `reelay.plugins`)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelay._lazy import lazy_exports

if TYPE_CHECKING:
    from reelay.media.config import MediaConfig, Title
    from reelay.media.ladder import Ladder, load_ladder
    from reelay.media.plan import Plan, make_plan
    from reelay.media.probe import Limits, SourceInfo, probe
    from reelay.media.rules import Rules, load_rules
    from reelay.media.transcode import transcode

__all__ = [
    "Ladder",
    "Limits",
    "MediaConfig",
    "Plan",
    "Rules",
    "SourceInfo",
    "Title",
    "load_ladder",
    "load_rules",
    "make_plan",
    "probe",
    "transcode",
]

__getattr__ = lazy_exports(
    __name__,
    {
        "Ladder": "reelay.media.ladder",
        "Limits": "reelay.media.probe",
        "MediaConfig": "reelay.media.config",
        "Plan": "reelay.media.plan",
        "Rules": "reelay.media.rules",
        "SourceInfo": "reelay.media.probe",
        "Title": "reelay.media.config",
        "load_ladder": "reelay.media.ladder",
        "load_rules": "reelay.media.rules",
        "make_plan": "reelay.media.plan",
        "probe": "reelay.media.probe",
        "transcode": "reelay.media.transcode",
    },
)
