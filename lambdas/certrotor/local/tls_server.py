"""A small HTTPS server for the demo: the "real server" a container runs.

    python -m certrotor.local.tls_server --dir /run/certrotor [--port 0]

It serves with fullchain.pem and key.pem from the directory the container
client wrote, prints `listening on https://127.0.0.1:PORT` once ready, and
answers every GET with its PID and the serial of the certificate it serves.

On SIGHUP it reloads the pair from the directory: new connections get the new
certificate, connections already open keep theirs and stay up (HTTP/1.1
keep-alive), and it prints `reloaded serial S`. A pair that does not load
(missing, or key and certificate do not match) is refused and the old one kept.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509


class TLSServer(http.server.ThreadingHTTPServer):
    """Wraps each accepted connection with the context current at accept time."""

    daemon_threads = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        # The handshake runs in the connection's thread, not in the accept loop.
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="certrotor-demo-server")
    parser.add_argument("--dir", required=True, type=Path, help="directory holding fullchain.pem and key.pem")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fullchain = args.dir / "fullchain.pem"
    serving = {"serial": ""}

    def load() -> ssl.SSLContext:
        # The pair is read in one go; a fresh context replaces the old one whole.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        chain = fullchain.read_bytes()
        context.load_cert_chain(certfile=str(fullchain), keyfile=str(args.dir / "key.pem"))
        serving["serial"] = format(x509.load_pem_x509_certificate(chain).serial_number, "x")
        return context

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"served by certrotor demo (pid {os.getpid()}), certificate serial {serving['serial']}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = TLSServer(("127.0.0.1", args.port), Handler)
    server.context = load()
    reloads = threading.Semaphore(0)

    def reload_pair() -> None:
        while True:
            reloads.acquire()
            try:
                server.context = load()
                print(f"reloaded serial {serving['serial']}", flush=True)
            except (OSError, ssl.SSLError) as exc:
                print(f"reload refused, still serving {serving['serial']}: {exc}", flush=True)

    threading.Thread(target=reload_pair, name="reload", daemon=True).start()
    signal.signal(signal.SIGHUP, lambda number, frame: reloads.release())
    print(f"listening on https://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
