"""PrivateCA's requests with botocore's Stubber holding each call to its exact
parameters (the emulator ignores Validity, SigningAlgorithm and
IdempotencyToken, so only here is what certrotor sends pinned), what each
answer becomes, and what is cached for the life of the object."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from certrotor.aws.pca import Backoff, PrivateCA
from certrotor.errors import AwsError, DeadlineError

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
CERT_ARN = CA_ARN + "/certificate/abc"
TEMPLATE = "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1"
CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"
DESCRIPTION = {
    "CertificateAuthority": {
        "Arn": CA_ARN,
        "CertificateAuthorityConfiguration": {
            "KeyAlgorithm": "EC_prime256v1",
            "SigningAlgorithm": "SHA256WITHECDSA",
            "Subject": {"CommonName": "issuing"},
        },
    }
}


def stubbed() -> tuple[PrivateCA, Stubber, list[float]]:
    client = boto3.client("acm-pca", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    slept: list[float] = []
    return PrivateCA(CA_ARN, client, sleep=slept.append), Stubber(client), slept


def test_issue_sends_the_csr_the_cas_signing_algorithm_the_template_validity_and_token() -> None:
    ca, stub, _ = stubbed()
    token = "0123456789abcdef0123456789abcdef0123456789"  # longer than Private CA takes
    stub.add_response("describe_certificate_authority", DESCRIPTION, {"CertificateAuthorityArn": CA_ARN})
    stub.add_response(
        "issue_certificate",
        {"CertificateArn": CERT_ARN},
        {
            "CertificateAuthorityArn": CA_ARN,
            "Csr": CSR.encode("ascii"),
            "SigningAlgorithm": "SHA256WITHECDSA",
            "TemplateArn": TEMPLATE,
            "Validity": {"Value": 30, "Type": "DAYS"},
            "IdempotencyToken": token[:36],
        },
    )
    # A second issue reuses the description: DescribeCertificateAuthority once.
    stub.add_response("issue_certificate", {"CertificateArn": CERT_ARN + "2"}, None)
    with stub:
        assert ca.issue(CSR, 30, TEMPLATE, token) == CERT_ARN
        assert ca.issue(CSR, 30, TEMPLATE, token) == CERT_ARN + "2"
        stub.assert_no_pending_responses()


def test_the_description_is_cached_unless_refreshed() -> None:
    ca, stub, _ = stubbed()
    refreshed = {"CertificateAuthority": {**DESCRIPTION["CertificateAuthority"], "Status": "DISABLED"}}
    stub.add_response("describe_certificate_authority", DESCRIPTION, {"CertificateAuthorityArn": CA_ARN})
    stub.add_response("describe_certificate_authority", refreshed, {"CertificateAuthorityArn": CA_ARN})
    with stub:
        assert ca.describe() == DESCRIPTION["CertificateAuthority"]
        assert ca.describe() == DESCRIPTION["CertificateAuthority"]
        assert ca.signing_algorithm() == "SHA256WITHECDSA"
        assert ca.describe(refresh=True)["Status"] == "DISABLED"
        assert ca.describe()["Status"] == "DISABLED"
        stub.assert_no_pending_responses()


def test_the_ca_chain_is_its_certificate_then_its_chain_one_block_each() -> None:
    ca, stub, _ = stubbed()
    params = {"CertificateAuthorityArn": CA_ARN}
    stub.add_response(
        "get_certificate_authority_certificate", {"Certificate": "\nCA\n\n", "CertificateChain": "ROOT\n\n"}, params
    )
    stub.add_response("get_certificate_authority_certificate", {"Certificate": "ROOT CA"}, params)
    with stub:
        assert ca.ca_certificate_chain() == "CA\nROOT\n"
        assert ca.ca_certificate_chain() == "CA\nROOT\n"  # cached
        # A root CA has no chain: its certificate alone.
        assert ca.ca_certificate_chain(refresh=True) == "ROOT CA\n"
        stub.assert_no_pending_responses()


def test_an_empty_chain_adds_nothing() -> None:
    ca, stub, _ = stubbed()
    stub.add_response("get_certificate_authority_certificate", {"Certificate": "CA", "CertificateChain": ""}, None)
    with stub:
        assert ca.ca_certificate_chain() == "CA\n"


def test_get_names_the_ca_and_certificate_and_returns_what_was_issued() -> None:
    ca, stub, _ = stubbed()
    params = {"CertificateAuthorityArn": CA_ARN, "CertificateArn": CERT_ARN}
    stub.add_response("get_certificate", {"Certificate": "LEAF", "CertificateChain": "CHAIN"}, params)
    stub.add_response("get_certificate", {"Certificate": "LEAF"}, params)
    with stub:
        issued = ca.get(CERT_ARN)
        assert (issued.arn, issued.certificate_pem, issued.chain_pem) == (CERT_ARN, "LEAF", "CHAIN")
        assert ca.get(CERT_ARN).chain_pem == ""


def test_the_default_backoff_doubles_from_a_quarter_second_to_four() -> None:
    delays = Backoff().delays()
    assert [next(delays) for _ in range(7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    tripled = Backoff(first=1.0, factor=3.0, cap=10.0).delays()
    assert [next(tripled) for _ in range(4)] == [1.0, 3.0, 9.0, 10.0]


def test_waiting_out_of_time_names_the_certificate() -> None:
    ca, stub, slept = stubbed()
    stub.add_client_error("get_certificate", "RequestInProgressException")
    with stub, pytest.raises(DeadlineError) as raised:
        ca.wait(CERT_ARN, remaining_seconds=lambda: 0.0)
    assert str(raised.value) == f"certificate {CERT_ARN} not issued within the time left"
    assert slept == []


def test_a_wait_with_time_left_sleeps_the_backoff_then_answers() -> None:
    ca, stub, slept = stubbed()
    stub.add_client_error("get_certificate", "RequestInProgressException")
    stub.add_client_error("get_certificate", "RequestInProgressException")
    stub.add_response("get_certificate", {"Certificate": "LEAF"}, None)
    with stub:
        assert ca.wait(CERT_ARN, remaining_seconds=lambda: 0.4).certificate_pem == "LEAF"
    assert slept == [0.25, 0.4]


def test_refusals_name_the_call_that_failed() -> None:
    ca, stub, _ = stubbed()
    stub.add_client_error("describe_certificate_authority", "AccessDeniedException")
    stub.add_client_error("get_certificate_authority_certificate", "ResourceNotFoundException")
    stub.add_response("describe_certificate_authority", DESCRIPTION, None)
    stub.add_client_error("issue_certificate", "LimitExceededException")
    with stub:
        with pytest.raises(AwsError) as described:
            ca.describe()
        with pytest.raises(AwsError) as chained:
            ca.ca_certificate_chain()
        with pytest.raises(AwsError) as issued:
            ca.issue(CSR, 30, TEMPLATE, "t")
    assert str(described.value) == "DescribeCertificateAuthority: AccessDeniedException"
    assert str(chained.value) == "GetCertificateAuthorityCertificate: not found (ResourceNotFoundException)"
    assert str(issued.value) == "IssueCertificate: LimitExceededException"
