"""PrivateCA.revoke with botocore's Stubber: the exact request, a
revocation the CA already made, and refusals named by the call."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ConnectTimeoutError
from botocore.stub import Stubber

from certrotor.aws.pca import PrivateCA
from certrotor.errors import AwsError, NotFoundError, RetryableError

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
SERIAL = "0a:1b:2c"


def stubbed() -> tuple[PrivateCA, Stubber]:
    client = boto3.client("acm-pca", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return PrivateCA(CA_ARN, client), Stubber(client)


def test_a_revocation_names_the_ca_the_serial_and_unspecified_by_default() -> None:
    ca, stub = stubbed()
    expected = {"CertificateAuthorityArn": CA_ARN, "CertificateSerial": SERIAL, "RevocationReason": "UNSPECIFIED"}
    stub.add_response("revoke_certificate", {}, expected)
    stub.add_response("revoke_certificate", {}, {**expected, "RevocationReason": "SUPERSEDED"})
    with stub:
        assert ca.revoke(SERIAL) is True
        assert ca.revoke(SERIAL, "SUPERSEDED") is True
    stub.assert_no_pending_responses()


def test_a_certificate_the_ca_already_revoked_is_not_an_error() -> None:
    ca, stub = stubbed()
    stub.add_client_error("revoke_certificate", "RequestAlreadyProcessedException")
    with stub:
        assert ca.revoke(SERIAL) is False


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("ResourceNotFoundException", NotFoundError, "RevokeCertificate: not found (ResourceNotFoundException)"),
        ("InvalidStateException", AwsError, "RevokeCertificate: InvalidStateException"),
    ],
)
def test_a_refused_revocation_is_named(code: str, error: type[Exception], message: str) -> None:
    ca, stub = stubbed()
    stub.add_client_error("revoke_certificate", code)
    with stub, pytest.raises(error) as refused:
        ca.revoke(SERIAL)
    assert str(refused.value) == message


def test_a_connection_failure_is_retryable_and_named() -> None:
    ca, _ = stubbed()

    def fail(**_: object) -> None:
        raise ConnectTimeoutError(endpoint_url="https://acm-pca")

    ca._client.revoke_certificate = fail
    with pytest.raises(RetryableError) as failed:
        ca.revoke(SERIAL)
    assert str(failed.value) == "RevokeCertificate: connection failed (ConnectTimeoutError)"


def describe_answer(revocation: dict[str, object] | None) -> dict[str, object]:
    authority: dict[str, object] = {
        "Arn": CA_ARN,
        "CertificateAuthorityConfiguration": {
            "KeyAlgorithm": "EC_prime256v1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            "Subject": {"CommonName": "ca"},
        },
    }
    if revocation is not None:
        authority["RevocationConfiguration"] = revocation
    return {"CertificateAuthority": authority}


@pytest.mark.parametrize(
    ("revocation", "publishes"),
    [
        (None, False),
        ({}, False),
        ({"CrlConfiguration": {"Enabled": True}}, True),
        ({"OcspConfiguration": {"Enabled": True}}, True),
        ({"CrlConfiguration": {"Enabled": False}, "OcspConfiguration": {"Enabled": True}}, True),
        ({"CrlConfiguration": {"Enabled": True}, "OcspConfiguration": {"Enabled": False}}, True),
        ({"CrlConfiguration": {"Enabled": False}, "OcspConfiguration": {"Enabled": False}}, False),
    ],
)
def test_the_ca_publishes_revocation_with_a_crl_or_ocsp(revocation: dict[str, object] | None, publishes: bool) -> None:
    ca, stub = stubbed()
    stub.add_response(
        "describe_certificate_authority", describe_answer(revocation), {"CertificateAuthorityArn": CA_ARN}
    )
    with stub:
        assert ca.publishes_revocation() is publishes


def test_whether_the_ca_publishes_is_read_afresh_each_time() -> None:
    ca, stub = stubbed()
    stub.add_response("describe_certificate_authority", describe_answer(None))
    stub.add_response("describe_certificate_authority", describe_answer({"CrlConfiguration": {"Enabled": True}}))
    with stub:
        assert ca.publishes_revocation() is False
        assert ca.publishes_revocation() is True
    stub.assert_no_pending_responses()
