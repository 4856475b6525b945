"""`load_app`: an app from a ``reelay.yaml``, a Python file, or a built-in app's name.

It stands above both forms of an app, so that neither imports the other: the YAML form
(`reelay.runtime.app`) and the decorator form (`reelay.functions`, built on the YAML
form's validation).
"""

from __future__ import annotations

from pathlib import Path

from reelay.functions import load_python_app
from reelay.runtime.app import BUILTIN_APPS, App, builtin_app_file, load_yaml_app


def load_app(path: str | Path) -> App:
    """Load and fully validate an app file; raise `AppError` listing every problem.

    A ``.py`` file is an app declared with `reelay.Functions` (imported to read it); the
    name of a built-in app (``media``, ``demo``) that is not a file here loads that app.
    """
    path = Path(path)
    if str(path) in BUILTIN_APPS and not path.exists():
        path = builtin_app_file(str(path))
    if path.suffix == ".py" and path.is_file():
        return load_python_app(path)
    return load_yaml_app(path)
