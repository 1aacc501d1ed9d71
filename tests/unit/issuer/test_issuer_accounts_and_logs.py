"""The issuer's CSR path: a role of the policy's name in another account is
someone else, a short-lived CA issues at most 7 days, and each certificate
requested is logged under the issuer's logger."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from certrotor.config import CertrotorConfig, KeyAlgorithm, load_config
from certrotor.errors import BundleError
from certrotor.local.ca import LocalCA
from certrotor.local.provision import DEFAULT_CONFIG
from certrotor.pki.bundle import cert_to_pem, serial_hex
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key
from certrotor.pki.policy import RequestRefused
from certrotor.services.issuance import CertificateIssuer
from tests.unit.issuer.test_issuer_service import CONFIG, ORDERS, FakeCA, FakeLedger

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def csr() -> str:
    return build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])


def test_a_role_of_the_same_name_in_another_account_gets_no_certificate(root_ca: LocalCA) -> None:
    ca = FakeCA(root_ca)
    issuer = CertificateIssuer(CONFIG, ca, FakeLedger(), now=lambda: NOW, home_account="123456789012")
    assert issuer.approve(ORDERS, csr(), 5).caller.role_arn == "arn:aws:iam::123456789012:role/orders-task"
    stranger = ORDERS.replace("123456789012", "210987654321")
    with pytest.raises(RequestRefused) as refused:
        issuer.approve(stranger, csr(), 5)
    assert refused.value.rule == "unknown_principal"
    assert ca.calls == []


def test_a_requested_certificate_is_logged_by_the_issuance_logger(
    root_ca: LocalCA, caplog: pytest.LogCaptureFixture
) -> None:
    ca = FakeCA(root_ca)
    issuer = CertificateIssuer(CONFIG, ca, FakeLedger(), now=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="certrotor.issuance"):
        issuer.issue(issuer.approve(ORDERS, csr(), 5), "req-1", lambda: 10)
    requested = [r for r in caplog.records if r.getMessage() == "certificate requested"]
    assert [r.name for r in requested] == ["certrotor.issuance"]
    assert [getattr(r, "certificate_arn", None) for r in requested] == list(ca.issued)


def test_the_request_is_remembered_with_the_time_it_was_made(root_ca: LocalCA) -> None:
    remembered: list[tuple[str, dt.datetime]] = []

    class Remembering(FakeLedger):
        def remember_request(self, ca_arn: str, token: str, certificate_arn: str, now: dt.datetime) -> str:
            remembered.append((certificate_arn, now))
            return super().remember_request(ca_arn, token, certificate_arn, now)

    ca = FakeCA(root_ca)
    issuer = CertificateIssuer(CONFIG, ca, Remembering(), now=lambda: NOW)
    issuer.issue(issuer.approve(ORDERS, csr(), 5), "req-1", lambda: 10)
    assert remembered == [(next(iter(ca.issued)), NOW)]


def short_lived(mode: str) -> CertrotorConfig:
    return load_config(
        {
            **DEFAULT_CONFIG,
            "ca": {**DEFAULT_CONFIG["ca"], "usage_mode": mode},
            "sets": [
                {
                    **DEFAULT_CONFIG["sets"][0],
                    "validity_days": 7,
                    "schedule": {"expression": "rate(2 days)", "window": "4h"},
                }
            ],
            "issuer_policies": [{"principal": "orders-task", "allowed_dns": ["*.svc.internal"]}],
            "expiry_alarm_days": 1,
        }
    )


def test_a_short_lived_ca_issues_at_most_seven_days(root_ca: LocalCA) -> None:
    issuer = CertificateIssuer(short_lived("SHORT_LIVED_CERTIFICATE"), FakeCA(root_ca), FakeLedger(), now=lambda: NOW)
    assert issuer.approve(ORDERS, csr(), 7).validity_days == 7
    with pytest.raises(RequestRefused) as refused:
        issuer.approve(ORDERS, csr(), 8)
    assert refused.value.rule == "validity_exceeds_ca"
    assert str(refused.value) == "the CA is in short-lived mode and issues at most 7 days"
    general = CertificateIssuer(short_lived("GENERAL_PURPOSE"), FakeCA(root_ca), FakeLedger(), now=lambda: NOW)
    assert general.approve(ORDERS, csr(), 8).validity_days == 8


def test_the_response_is_the_certificate_the_ca_issued_and_its_chain(root_ca: LocalCA) -> None:
    ca, ledger = FakeCA(root_ca), FakeLedger()
    issuer = CertificateIssuer(CONFIG, ca, ledger, now=lambda: NOW)
    result = issuer.issue(issuer.approve(ORDERS, csr(), 5), "req-1", lambda: 10)
    ((arn, leaf),) = ca.issued.items()
    assert result.response() == {
        "certificate": cert_to_pem(leaf),
        "chain": root_ca.pem,
        "serial": serial_hex(leaf),
        "not_after": leaf.not_valid_after_utc.isoformat(),
        "certificate_arn": arn,
    }
    (entry,) = ledger.entries.values()
    assert (entry.serial, entry.not_after, entry.certificate_arn) == (
        result.serial,
        result.not_after,
        result.certificate_arn,
    )


def test_each_role_has_its_own_rate(root_ca: LocalCA) -> None:
    config = load_config(
        {
            **DEFAULT_CONFIG,
            "issuer_policies": [{"principal": "*-task", "allowed_dns": ["*.svc.internal"], "rate_per_minute": 1}],
        }
    )
    ca, ledger = FakeCA(root_ca), FakeLedger()
    issuer = CertificateIssuer(config, ca, ledger, now=lambda: NOW + dt.timedelta(seconds=42))
    billing = ORDERS.replace("orders-task", "billing-task")
    issuer.issue(issuer.approve(ORDERS, csr(), 5), "req-1", lambda: 10)
    issuer.issue(issuer.approve(billing, csr(), 5), "req-2", lambda: 10)
    with pytest.raises(RequestRefused) as refused:
        issuer.issue(issuer.approve(ORDERS, csr(), 5), "req-3", lambda: 10)
    assert str(refused.value) == "arn:aws:iam::123456789012:role/orders-task may request 1 certificates a minute"
    assert refused.value.retry_after == 18  # the rest of the minute
    assert len(ca.issued) == 2


def test_the_idempotency_token_is_per_role_csr_and_validity(root_ca: LocalCA) -> None:
    config = load_config(
        {**DEFAULT_CONFIG, "issuer_policies": [{"principal": "*-task", "allowed_dns": ["*.svc.internal"]}]}
    )
    issuer = CertificateIssuer(config, FakeCA(root_ca), FakeLedger(), now=lambda: NOW)
    request = csr()
    billing = ORDERS.replace("orders-task", "billing-task")
    token = CertificateIssuer.token
    assert token(issuer.approve(ORDERS, request, 5)) == token(issuer.approve(ORDERS, request, 5))
    assert token(issuer.approve(ORDERS, request, 5)) != token(issuer.approve(billing, request, 5))
    assert token(issuer.approve(ORDERS, request, 5)) != token(issuer.approve(ORDERS, request, 6))
    assert token(issuer.approve(ORDERS, request, 5)) != token(issuer.approve(ORDERS, csr(), 5))


def test_a_certificate_for_another_key_is_refused_and_not_recorded(root_ca: LocalCA) -> None:
    ca, ledger = FakeCA(root_ca), FakeLedger()
    issuer = CertificateIssuer(CONFIG, ca, ledger, now=lambda: NOW)
    decision = issuer.approve(ORDERS, csr(), 5)
    other = issuer.approve(ORDERS, csr(), 5)
    arn = ca.issue(other.csr_pem, 5, "arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1", "t")
    ledger.requests[(ca.ca_arn, CertificateIssuer.token(decision))] = arn
    with pytest.raises(BundleError) as refused:
        issuer.issue(decision, "req-1", lambda: 10)
    assert str(refused.value) == "Private CA returned a certificate for another key"
    assert ledger.entries == {}
