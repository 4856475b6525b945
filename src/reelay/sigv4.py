"""AWS Signature Version 4, checked by the server: `verify`.

What AWS's own services do with a request signed in the ``Authorization`` header
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
the canonical request is rebuilt from what arrived (method, path, query, the headers the
client signed, the body's SHA-256), hashed into the string to sign with the date and the
credential scope (``date/region/service/aws4_request``), and signed with the key derived
from the access key's secret; the signatures are compared in constant time. The date
must be within 15 minutes of the server's clock, the scope's date the request's and its
service the one served; an ``x-amz-content-sha256`` header must be the body's hash.

A refusal is an `AuthenticationError` carrying the error AWS answers with
(``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``InvalidSignatureException``, ``UnrecognizedClientException``), the message it says, and
a reason for the audit. Messages never repeat a header's value: a misdirected bearer
token stays out of answers and logs.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_tz
from urllib.parse import quote, unquote

from reelay.errors import AccessKeyError, AuthenticationError

__all__ = ["ALGORITHM", "MAX_SKEW_S", "Signed", "canonical_request", "signature", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_S = 900.0  # 15 minutes either way, as AWS allows
_BASIC = "%Y%m%dT%H%M%SZ"  # ISO 8601 basic format, X-Amz-Date's
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_INVALID_TOKEN = "The security token included in the request is invalid."
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service "
    "documentation for details."
)


@dataclass(frozen=True)
class Signed:
    """A request as it arrived: ``path`` and ``query`` as sent (percent-encoded),
    ``headers`` in order with repeated names kept (names in any case)."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes


def verify(
    request: Signed,
    secret_for: Callable[[str], str],
    *,
    service: str,
    now: float | None = None,
) -> str:
    """The id of the access key that signed ``request``; `AuthenticationError` if it is
    unsigned, signed wrongly, too old or too new, or signed with a key ``secret_for``
    refuses (it raises `AccessKeyError` for a key it does not know)."""
    now = time.time() if now is None else now
    headers: dict[str, list[str]] = {}
    for name, value in request.headers:
        headers.setdefault(name.lower(), []).append(value)
    authorization = headers.get("authorization")
    if authorization is None:
        if "X-Amz-Algorithm=" in request.query:
            raise _incomplete("a signature in the query string (presigned)", "query-string")
        raise AuthenticationError(
            "MissingAuthenticationTokenException", "Missing Authentication Token", "no signature"
        )
    if len(authorization) > 1:
        raise _incomplete("more than one Authorization header", "two Authorization headers")
    fields = _fields(authorization[0])
    amz_date = _date(headers)
    key_id, scope = _scope(fields["Credential"], amz_date, service)
    _fresh(amz_date, now)
    signed_names = fields["SignedHeaders"].split(";")
    if "host" not in signed_names:
        raise AuthenticationError(
            "InvalidSignatureException",
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
            "host not signed",
        )
    if "x-amz-security-token" in headers:  # reelay issues no temporary credentials
        raise AuthenticationError(
            "UnrecognizedClientException", _INVALID_TOKEN, f"session token (key {key_id})"
        )
    body_hash = hashlib.sha256(request.body).hexdigest() if request.body else _EMPTY_SHA256
    claimed = headers.get("x-amz-content-sha256")
    if claimed is not None and claimed[-1].strip() != body_hash:
        raise AuthenticationError(
            "InvalidSignatureException",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
            f"body hash mismatch (key {key_id})",
        )
    try:
        secret = secret_for(key_id)
    except AccessKeyError as exc:
        raise AuthenticationError("UnrecognizedClientException", _INVALID_TOKEN, str(exc)) from None
    canonical = canonical_request(request, headers, signed_names, body_hash)
    expected = signature(secret, amz_date, scope, canonical)
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        raise AuthenticationError(
            "InvalidSignatureException", _MISMATCH, f"wrong signature (key {key_id})"
        )
    return key_id


def canonical_request(
    request: Signed, headers: dict[str, list[str]], signed: Sequence[str], body_hash: str
) -> str:
    """SigV4's canonical request (non-S3 rules: the path normalized and encoded again)."""
    path = quote(_remove_dot_segments(request.path) or "/", safe="/~")
    pairs = []
    for pair in request.query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    query = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    lines = "".join(
        f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, []))}\n"
        for name in signed
    )
    return "\n".join([request.method.upper(), path, query, lines, ";".join(signed), body_hash])


