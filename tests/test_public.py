"""The public surface is deliberate: pinned here, sorted, and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import reelay
import reelay.events
import reelay.runtime
import reelay.storage


def isort_style(name: str) -> tuple[int, str]:
    """Ruff's __all__ order: CONSTANTS, then Classes, then everything else."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return group, name


def test_public_names_are_pinned_and_sorted() -> None:
    assert reelay.__all__ == [
        "App",
        "Client",
        "Functions",
        "Runtime",
        "Settings",
        "__version__",
        "compile_pattern",
        "idempotent",
        "load_app",
        "matches",
        "once",
    ]
    for module in (reelay, reelay.events, reelay.runtime, reelay.storage):
        assert module.__all__ == sorted(module.__all__, key=isort_style), module.__name__
        for name in module.__all__:
            assert getattr(module, name) is not None, (module.__name__, name)


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        reelay.nothing  # noqa: B018
    except AttributeError as exc:
        assert "nothing" in str(exc)
    else:
        raise AssertionError("reelay.nothing resolved")


def test_worker_import_stays_light() -> None:
    # A worker process imports only the worker module: not the dispatcher, state or client.
    code = (
        "import sys, reelay.runtime._worker; "
        "print(sorted(m for m in sys.modules if m.startswith('reelay')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout)
    for heavy in ("reelay.client", "reelay.runtime.dispatcher", "reelay.state", "yaml"):
        assert heavy not in loaded, loaded
