"""One exception tree for all of reelay.

::

    ReelayError
    ├── ConfigError (ValueError)             bad settings, unknown backend URL scheme
    ├── AppError (ValueError)                an invalid app file: every problem, each named
    │   ├── LadderError                      an invalid ladder or publish-rule file
    │   ├── AlertRulesError                  an invalid alert rule file
    │   └── AggregatesError                  an invalid analytics aggregates or addresses file
    ├── InvalidPatternError (ValueError)     an EventBridge event pattern that cannot match
    ├── InvalidScheduleError (ValueError)    a rate(...) or cron(...) expression
    ├── InvalidEventError (ValueError)       an event that is not a JSON object, or malformed
    ├── QueryError (ValueError)              SQL an analytics query refuses (DuckDB's message)
    ├── FunctionNotFoundError (LookupError)  a function name the app does not declare
    ├── HomeBusyError                        another dispatcher already serves this home
    ├── StateError                           state backend failures (foreign errors translated)
    ├── StorageError                         object store failures (foreign errors translated)
    │   ├── InvalidKeyError (ValueError)     empty, too long, or escaping the root
    │   ├── NoSuchKeyError (LookupError)
    │   ├── PreconditionFailedError          not the version asked for (``if_match``)
    │   └── StorageUnavailableError (ConnectionError)
    ├── ExecutorError                        executor failures (foreign errors translated)
    │   └── ExecutorUnavailableError (ConnectionError)
    ├── StreamError                          stream backend failures (foreign errors translated)
    │   ├── InvalidStreamArgumentError (ValueError)  a bad name, key, record or position
    │   ├── StreamNotFoundError (LookupError)        no such stream or shard
    │   ├── StreamExistsError                        a stream of that name already exists
    │   └── StreamUnavailableError (ConnectionError) the backend (Redis...) cannot be reached
    ├── KinesisApiError                      a Kinesis API request refused (Kinesis's ``code``)
    ├── AuthenticationError                  no, a malformed or a wrong AWS signature (``code``)
    ├── AccessKeyError (LookupError)         an access key that does not exist (or was revoked)
    └── MediaError                           the media pipeline
        ├── SourceRejectedError (ValueError) a source that is not a usable media file (``code``)
        ├── FfmpegError                      ffmpeg failed: exit code, input, tail of stderr
        ├── FfmpegNotFoundError              no usable ffmpeg (the message says how to get one)
        └── ChunkCheckError                  an encoded part has the wrong frame count or duration

Errors caused by user input subclass the matching built-in (``ValueError``,
``LookupError``) so callers can catch them without importing reelay. The CLI prints
their message and exits non-zero; it never shows a traceback for them.
"""

from __future__ import annotations

from collections.abc import Iterable


class ReelayError(Exception):
    """Base class of every error reelay raises on purpose."""


class ConfigError(ReelayError, ValueError):
    """A setting or backend URL is invalid."""


class AppError(ReelayError, ValueError):
    """An app file is invalid. ``problems`` lists every problem found, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class LadderError(AppError):
    """A media ladder or publish-rule file is invalid; ``problems`` as for `AppError`."""


class AlertRulesError(AppError):
    """An alert rule file is invalid; ``problems`` as for `AppError`."""


class AggregatesError(AppError):
    """An analytics aggregates file (or a file of addresses it reads) is invalid;
    ``problems`` as for `AppError`."""


class QueryError(ReelayError, ValueError):
    """An analytics query was refused: SQL DuckDB cannot run (its message), or a
    statement that is not a read."""


class InvalidPatternError(ReelayError, ValueError):
    """An EventBridge event pattern is invalid; the message names the offending key."""


class InvalidScheduleError(ReelayError, ValueError):
    """A ``rate(...)`` or ``cron(...)`` schedule expression is invalid."""


class InvalidEventError(ReelayError, ValueError):
    """An event is not a JSON object, or lacks what its kind requires."""


class FunctionNotFoundError(ReelayError, LookupError):
    """A function name that the app does not declare."""


class HomeBusyError(ReelayError):
    """Another dispatcher (``reelay up``) already serves this home."""


class StateError(ReelayError):
    """The durable state (the event log, invocations, barriers...) failed: the database
    could not be opened, read or written. The message names the database and what was
    being done."""


class StorageError(ReelayError):
    """An object store operation failed."""


class InvalidKeyError(StorageError, ValueError):
    """An object key or bucket name is empty, too long, malformed or escapes the root."""


class NoSuchKeyError(StorageError, LookupError):
    """The object does not exist."""


class PreconditionFailedError(StorageError):
    """The object is not the version the caller asked for: its etag is not the
    ``if_match`` given (it was replaced), so nothing was done."""


class StorageUnavailableError(StorageError, ConnectionError):
    """The storage endpoint cannot be reached."""


class ExecutorError(ReelayError):
    """An executor failed to run work."""


class ExecutorUnavailableError(ExecutorError, ConnectionError):
    """The executor (a Ray cluster, say) cannot be reached."""


class StreamError(ReelayError):
    """A stream operation failed; the message names the stream (and shard) and why."""


class InvalidStreamArgumentError(StreamError, ValueError):
    """A stream or shard name, partition key, hash key, record or position is invalid."""


class StreamNotFoundError(StreamError, LookupError):
    """No stream (or shard of it) of that name."""


class StreamExistsError(StreamError):
    """A stream of that name already exists."""


class StreamUnavailableError(StreamError, ConnectionError):
    """The stream backend (a Redis server, say) cannot be reached."""


class KinesisApiError(ReelayError):
    """A request the Kinesis API refuses, as Kinesis would: ``code`` is Kinesis's error
    code (``ResourceNotFoundException``...), the message says why, ``status`` is the HTTP
    status it is answered with (400 but for the service's own failures)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code = code
        self.status = status
        super().__init__(message)


class AuthenticationError(ReelayError):
    """A request whose AWS Signature Version 4 is missing, malformed or wrong, or made
    with an access key that is unknown or revoked. ``code`` is the error AWS answers with
    (``InvalidSignatureException``...), the message is what the caller is told, and
    ``reason`` is what the audit records (it may name the access key, never its secret)."""

    def __init__(self, code: str, message: str, reason: str) -> None:
        self.code = code
        self.reason = reason
        super().__init__(message)


class AccessKeyError(ReelayError, LookupError):
    """No access key of that id (or it was revoked, or its secret cannot be read)."""


class MediaError(ReelayError):
    """Base class of the media pipeline's errors."""


class SourceRejectedError(MediaError, ValueError):
    """A source the pipeline refuses. ``code`` is a stable word (``EMPTY``, ``NOT_MEDIA``...)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class FfmpegError(MediaError):
    """ffmpeg exited non-zero. Carries the exit code, the input and the tail of stderr."""

    def __init__(self, returncode: int, input: str, stderr_tail: str) -> None:
        self.returncode = returncode
        self.input = input
        self.stderr_tail = stderr_tail
        super().__init__(f"ffmpeg exited with {returncode} on {input}: {stderr_tail}")


class FfmpegNotFoundError(MediaError):
    """No usable ffmpeg binary."""


class ChunkCheckError(MediaError):
    """An encoded chunk or rendition does not have the frames or duration it must have."""
