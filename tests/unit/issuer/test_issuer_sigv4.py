"""The local gateway's SigV4 check: botocore signs, the gateway verifies, no sockets."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from certrotor.local.gateway import Identity, SignatureRejected, function_url_event, verify_sigv4

URL = "http://127.0.0.1:8080/sets/demo%2Fweb/issue"
IDENTITIES = {"AKIAORDERS": Identity("secret", "arn:aws:sts::123456789012:assumed-role/orders-task/s")}


def signed(
    body: bytes = b'{"a": 1}',
    secret: str = "secret",  # noqa: S107 - a test credential
    service: str = "lambda",
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=URL, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("AKIAORDERS", secret), service, "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    return headers


def verify(headers: dict[str, str], body: bytes = b'{"a": 1}', now: dt.datetime | None = None) -> str:
    _, identity = verify_sigv4("POST", URL, headers, body, IDENTITIES, "us-east-1", now or dt.datetime.now(dt.UTC))
    return identity.principal_arn


def test_a_correctly_signed_request_names_its_principal() -> None:
    assert verify(signed()).endswith("assumed-role/orders-task/s")


def test_a_changed_body_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        verify(signed(), body=b'{"a": 2}')


def test_a_wrong_secret_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        verify(signed(secret="guess"))


def test_a_signature_for_another_service_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        verify(signed(service="s3"))


def test_an_unsigned_request_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        verify({"host": "127.0.0.1:8080"})


def test_a_stale_signature_is_rejected() -> None:
    with pytest.raises(SignatureRejected):
        verify(signed(), now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20))


def test_the_event_carries_the_caller_and_the_raw_path() -> None:
    event = function_url_event(
        "POST", "/sets/demo%2Fweb/issue", "", {"content-type": "application/json"}, b"{}", "AKIA", "arn:aws:sts::1:x"
    )
    assert event["requestContext"]["authorizer"]["iam"]["userArn"] == "arn:aws:sts::1:x"
    assert event["rawPath"] == "/sets/demo%2Fweb/issue"
    assert event["body"] == "{}" and event["isBase64Encoded"] is False


def test_a_signed_payload_hash_that_is_not_the_bodys_is_rejected() -> None:
    # Given a request whose signature covers an x-amz-content-sha256 for another body
    request = AWSRequest(method="POST", url=URL, data=b'{"a": 1}', headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials("AKIAORDERS", "secret"), "lambda", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    # When it arrives with any body, then the claimed hash is held to the body
    with pytest.raises(SignatureRejected, match="x-amz-content-sha256"):
        verify(headers, body=b'{"a": "swapped"}')
