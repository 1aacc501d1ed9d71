"""The issuer asks for the template of its CA's partition (China, GovCloud),
and records times in UTC."""

from __future__ import annotations

import datetime as dt

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.local.ca import LocalCA
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key
from certrotor.services.issuance import CertificateIssuer
from tests.unit.issuer.test_issuer_service import CONFIG, ORDERS, FakeCA, FakeLedger, _issuer_for


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_the_template_is_in_the_partition_of_the_ca(root_ca: LocalCA, partition: str) -> None:
    issuer, ca, _ledger = _issuer_for("server", root_ca)
    ca.ca_arn = ca.ca_arn.replace("arn:aws:", f"arn:{partition}:")
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    issuer.issue(issuer.approve(ORDERS, csr, 5), "req-1", lambda: 10)
    ((_days, template_arn, _token),) = ca.calls
    assert template_arn == f"arn:{partition}:acm-pca:::template/EndEntityServerAuthCertificate/V1"


def test_the_default_clock_records_utc_times(root_ca: LocalCA) -> None:
    ledger = FakeLedger()
    issuer = CertificateIssuer(CONFIG, FakeCA(root_ca), ledger)  # the default clock
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    before = dt.datetime.now(dt.UTC)
    issuer.issue(issuer.approve(ORDERS, csr, 5), "req-1", lambda: 10)
    (entry,) = ledger.entries.values()
    issued_at = dt.datetime.fromisoformat(entry.issued_at)
    assert issued_at.utcoffset() == dt.timedelta(0)
    assert before <= issued_at <= dt.datetime.now(dt.UTC)