def signature(secret: str, amz_date: str, scope: str, canonical: str) -> str:
    """The hex signature of a canonical request (``scope``: date/region/service/aws4_request)."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    return hmac.new(
        _signing_key(secret, scope), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()


@functools.lru_cache(maxsize=64)
def _signing_key(secret: str, scope: str) -> bytes:
    """The key derived from a secret for one scope (a day, region and service): the same
    for all of a client's requests that day, so derived once (as AWS's SDKs do)."""
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@functools.lru_cache(maxsize=64)
def _epoch(amz_date: str) -> int:
    """The epoch seconds of a date in ISO 8601 basic format; ValueError if it is not
    one. A client's requests within a second carry the same date, and strptime is slow."""
    return calendar.timegm(time.strptime(amz_date, _BASIC))


def _incomplete(problem: str, reason: str) -> AuthenticationError:
    return AuthenticationError(
        "IncompleteSignatureException",
        f"The request signature does not conform to AWS standards: {problem}. Sign requests "
        f"with {ALGORITHM} in the Authorization header (an AWS SDK or the AWS CLI does).",
        f"incomplete signature: {reason}",
    )


def _fields(authorization: str) -> dict[str, str]:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        # The value is not repeated: it may be a token meant for another API.
        raise _incomplete(f"the Authorization header is not {ALGORITHM}", "not SigV4")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if not fields.get(n)]
    if missing:
        needs = ", ".join(f"'{n}'" for n in missing)
        raise _incomplete(f"the Authorization header lacks {needs}", f"no {needs}")
    return fields


def _date(headers: dict[str, list[str]]) -> str:
    """The request's date in ISO 8601 basic format, from X-Amz-Date or else Date."""
    if "x-amz-date" in headers:
        value = headers["x-amz-date"][-1].strip()
        try:
            _epoch(value)
        except ValueError:
            raise _incomplete("X-Amz-Date is not in ISO 8601 basic format", "bad date") from None
        return value
    if "date" in headers:
        parsed = parsedate_tz(headers["date"][-1])
        if parsed is None:
            raise _incomplete("the Date header is not an HTTP date", "bad date")
        seconds = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
        return time.strftime(_BASIC, time.gmtime(seconds))
    raise _incomplete("neither an X-Amz-Date nor a Date header", "no date")


def _scope(credential: str, amz_date: str, service: str) -> tuple[str, str]:
    """The access key id and the credential scope, checked."""
    parts = credential.split("/")
    if len(parts) != 5 or not parts[0]:
        raise _incomplete(
            "the Credential is not KEY/DATE/REGION/SERVICE/aws4_request", "bad credential"
        )
    key_id, date, region, scoped, terminator = parts

    def invalid(message: str, reason: str) -> AuthenticationError:
        return AuthenticationError("InvalidSignatureException", message, f"{reason} (key {key_id})")

    if date != amz_date[:8]:
        raise invalid(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}', from '{amz_date}'.",
            "scope date",
        )
    if not region:
        raise invalid("Credential should be scoped to a valid region.", "scope region")
    if scoped != service:
        raise invalid(f"Credential should be scoped to correct service: '{service}'.", "scope")
    if terminator != "aws4_request":
        raise invalid(
            "Credential should be scoped with a valid terminator: 'aws4_request'.", "scope"
        )
    return key_id, "/".join(parts[1:])


def _fresh(amz_date: str, now: float) -> None:
    then = _epoch(amz_date)
    minutes = int(MAX_SKEW_S // 60)

    def basic(t: float) -> str:
        return time.strftime(_BASIC, time.gmtime(t))

    if then < now - MAX_SKEW_S:
        raise AuthenticationError(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than {basic(now - MAX_SKEW_S)} "
            f"({basic(now)} - {minutes} min.)",
            "signature expired",
        )
    if then > now + MAX_SKEW_S:
        raise AuthenticationError(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than "
            f"{basic(now + MAX_SKEW_S)} ({basic(now)} + {minutes} min.)",
            "signature not yet current",
        )


def _remove_dot_segments(path: str) -> str:
    """RFC 3986's dot-segment removal, as SigV4 normalizes a path (empty segments go)."""
    if not path:
        return ""
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return first + "/".join(out) + last
