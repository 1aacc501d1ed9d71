"""The emulated Private CA answers IssueCertificate as AWS does where
certrotor's safety depends on it (moto alone does not): Validity, each
end-entity template's key usage and extended key usage, the CA's own expiry,
and IdempotencyToken's 5-minute window. See certrotor.local.private_ca."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certrotor.aws.pca import PrivateCA
from certrotor.config import KeyAlgorithm, Usage, template_arn
from certrotor.errors import AwsError
from certrotor.local.provision import LocalEnvironment
from certrotor.pki.bundle import parse_certificates
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key

Issue = Callable[..., tuple[str, x509.Certificate]]


@pytest.fixture
def env(make_env: Callable[..., LocalEnvironment]) -> LocalEnvironment:
    return make_env()


@pytest.fixture
def ca(env: LocalEnvironment) -> PrivateCA:
    return PrivateCA(env.ca_arn, env.emulator.client("acm-pca"))


@pytest.fixture
def issue(ca: PrivateCA) -> Issue:
    """Issue for a fresh P-256 key: (certificate ARN, leaf)."""

    def run(
        days: int = 7,
        usage: Usage = Usage.SERVER,
        idempotency: str = "t-1",
        csr: str | None = None,
    ) -> tuple[str, x509.Certificate]:
        csr = csr or build_csr(generate_key(KeyAlgorithm.EC_P256), "svc.internal", ["svc.internal"])
        arn = ca.issue(csr, days, template_arn(usage), idempotency)
        return arn, parse_certificates(ca.wait(arn, remaining_seconds=lambda: 10.0).certificate_pem)[0]

    return run


@pytest.mark.parametrize("days", [1, 7, 398])
def test_validity_days_set_not_after(issue: Issue, days: int) -> None:
    # When a certificate is issued with Validity {Value: days, Type: DAYS}
    _, leaf = issue(days=days, idempotency=f"days-{days}")
    # Then it is valid exactly that long
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=days)


def test_a_validity_past_the_cas_own_expiry_is_refused_and_issues_nothing(issue: Issue, env: LocalEnvironment) -> None:
    # Given the subordinate CA's certificate expires within 5 years
    before = env.emulator.issued_certificates(env.ca_arn)
    # When a certificate valid for 10 years is requested / Then Private CA refuses it
    with pytest.raises(AwsError, match="ValidationException"):
        issue(days=3650, idempotency="too-long")
    assert env.emulator.issued_certificates(env.ca_arn) == before


EKU = {
    Usage.SERVER: [ExtendedKeyUsageOID.SERVER_AUTH],
    Usage.CLIENT: [ExtendedKeyUsageOID.CLIENT_AUTH],
    Usage.BOTH: [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}


@pytest.mark.parametrize("usage", list(Usage))
def test_each_end_entity_template_sets_its_key_usage_and_extended_key_usage(issue: Issue, usage: Usage) -> None:
    # When a certificate is issued with the template for `usage`
    _, leaf = issue(usage=usage, idempotency=f"usage-{usage}")
    # Then it carries exactly that template's extended key usage, critical key usage and CA:FALSE
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == EKU[usage]
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature
    assert key_usage.value.key_encipherment is (usage is not Usage.CLIENT)
    assert not key_usage.value.key_cert_sign
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    # And the CSR's names pass through
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["svc.internal"]


def test_the_same_token_within_five_minutes_answers_with_the_first_certificate(
    issue: Issue, env: LocalEnvironment
) -> None:
    # Given a certificate issued under a token
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "svc.internal", ["svc.internal"])
    first, _ = issue(idempotency="same", csr=csr)
    count = env.emulator.issued_certificates(env.ca_arn)
    # When the same request is made again with the same token
    again, _ = issue(idempotency="same", csr=csr)
    # Then it is the same certificate and nothing new was issued
    assert again == first
    assert env.emulator.issued_certificates(env.ca_arn) == count
    # And another token is another certificate
    other, _ = issue(idempotency="other", csr=csr)
    assert other != first
    assert env.emulator.issued_certificates(env.ca_arn) == count + 1


def test_a_token_reused_after_five_minutes_issues_a_new_certificate(issue: Issue, env: LocalEnvironment) -> None:
    # Given a certificate issued under a token, about 4 minutes 50 seconds ago
    # (the exact boundary is pinned by the unit tests of IdempotencyLedger)
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "svc.internal", ["svc.internal"])
    first, _ = issue(idempotency="window", csr=csr)
    env.emulator.age_idempotency_tokens(290)
    assert issue(idempotency="window", csr=csr)[0] == first
    # When 10 more seconds pass (300 s: the window is over)
    env.emulator.age_idempotency_tokens(10)
    # Then the same token is a new certificate
    assert issue(idempotency="window", csr=csr)[0] != first
