"""The issuer's policy rules, one behaviour each, with no AWS and a fixed clock."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from certrotor.config import IssuerPolicy, KeyAlgorithm
from certrotor.pki.csr import Names, build_csr
from certrotor.pki.keys import generate_key
from certrotor.pki.policy import (
    RequestRefused,
    caller_from_arn,
    check_names,
    check_set_allowed,
    check_validity,
    decide,
    dns_name_allowed,
    load_csr,
    select_policy,
)

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
CA_NOT_AFTER = NOW + dt.timedelta(days=365)
POLICY = IssuerPolicy(principal="orders-task", allowed_dns=("orders.internal", "*.svc.internal"), sets=("orders/*",))
ORDERS = caller_from_arn("arn:aws:sts::123456789012:assumed-role/orders-task/abc")


def rule_of(call: object) -> str:
    with pytest.raises(RequestRefused) as caught:
        call()  # type: ignore[operator]
    return caught.value.rule


def test_an_assumed_role_session_is_its_role() -> None:
    caller = caller_from_arn("arn:aws:sts::123456789012:assumed-role/orders-task/task-17")
    assert caller.role_name == "orders-task"
    assert caller.role_arn == "arn:aws:iam::123456789012:role/orders-task"


def test_a_role_name_selects_its_policy() -> None:
    assert select_policy([POLICY], ORDERS) is POLICY


def test_an_arn_pattern_selects_its_policy() -> None:
    pattern = IssuerPolicy(principal="arn:aws:iam::123456789012:role/orders-*")
    assert select_policy([pattern], ORDERS) is pattern


def test_a_caller_without_a_policy_is_an_unknown_principal() -> None:
    stranger = caller_from_arn("arn:aws:sts::123456789012:assumed-role/stranger/abc")
    assert rule_of(lambda: select_policy([POLICY], stranger)) == "unknown_principal"


def test_a_request_without_an_iam_principal_is_an_unknown_principal() -> None:
    assert rule_of(lambda: caller_from_arn("")) == "unknown_principal"


def test_a_wildcard_allows_exactly_one_label() -> None:
    assert dns_name_allowed("a.svc.internal", POLICY.allowed_dns)
    assert not dns_name_allowed("svc.internal", POLICY.allowed_dns)
    assert not dns_name_allowed("a.b.svc.internal", POLICY.allowed_dns)


def test_a_requested_wildcard_needs_the_same_wildcard_in_the_policy() -> None:
    assert dns_name_allowed("*.svc.internal", POLICY.allowed_dns)
    assert not dns_name_allowed("*.orders.internal", POLICY.allowed_dns)


def test_names_compare_without_case() -> None:
    assert dns_name_allowed("API.SVC.Internal", POLICY.allowed_dns)


@given(st.from_regex(r"[a-z0-9]{1,20}\.(evil|svc)\.(example|internal)", fullmatch=True))
def test_a_name_is_allowed_only_under_the_allowed_suffix(name: str) -> None:
    assert dns_name_allowed(name, POLICY.allowed_dns) == name.endswith(".svc.internal")


def test_text_that_is_not_pem_is_refused() -> None:
    assert rule_of(lambda: load_csr("hello")) == "not_pem"


def test_a_csr_over_the_size_limit_is_refused() -> None:
    assert rule_of(lambda: load_csr("-----BEGIN CERTIFICATE REQUEST-----" + "A" * 20_000)) == "too_large"


def test_ip_addresses_need_a_listed_cidr() -> None:
    names = Names("orders.internal", ("orders.internal",), ("10.0.0.1",))
    assert rule_of(lambda: check_names(POLICY, names)) == "ip_not_allowed"


def test_the_common_name_must_be_a_san() -> None:
    names = Names("other.internal", ("orders.internal",), ())
    assert rule_of(lambda: check_names(POLICY, names)) == "cn_not_in_sans"


def test_a_csr_without_names_is_refused() -> None:
    assert rule_of(lambda: check_names(POLICY, Names("", (), ()))) == "name_not_allowed"


def test_validity_over_the_policy_is_refused() -> None:
    assert rule_of(lambda: check_validity(POLICY, 31, CA_NOT_AFTER, NOW)) == "validity_exceeds_policy"


def test_validity_past_the_ca_expiry_is_refused() -> None:
    assert rule_of(lambda: check_validity(POLICY, 30, NOW + dt.timedelta(days=10), NOW)) == "validity_exceeds_ca"


def test_a_short_lived_ca_refuses_more_than_seven_days() -> None:
    assert rule_of(lambda: check_validity(POLICY, 8, CA_NOT_AFTER, NOW, short_lived_ca=True)) == "validity_exceeds_ca"


@pytest.mark.parametrize("days", [0, -1, "7", 7.5, True, None])
def test_validity_must_be_a_whole_positive_number_of_days(days: object) -> None:
    assert rule_of(lambda: check_validity(POLICY, days, CA_NOT_AFTER, NOW)) == "invalid_request"


def test_a_set_outside_the_policy_is_not_allowed() -> None:
    check_set_allowed(POLICY, "orders/web")
    assert rule_of(lambda: check_set_allowed(POLICY, "billing/web")) == "set_not_allowed"


def test_an_allowed_request_is_decided_with_its_digest_and_names() -> None:
    csr = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    decision = decide(POLICY, ORDERS, csr, 7, CA_NOT_AFTER, NOW)
    assert decision.names.dns_names == ("a.svc.internal",)
    assert len(decision.csr_sha256) == 64 and decision.validity_days == 7
    assert decision.key == "EC secp256r1"


# -- what else a CSR may carry: only what the policy checks reaches Private CA


def _csr_with(subject: x509.Name, sans: list[x509.GeneralName], extra: list[x509.ExtensionType] = ()) -> str:  # type: ignore[assignment]
    key = generate_key(KeyAlgorithm.EC_P256)
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def _decide(csr: str, policy: IssuerPolicy = POLICY) -> object:
    return decide(policy, ORDERS, csr, 7, CA_NOT_AFTER, NOW)


def _cn(value: str) -> x509.NameAttribute:
    return x509.NameAttribute(NameOID.COMMON_NAME, value)


def test_a_uri_san_is_refused() -> None:
    # SPIFFE-style identities are names the policy never checked
    csr = _csr_with(
        x509.Name([_cn("orders.internal")]),
        [x509.DNSName("orders.internal"), x509.UniformResourceIdentifier("spiffe://prod/sa/admin")],
    )
    assert rule_of(lambda: _decide(csr)) == "san_type_not_allowed"


def test_an_email_san_is_refused() -> None:
    csr = _csr_with(x509.Name([_cn("orders.internal")]), [x509.DNSName("orders.internal"), x509.RFC822Name("a@b.c")])
    assert rule_of(lambda: _decide(csr)) == "san_type_not_allowed"


def test_a_second_common_name_is_refused() -> None:
    # OpenSSL clients match a hostname against every CN of a certificate without DNS SANs
    csr = _csr_with(x509.Name([_cn("orders.internal"), _cn("victim.internal")]), [x509.DNSName("orders.internal")])
    assert rule_of(lambda: _decide(csr)) == "subject_not_allowed"


def test_subject_attributes_other_than_the_common_name_are_refused() -> None:
    subject = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "system:masters"), _cn("orders.internal")]
    )
    csr = _csr_with(subject, [x509.DNSName("orders.internal")])
    assert rule_of(lambda: _decide(csr)) == "subject_not_allowed"


def test_a_csr_asking_to_be_a_ca_is_refused() -> None:
    csr = _csr_with(
        x509.Name([_cn("orders.internal")]),
        [x509.DNSName("orders.internal")],
        [x509.BasicConstraints(ca=True, path_length=None)],
    )
    assert rule_of(lambda: _decide(csr)) == "extension_not_allowed"


def test_a_plain_csr_with_an_empty_subject_is_allowed() -> None:
    csr = _csr_with(x509.Name([]), [x509.DNSName("orders.internal")])
    assert _decide(csr) is not None


def test_a_role_name_pattern_does_not_match_the_same_role_name_in_another_account() -> None:
    # Given the deploying account 123456789012 and a caller from another account named alike
    stranger = caller_from_arn("arn:aws:sts::210987654321:assumed-role/orders-task/evil")
    # Then the role-name policy is not theirs, while the home account's role still matches
    assert rule_of(lambda: select_policy([POLICY], stranger, home_account="123456789012")) == "unknown_principal"
    assert select_policy([POLICY], ORDERS, home_account="123456789012") is POLICY


@pytest.mark.parametrize("name", ["evil\n.svc.internal", "\u212aey.svc.internal", "a\u0131.svc.internal"])
def test_a_name_with_a_newline_or_non_ascii_letters_is_not_allowed(name: str) -> None:
    # lower() would turn the Kelvin sign into "k": the name issued must be the name checked
    assert not dns_name_allowed(name, ["*.svc.internal"])
