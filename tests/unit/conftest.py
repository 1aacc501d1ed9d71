"""Fixtures for the pure-core unit tests: real CAs and keys made in memory.

CAs are session-scoped because key generation dominates the cost; leaves are
issued per test so each test owns what it changes. Unit tests are pure: a
socket that tries to connect or bind fails the test.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from certrotor.config import KeyAlgorithm
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import Bundle, order_bundle
from certrotor.pki.keys import PrivateKey, generate_key


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests use no network: the emulator belongs to tests/integration."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("unit tests must not open sockets; put this test under tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "bind", refuse)


@pytest.fixture(scope="session")
def intermediate_ca(root_ca: LocalCA) -> LocalCA:
    """An intermediate signed by the shared root, as Private CA's subordinate is."""
    return root_ca.create_subordinate("certrotor test intermediate")


@pytest.fixture(scope="session")
def other_root_ca() -> LocalCA:
    """A second, unrelated root: nothing it signs should verify to `root_ca`."""
    return LocalCA.create_root("certrotor unrelated root")


@pytest.fixture
def leaf_key() -> PrivateKey:
    return generate_key(KeyAlgorithm.EC_P256)


@pytest.fixture
def issue_set(intermediate_ca: LocalCA, root_ca: LocalCA) -> Callable[..., Bundle]:
    """Issue a leaf for `key` from the intermediate; the bundle is leaf,
    intermediate, root. Keyword arguments go to LocalCA.issue_leaf."""

    def issue(key: PrivateKey, **options: object) -> Bundle:
        options.setdefault("common_name", "web.example.test")
        options.setdefault("dns_names", ("web.example.test",))
        leaf = intermediate_ca.issue_leaf(key.public_key(), **options)  # type: ignore[arg-type]
        return order_bundle([leaf, intermediate_ca.certificate, root_ca.certificate])

    return issue


@pytest.fixture(scope="session")
def rsa_4096_key() -> PrivateKey:
    """Generated once: RSA-4096 takes a noticeable fraction of a second."""
    return generate_key(KeyAlgorithm.RSA_4096)


@pytest.fixture(scope="session")
def rsa_4096_ca_key() -> PrivateKey:
    """One RSA-4096 key shared by every CA of the RSA-4096 hierarchies."""
    return generate_key(KeyAlgorithm.RSA_4096)


def build_chain(ca_key: PrivateKey, leaf_key: PrivateKey, chain_length: int) -> Bundle:
    """A bundle of a leaf and `chain_length` CA certificates (root last).

    Every CA uses `ca_key` under its own name, so that deep chains of large
    keys cost one key generation; sizes are those of distinct keys.
    """
    now = dt.datetime.now(dt.UTC)
    issuer_name: x509.Name | None = None
    certificates: list[x509.Certificate] = []
    for depth in range(chain_length):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"certrotor test CA {depth}")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name or name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        certificates.append(cert)
        issuer_name = name
    signer = LocalCA(certificates[-1], ca_key)
    leaf = signer.issue_leaf(leaf_key.public_key(), "web.example.test", ("web.example.test",))  # type: ignore[arg-type]
    return Bundle(leaf, tuple(reversed(certificates)))


@pytest.fixture(scope="session")
def chain_builder() -> Callable[[PrivateKey, PrivateKey, int], Bundle]:
    """`build_chain` as a fixture, for modules that cannot import this one."""
    return build_chain


def certificate_with(
    issuer: LocalCA,
    subject_key: PrivateKey,
    common_name: str,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    days: int = 30,
) -> x509.Certificate:
    """A certificate with exactly the extensions given, signed by `issuer`."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer.key, hashes.SHA256())
