"""A local certificate authority made with cryptography, for local mode.

It stands in for the offline root that signs the Private CA subordinate's
CSR, and, in tests, for any issuer of a chain of chosen length.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certrotor.config import KeyAlgorithm
from certrotor.pki.bundle import cert_to_pem
from certrotor.pki.keys import PrivateKey, PublicKey, generate_key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certrotor local"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class LocalCA:
    """A CA certificate and its key; `sign_*` return new certificates."""

    certificate: x509.Certificate
    key: PrivateKey

    @property
    def pem(self) -> str:
        return cert_to_pem(self.certificate)

    @classmethod
    def create_root(
        cls,
        common_name: str = "certrotor local root",
        algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
        days: int = 3650,
    ) -> LocalCA:
        key = generate_key(algorithm)
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        return cls(builder.sign(key, hashes.SHA256()), key)

    def _builder(
        self, subject: x509.Name, public_key: PublicKey, days: int, not_before: dt.datetime | None = None
    ) -> x509.CertificateBuilder:
        start = not_before if not_before is not None else _now() - dt.timedelta(minutes=1)
        not_after = min(start + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )

    def sign_subordinate_csr(self, csr_pem: str, days: int = 1825, path_length: int | None = 0) -> x509.Certificate:
        """Sign a subordinate CA's CSR (as an offline root signs Private CA's)."""
        csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        builder = (
            self._builder(csr.subject, csr.public_key(), days)  # type: ignore[arg-type]
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
        )
        return builder.sign(self.key, hashes.SHA256())

    def create_subordinate(
        self, common_name: str, algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256, days: int = 1825
    ) -> LocalCA:
        """A new intermediate CA signed by this one."""
        key = generate_key(algorithm)
        builder = (
            self._builder(_name(common_name), key.public_key(), days)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
        )
        return LocalCA(builder.sign(self.key, hashes.SHA256()), key)

    def issue_leaf(
        self,
        public_key: PublicKey,
        common_name: str,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
        days: int = 30,
        not_before: dt.datetime | None = None,
        server_auth: bool = True,
        client_auth: bool | None = None,
    ) -> x509.Certificate:
        """An end-entity certificate for TLS with the given names: for server
        authentication, client authentication (`client_auth`, by default when
        not `server_auth`), or both."""
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = self._builder(subject, public_key, days, not_before)
        if client_auth is None:
            client_auth = not server_auth
        eku = [ExtendedKeyUsageOID.SERVER_AUTH] if server_auth else []
        eku += [ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else []
        builder = (
            builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        )
        return builder.sign(self.key, hashes.SHA256())


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
