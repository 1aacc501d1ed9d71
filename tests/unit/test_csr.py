"""Certificate signing requests: what a built CSR holds, and what parse_csr refuses."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from certrotor.config import KeyAlgorithm
from certrotor.errors import PolicyError
from certrotor.pki.csr import MAX_CSR_BYTES, Names, build_csr, csr_names, csr_public_key, parse_csr
from certrotor.pki.keys import PrivateKey, generate_key, public_key_matches


@pytest.fixture
def key() -> PrivateKey:
    return generate_key(KeyAlgorithm.EC_P256)


def _with_flipped_signature_byte(pem: str) -> str:
    """The same CSR with one byte of its signature changed."""
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    # The signature BIT STRING ends the DER, so the last byte is signature.
    der[-1] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode("ascii")
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def test_a_built_csr_carries_the_common_name(key: PrivateKey) -> None:
    # Given / When a CSR is built for a common name
    csr = parse_csr(build_csr(key, "web.example.test", ["web.example.test"]))
    # Then its subject is that CN
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "web.example.test"


def test_a_built_csr_carries_dns_and_ip_sans(key: PrivateKey) -> None:
    # Given DNS names and IP addresses, IPv6 included
    dns = ["web.example.test", "*.api.example.test"]
    ips = ["127.0.0.1", "2001:db8::1"]
    # When a CSR is built
    csr = parse_csr(build_csr(key, "web.example.test", dns, ips))
    # Then the SAN extension lists each of them
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == dns
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(ip) for ip in ips]


def test_a_built_csr_is_signed_by_and_for_its_key(key: PrivateKey) -> None:
    # Given / When
    csr = parse_csr(build_csr(key, "web.example.test", ["web.example.test"]))
    # Then the CSR's key is the key's public half and the proof of possession holds
    assert csr.is_signature_valid
    assert public_key_matches(key, csr_public_key(csr))


def test_csr_names_reads_back_cn_and_sans(key: PrivateKey) -> None:
    # Given a CSR with a CN, a DNS name and an IP
    csr = parse_csr(build_csr(key, "localhost", ["localhost"], ["127.0.0.1"]))
    # When / Then
    assert csr_names(csr) == Names("localhost", ("localhost",), ("127.0.0.1",))


def test_csr_names_of_a_csr_without_sans_is_only_the_cn(key: PrivateKey) -> None:
    # Given a CSR built by someone else, with no SAN extension
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bare.example.test")]))
        .sign(key, hashes.SHA256())
    )
    # When / Then
    assert csr_names(csr) == Names("bare.example.test", (), ())


def test_csr_names_of_a_csr_without_a_cn_has_an_empty_cn(key: PrivateKey) -> None:
    # Given a CSR with an empty subject and a SAN
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("x.example.test")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    # When / Then
    assert csr_names(csr) == Names("", ("x.example.test",), ())


def test_a_csr_needs_a_name(key: PrivateKey) -> None:
    # Given no DNS names and no IPs / When / Then
    with pytest.raises(ValueError, match=r"^a CSR needs at least one DNS name or IP address$"):
        build_csr(key, "web.example.test", [], [])


@pytest.mark.parametrize("common_name", ["", "a" * 65])
def test_a_common_name_outside_1_to_64_characters_is_refused(key: PrivateKey, common_name: str) -> None:
    # Given a CN RFC 5280's ub-common-name does not allow / When / Then
    with pytest.raises(ValueError, match=r"^common name must be 1-64 characters$"):
        build_csr(key, common_name, ["web.example.test"])


@pytest.mark.parametrize("text", ["hello", "", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_text_that_is_not_a_pem_csr_is_refused(text: str) -> None:
    # Given / When / Then
    with pytest.raises(PolicyError, match=r"^not a PEM certificate request$"):
        parse_csr(text)


def test_a_pem_csr_with_a_corrupt_body_is_refused() -> None:
    # Given the right armour around bytes that are not DER
    text = "-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n"
    # When / Then
    with pytest.raises(PolicyError, match=r"^not a PEM certificate request$"):
        parse_csr(text)


def test_a_csr_with_a_flipped_signature_byte_is_refused(key: PrivateKey) -> None:
    # Given a real CSR with one byte of its signature changed
    tampered = _with_flipped_signature_byte(build_csr(key, "web.example.test", ["web.example.test"]))
    # When / Then the proof of possession fails
    with pytest.raises(PolicyError, match=r"^CSR signature is invalid$"):
        parse_csr(tampered)


def test_an_oversize_csr_is_refused_before_parsing() -> None:
    # Given input larger than the limit, even if it looks like a CSR
    text = "-----BEGIN CERTIFICATE REQUEST-----\n" + "A" * MAX_CSR_BYTES + "\n"
    # When / Then the size is the reason given
    with pytest.raises(PolicyError, match=f"CSR too large: {len(text)} bytes, at most {MAX_CSR_BYTES}"):
        parse_csr(text)


def test_a_csr_given_as_bytes_is_accepted(key: PrivateKey) -> None:
    # Given a CSR as bytes / When / Then
    csr = parse_csr(build_csr(key, "web.example.test", ["web.example.test"]).encode("ascii"))
    assert csr_names(csr).common_name == "web.example.test"


def _padded_to(pem: str, size: int) -> str:
    """The same CSR, with text before its armour (as PEM allows) making it `size` bytes."""
    return "#" * (size - len(pem) - 1) + "\n" + pem


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_csr_of_exactly_the_size_limit_is_accepted(key: PrivateKey, as_bytes: bool) -> None:
    # Given a real CSR padded to exactly MAX_CSR_BYTES
    text = _padded_to(build_csr(key, "web.example.test", ["web.example.test"]), MAX_CSR_BYTES)
    assert len(text) == MAX_CSR_BYTES
    # When / Then it parses
    csr = parse_csr(text.encode("ascii") if as_bytes else text)
    assert csr_names(csr).common_name == "web.example.test"


def test_a_csr_one_byte_over_the_size_limit_is_refused_by_its_size(key: PrivateKey) -> None:
    text = _padded_to(build_csr(key, "web.example.test", ["web.example.test"]), MAX_CSR_BYTES + 1)
    with pytest.raises(PolicyError) as caught:
        parse_csr(text)
    assert str(caught.value) == f"CSR too large: {MAX_CSR_BYTES + 1} bytes, at most 16384"


def test_non_ascii_text_around_a_csr_is_tolerated(key: PrivateKey) -> None:
    # Given a CSR pasted after a non-ASCII note, as a user might
    text = "Zertifikatsanforderung f\u00fcr web \u2013 bitte signieren\n" + build_csr(
        key, "web.example.test", ["web.example.test"]
    )
    # When / Then the note is ignored like any text outside the armour
    assert csr_names(parse_csr(text)).common_name == "web.example.test"


def test_non_ascii_text_inside_the_armour_is_not_a_csr(key: PrivateKey) -> None:
    pem = build_csr(key, "web.example.test", ["web.example.test"])
    text = pem.replace("\n", "\n\u00e9", 1)
    with pytest.raises(PolicyError, match=r"^not a PEM certificate request$"):
        parse_csr(text)


@pytest.mark.parametrize("common_name", ["a", "a" * 63, "a" * 64])
def test_a_common_name_of_1_to_64_characters_is_built(key: PrivateKey, common_name: str) -> None:
    csr = parse_csr(build_csr(key, common_name, ["web.example.test"]))
    assert csr_names(csr).common_name == common_name


@pytest.mark.parametrize(("dns", "ips"), [(["web.example.test"], []), ([], ["10.0.0.1"])])
def test_one_dns_name_or_one_ip_address_is_enough(key: PrivateKey, dns: list[str], ips: list[str]) -> None:
    assert csr_names(parse_csr(build_csr(key, "web.example.test", dns, ips))) == Names(
        "web.example.test", tuple(dns), tuple(ips)
    )


def test_the_subject_alternative_names_are_not_critical(key: PrivateKey) -> None:
    # RFC 5280 4.2.1.6: SANs are critical only when the subject is empty
    csr = parse_csr(build_csr(key, "web.example.test", ["web.example.test"]))
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical is False


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_2048])
def test_the_same_inputs_build_the_same_bytes(algorithm: KeyAlgorithm) -> None:
    # A retried createSecret must send Private CA a byte-identical request
    key = generate_key(algorithm)
    first = build_csr(key, "web.example.test", ["web.example.test"], ["10.0.0.1"])
    assert build_csr(key, "web.example.test", ["web.example.test"], ["10.0.0.1"]) == first
    assert parse_csr(first).signature_hash_algorithm.name == "sha256"  # type: ignore[union-attr]
