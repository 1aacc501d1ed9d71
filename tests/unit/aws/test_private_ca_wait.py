"""PrivateCA.wait and error translation, with botocore's Stubber (fault injection)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from certrotor.aws.pca import Backoff, PrivateCA, idempotency_token
from certrotor.errors import DeadlineError, NotFoundError, ThrottledError

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
CERT_ARN = CA_ARN + "/certificate/abc"


def stubbed() -> tuple[PrivateCA, Stubber, list[float]]:
    client = boto3.client("acm-pca", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    slept: list[float] = []
    return PrivateCA(CA_ARN, client, sleep=slept.append, backoff=Backoff(0.5, 2.0, 2.0)), Stubber(client), slept


def test_wait_polls_with_bounded_backoff_until_issued() -> None:
    # Given Private CA answers "in progress" three times, then throttles once, then the certificate
    ca, stub, slept = stubbed()
    for _ in range(3):
        stub.add_client_error("get_certificate", "RequestInProgressException")
    stub.add_client_error("get_certificate", "ThrottlingException")
    stub.add_response("get_certificate", {"Certificate": "LEAF", "CertificateChain": "CHAIN"})
    # When the caller waits with time to spare
    with stub:
        issued = ca.wait(CERT_ARN, remaining_seconds=lambda: 60.0)
    # Then it got the certificate after delays that doubled up to the cap
    assert issued.certificate_pem == "LEAF"
    assert slept == [0.5, 1.0, 2.0, 2.0]


def test_wait_never_sleeps_past_the_time_left() -> None:
    # Given Private CA stays in progress and only 0.3 s are left
    ca, stub, slept = stubbed()
    budget = iter([0.3, 0.0])
    for _ in range(2):
        stub.add_client_error("get_certificate", "RequestInProgressException")
    # When the caller waits, then the wait is cut to the time left and ends in DeadlineError
    with stub, pytest.raises(DeadlineError):
        ca.wait(CERT_ARN, remaining_seconds=lambda: next(budget))
    assert slept == [0.3]


def test_throttled_issuance_is_a_throttled_error() -> None:
    ca, stub, _ = stubbed()
    stub.add_response(
        "describe_certificate_authority",
        {
            "CertificateAuthority": {
                "CertificateAuthorityConfiguration": {
                    "KeyAlgorithm": "RSA_2048",
                    "SigningAlgorithm": "SHA256WITHRSA",
                    "Subject": {},
                }
            }
        },
    )
    stub.add_client_error("issue_certificate", "ThrottlingException")
    with stub, pytest.raises(ThrottledError):
        ca.issue("-----BEGIN CERTIFICATE REQUEST-----", 7, "arn:aws:acm-pca:::template/X/V1", "t")


def test_an_unknown_certificate_is_not_found() -> None:
    ca, stub, _ = stubbed()
    stub.add_client_error("get_certificate", "ResourceNotFoundException")
    with stub, pytest.raises(NotFoundError):
        ca.get(CERT_ARN)


def test_idempotency_tokens_are_stable_and_fit_private_ca() -> None:
    assert idempotency_token("a", "b") == idempotency_token("a", "b")
    assert idempotency_token("a", "b") != idempotency_token("a", "c")
    assert len(idempotency_token("a", "b")) == 36
