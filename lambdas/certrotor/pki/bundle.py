"""Certificate bundles: parse, put in order, and verify.

A `Bundle` is a leaf certificate and its issuers, leaf first, each followed by
the certificate that signed it. Verification is a chain of small checks, each
raising BundleError or PolicyError with the reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import itertools
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives._serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from certrotor.errors import BundleError, PolicyError
from certrotor.names import Usage
from certrotor.pki.keys import PrivateKey, public_key_matches
from certrotor.record import record

_PEM_CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
# Tolerate clock skew between Private CA, Lambda and the containers.
CLOCK_SKEW = dt.timedelta(minutes=5)


def cert_to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


def certs_to_pem(certs: Sequence[x509.Certificate]) -> str:
    return "".join(cert_to_pem(c) for c in certs)


def parse_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate in a PEM text, in the order given."""
    if _PEM_CERT_BEGIN not in pem:
        raise BundleError("no PEM certificate found")
    try:
        return x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise BundleError(f"malformed PEM certificate: {exc}") from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER certificate, lowercase hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def colon_serial(serial: str) -> str:
    """A hex serial as Private CA's RevokeCertificate takes it: colon-separated byte pairs."""
    padded = serial if len(serial) % 2 == 0 else "0" + serial
    return ":".join(padded[i : i + 2] for i in range(0, len(padded), 2))


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _may_sign_certificates(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign)
    except x509.ExtensionNotFound:
        return True


def _path_length(cert: x509.Certificate) -> int | None:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        return None


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


@record
class Bundle:
    """A leaf certificate and its chain, leaf first, then issuers in order."""

    leaf: x509.Certificate
    chain: tuple[x509.Certificate, ...]

    @property
    def leaf_pem(self) -> str:
        return cert_to_pem(self.leaf)

    @property
    def chain_pem(self) -> str:
        return certs_to_pem(self.chain)

    @property
    def fullchain_pem(self) -> str:
        return self.leaf_pem + self.chain_pem


def order_bundle(certs: Sequence[x509.Certificate]) -> Bundle:
    """Put certificates given in any order into leaf-then-issuers order.

    The leaf is the one certificate that signed no other in the set; each
    following certificate is the issuer of the one before. Certificates that do
    not belong to that path are refused rather than silently dropped.
    """
    if not certs:
        raise BundleError("no certificates in the bundle")
    unique: dict[str, x509.Certificate] = {}
    for cert in certs:
        unique.setdefault(fingerprint(cert), cert)
    pool = list(unique.values())
    issuers = {fingerprint(c) for c in pool for other in pool if other is not c and _issued_by(other, c)}
    leaves = [c for c in pool if fingerprint(c) not in issuers]
    if len(leaves) != 1:
        raise BundleError(f"expected exactly one leaf certificate, found {len(leaves)}")
    path = [leaves[0]]
    remaining = [c for c in pool if c is not leaves[0]]
    while remaining:
        nxt = next((c for c in remaining if _issued_by(path[-1], c)), None)
        if nxt is None:
            break
        path.append(nxt)
        remaining.remove(nxt)
        if _issued_by(nxt, nxt):  # self-signed root: the path ends here
            break
    if remaining:
        raise BundleError(f"{len(remaining)} certificate(s) do not belong to the leaf's chain")
    return Bundle(leaf=path[0], chain=tuple(path[1:]))


def parse_bundle(pem: str) -> Bundle:
    """Parse PEM text holding a leaf and its chain in any order."""
    return order_bundle(parse_certificates(pem))


# --------------------------------------------------------------------------
# Checks


def check_key_matches(bundle: Bundle, key: PrivateKey) -> None:
    """The private key must be the one the leaf certifies."""
    if not public_key_matches(key, bundle.leaf.public_key()):  # type: ignore[arg-type]
        raise BundleError("private key does not match the certificate")


