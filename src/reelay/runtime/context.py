"""The ``context`` object a handler receives, shaped like AWS Lambda's Python one.

A handler written for Lambda reads ``context.aws_request_id``,
``context.get_remaining_time_in_millis()`` and friends; this class offers exactly the
attributes and methods of the Lambda Python runtime's context (see
https://docs.aws.amazon.com/lambda/latest/dg/python-context.html), with the same
types: ``memory_limit_in_mb`` is a string there (the runtime copies it from the
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` variable), so it is a string here too, and code
that does ``int(context.memory_limit_in_mb)`` works in both places.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

FUNCTION_VERSION = "$LATEST"

_LOG_STREAM_NAME: tuple[int, str] | None = None


def log_stream_name() -> str:
    """The log stream name of this worker process, in Lambda's form.

    Lambda names one stream per execution environment:
    ``YYYY/MM/DD/[$LATEST]<32 hex digits>``. Here a worker process is the execution
    environment, so the name is made once per process (and anew after a fork).
    """
    global _LOG_STREAM_NAME
    pid = os.getpid()
    if _LOG_STREAM_NAME is None or _LOG_STREAM_NAME[0] != pid:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        _LOG_STREAM_NAME = (pid, f"{day}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}")
    return _LOG_STREAM_NAME[1]


class LambdaContext:
    """What a handler gets as its second argument.

    The deadline is a ``time.monotonic()`` value, so the remaining time is immune to
    wall-clock changes; it counts down from the function's timeout as the handler runs.
    ``identity`` and ``client_context`` are always ``None``: they only carry data for
    invocations from the AWS mobile SDKs.
    """

    __slots__ = (
        "_deadline",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        function_name: str,
        memory_limit_in_mb: int | str,
        invoked_function_arn: str,
        log_group_name: str,
        log_stream_name: str,
        deadline: float,
        function_version: str = FUNCTION_VERSION,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.invoked_function_arn = invoked_function_arn
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation times out (never negative)."""
        remaining = int((self._deadline - time.monotonic()) * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg: object) -> None:
        """Write ``msg`` to the function's log, as Lambda's ``context.log`` does."""
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity}])"
        )
