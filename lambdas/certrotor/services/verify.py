"""Prove an assembled set is usable: the checks shared by testSecret, the
container client and the monitor. Pure: no AWS, the clock is passed in."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cryptography import x509

from certrotor.errors import BundleError
from certrotor.layout import AssembledSet, Manifest
from certrotor.names import Usage
from certrotor.pki.bundle import (
    Bundle,
    cert_to_pem,
    certificate_names,
    check_chain,
    check_key_matches,
    check_names,
    check_usage,
    check_validity,
    parse_bundle,
    parse_certificates,
)
from certrotor.pki.keys import key_from_pem
from certrotor.record import record

if TYPE_CHECKING:
    # The configuration model and the TLS stack are for testSecret and the
    # monitor; the container client verifies without them (a faster start).
    from certrotor.config import CertificateSetConfig
    from certrotor.pki.handshake import HandshakeResult


@record
class VerifiedSet:
    """A set that passed every check; the key stays as PEM text only."""

    manifest: Manifest
    bundle: Bundle
    key_pem: str
    handshake: HandshakeResult | None


def trust_anchor(ca_chain_pem: str) -> x509.Certificate:
    """The root of a CA chain: its self-issued certificate, else its last."""
    certs = parse_certificates(ca_chain_pem)
    roots = [c for c in certs if c.issuer == c.subject]
    return roots[0] if roots else certs[-1]


def verify_set(
    assembled: AssembledSet,
    now: dt.datetime,
    anchor: x509.Certificate | None = None,
    expected: CertificateSetConfig | None = None,
    handshake: bool = False,
    min_remaining: dt.timedelta = dt.timedelta(0),
) -> VerifiedSet:
    """Key matches leaf, chain verifies (to `anchor` if given, else to the
    bundle's own top certificate), leaf valid now; with `expected`, names and
    usage as configured; with `handshake`, a real TLS handshake in memory in
    each role the configured usage allows (server, client of a mutual-TLS
    server, or both; without `expected`, server)."""
    bundle = parse_bundle(assembled.bundle_pem)
    key = key_from_pem(assembled.key_pem)
    check_key_matches(bundle, key)
    top = anchor if anchor is not None else (bundle.chain[-1] if bundle.chain else None)
    if top is None:
        raise BundleError("the set has no chain and no trust anchor was given")
    check_chain(bundle, top, now)
    check_validity(bundle, now, min_remaining)
    server_name = None
    usage = Usage.SERVER
    if expected is not None:
        check_names(bundle, expected.dns_names, expected.ip_addresses)
        check_usage(bundle, expected.usage)
        server_name = expected.common_name
        usage = expected.usage
    result = None
    if handshake:
        result = prove_in_handshake(assembled.key_pem, bundle, cert_to_pem(top), usage, server_name)
    return VerifiedSet(manifest=assembled.manifest, bundle=bundle, key_pem=assembled.key_pem, handshake=result)


def prove_in_handshake(
    key_pem: str, bundle: Bundle, anchor_pem: str, usage: Usage, server_name: str | None = None
) -> HandshakeResult:
    """A real TLS handshake in memory in the role(s) `usage` allows: a server
    certificate serves a client that checks `server_name`; a client
    certificate authenticates to a mutual-TLS server; `both` does both at once."""
    from certrotor.pki.handshake import client_handshake_in_memory, handshake_in_memory, mutual_handshake_in_memory

    if usage is Usage.CLIENT:
        return client_handshake_in_memory(key_pem, bundle.fullchain_pem, anchor_pem)
    name = server_name or _first_name(bundle)
    if usage is Usage.BOTH:
        return mutual_handshake_in_memory(key_pem, bundle.fullchain_pem, anchor_pem, name)
    return handshake_in_memory(key_pem, bundle.fullchain_pem, anchor_pem, name)


def _first_name(bundle: Bundle) -> str:
    dns, ips = certificate_names(bundle.leaf)
    names = sorted(dns) + sorted(ips)
    if not names:
        raise BundleError("the certificate has no DNS or IP name to check a handshake against")
    return names[0]
