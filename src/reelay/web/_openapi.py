"""What the served OpenAPI document says beyond what FastAPI derives from the routes.

FastAPI documents parameters, JSON bodies and successes. This module adds the rest of
the contract the server keeps: how to authenticate (`SECURITY`), the one error shape
every 4xx answer has (`Problem`; `Invalid` for 422, which FastAPI would otherwise
describe as its own ``{detail: [...]}``), and the rules the object-store names follow
(`BUCKET`, `KEY`, `FILE_NAME`: patterns that say what `reelay.storage.validate_bucket`
and `reelay.storage.validate_key` check, so a client can tell a valid name from the
document alone). `describe` applies it to the generated document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from reelay.storage._base import MAX_KEY_BYTES


class Problem(BaseModel):
    """Every error answer (4xx): what was wrong, in one message."""

    error: str = Field(description="What was wrong, naming the value or field at fault.")


class Invalid(Problem):
    """A request refused for its parameters or body (422)."""

    problems: list[str] = Field(
        description="Each problem, starting with where it is: ``query.limit: ...``, "
        "``body.Entries.0.Source: ...``, ``path.key: ...``."
    )


_REF = "#/components/schemas/"
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Problem", "Refused: the body cannot be read as JSON, or the runtime refused it."),
    401: (
        "Problem",
        "No token, or a wrong one: send `Authorization: Bearer TOKEN` (the token is in "
        "`api-token` in the reelay home), or the cookie the dashboard's sign-in sets.",
    ),
    404: ("Problem", "No such thing: the message names what was looked for."),
    405: (
        "Problem",
        "This path does not take that method: `Allow` lists those it takes (so does an "
        "`OPTIONS` request, answered 204).",
    ),
    409: (
        "Problem",
        "The object store cannot hold this key beside one it holds (a file store cannot "
        "hold both `a` and `a/b`), or cannot hold it at all (a file store takes at most "
        "255 bytes between slashes).",
    ),
    415: (
        "Problem",
        "The body was not sent as JSON: send it with `Content-Type: application/json` "
        "(or another `application/*+json` type). A body of another type is never read as "
        "JSON, as a page on another site can post one without asking.",
    ),
    422: ("Invalid", "Invalid parameters or body: each problem names its field."),
}
# What `describe` adds to every operation that can answer it (see there).
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route, for its ``responses=`` (401, 405, 415 and 422 are
    added to every operation that can give them by `describe`)."""
    return {code: _answer(code) for code in codes}


def _answer(code: int) -> dict[str, Any]:
    schema, description = _ERRORS[code]
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF + schema}}},
    }
    if code == 401:
        answer["headers"] = {
            "WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}
        }
    if code == 405:
        answer["headers"] = {
            "Allow": {
                "description": "The methods the path takes, e.g. `GET, POST, OPTIONS`.",
                "schema": {"type": "string"},
            }
        }
    return answer


SECURITY = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The home's API token (`api-token` in the reelay home; `reelay up` "
        "prints it when it creates it).",
    },
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "reelay_token",
        "description": "Set (HttpOnly, SameSite=Strict) by the dashboard's sign-in.",
    },
}

DESCRIPTION = """\
Every request carries the home's token (see the security schemes). Every error answer
is JSON, `{"error": "..."}`, and a 422 lists each problem in `problems`, naming its
field. A method a path does not take is answered 405 with an `Allow` header, and
`OPTIONS` answers 204 with the same header. A JSON body is sent as
`Content-Type: application/json` (another type: 415); one that does not parse is a
400 saying where (line and column)."""

# validate_bucket: 3 to 63 of [a-z0-9.-], a letter or digit at each end, no "..", not
# an IPv4 address, none of the prefixes and suffixes S3 reserves.
BUCKET = (
    r"^(?!xn--|sthree-|amzn-s3-demo-)(?!.*\.\.)(?![0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$)"
    r"(?!.*(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$)"
    r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
)
# validate_key: no control character (Unicode's Cc: C0, DEL, C1), no backslash; no
# empty, "." or ".." segment (so no "/" at either end, no "//"). Its length limit is
# in bytes of UTF-8 (MAX_KEY_BYTES), which a pattern cannot count: see KEY_LENGTH.
_SEGMENT = r"(?!\.\.?(?:/|$))[^/\\\x00-\x1f\x7f-\x9f]+"
KEY = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
KEY_LENGTH = MAX_KEY_BYTES // 4  # characters that fit in the limit whatever they are
# A file name under the media ingest prefix: one segment, at most 200 characters.
FILE_NAME = rf"^{_SEGMENT}$"


# Where an answer names what another operation takes (OpenAPI links), so a client (or
# a tester such as schemathesis) can follow a listing or an upload to its lookup:
# (path, method, status) -> {link name: (its path, its method, {parameter: value})}.
# An app's routes declare their own, with `link`, in their ``responses=``.
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/api/invocations", "get", "200"): {
        "GetInvocation": (
            "/api/invocations/{request_id}",
            "get",
            {"request_id": "$response.body#/0/id"},
        )
    },
    ("/api/dlq", "get", "200"): {
        "GetInvocation": (
            "/api/invocations/{request_id}",
            "get",
            {"request_id": "$response.body#/0/id"},
        ),
    },
}


def link(path: str, method: str, parameters: dict[str, str]) -> dict[str, Any]:
    """An OpenAPI link to operation ``method`` of ``path``, with its ``parameters``
    taken from the answer (``{"title_id": "$response.body#/0/id"}``)."""
    pointer = path.replace("~", "~0").replace("/", "~1")  # a JSON pointer's escapes
    return {"operationRef": f"#/paths/{pointer}/{method}", "parameters": parameters}


def describe(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (FastAPI's), completed: security schemes, the error shape of every
    4xx answer (no trace of FastAPI's own validation-error schema), the answers the
    server gives outside the routes (401 everywhere; 405 on the operations of a path
    that does not take every method; 415 wherever the body is JSON), and links."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for model in (Problem, Invalid):
        schemas[model.__name__] = model.model_json_schema(ref_template=_REF + "{model}")
    components["securitySchemes"] = SECURITY
    document["security"] = [{"bearer": []}, {"cookie": []}]
    document["info"]["description"] = DESCRIPTION
    for operations in document["paths"].values():
        for operation in operations.values():
            answers = operation["responses"]
            answers["401"] = _answer(401)
            if set(operations) < _METHODS:  # OpenAPI has no place for a path's own answers
                answers["405"] = _answer(405)
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                answers["415"] = _answer(415)
            for code in list(answers):
                if code.startswith("4"):  # FastAPI files errors under the route's type
                    answers[code] = _answer(int(code))
    for (path, method, status), links in LINKS.items():
        answer = document["paths"][path][method]["responses"][status]
        answer["links"] = {name: link(*target) for name, target in links.items()}
    return document
