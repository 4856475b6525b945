"""`Functions`: declare an app in Python, the decorator form of ``reelay.yaml``.

::

    # photos.py
    from reelay import Functions

    app = Functions("photos")

    @app.function(events=[{"s3": {"bucket": "uploads", "rules": [{"prefix": "in/"}]}}],
                  timeout=60, reserved_concurrency=4)
    def thumbnail(event, context):
        ...

``reelay up --app photos.py`` serves it like the YAML it stands for: the decorators
only record definitions, which go through the same validation (`parse_app`), and the
handlers are ordinary module-level functions that workers import by name. Keyword
names are the YAML keys in snake case; ``events`` and ``destinations`` take the same
values as in YAML.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from reelay.errors import AppError
from reelay.runtime.app import App, parse_app

F = TypeVar("F", bound=Callable[..., Any])

_KEYS = {
    "timeout": "timeout",
    "memory_size": "memorySize",
    "reserved_concurrency": "reservedConcurrency",
    "maximum_retry_attempts": "maximumRetryAttempts",
    "maximum_event_age": "maximumEventAge",
    "environment": "environment",
    "destinations": "destinations",
    "description": "description",
}


class Functions:
    """An app's functions, declared with the `function` decorator."""

    def __init__(
        self,
        service: str,
        *,
        provider: Mapping[str, Any] | None = None,
        sources: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.service = service
        self.provider = dict(provider or {})
        self.sources = [dict(s) for s in sources]  # the YAML's sources: list
        self._functions: dict[str, dict[str, Any]] = {}
        self._files: dict[str, Path] = {}

    def function(
        self, name: str | None = None, *, events: Sequence[Mapping[str, Any]] = (), **options: Any
    ) -> Callable[[F], F]:
        """Declare the decorated module-level function as a handler of this app."""
        unknown = sorted(set(options) - set(_KEYS))
        if unknown:
            raise TypeError(
                f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(_KEYS))}"
            )

        def record(handler: F) -> F:
            module = sys.modules.get(handler.__module__)
            file = getattr(module, "__file__", None)
            if file is None or "<locals>" in handler.__qualname__:
                raise TypeError(
                    f"{handler.__qualname__}: a handler must be a module-level "
                    "function of a module loaded from a file"
                )
            key = name or handler.__name__
            self._functions[key] = {
                "handler": f"{Path(file).stem}.{handler.__name__}",
                "events": [dict(e) for e in events],
                **{_KEYS[k]: v for k, v in options.items()},
            }
            self._files[key] = Path(file).resolve()
            return handler

        return record

    def definition(self) -> dict[str, Any]:
        """The app as the YAML document it stands for."""
        doc: dict[str, Any] = {"service": self.service, "functions": dict(self._functions)}
        if self.provider:
            doc["provider"] = self.provider
        if self.sources:
            doc["sources"] = self.sources
        return doc

    def app(self) -> App:
        """Validate and build the app; handlers resolve next to the module that declared them."""
        roots = {path.parent for path in self._files.values()}
        if len(roots) > 1:
            raise AppError(
                [
                    f"{self.service}: handlers of one app must live in one directory, "
                    f"found {', '.join(sorted(map(str, roots)))}"
                ]
            )
        files = sorted(set(self._files.values()))
        root = roots.pop() if roots else Path.cwd()
        source = str(files[0]) if files else self.service
        built = parse_app(self.definition(), root=root, source=source)
        return replace(built, path=files[0] if files else None)


def load_python_app(path: Path) -> App:
    """Import an app module and build the `Functions` it defines (exactly one)."""
    module_name = path.stem
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise AppError([f"{path}: not a Python module"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # user code: report it as a problem of the app file
        raise AppError([f"{path}: importing it failed: {type(exc).__name__}: {exc}"]) from None
    finally:
        sys.path.remove(str(path.parent.resolve()))
    found = [v for v in vars(module).values() if isinstance(v, Functions)]
    if len(found) != 1:
        raise AppError(
            [
                f"{path}: expected exactly one reelay.Functions object at module "
                f"level, found {len(found)}"
            ]
        )
    return found[0].app()
