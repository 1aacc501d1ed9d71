"""Bundles: ordering certificates given in any order, and each check a set must pass."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from certrotor.config import KeyAlgorithm, Usage
from certrotor.errors import BundleError, PolicyError
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import (
    CLOCK_SKEW,
    Bundle,
    cert_to_pem,
    certs_to_pem,
    check_chain,
    check_key_matches,
    check_names,
    check_usage,
    check_validity,
    fingerprint,
    order_bundle,
    parse_bundle,
    parse_certificates,
    serial_hex,
)
from certrotor.pki.keys import PrivateKey, generate_key

from .conftest import certificate_with

IssueSet = Callable[..., Bundle]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_with(
    issuer: LocalCA, key: PrivateKey, extensions: Sequence[tuple[x509.ExtensionType, bool]]
) -> x509.Certificate:
    san = (x509.SubjectAlternativeName([x509.DNSName("web.example.test")]), False)
    return certificate_with(issuer, key, "web.example.test", [san, *extensions])


# --------------------------------------------------------------------------
# Parsing and ordering


def test_a_bundle_in_any_order_comes_out_leaf_first_then_issuers(
    root_ca: LocalCA, intermediate_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given a leaf, a second intermediate and the first, and the root
    second = intermediate_ca.create_subordinate("certrotor second intermediate")
    leaf = second.issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))
    expected = [leaf, second.certificate, intermediate_ca.certificate, root_ca.certificate]
    for seed in range(6):
        shuffled = list(expected)
        random.Random(seed).shuffle(shuffled)
        # When the PEM is parsed in that order
        bundle = parse_bundle(certs_to_pem(shuffled))
        # Then the leaf leads and each certificate is followed by its issuer
        assert [bundle.leaf, *bundle.chain] == expected


def test_a_bundle_without_its_root_orders_up_to_the_top_intermediate(
    intermediate_ca: LocalCA, issue_set: IssueSet, leaf_key: PrivateKey
) -> None:
    # Given only the leaf and its intermediate, intermediate first
    leaf = issue_set(leaf_key).leaf
    # When
    bundle = parse_bundle(intermediate_ca.pem + cert_to_pem(leaf))
    # Then
    assert bundle.leaf == leaf
    assert bundle.chain == (intermediate_ca.certificate,)


def test_a_lone_leaf_is_a_bundle_with_an_empty_chain(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given / When
    leaf = issue_set(leaf_key).leaf
    bundle = parse_bundle(cert_to_pem(leaf))
    # Then
    assert bundle.leaf == leaf
    assert bundle.chain == ()


def test_a_certificate_repeated_in_the_bundle_is_kept_once(
    issue_set: IssueSet, leaf_key: PrivateKey, intermediate_ca: LocalCA
) -> None:
    # Given the intermediate twice
    leaf = issue_set(leaf_key).leaf
    # When
    bundle = order_bundle([leaf, intermediate_ca.certificate, intermediate_ca.certificate])
    # Then
    assert bundle.chain == (intermediate_ca.certificate,)


def test_a_foreign_certificate_in_the_bundle_is_refused(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    # Given a good bundle plus another root's certificate
    good = issue_set(leaf_key)
    certs = [good.leaf, *good.chain, other_root_ca.certificate]
    # When / Then it is refused rather than silently dropped
    with pytest.raises(BundleError):
        order_bundle(certs)


def test_a_foreign_intermediate_signed_by_the_same_root_is_refused(
    root_ca: LocalCA, issue_set: IssueSet, leaf_key: PrivateKey
) -> None:
    # Given a good bundle plus a sibling intermediate that signed nothing here
    good = issue_set(leaf_key)
    sibling = root_ca.create_subordinate("certrotor sibling intermediate")
    # When / Then
    with pytest.raises(BundleError, match="exactly one leaf"):
        order_bundle([good.leaf, *good.chain, sibling.certificate])


def test_two_leaves_are_refused(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given two leaves from the same intermediate
    first = issue_set(leaf_key)
    second = issue_set(generate_key(KeyAlgorithm.EC_P256))
    # When / Then
    with pytest.raises(BundleError, match="expected exactly one leaf certificate, found 2"):
        order_bundle([first.leaf, second.leaf, *first.chain])


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(BundleError, match="no certificates"):
        order_bundle([])


@pytest.mark.parametrize(
    "text",
    ["", "not pem at all", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "é"],
)
def test_text_without_valid_pem_certificates_is_refused(text: str) -> None:
    with pytest.raises(BundleError):
        parse_certificates(text)


def test_fingerprint_is_the_sha256_of_the_der(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a certificate / When / Then
    leaf = issue_set(leaf_key).leaf
    assert fingerprint(leaf) == leaf.fingerprint(hashes.SHA256()).hex()
    assert serial_hex(leaf) == format(leaf.serial_number, "x")


# --------------------------------------------------------------------------
# Key match


def test_the_leafs_own_key_matches(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    check_key_matches(issue_set(leaf_key), leaf_key)


def test_another_key_does_not_match(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a bundle and a key it does not certify
    bundle = issue_set(leaf_key)
    other = generate_key(KeyAlgorithm.EC_P256)
    # When / Then
    with pytest.raises(BundleError, match="does not match"):
        check_key_matches(bundle, other)


def test_a_key_of_another_type_does_not_match(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    with pytest.raises(BundleError, match="does not match"):
        check_key_matches(issue_set(leaf_key), generate_key(KeyAlgorithm.RSA_2048))


# --------------------------------------------------------------------------
# Chain


def test_a_chain_verifies_to_its_root(issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA) -> None:
    check_chain(issue_set(leaf_key), root_ca.certificate, _now())


def test_a_chain_without_the_root_verifies_when_the_root_signed_its_top(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given leaf and intermediate only
    full = issue_set(leaf_key)
    bundle = Bundle(full.leaf, full.chain[:1])
    # When / Then the root, as anchor, closes the path
    check_chain(bundle, root_ca.certificate, _now())


def test_a_chain_to_another_root_is_refused(issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA) -> None:
    with pytest.raises(BundleError, match="does not lead to the trusted CA"):
        check_chain(issue_set(leaf_key), other_root_ca.certificate, _now())


def test_a_chain_that_ends_in_a_look_alike_root_is_refused(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a root with the same name as the real root but another key
    impostor = LocalCA.create_root("certrotor local root")
    assert impostor.certificate.subject == root_ca.certificate.subject
    # When / Then the bundle does not lead to it
    with pytest.raises(BundleError, match="does not lead to the trusted CA"):
        check_chain(issue_set(leaf_key), impostor.certificate, _now())


def test_a_link_that_is_not_signed_by_the_next_is_refused(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    # Given a bundle built by hand with the wrong issuer after the leaf
    good = issue_set(leaf_key)
    bundle = Bundle(good.leaf, (other_root_ca.certificate,))
    # When / Then
    with pytest.raises(BundleError, match="is not signed by"):
        check_chain(bundle, other_root_ca.certificate, _now())


def test_a_non_ca_issuer_is_refused(intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given an end-entity certificate (CA=false) that signed a leaf
    signer_key = generate_key(KeyAlgorithm.EC_P256)
    signer_cert = certificate_with(
        intermediate_ca,
        signer_key,
        "not a ca",
        [(x509.BasicConstraints(ca=False, path_length=None), True)],
    )
    signer = LocalCA(signer_cert, signer_key)
    leaf = signer.issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))
    bundle = order_bundle([leaf, signer_cert, intermediate_ca.certificate, root_ca.certificate])
    # When / Then
    with pytest.raises(BundleError, match="CN=not a ca is not a CA certificate"):
        check_chain(bundle, root_ca.certificate, _now())


def test_an_issuer_without_basic_constraints_is_refused(
    intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given an issuer certificate with no basicConstraints at all (RFC 5280 6.1.4 (k))
    signer_key = generate_key(KeyAlgorithm.EC_P256)
    signer_cert = certificate_with(intermediate_ca, signer_key, "no constraints", [])
    leaf = LocalCA(signer_cert, signer_key).issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))
    bundle = Bundle(leaf, (signer_cert, intermediate_ca.certificate, root_ca.certificate))
    # When / Then
    with pytest.raises(BundleError, match="is not a CA certificate"):
        check_chain(bundle, root_ca.certificate, _now())


def test_an_issuer_whose_key_usage_forbids_certificate_signing_is_refused(
    intermediate_ca: LocalCA, root_ca: LocalCA, leaf_key: PrivateKey
) -> None:
    # Given a CA certificate whose key usage lacks keyCertSign (RFC 5280 6.1.4 (n))
    signer_key = generate_key(KeyAlgorithm.EC_P256)
    signer_cert = certificate_with(
        intermediate_ca,
        signer_key,
        "ca without keyCertSign",
        [
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (_key_usage(digital_signature=True, cert_sign=False), True),
        ],
    )
    leaf = LocalCA(signer_cert, signer_key).issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))
    bundle = Bundle(leaf, (signer_cert, intermediate_ca.certificate, root_ca.certificate))
    # When / Then
    with pytest.raises(BundleError, match="keyCertSign"):
        check_chain(bundle, root_ca.certificate, _now())


def test_a_path_longer_than_an_issuers_path_length_allows_is_refused(root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given an intermediate limited to path length 0 (as Private CA's
    # subordinate is) that nevertheless signed another CA (RFC 5280 6.1.4 (m))
    limited_key = generate_key(KeyAlgorithm.EC_P256)
    limited_cert = certificate_with(
        root_ca,
        limited_key,
        "pathlen zero",
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(digital_signature=True, cert_sign=True), True),
        ],
    )
    below = LocalCA(limited_cert, limited_key).create_subordinate("below pathlen zero")
    leaf = below.issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))
    bundle = order_bundle([leaf, below.certificate, limited_cert, root_ca.certificate])
    # When / Then
    with pytest.raises(BundleError, match="path length"):
        check_chain(bundle, root_ca.certificate, _now())


def test_a_path_within_an_issuers_path_length_verifies(root_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given an intermediate with path length 0 that signed only the leaf
    limited_key = generate_key(KeyAlgorithm.EC_P256)
    limited_cert = certificate_with(
        root_ca,
        limited_key,
        "pathlen zero",
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (_key_usage(digital_signature=True, cert_sign=True), True),
        ],
    )
    leaf = LocalCA(limited_cert, limited_key).issue_leaf(
        leaf_key.public_key(), "web.example.test", ("web.example.test",)
    )
    # When / Then
    check_chain(order_bundle([leaf, limited_cert, root_ca.certificate]), root_ca.certificate, _now())


def test_an_expired_leaf_fails_the_chain_check(issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA) -> None:
    # Given a leaf valid for a day, ten days ago
    bundle = issue_set(leaf_key, not_before=_now() - dt.timedelta(days=10), days=1)
    # When / Then
    with pytest.raises(BundleError, match="is not valid at"):
        check_chain(bundle, root_ca.certificate, _now())


def test_a_leaf_not_yet_valid_fails_the_chain_check(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a leaf that starts tomorrow
    bundle = issue_set(leaf_key, not_before=_now() + dt.timedelta(days=1))
    # When / Then
    with pytest.raises(BundleError, match="is not valid at"):
        check_chain(bundle, root_ca.certificate, _now())


# --------------------------------------------------------------------------
# Validity


def test_a_current_leaf_is_valid(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    check_validity(issue_set(leaf_key), _now())


def test_an_expired_leaf_is_refused(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf that expired nine days ago
    bundle = issue_set(leaf_key, not_before=_now() - dt.timedelta(days=10), days=1)
    # When / Then
    with pytest.raises(BundleError, match="certificate expired at"):
        check_validity(bundle, _now())


def test_a_leaf_not_yet_valid_is_refused(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf that starts in an hour, beyond the clock skew allowance
    bundle = issue_set(leaf_key, not_before=_now() + dt.timedelta(hours=1))
    # When / Then
    with pytest.raises(BundleError, match="not valid before"):
        check_validity(bundle, _now())


def test_a_leaf_starting_within_the_clock_skew_is_accepted(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf whose notBefore is just inside the skew allowance
    now = _now().replace(microsecond=0)
    bundle = issue_set(leaf_key, not_before=now + CLOCK_SKEW - dt.timedelta(seconds=1))
    # When / Then
    check_validity(bundle, now)


def test_a_leaf_is_valid_through_its_not_after_second(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given the exact notAfter instant (RFC 5280 4.1.2.5: the period is inclusive)
    bundle = issue_set(leaf_key)
    # When / Then
    check_validity(bundle, bundle.leaf.not_valid_after_utc)


def test_a_leaf_is_expired_one_second_after_not_after(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    with pytest.raises(BundleError, match="expired"):
        check_validity(bundle, bundle.leaf.not_valid_after_utc + dt.timedelta(seconds=1))


def test_a_leaf_expiring_sooner_than_required_is_refused(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf valid for one day and a requirement of two
    bundle = issue_set(leaf_key, days=1)
    # When / Then
    with pytest.raises(BundleError, match="sooner than required"):
        check_validity(bundle, _now(), min_remaining=dt.timedelta(days=2))


# --------------------------------------------------------------------------
# Names


def test_every_configured_name_present_passes(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf for a DNS name, an IPv4 and an IPv6 address
    bundle = issue_set(leaf_key, dns_names=("web.example.test",), ip_addresses=("127.0.0.1", "2001:db8::1"))
    # When / Then (IPv6 written differently still matches)
    check_names(bundle, ["web.example.test"], ["127.0.0.1", "2001:0db8:0:0::1"])


def test_a_missing_dns_name_is_refused_naming_it(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    with pytest.raises(PolicyError, match=r"lacks the names api\.example\.test"):
        check_names(bundle, ["web.example.test", "api.example.test"], [])


def test_a_missing_ip_address_is_refused_naming_it(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    bundle = issue_set(leaf_key)
    with pytest.raises(PolicyError, match=r"lacks the names 10\.0\.0\.1"):
        check_names(bundle, ["web.example.test"], ["10.0.0.1"])


def test_a_name_only_in_the_common_name_does_not_count(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf whose CN is a name its SANs lack (RFC 6125 6.4.4)
    bundle = issue_set(leaf_key, common_name="cn-only.example.test", dns_names=("web.example.test",))
    # When / Then
    with pytest.raises(PolicyError, match=r"cn-only\.example\.test"):
        check_names(bundle, ["cn-only.example.test"], [])


def test_dns_names_match_regardless_of_case(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a certificate naming Web.Example.TEST (RFC 5280 7.2: DNS names
    # compare case-insensitively)
    bundle = issue_set(leaf_key, common_name="Web.Example.TEST", dns_names=("Web.Example.TEST",))
    # When / Then
    check_names(bundle, ["web.example.test"], [])


# --------------------------------------------------------------------------
# Usage


@pytest.mark.parametrize(
    ("eku", "usage"),
    [
        ([ExtendedKeyUsageOID.SERVER_AUTH], Usage.SERVER),
        ([ExtendedKeyUsageOID.CLIENT_AUTH], Usage.CLIENT),
        ([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], Usage.BOTH),
        ([ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE], Usage.SERVER),
    ],
)
def test_an_eku_listing_the_purpose_passes(
    intermediate_ca: LocalCA, leaf_key: PrivateKey, eku: list[x509.ObjectIdentifier], usage: Usage
) -> None:
    leaf = _leaf_with(intermediate_ca, leaf_key, [(x509.ExtendedKeyUsage(eku), False)])
    check_usage(Bundle(leaf, ()), usage)


def test_server_usage_requires_server_auth_when_eku_is_present(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf whose EKU lists only clientAuth
    bundle = issue_set(leaf_key, server_auth=False)
    # When / Then
    with pytest.raises(PolicyError, match="lacks serverAuth"):
        check_usage(bundle, Usage.SERVER)


def test_client_usage_requires_client_auth_when_eku_is_present(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    # Given a leaf whose EKU lists only serverAuth
    bundle = issue_set(leaf_key, server_auth=True)
    # When / Then
    with pytest.raises(PolicyError, match="lacks clientAuth"):
        check_usage(bundle, Usage.CLIENT)


def test_both_usage_requires_both_purposes(issue_set: IssueSet, leaf_key: PrivateKey) -> None:
    with pytest.raises(PolicyError, match="lacks clientAuth"):
        check_usage(issue_set(leaf_key, server_auth=True), Usage.BOTH)


@pytest.mark.parametrize("usage", list(Usage))
def test_a_leaf_without_an_eku_may_be_used_for_any_purpose(
    intermediate_ca: LocalCA, leaf_key: PrivateKey, usage: Usage
) -> None:
    # Given a leaf with no extended key usage (RFC 5280 4.2.1.12)
    leaf = _leaf_with(intermediate_ca, leaf_key, [])
    # When / Then
    check_usage(Bundle(leaf, ()), usage)


def test_a_key_usage_without_digital_signature_is_refused(intermediate_ca: LocalCA, leaf_key: PrivateKey) -> None:
    # Given a leaf whose key usage allows only certificate signing
    leaf = _leaf_with(intermediate_ca, leaf_key, [(_key_usage(digital_signature=False, cert_sign=True), True)])
    # When / Then
    with pytest.raises(PolicyError, match="digitalSignature"):
        check_usage(Bundle(leaf, ()), Usage.SERVER)


def test_a_key_usage_with_digital_signature_passes(intermediate_ca: LocalCA, leaf_key: PrivateKey) -> None:
    leaf = _leaf_with(intermediate_ca, leaf_key, [(_key_usage(digital_signature=True, cert_sign=False), True)])
    check_usage(Bundle(leaf, ()), Usage.SERVER)


def test_an_intermediate_may_be_the_trust_anchor() -> None:
    # Given a leaf under an intermediate under a root, all in the bundle
    root = LocalCA.create_root("pin root")
    intermediate = root.create_subordinate("pin intermediate")
    key = generate_key(KeyAlgorithm.EC_P256)
    leaf = intermediate.issue_leaf(key.public_key(), "pin.internal", ("pin.internal",))
    bundle = order_bundle([leaf, intermediate.certificate, root.certificate])
    # When the chain is checked against the intermediate alone (pinning the issuing CA)
    # Then it verifies
    check_chain(bundle, intermediate.certificate, dt.datetime.now(dt.UTC))
