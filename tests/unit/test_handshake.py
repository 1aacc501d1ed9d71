"""The in-memory TLS handshake: real OpenSSL on both ends, MemoryBIO, no socket."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.errors import BundleError
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle
from certrotor.pki.handshake import (
    client_handshake_in_memory,
    handshake_in_memory,
    memory_files,
    mutual_handshake_in_memory,
)
from certrotor.pki.keys import PrivateKey, generate_key, key_to_pem

IssueSet = Callable[..., Bundle]


def test_a_good_set_completes_a_handshake_and_serves_its_leaf(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a key, its leaf and chain, and a client trusting only the root
    bundle = issue_set(leaf_key)
    # When the two ends shake hands in memory
    result = handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "web.example.test")
    # Then the client saw this leaf, over TLS 1.2 or later
    assert result.serial == bundle.leaf.serial_number
    assert result.not_after == bundle.leaf.not_valid_after_utc.isoformat()
    assert result.version in ("TLSv1.2", "TLSv1.3")
    assert result.cipher


def test_a_set_named_by_ip_address_completes_a_handshake(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a leaf for 127.0.0.1 only
    bundle = issue_set(leaf_key, common_name="127.0.0.1", dns_names=(), ip_addresses=("127.0.0.1",))
    # When / Then the client checks the IP SAN
    result = handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "127.0.0.1")
    assert result.serial == bundle.leaf.serial_number


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_2048])
def test_other_key_algorithms_complete_a_handshake(
    issue_set: IssueSet, root_ca: LocalCA, algorithm: KeyAlgorithm
) -> None:
    # Given a leaf for a non-default key type
    key = generate_key(algorithm)
    bundle = issue_set(key)
    # When / Then
    result = handshake_in_memory(key_to_pem(key), bundle.fullchain_pem, root_ca.pem, "web.example.test")
    assert result.serial == bundle.leaf.serial_number


def test_a_handshake_for_a_name_the_leaf_lacks_fails(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a leaf for web.example.test
    bundle = issue_set(leaf_key)
    # When the client asks for another name / Then verification fails
    with pytest.raises(BundleError, match="TLS handshake failed on the client side"):
        handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "other.example.test")


def test_a_key_that_does_not_match_the_leaf_fails(issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA) -> None:
    # Given a leaf and somebody else's key
    bundle = issue_set(leaf_key)
    wrong = generate_key(KeyAlgorithm.EC_P256)
    # When / Then the TLS stack refuses to load them together
    with pytest.raises(BundleError, match="TLS stack refused the certificate or key"):
        handshake_in_memory(key_to_pem(wrong), bundle.fullchain_pem, root_ca.pem, "web.example.test")


def test_a_chain_that_does_not_lead_to_the_trusted_root_fails(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    # Given a good set and a client that trusts an unrelated root
    bundle = issue_set(leaf_key)
    # When / Then
    with pytest.raises(
        BundleError, match="TLS handshake failed on the client side: self-signed certificate in certificate chain"
    ):
        handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, other_root_ca.pem, "web.example.test")


def test_a_leaf_served_without_its_intermediate_fails(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given the leaf alone, with the intermediate left out of the served chain
    bundle = issue_set(leaf_key)
    # When / Then the client cannot build a path to the root
    with pytest.raises(BundleError, match="TLS handshake failed on the client side"):
        handshake_in_memory(key_to_pem(leaf_key), bundle.leaf_pem, root_ca.pem, "web.example.test")


def test_garbage_key_text_is_refused_by_the_tls_stack(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key)
    with pytest.raises(BundleError, match="TLS stack refused"):
        handshake_in_memory("not a key", bundle.fullchain_pem, root_ca.pem, "web.example.test")


def test_memory_files_read_back_their_contents_and_vanish_afterwards() -> None:
    # Given two texts
    # When they are held as memory files
    with memory_files("first", "second") as paths:
        contents = [open(path).read() for path in paths]  # noqa: SIM115
    # Then each path read back its text while open
    assert contents == ["first", "second"]


# -- client and both roles: mutual TLS ------------------------------------------


def test_a_client_certificate_authenticates_to_a_mutual_tls_server(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    # Given a leaf for client authentication only
    bundle = issue_set(leaf_key, server_auth=False, client_auth=True)
    # When it is the client's certificate in a mutual-TLS handshake
    result = client_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem)
    # Then the server saw this leaf
    assert result.serial == bundle.leaf.serial_number
    assert result.version in ("TLSv1.2", "TLSv1.3")


def test_a_server_only_certificate_fails_as_a_client(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, server_auth=True, client_auth=False)
    with pytest.raises(
        BundleError, match=r"server side: unsuitable certificate purpose \(certificate as the client's\)"
    ):
        client_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem)


def test_a_client_certificate_from_another_ca_is_refused_by_the_server(
    issue_set: IssueSet, leaf_key: PrivateKey, other_root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, server_auth=False, client_auth=True)
    with pytest.raises(BundleError, match="server side"):
        client_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, other_root_ca.pem)


def test_a_certificate_for_both_serves_and_authenticates_in_one_mutual_handshake(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA
) -> None:
    bundle = issue_set(leaf_key, server_auth=True, client_auth=True)
    result = mutual_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "web.example.test")
    assert result.serial == bundle.leaf.serial_number


@pytest.mark.parametrize(("server_auth", "client_auth", "side"), [(True, False, "server"), (False, True, "client")])
def test_a_certificate_for_one_role_fails_the_mutual_handshake(
    issue_set: IssueSet, leaf_key: PrivateKey, root_ca: LocalCA, server_auth: bool, client_auth: bool, side: str
) -> None:
    bundle = issue_set(leaf_key, server_auth=server_auth, client_auth=client_auth)
    with pytest.raises(BundleError, match=rf"{side} side: unsuitable certificate purpose \(certificate on both ends\)"):
        mutual_handshake_in_memory(key_to_pem(leaf_key), bundle.fullchain_pem, root_ca.pem, "web.example.test")
