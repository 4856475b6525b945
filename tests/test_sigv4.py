"""SigV4 checked by the server (`reelay.sigv4.verify`): AWS's published test vector,
requests signed by botocore's own signer, and every way a signature is refused."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reelay.errors import AccessKeyError, AuthenticationError
from reelay.sigv4 import Signed, verify

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime.datetime(2015, 8, 30, 12, 36, 0)  # the AWS test suite's request time
EPOCH = NOW.replace(tzinfo=datetime.UTC).timestamp()


def secrets(key_id: str) -> str:
    if key_id != KEY_ID:
        raise AccessKeyError(f"unknown access key {key_id}")
    return SECRET


def signed_by_botocore(
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    service: str = "kinesis",
    secret: str = SECRET,
) -> Signed:
    """A request as botocore signs it (at `NOW`), as the server receives it."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers or {})
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
        SigV4Auth(Credentials(KEY_ID, secret), service, "us-east-1").add_auth(request)
    parts = urlsplit(request.url)
    sent = [("Host", parts.netloc), *request.headers.items()]
    return Signed("POST", parts.path, parts.query, sent, body)


def refused(request: Signed, service: str = "kinesis") -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        verify(request, secrets, service=service, now=EPOCH)
    return caught.value


def with_headers(request: Signed, change: Callable[[str, str], tuple[str, str] | None]) -> Signed:
    headers = [h for h in (change(n, v) for n, v in request.headers) if h is not None]
    return Signed(request.method, request.path, request.query, headers, request.body)


def test_the_aws_test_suite_vector_verifies() -> None:
    # aws-sig-v4-test-suite "get-vanilla": GET / on example.amazonaws.com.
    request = Signed(
        "GET",
        "/",
        "",
        [
            ("Host", "example.amazonaws.com"),
            ("X-Amz-Date", "20150830T123600Z"),
            (
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                "aws4_request, SignedHeaders=host;x-amz-date, Signature="
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
        ],
        b"",
    )
    assert verify(request, secrets, service="service", now=EPOCH) == KEY_ID


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8470/",
        "http://127.0.0.1:8470/a%20b/./c/../d",
        "http://localhost/kinesis//x?b=2&a=1&a=0&empty=&sp=a%20b&t=~-_.",
    ],
)
def test_what_botocore_signs_verifies(url: str) -> None:
    headers = {"X-Amz-Target": "Kinesis_20131202.ListStreams", "X-Custom": "  two   spaces "}
    request = signed_by_botocore(url, b'{"Limit": 5}', headers)
    assert verify(request, secrets, service="kinesis", now=EPOCH) == KEY_ID
    assert verify(request, secrets, service="kinesis", now=EPOCH + 899) == KEY_ID  # 15 min


def test_any_change_to_what_was_signed_is_refused() -> None:
    request = signed_by_botocore("http://127.0.0.1/", b'{"Limit": 5}', {"X-Amz-Target": "T.A"})
    changes = [
        Signed("POST", "/", "", request.headers, b'{"Limit": 6}'),
        Signed("POST", "/other", "", request.headers, request.body),
        Signed("POST", "/", "x=1", request.headers, request.body),
        Signed("PUT", "/", "", request.headers, request.body),
        with_headers(request, lambda n, v: (n, "T.B") if n == "X-Amz-Target" else (n, v)),
        with_headers(request, lambda n, v: None if n == "X-Amz-Target" else (n, v)),
    ]
    for changed in changes:
        error = refused(changed)
        assert error.code == "InvalidSignatureException"
        assert error.reason == f"wrong signature (key {KEY_ID})"
    wrong_secret = signed_by_botocore("http://127.0.0.1/", b"{}", secret="x" * 40)
    assert refused(wrong_secret).code == "InvalidSignatureException"


def test_unknown_keys_and_session_tokens_are_unrecognized() -> None:
    request = signed_by_botocore("http://127.0.0.1/", b"{}")
    with pytest.raises(AuthenticationError) as caught:
        verify(request, lambda k: secrets("AKIAOTHER"), service="kinesis", now=EPOCH)
    assert caught.value.code == "UnrecognizedClientException"
    assert caught.value.reason == "unknown access key AKIAOTHER"
    token = Signed("POST", "/", "", [*request.headers, ("X-Amz-Security-Token", "t")], b"{}")
    assert refused(token).code == "UnrecognizedClientException"


def test_dates_scopes_and_body_hashes_are_checked() -> None:
    request = signed_by_botocore("http://127.0.0.1/", b"{}")
    stale = refused_at(request, EPOCH + 901)
    assert stale.code == "InvalidSignatureException"
    assert str(stale).startswith("Signature expired: 20150830T123600Z is now earlier than")
    early = refused_at(request, EPOCH - 901)
    assert str(early).startswith("Signature not yet current: 20150830T123600Z is still later")
    assert "scoped to correct service: 'kinesis'" in str(
        refused(signed_by_botocore("http://127.0.0.1/", b"{}", service="s3"))
    )
    wrong_day = with_headers(
        request, lambda n, v: (n, "20150831T000000Z") if n == "X-Amz-Date" else (n, v)
    )
    assert "Date in Credential scope does not match" in str(refused_at(wrong_day, EPOCH + 43000))
    body_hash = hashlib.sha256(b"{}").hexdigest()
    hashed = signed_by_botocore("http://127.0.0.1/", b"{}", {"X-Amz-Content-SHA256": body_hash})
    assert verify(hashed, secrets, service="kinesis", now=EPOCH) == KEY_ID
    lying = Signed("POST", "/", "", hashed.headers, b"[]")
    assert "x-amz-content-sha256" in str(refused(lying))
    unsigned = signed_by_botocore(
        "http://127.0.0.1/", b"{}", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}
    )
    assert refused(unsigned).code == "InvalidSignatureException"


def refused_at(request: Signed, now: float) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        verify(request, secrets, service="kinesis", now=now)
    return caught.value


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "MissingAuthenticationTokenException"),
        ("Bearer a-token-for-the-api", "IncompleteSignatureException"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request",
            "IncompleteSignatureException",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, SignedHeaders=host, Signature=00",
            "IncompleteSignatureException",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/kinesis/aws4_request, "
            "SignedHeaders=x-amz-date, Signature=00",
            "InvalidSignatureException",
        ),
    ],
)
def test_malformed_authorization_headers(authorization: str | None, code: str) -> None:
    headers = [("Host", "h"), ("X-Amz-Date", "20150830T123600Z")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    error = refused(Signed("POST", "/", "", headers, b"{}"))
    assert error.code == code
    assert "a-token-for-the-api" not in str(error) + error.reason  # never repeated


def test_a_request_without_a_date_is_incomplete() -> None:
    request = signed_by_botocore("http://127.0.0.1/", b"{}")
    undated = with_headers(request, lambda n, v: None if n == "X-Amz-Date" else (n, v))
    error = refused(undated)
    assert error.code == "IncompleteSignatureException" and "Date" in str(error)