def check_chain(bundle: Bundle, trust_anchor: x509.Certificate, now: dt.datetime) -> None:
    """Each certificate is signed by the next, up to the trust anchor.

    RFC 5280 section 6.1: every issuer in the path must be a CA (6.1.4 (k))
    whose key usage, if present, allows keyCertSign (6.1.4 (n)), no CA may be
    followed by more intermediate CAs than its pathLenConstraint allows
    (6.1.4 (l)-(m)), and every certificate must be within its validity period.
    """
    path = [bundle.leaf, *bundle.chain]
    for cert, issuer in itertools.pairwise(path):
        if not _issued_by(cert, issuer):
            subject, signer = cert.subject.rfc4514_string(), issuer.subject.rfc4514_string()
            raise BundleError(f"{subject} is not signed by {signer}")
        if not _is_ca(issuer):
            raise BundleError(f"{issuer.subject.rfc4514_string()} is not a CA certificate")
        if not _may_sign_certificates(issuer):
            raise BundleError(f"{issuer.subject.rfc4514_string()}'s key usage does not allow keyCertSign")
    # The anchor may be any certificate of the path (a pinned intermediate, or
    # the root the bundle carries), or the issuer of its top certificate.
    anchor_print = fingerprint(trust_anchor)
    anchor_at = next((i for i, cert in enumerate(path) if fingerprint(cert) == anchor_print), None)
    if anchor_at is not None:
        trusted_path = path[: anchor_at + 1]
    elif _issued_by(path[-1], trust_anchor):
        trusted_path = [*path, trust_anchor]
    else:
        raise BundleError(f"chain does not lead to the trusted CA {trust_anchor.subject.rfc4514_string()}")
    _check_path_lengths(trusted_path)
    for cert in path:
        if not cert.not_valid_before_utc - CLOCK_SKEW <= now <= cert.not_valid_after_utc:
            raise BundleError(
                f"{cert.subject.rfc4514_string()} is not valid at {now.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()} "
                f"to {cert.not_valid_after_utc.isoformat()})"
            )


def _check_path_lengths(path: Sequence[x509.Certificate]) -> None:
    """Each CA's pathLenConstraint bounds the non-self-issued CAs below it."""
    for position, issuer in enumerate(path[1:], start=1):
        limit = _path_length(issuer)
        if limit is None:
            continue
        # RFC 5280 6.1.4 (l): self-issued intermediates do not count.
        below = sum(1 for cert in path[1:position] if cert.issuer != cert.subject)
        if below > limit:
            raise BundleError(
                f"{issuer.subject.rfc4514_string()} allows a path length of {limit}, "
                f"but {below} CA certificate(s) follow it"
            )


def check_validity(bundle: Bundle, now: dt.datetime, min_remaining: dt.timedelta = dt.timedelta(0)) -> None:
    """The leaf is valid now and for at least `min_remaining` more."""
    leaf = bundle.leaf
    if now + CLOCK_SKEW < leaf.not_valid_before_utc:
        raise BundleError(f"certificate is not valid before {leaf.not_valid_before_utc.isoformat()}")
    # RFC 5280 4.1.2.5: the validity period includes notAfter itself.
    if now > leaf.not_valid_after_utc:
        raise BundleError(f"certificate expired at {leaf.not_valid_after_utc.isoformat()}")
    if leaf.not_valid_after_utc - now < min_remaining:
        raise BundleError(f"certificate expires at {leaf.not_valid_after_utc.isoformat()}, sooner than required")


def certificate_names(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """The DNS and IP SANs of a certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return (
        set(san.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)},
    )


def check_names(bundle: Bundle, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> None:
    """The leaf must carry every configured name (RFC 6125: SANs, not CN).

    RFC 5280 section 7.2: DNS names compare case-insensitively.
    """
    dns, ips = certificate_names(bundle.leaf)
    dns_folded = {name.lower() for name in dns}
    missing = [n for n in dns_names if n.lower() not in dns_folded]
    missing += [ip for ip in ip_addresses if str(ipaddress.ip_address(ip)) not in ips]
    if missing:
        raise PolicyError(f"certificate lacks the names {', '.join(missing)}")


_REQUIRED_EKU = {
    Usage.SERVER: {ExtendedKeyUsageOID.SERVER_AUTH},
    Usage.CLIENT: {ExtendedKeyUsageOID.CLIENT_AUTH},
    Usage.BOTH: {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH},
}


def check_usage(bundle: Bundle, usage: Usage) -> None:
    """Key usage must allow TLS for the configured purpose.

    RFC 5280 section 4.2.1.12: without an extended key usage extension the
    key may be used for any purpose; with one, it must list the purpose.
    Section 4.2.1.3: a key usage extension must allow digitalSignature.
    """
    leaf = bundle.leaf
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None:
        missing = _REQUIRED_EKU[usage] - set(eku)
        if missing and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in set(eku):
            raise PolicyError(f"certificate's extended key usage lacks {', '.join(sorted(m._name for m in missing))}")
    try:
        key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise PolicyError("certificate's key usage does not allow digitalSignature")
