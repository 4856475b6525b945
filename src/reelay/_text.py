"""Small helpers for the words reelay says."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun that agrees with it: "1 chunk", "2 chunks", "0 chunks"
    (``nouns`` for a plural that is not the noun plus "s")."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
