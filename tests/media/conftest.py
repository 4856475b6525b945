"""Fixtures for the media tests: small generated clips, made once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reelay.media.samples import make_clip

ClipFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> ClipFactory:
    """``clip("name.mp4", **make_clip options)``: a generated clip, cached by name."""
    root = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def make(name: str, **options: Any) -> Path:
        if name not in made:
            options.setdefault("seconds", 3)
            made[name] = make_clip(root / name, **options)
        return made[name]

    return make
