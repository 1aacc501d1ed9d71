"""Certificate signing requests: build from a set's config, parse and check."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives._serialization import Encoding  # not the package: pki/keys.py
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certrotor.config import MAX_COMMON_NAME
from certrotor.errors import PolicyError
from certrotor.pki.keys import PrivateKey, PublicKey

MAX_CSR_BYTES = 16 * 1024


@dataclass(frozen=True)
class Names:
    """The names a certificate is for: CN, DNS SANs and IP SANs."""

    common_name: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]


def _san(dns_names: Sequence[str], ip_addresses: Sequence[str]) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    general += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    return x509.SubjectAlternativeName(general)


def build_csr(key: PrivateKey, common_name: str, dns_names: Sequence[str], ip_addresses: Sequence[str] = ()) -> str:
    """A PEM CSR signed by `key` with the CN and SANs given.

    The same inputs always give the same bytes: ECDSA signs deterministically
    (RFC 6979) and RSA PKCS#1 v1.5 is deterministic, so a retried createSecret
    sends Private CA a byte-identical request under the same IdempotencyToken
    and cannot be charged for a second certificate.
    """
    if not 0 < len(common_name) <= MAX_COMMON_NAME:
        raise ValueError(f"common name must be 1-{MAX_COMMON_NAME} characters")
    if not dns_names and not ip_addresses:
        raise ValueError("a CSR needs at least one DNS name or IP address")
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(_san(dns_names, ip_addresses), critical=False)
    )
    if isinstance(key, ec.EllipticCurvePrivateKey):
        csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    else:
        csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(Encoding.PEM).decode("ascii")


def parse_csr(pem: str | bytes) -> x509.CertificateSigningRequest:
    """Load a PEM CSR and check its self-signature (proof of key possession)."""
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_CSR_BYTES:
        raise PolicyError(f"CSR too large: {len(data)} bytes, at most {MAX_CSR_BYTES}")
    if b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
        raise PolicyError("not a PEM certificate request")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        raise PolicyError("not a PEM certificate request") from None
    if not csr.is_signature_valid:
        raise PolicyError("CSR signature is invalid")
    return csr


def csr_names(csr: x509.CertificateSigningRequest) -> Names:
    """The CN and SANs a CSR asks for."""
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    common_name = str(cns[0].value) if cns else ""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Names(common_name, (), ())
    dns = tuple(san.get_values_for_type(x509.DNSName))
    ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return Names(common_name, dns, ips)


def csr_public_key(csr: x509.CertificateSigningRequest) -> PublicKey:
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise PolicyError(f"unsupported key type {type(key).__name__} in CSR")
    return key
