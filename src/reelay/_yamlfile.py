"""Reading the YAML files users write (apps, ladders, rules) and naming every problem.

Each loader collects every problem it finds in a `Problems` (the file and key path
first, then what is wrong and what would be valid) and raises them all at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from reelay.errors import AppError


class Problems:
    """Collects every problem in one file, each prefixed with the file and key path."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(
            f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}"
        )

    def unknown_keys(self, where: str, mapping: dict[str, Any], valid: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in valid:
                self.add(
                    f"{where}.{key}" if where else str(key),
                    f"unknown key {key!r}; valid keys: {', '.join(valid)}",
                )


def int_in(problems: Problems, where: str, value: Any, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.add(where, f"{value!r} is not valid: must be an integer from {low} to {high}")
        return None
    return value


def number_in(problems: Problems, where: str, value: Any, low: float, high: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.add(where, f"{value!r} is not valid: must be a number from {low:g} to {high:g}")
        return None
    return float(value)


def kinded(
    problems: Problems, at: str, items: list[Any], kinds: Iterable[str], *, each: str, kind: str
) -> Iterator[tuple[int, str, str, Any]]:
    """The entries of a YAML list whose items each name their kind as their one key
    (``- s3: {...}``): (index, where, kind, spec). Any other item is a problem naming
    the valid kinds (``each``: what an item is; ``kind``: what its key is called)."""
    names = list(kinds)
    for i, item in enumerate(items):
        where = f"{at}[{i}]"
        if not isinstance(item, dict) or len(item) != 1:
            problems.add(
                where, f"each {each} must be a mapping with exactly one of: {', '.join(names)}"
            )
            continue
        name, spec = next(iter(item.items()))
        if name not in names:
            problems.add(where, f"unknown {kind} {name!r}; valid kinds: {', '.join(names)}")
            continue
        yield i, where, name, spec


def read_yaml(path: Path, error: type[AppError] = AppError) -> Any:
    """Parse a YAML file; a missing, unreadable or malformed file raises ``error``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error([f"{path}: cannot read: {exc}"]) from None
    return parse_yaml(text, str(path), error)


def parse_yaml(text: str, source: str, error: type[AppError] = AppError) -> Any:
    """Parse YAML text from ``source`` (a file, or where the text came from); malformed
    YAML raises ``error`` naming the source, line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise error([f"{source}: invalid YAML: {where}{reason}"]) from None
