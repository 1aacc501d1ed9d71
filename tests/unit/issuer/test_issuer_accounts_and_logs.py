"""The issuer's CSR path: a role of the policy's name in another account is
someone else, and each certificate requested is logged under the issuer's logger."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.local.ca import LocalCA
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
