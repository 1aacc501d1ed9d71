"""Bundle checks: the exact line each refusal gives, and each limit at its boundary."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certrotor.config import KeyAlgorithm, Usage
from certrotor.errors import BundleError, PolicyError
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import (
    CLOCK_SKEW,
    Bundle,
    cert_to_pem,
    check_chain,
    check_key_matches,
    check_names,
    check_usage,
    check_validity,
    colon_serial,
    order_bundle,
    parse_bundle,
    parse_certificates,
)
from certrotor.pki.keys import PrivateKey, generate_key

from .conftest import certificate_with

IssueSet = Callable[..., Bundle]
NAME = "web.example.test"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _refusal(error: type[Exception], check: Callable[[], object]) -> str:
    with pytest.raises(error) as caught:
        check()
    return str(caught.value)


# -- parsing and ordering -----------------------------------------------------


@pytest.mark.parametrize("text", ["", "not pem at all", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"])
def test_text_without_a_certificate_armour_is_refused_as_such(text: str) -> None:
    assert _refusal(BundleError, lambda: parse_certificates(text)) == "no PEM certificate found"


@pytest.mark.parametrize("body", ["AAAA", "cl\u00e9"])
def test_a_certificate_armour_around_no_certificate_is_malformed(body: str) -> None:
    text = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    assert _refusal(BundleError, lambda: parse_certificates(text)).startswith("malformed PEM certificate: ")


def test_an_empty_bundle_is_refused() -> None:
    assert _refusal(BundleError, lambda: order_bundle([])) == "no certificates in the bundle"


def test_a_foreign_root_in_the_bundle_is_counted(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    good = issue_set(leaf_key)
    certs = [good.leaf, *good.chain, other_root_ca.certificate]
    # The foreign root signed nothing here, so it is a second "leaf".
    assert _refusal(BundleError, lambda: order_bundle(certs)) == "expected exactly one leaf certificate, found 2"


def test_a_second_chain_in_the_bundle_is_a_second_leaf(
    root_ca: LocalCA, intermediate_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given a leaf, its intermediate and root, plus a root that signed the
    # intermediate's look-alike: one certificate is left off the path
    leaf = intermediate_ca.issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    other = LocalCA.create_root("certrotor other root")
    cross = other.create_subordinate("certrotor cross intermediate")
    below = cross.issue_leaf(generate_key(KeyAlgorithm.EC_P256).public_key(), NAME, (NAME,))
    refusal = _refusal(
        BundleError,
        lambda: order_bundle([leaf, intermediate_ca.certificate, root_ca.certificate, below, cross.certificate]),
    )
    assert refusal == "expected exactly one leaf certificate, found 2"
    refusal = _refusal(
        BundleError,
        lambda: order_bundle([leaf, intermediate_ca.certificate, cross.certificate, other.certificate]),
    )
    assert refusal == "expected exactly one leaf certificate, found 2"


def test_a_reissued_root_beside_the_root_is_off_the_leafs_path(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given the root and a re-issued root (same name and key): each signs the
    # other, so neither is a leaf, and the path ends at the first self-signed one
    now = _now()
    reissued = (
        x509.CertificateBuilder()
        .subject_name(root_ca.certificate.subject)
        .issuer_name(root_ca.certificate.subject)
        .public_key(root_ca.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(root_ca.key, hashes.SHA256())
    )
    good = issue_set(leaf_key)
    refusal = _refusal(BundleError, lambda: order_bundle([good.leaf, *good.chain, reissued]))
    assert refusal == "1 certificate(s) do not belong to the leaf's chain"


def test_chain_pem_parses_back_to_the_same_certificates(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    assert parse_certificates(bundle.chain_pem) == list(bundle.chain)
    # chain.pem is the issuers' PEM blocks back to back, nothing between them
    assert bundle.chain_pem == "".join(cert_to_pem(cert) for cert in bundle.chain)
    assert parse_certificates(bundle.fullchain_pem) == [bundle.leaf, *bundle.chain]


def test_a_bundle_stops_at_the_self_signed_root(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA, intermediate_ca: LocalCA
) -> None:
    bundle = parse_bundle(issue_set(leaf_key).fullchain_pem)
    assert bundle.chain == (intermediate_ca.certificate, root_ca.certificate)


# -- key and chain ------------------------------------------------------------


def test_another_key_gives_the_mismatch_line(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    refusal = _refusal(BundleError, lambda: check_key_matches(bundle, generate_key(KeyAlgorithm.EC_P256)))
    assert refusal == "private key does not match the certificate"


def test_a_wrong_link_names_both_certificates(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    good = issue_set(leaf_key)
    bundle = Bundle(good.leaf, (other_root_ca.certificate,))
    refusal = _refusal(BundleError, lambda: check_chain(bundle, other_root_ca.certificate, _now()))
    assert refusal == "CN=web.example.test is not signed by CN=certrotor unrelated root,O=certrotor local"


def test_a_chain_to_another_root_names_the_trusted_ca(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    refusal = _refusal(BundleError, lambda: check_chain(issue_set(leaf_key), other_root_ca.certificate, _now()))
    assert refusal == "chain does not lead to the trusted CA CN=certrotor unrelated root,O=certrotor local"


def test_an_issuer_without_key_cert_sign_is_named(
    intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    signer_key = generate_key(KeyAlgorithm.EC_P256)
    usage = x509.KeyUsage(True, False, False, False, False, False, True, False, False)
    signer = certificate_with(
        intermediate_ca,
        signer_key,
        "no cert sign",
        [(x509.BasicConstraints(ca=True, path_length=None), True), (usage, True)],
    )
    leaf = LocalCA(signer, signer_key).issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    bundle = Bundle(leaf, (signer, intermediate_ca.certificate, root_ca.certificate))
    refusal = _refusal(BundleError, lambda: check_chain(bundle, root_ca.certificate, _now()))
    assert refusal == "CN=no cert sign's key usage does not allow keyCertSign"


def test_an_issuer_without_key_usage_may_sign(intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # RFC 5280 4.2.1.3: without a key usage extension the key is unrestricted
    signer_key = generate_key(KeyAlgorithm.EC_P256)
    signer = certificate_with(
        intermediate_ca, signer_key, "no key usage", [(x509.BasicConstraints(ca=True, path_length=None), True)]
    )
    leaf = LocalCA(signer, signer_key).issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    check_chain(Bundle(leaf, (signer, intermediate_ca.certificate, root_ca.certificate)), root_ca.certificate, _now())


def _limited(issuer: LocalCA, name: str, path_length: int) -> LocalCA:
    key = generate_key(KeyAlgorithm.EC_P256)
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    cert = certificate_with(
        issuer, key, name, [(x509.BasicConstraints(ca=True, path_length=path_length), True), (usage, True)]
    )
    return LocalCA(cert, key)


@pytest.mark.parametrize(("path_length", "refused"), [(0, True), (1, False)])
def test_a_path_length_is_checked_at_its_limit(
    root_ca: LocalCA, leaf_key: PrivateKey, path_length: int, refused: bool
) -> None:
    # Given a CA limited to `path_length` with one CA below it
    limited = _limited(root_ca, "limited", path_length)
    below = limited.create_subordinate("below")
    leaf = below.issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    bundle = Bundle(leaf, (below.certificate, limited.certificate, root_ca.certificate))
    # When / Then one CA below is one too many for 0 and just enough for 1
    if refused:
        refusal = _refusal(BundleError, lambda: check_chain(bundle, root_ca.certificate, _now()))
        assert refusal == "CN=limited allows a path length of 0, but 1 CA certificate(s) follow it"
    else:
        check_chain(bundle, root_ca.certificate, _now())


def test_a_path_length_counts_from_the_trust_anchor_given(root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given a limited CA, a CA below it, and the anchor being the limited CA's issuer,
    # not carried in the bundle
    limited = _limited(root_ca, "limited", 0)
    below = limited.create_subordinate("below")
    leaf = below.issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    bundle = Bundle(leaf, (below.certificate, limited.certificate))
    refusal = _refusal(BundleError, lambda: check_chain(bundle, root_ca.certificate, _now()))
    assert refusal == "CN=limited allows a path length of 0, but 1 CA certificate(s) follow it"
    # An anchor inside the path cuts the path there: nothing above it is checked
    check_chain(bundle, below.certificate, _now())


def test_a_self_issued_intermediate_does_not_count_against_a_path_length(
    root_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given a CA limited to 0 whose next CA has the same name (a key rollover
    # certificate, RFC 5280 6.1.4 (l)): it is self-issued and does not count
    limited = _limited(root_ca, "limited", 0)
    rollover_key = generate_key(KeyAlgorithm.EC_P256)
    usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    now = _now()
    rollover = (
        x509.CertificateBuilder()
        .subject_name(limited.certificate.subject)
        .issuer_name(limited.certificate.subject)
        .public_key(rollover_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(limited.key, hashes.SHA256())
    )
    leaf = LocalCA(rollover, rollover_key).issue_leaf(leaf_key.public_key(), NAME, (NAME,))
    check_chain(Bundle(leaf, (rollover, limited.certificate, root_ca.certificate)), root_ca.certificate, now)


# -- validity: in the chain check and the leaf check ---------------------------


def _chain_validity_line(cert: x509.Certificate, at: dt.datetime) -> str:
    return (
        f"{cert.subject.rfc4514_string()} is not valid at {at.isoformat()} "
        f"(valid {cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})"
    )


def test_the_chain_check_holds_every_certificate_to_its_validity_at_both_ends(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, not_before=_now())
    leaf = bundle.leaf
    start, end = leaf.not_valid_before_utc - CLOCK_SKEW, leaf.not_valid_after_utc
    tick = dt.timedelta(seconds=1)
    check_chain(bundle, root_ca.certificate, start)
    check_chain(bundle, root_ca.certificate, end)
    for at in (start - tick, end + tick):
        with pytest.raises(BundleError) as caught:
            check_chain(bundle, root_ca.certificate, at)
        assert str(caught.value) == _chain_validity_line(leaf, at)


def test_the_chain_check_refuses_an_expired_intermediate(root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given an intermediate that ends before the leaf does
    key = generate_key(KeyAlgorithm.EC_P256)
    now = _now()
    short = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short")]))
        .issuer_name(root_ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_ca.key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(short.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=10))
        .sign(key, hashes.SHA256())
    )
    bundle = Bundle(leaf, (short, root_ca.certificate))
    at = now + dt.timedelta(days=2)
    assert _refusal(BundleError, lambda: check_chain(bundle, root_ca.certificate, at)) == _chain_validity_line(
        short, at
    )


def test_the_leaf_check_at_the_start_of_its_validity(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key, not_before=_now())
    start = bundle.leaf.not_valid_before_utc
    check_validity(bundle, start - CLOCK_SKEW)
    refusal = _refusal(BundleError, lambda: check_validity(bundle, start - CLOCK_SKEW - dt.timedelta(seconds=1)))
    assert refusal == f"certificate is not valid before {start.isoformat()}"


def test_the_leaf_check_at_the_end_of_its_validity(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    end = bundle.leaf.not_valid_after_utc
    check_validity(bundle, end)
    refusal = _refusal(BundleError, lambda: check_validity(bundle, end + dt.timedelta(seconds=1)))
    assert refusal == f"certificate expired at {end.isoformat()}"


def test_the_remaining_validity_required_is_met_exactly_or_refused(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    end = bundle.leaf.not_valid_after_utc
    now = end - dt.timedelta(days=2)
    check_validity(bundle, now, min_remaining=dt.timedelta(days=2))
    refusal = _refusal(BundleError, lambda: check_validity(bundle, now, min_remaining=dt.timedelta(days=2, seconds=1)))
    assert refusal == f"certificate expires at {end.isoformat()}, sooner than required"


# -- names and usage ----------------------------------------------------------


def test_every_missing_name_is_listed_in_the_configured_order(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key, dns_names=(NAME,), ip_addresses=("10.0.0.1",))
    refusal = _refusal(
        PolicyError,
        lambda: check_names(bundle, ["b.example.test", "WEB.example.test", "a.example.test"], ["10.0.0.1", "::1"]),
    )
    assert refusal == "certificate lacks the names b.example.test, a.example.test, ::1"


def test_an_ip_address_is_compared_in_its_canonical_form(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key, ip_addresses=("::1",))
    check_names(bundle, [NAME], ["0:0:0:0:0:0:0:1"])


def test_a_leaf_without_subject_alternative_names_lacks_every_name(
    intermediate_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    leaf = certificate_with(intermediate_ca, leaf_key, NAME, [])
    refusal = _refusal(PolicyError, lambda: check_names(Bundle(leaf, ()), [NAME], ["10.0.0.1"]))
    assert refusal == "certificate lacks the names web.example.test, 10.0.0.1"


@pytest.mark.parametrize(
    ("eku", "usage", "refusal"),
    [
        ([ExtendedKeyUsageOID.CLIENT_AUTH], Usage.SERVER, "certificate's extended key usage lacks serverAuth"),
        ([ExtendedKeyUsageOID.SERVER_AUTH], Usage.CLIENT, "certificate's extended key usage lacks clientAuth"),
        ([ExtendedKeyUsageOID.SERVER_AUTH], Usage.BOTH, "certificate's extended key usage lacks clientAuth"),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], Usage.BOTH, "certificate's extended key usage lacks serverAuth"),
        (
            [ExtendedKeyUsageOID.CODE_SIGNING],
            Usage.BOTH,
            "certificate's extended key usage lacks clientAuth, serverAuth",
        ),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], Usage.BOTH, None),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], Usage.BOTH, None),
    ],
)
def test_extended_key_usage_for_each_usage(
    intermediate_ca: LocalCA,
    leaf_key: PrivateKey,
    eku: list[x509.ObjectIdentifier],
    usage: Usage,
    refusal: str | None,
) -> None:
    leaf = certificate_with(intermediate_ca, leaf_key, NAME, [(x509.ExtendedKeyUsage(eku), False)])
    if refusal is None:
        check_usage(Bundle(leaf, ()), usage)
    else:
        assert _refusal(PolicyError, lambda: check_usage(Bundle(leaf, ()), usage)) == refusal


@pytest.mark.parametrize("digital_signature", [True, False])
def test_key_usage_must_allow_digital_signature(
    intermediate_ca: LocalCA, leaf_key: PrivateKey, digital_signature: bool
) -> None:
    usage = x509.KeyUsage(digital_signature, False, True, False, False, False, False, False, False)
    leaf = certificate_with(intermediate_ca, leaf_key, NAME, [(usage, True)])
    if digital_signature:
        check_usage(Bundle(leaf, ()), Usage.SERVER)
    else:
        refusal = _refusal(PolicyError, lambda: check_usage(Bundle(leaf, ()), Usage.SERVER))
        assert refusal == "certificate's key usage does not allow digitalSignature"


@pytest.mark.parametrize(("serial", "colons"), [("a", "0a"), ("abc", "0a:bc"), ("1f2e3d", "1f:2e:3d"), ("", "")])
def test_a_serial_is_written_as_colon_separated_byte_pairs(serial: str, colons: str) -> None:
    assert colon_serial(serial) == colons
