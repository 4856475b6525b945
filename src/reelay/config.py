"""Settings: where the home is and which backend serves each seam.

Every value comes from a keyword argument, else an environment variable, else an
embedded default under the home directory:

==================  ========================  =========================================
setting             environment variable      default
==================  ========================  =========================================
home                ``REELAY_HOME``           ``$XDG_DATA_HOME/reelay`` (``~/.local/share/reelay``)
store_url           ``REELAY_STORE``          ``file://<home>/objects``
executor_url        ``REELAY_EXECUTOR``       ``local`` (a process pool of ``os.cpu_count()``)
retry_delays        ``REELAY_RETRY_DELAYS``   ``60,120`` seconds, Lambda's async retry waits
region              ``AWS_REGION``            ``us-east-1``
durability          ``REELAY_DURABILITY``     ``process`` (survives kill -9) or ``power`` (fsync)
state_url           ``REELAY_STATE``          empty: SQLite in ``<home>/state.db``; or
                                              ``postgresql://user@host:port/database``
streams_url         ``REELAY_STREAMS``        empty: the segment log in ``<home>/streams``;
                                              or ``redis://host:port/db`` (Redis Streams)
==================  ========================  =========================================

The secret key that encrypts access keys (``REELAY_SECRET_KEY``) is read where it is
used (`reelay.keys`), never kept here: settings travel to handlers' environments.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reelay.errors import ConfigError
from reelay.state import check_state_url
from reelay.storage import check_store_url
from reelay.streams import check_streams_url

DURABILITY_CHOICES = ("process", "power")


def default_home() -> Path:
    """The per-user data directory reelay uses when no home is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "reelay"


def _parse_delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"REELAY_RETRY_DELAYS={text!r}: expected comma-separated seconds such as '60,120'"
        ) from None
    if not all(math.isfinite(d) and d >= 0 for d in delays):
        raise ConfigError(
            f"REELAY_RETRY_DELAYS={text!r}: delays must be finite, non-negative seconds"
        )
    return delays


@dataclass(frozen=True)
class Settings:
    """Where reelay keeps its state and which backend serves each seam."""

    home: Path
    store_url: str
    executor_url: str = "local"
    retry_delays: tuple[float, ...] = (60.0, 120.0)
    region: str = "us-east-1"
    durability: str = "process"
    state_url: str = ""  # '': SQLite in the home; postgresql://...: a shared PostgreSQL
    streams_url: str = ""  # '': the embedded log in the home; redis://...: Redis Streams
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # However the settings were made, a store URL that names no known scheme is
        # refused here, before anything writes objects to the wrong place.
        try:
            check_store_url(self.store_url)
        except ConfigError as exc:
            raise ConfigError(f"REELAY_STORE: {exc}") from None
        try:
            check_state_url(self.state_url)
        except ConfigError as exc:
            raise ConfigError(f"REELAY_STATE: {exc}") from None
        try:
            check_streams_url(self.streams_url)
        except ConfigError as exc:
            raise ConfigError(f"REELAY_STREAMS: {exc}") from None

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
        """Settings from arguments, then the environment, then the embedded defaults."""
        env = os.environ
        home_path = Path(home or env.get("REELAY_HOME") or default_home()).expanduser().resolve()
        settings = cls(
            home=home_path,
            store_url=env.get("REELAY_STORE") or f"file://{home_path / 'objects'}",
            executor_url=env.get("REELAY_EXECUTOR") or "local",
            retry_delays=_parse_delays(env.get("REELAY_RETRY_DELAYS", "60,120")),
            region=env.get("AWS_REGION") or "us-east-1",
            durability=env.get("REELAY_DURABILITY") or "process",
            state_url=env.get("REELAY_STATE") or "",
            streams_url=env.get("REELAY_STREAMS") or "",
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        if settings.durability not in DURABILITY_CHOICES:
            raise ConfigError(
                f"durability {settings.durability!r} is not valid; "
                f"valid choices: {', '.join(DURABILITY_CHOICES)}"
            )
        return settings

    def environment(self) -> dict[str, str]:
        """Variables that let a handler's process reach the same home (see `reelay.Client`)."""
        return {
            "REELAY_HOME": str(self.home),
            "REELAY_STORE": self.store_url,
            "REELAY_DURABILITY": self.durability,
            "REELAY_STATE": self.state_url,
            "REELAY_STREAMS": self.streams_url,
        }
