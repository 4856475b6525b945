"""A handler in a subdirectory, named the serverless way: ``nested/reelay_testdeep.handler``."""

from typing import Any


def handler(event: Any, context: Any) -> str:
    return "deep"
