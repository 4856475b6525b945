"""`load_app`: an app from a ``reelay.yaml``, a Python file, or an installed app's name.

It stands above both forms of an app, so that neither imports the other: the YAML form
(`reelay.runtime.app`) and the decorator form (`reelay.functions`, built on the YAML
form's validation).
"""

from __future__ import annotations

from pathlib import Path

from reelay._text import plural
from reelay.functions import load_python_app
from reelay.plugins import ValidateKind
from reelay.runtime.app import App, app_file, load_yaml_app


def load_app(path: str | Path) -> App:
    """Load and fully validate an app file; raise `AppError` listing every problem.

    A ``.py`` file is an app declared with `reelay.Functions` (imported to read it); the
    name of an installed app (``media``, ``demo``: see `reelay.plugins`) that is not a
    file here loads that app.
    """
    path = Path(path)
    if not path.exists() and (installed := app_file(str(path))) is not None:
        path = installed
    if path.suffix == ".py" and path.is_file():
        return load_python_app(path)
    return load_yaml_app(path)


def _check_app(path: Path) -> str:
    app = load_app(path)
    summary = f"{plural(len(app.functions), 'function')}: {', '.join(sorted(app.functions))}"
    if app.sources:
        summary += f"; {plural(len(app.sources), 'source')}: "
        summary += ", ".join(source.describe() for source in app.sources)
    return summary


#: ``reelay validate --kind app``.
VALIDATE_APP = ValidateKind("an app (reelay.yaml or a Python file)", _check_app)
