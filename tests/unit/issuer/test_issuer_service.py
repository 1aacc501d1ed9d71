"""CertificateIssuer with in-memory fakes: what it spends and records when
Private CA throttles, times out or answers, and the rate limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509

from certrotor.aws.ledger import LedgerEntry
from certrotor.aws.pca import IssuedCertificate
from certrotor.config import KeyAlgorithm, load_config
from certrotor.errors import DeadlineError, PolicyError, ThrottledError
from certrotor.local.ca import LocalCA
from certrotor.local.provision import DEFAULT_CONFIG
from certrotor.pki.bundle import cert_to_pem
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key
from certrotor.pki.policy import RequestRefused
from certrotor.ports import CertificateAuthorityPort
from certrotor.services.issuance import CertificateIssuer, LedgerPort, ManagedSets
from tests.unit.rotation.fakes import TEMPLATE_AUTH

NOW = dt.datetime.now(dt.UTC)
ORDERS = "arn:aws:sts::123456789012:assumed-role/orders-task/abc"
CONFIG = load_config(
    {
        **DEFAULT_CONFIG,
        "issuer_policies": [{"principal": "orders-task", "allowed_dns": ["*.svc.internal"], "rate_per_minute": 2}],
    }
)


class FakeLedger:
    """The ledger in memory, as the DynamoDB one behaves: certificates and
    request tokens per CA, the rate per principal and minute."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], LedgerEntry] = {}
        self.requests: dict[tuple[str, str], str] = {}
        self.slots: dict[tuple[str, int], int] = {}

    def record(self, entry: LedgerEntry) -> bool:
        if (entry.ca_arn, entry.serial) in self.entries:
            return False
        self.entries[(entry.ca_arn, entry.serial)] = entry
        return True

    def count(self, ca_arn: str) -> int:
        return sum(1 for ca, _serial in self.entries if ca == ca_arn)

    def find_request(self, ca_arn: str, token: str) -> str | None:
        return self.requests.get((ca_arn, token))

    def remember_request(self, ca_arn: str, token: str, certificate_arn: str, now: dt.datetime) -> str:
        return self.requests.setdefault((ca_arn, token), certificate_arn)

    def take_rate_slot(self, principal: str, limit: int, now: dt.datetime) -> bool:
        minute = (principal, int(now.timestamp()) // 60)
        used = self.slots.get(minute, 0)
        if used >= limit:
            return False
        self.slots[minute] = used + 1
        return True


class FakeCA:
    """Signs with a local CA; throttles or stays not-ready on demand."""

    ca_arn = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/00000000-0000-0000-0000-000000000000"

    def __init__(self, authority: LocalCA) -> None:
        self.authority = authority
        self.issued: dict[str, x509.Certificate] = {}
        self.throttle_issue = 0
        self.never_ready = False
        self.calls: list[tuple[int, str, str]] = []
        self.answer_with_template: str | None = None

    def signing_algorithm(self) -> str:
        return "SHA256WITHECDSA"

    def ca_certificate_chain(self, refresh: bool = False) -> str:
        return self.authority.pem

    def issue(self, csr_pem: str, validity_days: int, template_arn: str, token: str) -> str:
        if self.throttle_issue:
            self.throttle_issue -= 1
            raise ThrottledError("IssueCertificate: throttled")
        self.calls.append((validity_days, template_arn, token))
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        arn = f"{self.ca_arn}/certificate/{len(self.issued)}"
        server_auth, client_auth = TEMPLATE_AUTH[(self.answer_with_template or template_arn).rsplit("/", 2)[-2] + "/V1"]
        self.issued[arn] = self.authority.issue_leaf(
            csr.public_key(),  # type: ignore[arg-type]
            "x",
            ("a.svc.internal",),
            days=validity_days,
            server_auth=server_auth,
            client_auth=client_auth,
        )
        return arn

    def get(self, certificate_arn: str) -> IssuedCertificate:
        return IssuedCertificate(certificate_arn, cert_to_pem(self.issued[certificate_arn]), self.authority.pem)

    def wait(self, certificate_arn: str, remaining_seconds: Callable[[], float]) -> IssuedCertificate:
        if self.never_ready:
            raise DeadlineError("not issued within the time left")
        return self.get(certificate_arn)


def _checked(ledger: FakeLedger, ca: FakeCA) -> tuple[LedgerPort, CertificateAuthorityPort]:
    return ledger, ca  # mypy checks the fakes against the ports here


@pytest.fixture
def parts(root_ca: LocalCA) -> tuple[CertificateIssuer, FakeCA, FakeLedger]:
    ca, ledger = FakeCA(root_ca), FakeLedger()
    checked_ledger, checked_ca = _checked(ledger, ca)
    return CertificateIssuer(CONFIG, checked_ca, checked_ledger, now=lambda: NOW), ca, ledger


def approved(issuer: CertificateIssuer):  # type: ignore[no-untyped-def]
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    return issuer.approve(ORDERS, csr, 7)


def test_a_throttled_issue_records_nothing(parts: tuple[CertificateIssuer, FakeCA, FakeLedger]) -> None:
    issuer, ca, ledger = parts
    ca.throttle_issue = 1
    with pytest.raises(ThrottledError):
        issuer.issue(approved(issuer), "req-1", lambda: 10)
    assert ca.issued == {} and ledger.entries == {} and ledger.requests == {}


def test_a_retry_after_a_deadline_reuses_the_certificate_already_issued(
    parts: tuple[CertificateIssuer, FakeCA, FakeLedger],
) -> None:
    issuer, ca, _ledger = parts
    decision = approved(issuer)
    ca.never_ready = True
    with pytest.raises(DeadlineError):
        issuer.issue(decision, "req-1", lambda: 0)
    ca.never_ready = False
    result = issuer.issue(decision, "req-2", lambda: 10)
    assert len(ca.issued) == 1 and result.issued_count == 1


def test_recording_the_same_certificate_twice_counts_it_once(
    parts: tuple[CertificateIssuer, FakeCA, FakeLedger],
) -> None:
    issuer, ca, _ledger = parts
    decision = approved(issuer)
    first = issuer.issue(decision, "req-1", lambda: 10)
    again = issuer.issue(decision, "req-1", lambda: 10)
    assert (first.newly_recorded, again.newly_recorded) == (True, False)
    assert again.serial == first.serial and len(ca.issued) == 1


def test_the_rate_limit_refuses_before_paying(parts: tuple[CertificateIssuer, FakeCA, FakeLedger]) -> None:
    issuer, ca, _ledger = parts
    for _ in range(2):
        issuer.issue(approved(issuer), "req", lambda: 10)
    with pytest.raises(RequestRefused) as caught:
        issuer.issue(approved(issuer), "req", lambda: 10)
    assert caught.value.rule == "rate_limited" and caught.value.retry_after is not None
    assert len(ca.issued) == 2


def test_quota_use_is_a_percentage_of_the_configured_quota(
    parts: tuple[CertificateIssuer, FakeCA, FakeLedger],
) -> None:
    issuer, _, _ = parts
    result = issuer.issue(approved(issuer), "req", lambda: 10)
    assert result.quota_used_percent == pytest.approx(100 / 1_000_000)


class CountingTrigger:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, secret_id: str) -> str:
        self.started.append(secret_id)
        return f"token-{len(self.started)}"


