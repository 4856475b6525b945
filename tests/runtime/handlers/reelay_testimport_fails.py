"""A handler module whose import needs a package that is not installed."""

import reelay_no_such_dependency  # noqa: F401


def handler(event: object, context: object) -> None:
    return None
