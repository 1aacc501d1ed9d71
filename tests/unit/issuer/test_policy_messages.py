"""The issuer policy's refusals as the caller reads them (exact lines), and
each of its limits at limit - 1, limit and limit + 1."""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from certrotor.config import IssuerPolicy, KeyAlgorithm, Usage
from certrotor.pki.csr import Names, build_csr
from certrotor.pki.keys import generate_key
from certrotor.pki.policy import (
    MAX_REQUEST_BYTES,
    Caller,
    RequestRefused,
    _labels,
    caller_from_arn,
    check_contents,
    check_key,
    check_names,
    check_set_allowed,
    check_size,
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


def refusal(call: Callable[[], object]) -> tuple[str, str]:
    """The rule and the exact message of the refusal `call` raises."""
    with pytest.raises(RequestRefused) as caught:
        call()
    return caught.value.rule, str(caught.value)


def _cn(value: str) -> x509.NameAttribute:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # over-long CNs are built on purpose
        return x509.NameAttribute(NameOID.COMMON_NAME, value, _validate=False)


def _csr(
    subject: Sequence[x509.NameAttribute],
    sans: Sequence[x509.GeneralName] = (x509.DNSName("orders.internal"),),
    extra: Sequence[x509.ExtensionType] = (),
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | None = None,
) -> x509.CertificateSigningRequest:
    signer = key if key is not None else generate_key(KeyAlgorithm.EC_P256)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(list(subject)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signer, algorithm)


def _pem(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


# -- who is asking --------------------------------------------------------------


@pytest.mark.parametrize("arn", ["", "anonymous", "ARN:aws:iam::123456789012:role/x"])
def test_a_request_without_an_arn_names_the_missing_principal(arn: str) -> None:
    assert refusal(lambda: caller_from_arn(arn)) == ("unknown_principal", "the request carries no IAM principal")


@pytest.mark.parametrize(
    ("arn", "role_name", "role_arn"),
    [
        (
            "arn:aws-cn:sts::123456789012:assumed-role/orders-task/i-0abc",
            "orders-task",
            "arn:aws-cn:iam::123456789012:role/orders-task",
        ),
        (
            "arn:aws:iam::123456789012:role/team/orders-task",
            "orders-task",
            "arn:aws:iam::123456789012:role/team/orders-task",
        ),
        ("arn:aws:iam::123456789012:role/orders-task", "orders-task", "arn:aws:iam::123456789012:role/orders-task"),
        ("arn:aws:iam::123456789012:user/alice", None, "arn:aws:iam::123456789012:user/alice"),
    ],
)
def test_a_caller_is_its_role_name_and_role_arn(arn: str, role_name: str | None, role_arn: str) -> None:
    assert caller_from_arn(arn) == Caller(arn, role_name, role_arn)


def test_a_caller_without_a_policy_is_named_by_its_role_arn() -> None:
    stranger = caller_from_arn("arn:aws:sts::123456789012:assumed-role/stranger/abc")
    assert refusal(lambda: select_policy([POLICY], stranger)) == (
        "unknown_principal",
        "arn:aws:iam::123456789012:role/stranger has no issuer policy",
    )


def test_the_first_matching_policy_wins() -> None:
    first = IssuerPolicy(principal="orders-*")
    second = IssuerPolicy(principal="orders-task")
    assert select_policy([first, second], ORDERS) is first
    assert select_policy([IssuerPolicy(principal="billing-*"), second], ORDERS) is second


def test_an_arn_pattern_may_match_the_session_arn_itself() -> None:
    session = IssuerPolicy(principal="arn:aws:sts::123456789012:assumed-role/orders-task/ab*")
    assert select_policy([session], ORDERS) is session
    other = caller_from_arn("arn:aws:sts::123456789012:assumed-role/orders-task/xyz")
    assert refusal(lambda: select_policy([session], other))[0] == "unknown_principal"


def test_a_role_name_pattern_never_matches_a_user() -> None:
    alice = caller_from_arn("arn:aws:iam::123456789012:user/alice")
    assert refusal(lambda: select_policy([IssuerPolicy(principal="*")], alice))[0] == "unknown_principal"
    assert select_policy([IssuerPolicy(principal="arn:aws:iam::*:user/alice")], alice).principal.endswith("alice")


def test_without_a_home_account_a_role_name_matches_in_any_account() -> None:
    elsewhere = caller_from_arn("arn:aws:sts::210987654321:assumed-role/orders-task/abc")
    assert select_policy([POLICY], elsewhere) is POLICY
    assert select_policy([POLICY], elsewhere, home_account="210987654321") is POLICY


def test_a_set_outside_the_policy_is_named_in_the_refusal() -> None:
    check_set_allowed(POLICY, "orders/web")
    assert refusal(lambda: check_set_allowed(POLICY, "billing/web")) == (
        "set_not_allowed",
        "orders-task may not issue or read set 'billing/web'",
    )


# -- the request's size and the CSR's form ----------------------------------------


def test_a_request_of_exactly_the_size_limit_is_accepted_and_one_byte_more_is_refused() -> None:
    check_size(b"x" * MAX_REQUEST_BYTES)
    check_size("x" * MAX_REQUEST_BYTES)
    assert refusal(lambda: check_size(b"x" * (MAX_REQUEST_BYTES + 1))) == (
        "too_large",
        "request is 16385 bytes, at most 16384",
    )


def test_a_text_request_is_measured_in_utf8_bytes() -> None:
    text = "\u00e9" * (MAX_REQUEST_BYTES // 2 + 1)  # 8193 characters, 16386 bytes
    assert refusal(lambda: check_size(text)) == ("too_large", "request is 16386 bytes, at most 16384")
    assert refusal(lambda: check_size(b"x" * 11, limit=10)) == ("too_large", "request is 11 bytes, at most 10")
    check_size(b"x" * 10, limit=10)


@pytest.mark.parametrize("value", [None, 7, b"-----BEGIN CERTIFICATE REQUEST-----"])
def test_a_csr_that_is_not_text_is_refused(value: object) -> None:
    assert refusal(lambda: load_csr(value)) == ("not_pem", "csr must be a PEM text")


def test_a_csr_over_the_size_limit_is_refused_before_parsing() -> None:
    text = "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * MAX_REQUEST_BYTES
    assert refusal(lambda: load_csr(text)) == ("too_large", f"request is {len(text)} bytes, at most 16384")


def test_text_without_the_csr_armour_is_refused() -> None:
    assert refusal(lambda: load_csr("hello")) == ("not_pem", "csr is not a PEM certificate request")


def test_the_armour_around_no_csr_is_refused() -> None:
    text = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    assert refusal(lambda: load_csr(text)) == ("not_pem", "csr is not a well-formed PEM certificate request")


def test_a_csr_whose_signature_does_not_verify_is_refused() -> None:
    der = bytearray(_csr([_cn("orders.internal")]).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    tampered = x509.load_der_x509_csr(bytes(der))
    assert refusal(lambda: load_csr(_pem(tampered))) == (
        "bad_signature",
        "the CSR's signature does not verify with its public key",
    )


# -- the key ------------------------------------------------------------------------


def test_a_weak_key_is_refused_with_the_strength_rules_line() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    assert refusal(lambda: check_key(POLICY, _csr([_cn("orders.internal")], key=small))) == (
        "weak_key",
        "weak key: RSA 1024 bits, at least 2048 required",
    )


def test_the_policys_rsa_floor_and_curves_apply() -> None:
    strict = IssuerPolicy(principal="orders-task", min_rsa_bits=3072, allowed_curves=("secp521r1",))
    rsa_csr = _csr([_cn("orders.internal")], key=generate_key(KeyAlgorithm.RSA_2048))
    assert refusal(lambda: check_key(strict, rsa_csr)) == (
        "weak_key",
        "weak key: RSA 2048 bits, at least 3072 required",
    )
    p256 = _csr([_cn("orders.internal")])
    assert refusal(lambda: check_key(strict, p256)) == ("weak_key", "weak key: curve secp256r1 is not one of secp521r1")
    p521 = _csr([_cn("orders.internal")], key=ec.generate_private_key(ec.SECP521R1()))
    assert check_key(strict, p521) == "EC secp521r1"
    assert check_key(POLICY, rsa_csr) == "RSA 2048"


def test_a_key_type_other_than_rsa_or_ec_is_a_weak_key() -> None:
    csr = _csr([_cn("orders.internal")], key=ed25519.Ed25519PrivateKey.generate())
    assert refusal(lambda: check_key(POLICY, csr)) == ("weak_key", "unsupported key type Ed25519PublicKey in CSR")


# -- what the CSR carries -------------------------------------------------------------


def test_a_subject_of_more_than_the_common_name_is_refused() -> None:
    line = ("subject_not_allowed", "the CSR's subject may hold one common name and nothing else")
    assert refusal(lambda: check_contents(_csr([_cn("a.internal"), _cn("b.internal")]))) == line
    organisation = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "orders")
    assert refusal(lambda: check_contents(_csr([organisation]))) == line


@pytest.mark.parametrize(("length", "allowed"), [(1, True), (63, True), (64, True), (65, False)])
def test_a_common_name_of_1_to_64_characters_is_allowed(length: int, allowed: bool) -> None:
    csr = _csr([_cn("a" * length)])
    if allowed:
        check_contents(csr)
    else:
        assert refusal(lambda: check_contents(csr)) == (
            "subject_not_allowed",
            "the CSR's common name must be 1-64 characters",
        )


@pytest.mark.parametrize("value", ["", " ", "\t "])
def test_a_blank_common_name_is_refused(value: str) -> None:
    assert refusal(lambda: check_contents(_csr([_cn(value)]))) == (
        "subject_not_allowed",
        "the CSR's common name must be 1-64 characters",
    )


def test_every_extension_a_tls_end_entity_needs_is_allowed() -> None:
    key = generate_key(KeyAlgorithm.EC_P256)
    usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
    extra = [
        x509.BasicConstraints(ca=False, path_length=None),
        usage,
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
    ]
    check_contents(_csr([_cn("orders.internal")], extra=extra, key=key))


@pytest.mark.parametrize(
    ("extension", "name"),
    [(x509.TLSFeature([x509.TLSFeatureType.status_request]), "TLSFeature"), (x509.OCSPNoCheck(), "OCSPNoCheck")],
)
def test_any_other_extension_is_refused_by_name(extension: x509.ExtensionType, name: str) -> None:
    assert refusal(lambda: check_contents(_csr([_cn("orders.internal")], extra=[extension]))) == (
        "extension_not_allowed",
        f"the CSR may not carry the {name} extension",
    )


def test_a_csr_with_a_malformed_extension_is_refused() -> None:
    garbage = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x00\x01")
    csr = _csr([_cn("orders.internal")], sans=(), extra=[garbage])
    assert refusal(lambda: check_contents(csr)) == ("not_pem", "the CSR's extensions are malformed or repeated")


def test_a_csr_asking_to_be_a_ca_is_refused_as_such() -> None:
    csr = _csr([_cn("orders.internal")], extra=[x509.BasicConstraints(ca=True, path_length=None)])
    assert refusal(lambda: check_contents(csr)) == ("extension_not_allowed", "the CSR asks to be a CA")


def test_san_kinds_other_than_dns_and_ip_are_listed_once_each_in_order() -> None:
    sans = [
        x509.DNSName("orders.internal"),
        x509.UniformResourceIdentifier("spiffe://prod/sa/admin"),
        x509.RFC822Name("a@b.c"),
        x509.UniformResourceIdentifier("spiffe://prod/sa/other"),
    ]
    assert refusal(lambda: check_contents(_csr([_cn("orders.internal")], sans=sans))) == (
        "san_type_not_allowed",
        "only DNS and IP subject alternative names: RFC822Name, UniformResourceIdentifier",
    )


# -- names ----------------------------------------------------------------------------------


def test_a_request_without_sans_names_nothing() -> None:
    assert refusal(lambda: check_names(POLICY, Names("orders.internal", (), ()))) == (
        "name_not_allowed",
        "the CSR asks for no DNS or IP subject alternative names",
    )


def test_a_name_outside_the_policy_is_named_with_the_principal() -> None:
    names = Names("", ("orders.internal", "billing.internal"), ())
    assert refusal(lambda: check_names(POLICY, names)) == (
        "name_not_allowed",
        "'billing.internal' is not allowed for orders-task",
    )


def test_an_ip_address_outside_the_policy_is_named_with_the_reason() -> None:
    policy = IssuerPolicy(principal="orders-task", allowed_dns=("orders.internal",), allowed_ips=("10.0.0.0/8",))
    check_names(policy, Names("", (), ("10.1.2.3",)))
    assert refusal(lambda: check_names(policy, Names("", ("orders.internal",), ("10.1.2.3", "11.0.0.1")))) == (
        "ip_not_allowed",
        "11.0.0.1 is not allowed for orders-task: not in the policy's allowed_ips",
    )


def test_a_common_name_among_the_sans_is_allowed_in_any_case_or_ip_form() -> None:
    policy = IssuerPolicy(principal="orders-task", allowed_dns=("orders.internal",), allowed_ips=("::1/128",))
    check_names(policy, Names("ORDERS.Internal", ("orders.internal",), ()))
    check_names(policy, Names("0:0:0:0:0:0:0:1", ("orders.internal",), ("::1",)))
    check_names(policy, Names("", ("orders.internal",), ()))


@pytest.mark.parametrize("common_name", ["other.internal", "10.0.0.1", "::2"])
def test_a_common_name_not_among_the_sans_is_refused(common_name: str) -> None:
    policy = IssuerPolicy(principal="orders-task", allowed_dns=("orders.internal",), allowed_ips=("::1/128",))
    assert refusal(lambda: check_names(policy, Names(common_name, ("orders.internal",), ("::1",)))) == (
        "cn_not_in_sans",
        f"common name {common_name!r} is not among the SANs",
    )


def _name_of(length: int) -> str:
    """A DNS name of exactly `length` characters, labels of at most 63."""
    labels, left = [], length
    while left > 0:
        size = min(63, left)
        labels.append("a" * size)
        left -= size + 1
    name = ".".join(labels)
    return name if len(name) == length else name[:length]


@pytest.mark.parametrize(("length", "allowed"), [(252, True), (253, True), (254, False)])
def test_a_name_of_up_to_253_characters_is_a_name(length: int, allowed: bool) -> None:
    name = _name_of(length)
    assert len(name) == length
    assert (_labels(name) is not None) is allowed
    assert dns_name_allowed(name, [name]) is allowed


@pytest.mark.parametrize(("length", "allowed"), [(62, True), (63, True), (64, False)])
def test_a_label_of_up_to_63_characters_is_a_label(length: int, allowed: bool) -> None:
    name = "a" * length + ".svc.internal"
    assert dns_name_allowed(name, ["*.svc.internal"]) is allowed


@pytest.mark.parametrize(
    "name",
    [
        "",
        "orders.internal.",
        "-a.svc.internal",
        "a-.svc.internal",
        "a_b.svc.internal",
        "a..internal",
        "*.a_b.internal",
        "*.svc.internal.",
    ],
)
def test_text_that_is_not_a_dns_name_is_never_allowed(name: str) -> None:
    assert _labels(name) is None
    assert not dns_name_allowed(name, [name, "*.svc.internal"])


def test_inner_hyphens_and_digits_are_allowed_in_a_label() -> None:
    assert _labels("a-1.SVC.internal") == ["a-1", "svc", "internal"]
    assert _labels("*.svc.internal") == ["*", "svc", "internal"]


def test_a_policy_pattern_that_is_not_a_name_is_skipped_not_fatal() -> None:
    assert dns_name_allowed("orders.internal", ["bad_pattern", "*.internal", "ORDERS.internal"])


# -- validity -------------------------------------------------------------------------------


@pytest.mark.parametrize("days", [0, -1, "7", 7.5, True, False, None])
def test_validity_that_is_not_a_whole_positive_number_is_refused(days: object) -> None:
    assert refusal(lambda: check_validity(POLICY, days, CA_NOT_AFTER, NOW)) == (
        "invalid_request",
        "validity_days must be a whole number of days, at least 1",
    )


@pytest.mark.parametrize(("days", "allowed"), [(1, True), (29, True), (30, True), (31, False)])
def test_validity_up_to_the_policys_maximum_is_allowed(days: int, allowed: bool) -> None:
    if allowed:
        assert check_validity(POLICY, days, CA_NOT_AFTER, NOW) == days
    else:
        assert refusal(lambda: check_validity(POLICY, days, CA_NOT_AFTER, NOW)) == (
            "validity_exceeds_policy",
            "31 days is more than the 30 days allowed for orders-task",
        )


@pytest.mark.parametrize(("days", "allowed"), [(6, True), (7, True), (8, False)])
def test_a_short_lived_ca_issues_up_to_seven_days(days: int, allowed: bool) -> None:
    if allowed:
        assert check_validity(POLICY, days, CA_NOT_AFTER, NOW, short_lived_ca=True) == days
    else:
        assert refusal(lambda: check_validity(POLICY, days, CA_NOT_AFTER, NOW, short_lived_ca=True)) == (
            "validity_exceeds_ca",
            "the CA is in short-lived mode and issues at most 7 days",
        )
    assert check_validity(POLICY, 8, CA_NOT_AFTER, NOW, short_lived_ca=False) == 8


def test_validity_outliving_the_ca_names_its_expiry() -> None:
    ca_not_after = NOW + dt.timedelta(days=10)
    assert check_validity(POLICY, 10, ca_not_after, NOW) == 10
    assert refusal(lambda: check_validity(POLICY, 11, ca_not_after, NOW)) == (
        "validity_exceeds_ca",
        "11 days would outlive the CA, which expires 2030-01-11T00:00:00+00:00",
    )
    assert refusal(lambda: check_validity(POLICY, 10, ca_not_after - dt.timedelta(seconds=1), NOW))[0] == (
        "validity_exceeds_ca"
    )


# -- the decision -----------------------------------------------------------------------------


def test_a_decision_carries_the_normalised_request_and_its_terms() -> None:
    policy = IssuerPolicy(principal="orders-task", allowed_dns=("*.svc.internal",), usage=Usage.CLIENT)
    pem = build_csr(generate_key(KeyAlgorithm.EC_P384), "a.svc.internal", ["a.svc.internal"])
    wrapped = "request for a.svc.internal\n" + pem.replace("\n", "\r\n")
    decision = decide(policy, ORDERS, wrapped, 7, CA_NOT_AFTER, NOW)
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert decision.csr_pem == pem
    assert decision.csr_sha256 == hashlib.sha256(der).hexdigest()
    assert decision.names == Names("a.svc.internal", ("a.svc.internal",), ())
    assert (decision.caller, decision.policy, decision.validity_days) == (ORDERS, policy, 7)
    assert decision.key == "EC secp384r1"
    assert decision.usage is Usage.CLIENT


def test_a_decision_holds_the_ca_mode_to_its_limit() -> None:
    pem = build_csr(generate_key(KeyAlgorithm.EC_P256), "a.svc.internal", ["a.svc.internal"])
    assert decide(POLICY, ORDERS, pem, 8, CA_NOT_AFTER, NOW).validity_days == 8
    assert refusal(lambda: decide(POLICY, ORDERS, pem, 8, CA_NOT_AFTER, NOW, short_lived_ca=True)) == (
        "validity_exceeds_ca",
        "the CA is in short-lived mode and issues at most 7 days",
    )


def test_a_principal_that_is_not_a_full_arn_matches_no_policy() -> None:
    odd = caller_from_arn("arn:odd")
    assert odd == Caller("arn:odd", None, "arn:odd")
    assert refusal(lambda: select_policy([POLICY], odd, home_account="123456789012")) == (
        "unknown_principal",
        "arn:odd has no issuer policy",
    )


def test_an_exact_pattern_allows_only_itself_not_its_siblings() -> None:
    assert dns_name_allowed("b.svc.internal", ["B.svc.internal"])
    assert not dns_name_allowed("a.svc.internal", ["b.svc.internal"])
    assert not dns_name_allowed("*.svc.internal", ["b.svc.internal"])
