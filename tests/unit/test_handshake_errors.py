"""What the in-memory handshake reports when it fails, and what it returns
when it succeeds: the exact lines a caller logs and shows."""

from __future__ import annotations

import datetime as dt
import ssl
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certrotor.config import KeyAlgorithm
from certrotor.errors import BundleError
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle, cert_to_pem
from certrotor.pki.handshake import client_handshake_in_memory, handshake_in_memory, mutual_handshake_in_memory
from certrotor.pki.keys import PrivateKey, generate_key, key_to_pem

IssueSet = Callable[..., Bundle]
NAME = "web.example.test"


def _secp256k1_leaf(ca: LocalCA) -> tuple[str, str]:
    """Key and leaf on a curve no TLS 1.2/1.3 signature algorithm covers:
    the TLS stack loads them, but no handshake can use them."""
    key = ec.generate_private_key(ec.SECP256K1())
    now = dt.datetime.now(dt.UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca.key, hashes.SHA256())
    )
    return key_to_pem(key), cert_to_pem(leaf)  # type: ignore[arg-type]


# -- the TLS stack refuses to load the material -----------------------------


def test_a_server_key_that_does_not_match_is_refused_with_the_stacks_reason(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key)
    wrong = key_to_pem(generate_key(KeyAlgorithm.EC_P256))
    with pytest.raises(BundleError) as caught:
        handshake_in_memory(wrong, bundle.fullchain_pem, root_ca.pem, NAME)
    assert str(caught.value) == "TLS stack refused the certificate or key: KEY_VALUES_MISMATCH"


def test_a_client_key_that_does_not_match_is_refused_with_the_stacks_reason(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, server_auth=False, client_auth=True)
    wrong = key_to_pem(generate_key(KeyAlgorithm.EC_P256))
    with pytest.raises(BundleError) as caught:
        client_handshake_in_memory(wrong, bundle.fullchain_pem, root_ca.pem)
    assert str(caught.value) == "TLS stack refused the certificate or key: KEY_VALUES_MISMATCH"


# -- the handshake itself fails: the side, the reason and the role ----------


def test_a_name_mismatch_names_the_client_side_and_the_server_role(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key)
    with pytest.raises(BundleError) as caught:
        handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "other.example.test")
    assert str(caught.value) == (
        "TLS handshake failed on the client side: Hostname mismatch, certificate is not valid for "
        "'other.example.test'. (certificate as the server's)"
    )


def test_a_key_no_tls_signature_covers_fails_as_a_server_with_the_stacks_reason(root_ca: LocalCA) -> None:
    key_pem, leaf_pem = _secp256k1_leaf(root_ca)
    with pytest.raises(BundleError) as caught:
        handshake_in_memory(key_pem, leaf_pem, root_ca.pem, NAME)
    assert str(caught.value) == (
        "TLS handshake failed on the server side: NO_SHARED_CIPHER (certificate as the server's)"
    )


def test_a_key_no_tls_signature_covers_is_never_sent_as_a_client_certificate(root_ca: LocalCA) -> None:
    key_pem, leaf_pem = _secp256k1_leaf(root_ca)
    with pytest.raises(BundleError) as caught:
        client_handshake_in_memory(key_pem, leaf_pem, root_ca.pem)
    assert str(caught.value) == (
        "TLS handshake failed on the server side: PEER_DID_NOT_RETURN_A_CERTIFICATE (certificate as the client's)"
    )


def test_a_key_no_tls_signature_covers_fails_the_mutual_handshake(root_ca: LocalCA) -> None:
    key_pem, leaf_pem = _secp256k1_leaf(root_ca)
    with pytest.raises(BundleError) as caught:
        mutual_handshake_in_memory(key_pem, leaf_pem, root_ca.pem, NAME)
    assert str(caught.value) == "TLS handshake failed on the server side: NO_SHARED_CIPHER (certificate on both ends)"


# -- what a success reports ---------------------------------------------------


def _cipher_names() -> set[str]:
    return {cipher["name"] for cipher in ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).get_ciphers()}


@pytest.mark.parametrize("role", ["server", "client", "both"])
def test_a_success_reports_the_negotiated_cipher_suite_by_name(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA, role: str
) -> None:
    bundle = issue_set(leaf_key, server_auth=role != "client", client_auth=role != "server")
    key_pem = key_to_pem(leaf_key)
    if role == "server":
        result = handshake_in_memory(key_pem, bundle.fullchain_pem, root_ca.pem, NAME)
    elif role == "client":
        result = client_handshake_in_memory(key_pem, bundle.fullchain_pem, root_ca.pem)
    else:
        result = mutual_handshake_in_memory(key_pem, bundle.fullchain_pem, root_ca.pem, NAME)
    assert result.serial == bundle.leaf.serial_number
    assert result.not_after == bundle.leaf.not_valid_after_utc.isoformat()
    assert result.version in ("TLSv1.2", "TLSv1.3")
    assert result.cipher in _cipher_names()


def test_handshakes_use_no_deprecated_tls_api(issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA) -> None:
    # A deprecated protocol constant or default is removed by a later Python.
    bundle = issue_set(leaf_key, server_auth=True, client_auth=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, NAME)
        client_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem)
        mutual_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, NAME)


@pytest.fixture(params=["XST-14", "XST+12"])
def far_local_time_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time 14 hours ahead of or 12 behind UTC."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_local_time_zone")
def test_a_client_handshake_works_whatever_the_local_time_zone(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # The throwaway server's validity window is in UTC, not local time.
    bundle = issue_set(leaf_key, server_auth=False, client_auth=True)
    result = client_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem)
    assert result.serial == bundle.leaf.serial_number
