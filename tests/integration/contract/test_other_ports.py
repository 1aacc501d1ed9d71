"""ServicePort, CertificateAuthorityPort and the issuer's LedgerPort: each
fake and its real adapter on the emulator, held to the same contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certrotor.aws.ledger import LedgerEntry
from certrotor.config import KeyAlgorithm, ServiceRef, Usage, template_arn
from certrotor.errors import NotFoundError
from certrotor.pki.bundle import parse_certificates
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key
from tests.integration.contract.conftest import AuthorityBackend, ServiceBackend

# -- ServicePort -------------------------------------------------------------------


def test_an_active_service_is_redeployed_each_time_with_a_new_deployment(services: ServiceBackend) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    services.create(cluster, "web")
    first = services.port.redeploy(cluster, "web")
    second = services.port.redeploy(cluster, "web")
    assert first and second and first != second


def test_redeploying_a_service_or_cluster_that_does_not_exist_is_not_found(services: ServiceBackend) -> None:
    cluster = f"c{uuid.uuid4().hex[:8]}"
    services.create(cluster, "web")
    with pytest.raises(NotFoundError):
        services.port.redeploy(cluster, "api")
    with pytest.raises(NotFoundError):
        services.port.redeploy(f"c{uuid.uuid4().hex[:8]}", "web")


def test_missing_names_exactly_the_services_that_do_not_exist_across_clusters(services: ServiceBackend) -> None:
    # 12 services in one cluster (DescribeServices takes 10 at a time) and one in another
    one, two = f"c{uuid.uuid4().hex[:8]}", f"c{uuid.uuid4().hex[:8]}"
    for i in range(11):
        services.create(one, f"svc{i}")
    services.create(two, "web")
    refs = [ServiceRef(one, f"svc{i}") for i in range(12)] + [ServiceRef(two, "web"), ServiceRef(two, "api")]
    assert services.port.missing(refs) == [f"{one}/svc11", f"{two}/api"]
    assert services.port.missing(refs[:11]) == []


# -- CertificateAuthorityPort -------------------------------------------------------


@pytest.mark.parametrize("usage", list(Usage))
def test_a_csr_is_issued_for_its_key_with_the_validity_and_template_asked_for(
    authority: AuthorityBackend, usage: Usage
) -> None:
    key = generate_key(KeyAlgorithm.EC_P256)
    csr = build_csr(key, "svc.internal", ["svc.internal"])
    arn = authority.port.issue(csr, 11, template_arn(usage), f"contract-{uuid.uuid4().hex}")
    issued = authority.port.wait(arn, lambda: 10.0)
    leaf = parse_certificates(issued.certificate_pem)[0]
    assert issued.arn == arn
    assert leaf.public_key() == key.public_key()
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=11)
    eku = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    expected = {
        Usage.SERVER: {ExtendedKeyUsageOID.SERVER_AUTH},
        Usage.CLIENT: {ExtendedKeyUsageOID.CLIENT_AUTH},
        Usage.BOTH: {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
    }[usage]
    assert eku == expected
    # The chain starts with the certificate that signed the leaf
    chain = parse_certificates(issued.chain_pem)
    leaf.verify_directly_issued_by(chain[0])


def test_the_same_token_is_the_same_certificate(authority: AuthorityBackend) -> None:
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "svc.internal", ["svc.internal"])
    token = f"contract-{uuid.uuid4().hex}"
    first = authority.port.issue(csr, 7, template_arn(Usage.SERVER), token)
    again = authority.port.issue(csr, 7, template_arn(Usage.SERVER), token)
    other = authority.port.issue(csr, 7, template_arn(Usage.SERVER), f"contract-{uuid.uuid4().hex}")
    assert again == first != other


def test_the_cas_chain_starts_with_the_ca_and_leads_to_the_root(authority: AuthorityBackend) -> None:
    chain = parse_certificates(authority.port.ca_certificate_chain())
    assert chain[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert chain[-1] == authority.anchor
    assert authority.port.ca_certificate_chain(refresh=True) == authority.port.ca_certificate_chain()
    assert authority.port.signing_algorithm() in {"SHA256WITHRSA", "SHA256WITHECDSA", "SHA384WITHECDSA"}


def test_an_unknown_certificate_is_not_found(authority: AuthorityBackend) -> None:
    with pytest.raises(NotFoundError):
        authority.port.get(f"{authority.port.ca_arn}/certificate/{uuid.uuid4().hex}")


# -- LedgerPort ---------------------------------------------------------------------

CA = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/contract"
NOW = dt.datetime(2026, 6, 1, 12, 0, 30, tzinfo=dt.UTC)


def entry(serial: str, ca_arn: str = CA) -> LedgerEntry:
    return LedgerEntry(
        ca_arn=ca_arn,
        serial=serial,
        principal="arn:aws:iam::123456789012:role/orders",
        names=("a.svc.internal",),
        not_after="2026-07-01T00:00:00+00:00",
        request_id="req",
        certificate_arn=f"{ca_arn}/certificate/{serial}",
        issued_at=NOW.isoformat(),
    )


def test_a_certificate_is_recorded_and_counted_once_per_ca(ledger: object) -> None:
    port: Any = ledger
    assert port.record(entry("01")) is True
    assert port.record(entry("01")) is False
    assert port.record(entry("02")) is True
    assert port.record(entry("01", CA + "-other")) is True
    assert port.count(CA) == 2
    assert port.count(CA + "-other") == 1


def test_a_request_token_remembers_its_first_certificate_per_ca(ledger: object) -> None:
    port: Any = ledger
    assert port.find_request(CA, "token") is None
    assert port.remember_request(CA, "token", "arn:first", NOW) == "arn:first"
    assert port.remember_request(CA, "token", "arn:second", NOW) == "arn:first"
    assert port.find_request(CA, "token") == "arn:first"
    assert port.find_request(CA + "-other", "token") is None


def test_the_rate_is_counted_per_principal_and_minute_up_to_the_limit(ledger: object) -> None:
    port: Any = ledger
    assert [port.take_rate_slot("orders", 2, NOW) for _ in range(3)] == [True, True, False]
    assert port.take_rate_slot("billing", 2, NOW) is True
    assert port.take_rate_slot("orders", 2, NOW + dt.timedelta(seconds=29)) is False
    assert port.take_rate_slot("orders", 2, NOW + dt.timedelta(seconds=30)) is True
