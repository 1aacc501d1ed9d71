"""The demo's mutual-TLS step: a `usage: client` set, rotated (testSecret
proves its certificate as the client of a mutual-TLS server), fetched by
`certrotor-fetch`, then used as the client certificate against a server
that holds the server set and requires a client certificate from the root.
A client without one is refused."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509

from certrotor.config import load_config
from certrotor.local.driver import RotationDriver
from certrotor.local.provision import LocalEnvironment, provision
from certrotor.pki.handshake import client_context

CLIENT_SET: dict[str, Any] = {
    "name": "demo/client",
    "common_name": "demo-client.internal",
    "dns_names": ["demo-client.internal"],
    "usage": "client",
    "key_algorithm": "EC_prime256v1",
    "validity_days": 30,
    "chain_parts": 1,
    "schedule": {"expression": "rate(20 days)", "window": "4h"},
    "services": [],
}


class MutualTlsFailed(Exception):
    """The mutual-TLS step did not do what it should."""


def fetch(env: LocalEnvironment, command: list[str], set_name: str, directory: Path, root_file: Path) -> None:
    """`certrotor-fetch` with no command: fetch, verify and write the files."""
    done = subprocess.run(
        [*command, "--set", set_name, "--dir", str(directory), "--ca-file", str(root_file)],
        env={**os.environ, **env.emulator.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise MutualTlsFailed(f"certrotor-fetch --set {set_name} failed: {done.stderr.strip()}")


@contextlib.contextmanager
def mutual_tls_server(server_dir: Path, root_pem: str) -> Iterator[tuple[int, list[str]]]:
    """A TLS server on 127.0.0.1 that requires a client certificate issued
    under the root; yields its port and the list of client serials it saw
    (or the errors it refused connections with)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(server_dir / "fullchain.pem"), keyfile=str(server_dir / "key.pem"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=root_pem)
    seen: list[str] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        for _ in range(2):
            try:
                raw, _address = listener.accept()
            except OSError:
                return
            with raw:
                try:
                    with context.wrap_socket(raw, server_side=True) as tls:
                        der = tls.getpeercert(binary_form=True)
                        serial = format(x509.load_der_x509_certificate(der).serial_number, "x") if der else "none"
                        seen.append(serial)
                        tls.sendall(f"hello client {serial}\n".encode())
                except (ssl.SSLError, OSError) as exc:
                    seen.append(f"refused: {getattr(exc, 'reason', None) or exc}")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], seen
    finally:
        listener.close()
        thread.join(timeout=10)


def connect(port: int, root_pem: str, server_name: str, client_dir: Path | None) -> str:
    """Connect trusting only the root, presenting the client set if given."""
    context = client_context(root_pem)
    if client_dir is not None:
        context.load_cert_chain(certfile=str(client_dir / "fullchain.pem"), keyfile=str(client_dir / "key.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.recv(4096).decode().strip()


def run_mutual_tls(
    env: LocalEnvironment, workdir: Path, root_file: Path, fetch_command: list[str], say: Callable[[str], None]
) -> str:
    """Provision, rotate and fetch the client set, then connect with it;
    returns the client certificate's serial as the server saw it."""
    # A rotator of its own: the demo's re-key and CA rotation steps act on the
    # demo rotator's sets only.
    config = load_config({"ca": {"arn": env.ca_arn}, "sets": [CLIENT_SET], "service_name": "certrotor-mtls"})
    client_env = provision(env.emulator, config, env.root)
    report = RotationDriver(client_env).rotate(CLIENT_SET["name"])
    say(f"set {CLIENT_SET['name']} (usage client) rotated to {report.token}; testSecret proved it as a client")
    server_set = env.config.sets[0]
    server_dir, client_dir = workdir / "mtls-server", workdir / "mtls-client"
    fetch(env, fetch_command, server_set.name, server_dir, root_file)
    fetch(env, fetch_command, CLIENT_SET["name"], client_dir, root_file)
    client_serial = format(x509.load_pem_x509_certificate((client_dir / "cert.pem").read_bytes()).serial_number, "x")
    with mutual_tls_server(server_dir, env.root.pem) as (port, seen):
        answer = connect(port, env.root.pem, server_set.common_name, client_dir)
        with contextlib.suppress(ssl.SSLError, OSError):
            connect(port, env.root.pem, server_set.common_name, None)
    say(f"server (requires a client certificate from the root) said: {answer}")
    if not seen or seen[0] != client_serial:
        raise MutualTlsFailed(f"the server saw {seen[:1]}, not the client set's serial {client_serial}")
    if len(seen) < 2 or not seen[1].startswith("refused"):
        raise MutualTlsFailed("a client without a certificate was not refused")
    say(f"a client without a certificate: {seen[1]}")
    return client_serial
