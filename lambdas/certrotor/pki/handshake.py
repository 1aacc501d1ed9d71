"""A real TLS handshake in memory, to prove a key, certificate and chain work.

The server side loads the material through `memfd_create` files under
/proc/self/fd, so the private key never touches a filesystem (not even
Lambda's /tmp); the two ends talk through ssl.MemoryBIO pairs, no socket.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certrotor.errors import BundleError

_MAX_ROUNDS = 50


@dataclass(frozen=True)
class HandshakeResult:
    """What the client saw: the served certificate and the session's terms."""

    serial: int
    not_after: str
    version: str
    cipher: str


@contextlib.contextmanager
def memory_files(*contents: str) -> Iterator[list[str]]:
    """Paths that read back `contents`, held only in memory where possible."""
    if hasattr(os, "memfd_create"):
        fds = [os.memfd_create("certrotor", os.MFD_CLOEXEC) for _ in contents]
        try:
            for fd, text in zip(fds, contents, strict=True):
                os.write(fd, text.encode("ascii"))
            yield [f"/proc/self/fd/{fd}" for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    # Platforms without memfd (macOS development only): a private temp dir.
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, text in enumerate(contents):
            path = os.path.join(folder, f"{i}.pem")
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o400), "w") as handle:
                handle.write(text)
            paths.append(path)
        yield paths


def server_context(key_pem: str, fullchain_pem: str) -> ssl.SSLContext:
    """A TLS server context holding the key and its full chain, via memory files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with memory_files(fullchain_pem, key_pem) as (chain_path, key_path):
        try:
            context.load_cert_chain(certfile=chain_path, keyfile=key_path)
        except ssl.SSLError as exc:
            raise BundleError(f"TLS stack refused the certificate or key: {exc.reason or exc}") from None
    return context


def client_context(trust_anchor_pem: str) -> ssl.SSLContext:
    """A TLS client that trusts only the given CA certificate(s).

    Built directly rather than with create_default_context so that the same
    checks apply on every Python version (3.13 adds VERIFY_X509_STRICT there).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=trust_anchor_pem)
    return context


def handshake_in_memory(key_pem: str, fullchain_pem: str, trust_anchor_pem: str, server_name: str) -> HandshakeResult:
    """Run a TLS handshake between an in-memory server and client.

    The client trusts only `trust_anchor_pem` and checks `server_name`, so a
    success proves the key matches, the chain verifies and the name is right.
    """
    server_ctx = server_context(key_pem, fullchain_pem)
    client_ctx = client_context(trust_anchor_pem)
    client, _server = _shake(client_ctx, server_ctx, server_name, "as the server's")
    return _result(client)


def client_handshake_in_memory(key_pem: str, fullchain_pem: str, trust_anchor_pem: str) -> HandshakeResult:
    """Mutual TLS in memory in which this key and chain are the client's.

    The server holds a throwaway identity and requires a client certificate
    that verifies to `trust_anchor_pem` for client authentication, as a
    mutual-TLS server does: a certificate without clientAuth fails here.
    """
    server_key_pem, server_chain_pem, server_root_pem = _throwaway_server()
    server_ctx = server_context(server_key_pem, server_chain_pem)
    _require_client_certificates(server_ctx, trust_anchor_pem)
    client_ctx = client_context(server_root_pem)
    _load_client_identity(client_ctx, key_pem, fullchain_pem)
    _client, server = _shake(client_ctx, server_ctx, _THROWAWAY_NAME, "as the client's")
    return _result(server)


def mutual_handshake_in_memory(
    key_pem: str, fullchain_pem: str, trust_anchor_pem: str, server_name: str
) -> HandshakeResult:
    """Mutual TLS in memory with this key and chain on both ends: proves the
    certificate for server and client authentication at once."""
    server_ctx = server_context(key_pem, fullchain_pem)
    _require_client_certificates(server_ctx, trust_anchor_pem)
    client_ctx = client_context(trust_anchor_pem)
    _load_client_identity(client_ctx, key_pem, fullchain_pem)
    client, _server = _shake(client_ctx, server_ctx, server_name, "on both ends")
    return _result(client)


_THROWAWAY_NAME = "certrotor-handshake.invalid"


def _throwaway_server() -> tuple[str, str, str]:
    """A one-off root and server leaf (P-256, cheap): key, leaf, root PEM."""
    now = dt.datetime.now(dt.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "certrotor handshake root")])
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, _THROWAWAY_NAME)]))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(_THROWAWAY_NAME)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    key_pem = leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    pem = serialization.Encoding.PEM
    return key_pem, leaf.public_bytes(pem).decode("ascii"), root.public_bytes(pem).decode("ascii")


def _require_client_certificates(context: ssl.SSLContext, trust_anchor_pem: str) -> None:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=trust_anchor_pem)


def _load_client_identity(context: ssl.SSLContext, key_pem: str, fullchain_pem: str) -> None:
    with memory_files(fullchain_pem, key_pem) as (chain_path, key_path):
        try:
            context.load_cert_chain(certfile=chain_path, keyfile=key_path)
        except ssl.SSLError as exc:
            raise BundleError(f"TLS stack refused the certificate or key: {exc.reason or exc}") from None


def _shake(
    client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, server_name: str, role: str
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Both ends of a handshake through MemoryBIO pairs; BundleError names
    the side that refused and the role the certificate was proved in."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=server_name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    ends = (("client", client), ("server", server))
    done = {"client": False, "server": False}
    for _ in range(_MAX_ROUNDS):
        for name, end in ends:
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                reason = getattr(exc, "verify_message", None) or exc.reason or exc
                raise BundleError(f"TLS handshake failed on the {name} side: {reason} (certificate {role})") from None
        if c_out.pending:
            s_in.write(c_out.read())
        if s_out.pending:
            c_in.write(s_out.read())
        # Under TLS 1.3 the client is done before the server has checked
        # the client's certificate: only both ends done is a success.
        if all(done.values()):
            break
    else:
        raise BundleError("TLS handshake did not complete")
    return client, server


def _result(end: ssl.SSLObject) -> HandshakeResult:
    """What `end` saw of its peer; both ends of a completed handshake hold a
    peer certificate here (the server requires one whenever it is read)."""
    der = end.getpeercert(binary_form=True)
    if der is None:
        raise BundleError("TLS handshake completed without a peer certificate")
    cert = x509.load_der_x509_certificate(der)
    cipher = end.cipher()
    return HandshakeResult(
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc.isoformat(),
        version=end.version() or "",
        cipher=cipher[0] if cipher else "",
    )
