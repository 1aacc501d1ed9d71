"""A real TLS handshake in memory, to prove a key, certificate and chain work.

The server side loads the material through `memfd_create` files under
/proc/self/fd, so the private key never touches a filesystem (not even
Lambda's /tmp); the two ends talk through ssl.MemoryBIO pairs, no socket.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509

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


def _server_hostname(name: str) -> str:
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(name))
    return name


def handshake_in_memory(key_pem: str, fullchain_pem: str, trust_anchor_pem: str, server_name: str) -> HandshakeResult:
    """Run a TLS handshake between an in-memory server and client.

    The client trusts only `trust_anchor_pem` and checks `server_name`, so a
    success proves the key matches, the chain verifies and the name is right.
    """
    server_ctx = server_context(key_pem, fullchain_pem)
    client_ctx = client_context(trust_anchor_pem)
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=_server_hostname(server_name))
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(_MAX_ROUNDS):
        for name, end in (("client", client), ("server", server)):
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                reason = getattr(exc, "verify_message", None) or exc.reason or exc
                raise BundleError(f"TLS handshake failed on the {name} side: {reason}") from None
        if c_out.pending:
            s_in.write(c_out.read())
        if s_out.pending:
            c_in.write(s_out.read())
        if all(done.values()):
            break
    else:
        raise BundleError("TLS handshake did not complete")
    der = client.getpeercert(binary_form=True)
    if der is None:
        raise BundleError("TLS handshake completed without a server certificate")
    cert = x509.load_der_x509_certificate(der)
    cipher = client.cipher()
    return HandshakeResult(
        serial=cert.serial_number,
        not_after=cert.not_valid_after_utc.isoformat(),
        version=client.version() or "",
        cipher=cipher[0] if cipher else "",
    )