def test_issue_now_counts_against_the_callers_rate() -> None:
    # Given a caller allowed 2 requests a minute and the demo set
    config = load_config(
        {
            **DEFAULT_CONFIG,
            "issuer_policies": [{"principal": "orders-task", "sets": ["demo/*"], "rate_per_minute": 2}],
        }
    )
    trigger = CountingTrigger()
    sets = ManagedSets(config, secrets=None, trigger=trigger, ledger=FakeLedger(), now=lambda: NOW)  # type: ignore[arg-type]
    # When it asks to issue now three times in one minute
    sets.issue_now(ORDERS, "demo/web")
    sets.issue_now(ORDERS, "demo/web")
    with pytest.raises(RequestRefused) as caught:
        sets.issue_now(ORDERS, "demo/web")
    # Then the third is refused before any rotation (and certificate) starts
    assert caught.value.rule == "rate_limited"
    assert trigger.started == ["demo/web", "demo/web"]


def _issuer_for(usage: str, root_ca: LocalCA) -> tuple[CertificateIssuer, FakeCA, FakeLedger]:
    config = load_config(
        {
            **DEFAULT_CONFIG,
            "issuer_policies": [{"principal": "orders-task", "allowed_dns": ["*.svc.internal"], "usage": usage}],
        }
    )
    ca, ledger = FakeCA(root_ca), FakeLedger()
    return CertificateIssuer(config, ca, ledger, now=lambda: NOW), ca, ledger


@pytest.mark.parametrize(
    ("usage", "template", "eku"),
    [
        ("server", "EndEntityServerAuthCertificate/V1", ["serverAuth"]),
        ("client", "EndEntityClientAuthCertificate/V1", ["clientAuth"]),
        ("both", "EndEntityCertificate/V1", ["serverAuth", "clientAuth"]),
    ],
)
def test_the_policys_usage_selects_the_template_and_the_validity_is_passed_on(
    root_ca: LocalCA, usage: str, template: str, eku: list[str]
) -> None:
    # Given a policy issuing for this usage
    issuer, ca, _ledger = _issuer_for(usage, root_ca)
    # When a 5-day certificate is requested
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    result = issuer.issue(issuer.approve(ORDERS, csr, 5), "req-1", lambda: 10)
    # Then Private CA was asked for the usage's template and 5 days, with a stable token
    ((days, template_arn, token),) = ca.calls
    assert (days, template_arn) == (5, f"arn:aws:acm-pca:::template/{template}")
    assert token == CertificateIssuer.token(issuer.approve(ORDERS, csr, 5))
    leaf = x509.load_pem_x509_certificate(result.certificate.encode())
    assert [oid._name for oid in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value] == eku


def test_a_certificate_issued_for_another_usage_is_refused_and_not_recorded(root_ca: LocalCA) -> None:
    # Given a client policy and a CA that answers with a server-only certificate
    issuer, ca, ledger = _issuer_for("client", root_ca)
    ca.answer_with_template = "arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1"
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    # When it is issued / Then it is refused and the ledger holds no certificate
    with pytest.raises(PolicyError, match="clientAuth"):
        issuer.issue(issuer.approve(ORDERS, csr, 5), "req-1", lambda: 10)
    assert ledger.entries == {}
