"""Rebuild the pipeline's frozen dataclasses from the JSON they were saved as.

Records cross stages as JSON (``dataclasses.asdict``); `load` reads them back by the
class's own type hints: nested dataclasses, tuples of them, and optional values.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def load(cls: type[T], data: dict[str, Any]) -> T:
    """``cls`` from a mapping of its fields (absent fields take their defaults)."""
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _value(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.name in data
    }
    return cls(**values)


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_value(item, v) for v in value)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _value(inner, value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return load(hint, value)
    return value
