"""A small HTTPS server for the demo: the "real server" a container runs.

    python -m certrotor.local.tls_server --dir /run/certrotor [--port 0]

It serves with fullchain.pem and key.pem from the directory the container
client wrote, prints `listening on https://127.0.0.1:PORT` once ready, and
answers every GET with the serial of the certificate it serves.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="certrotor-demo-server")
    parser.add_argument("--dir", required=True, type=Path, help="directory holding fullchain.pem and key.pem")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    fullchain = args.dir / "fullchain.pem"
    serial = format(x509.load_pem_x509_certificate(fullchain.read_bytes()).serial_number, "x")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"served by certrotor demo, certificate serial {serial}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=str(fullchain), keyfile=str(args.dir / "key.pem"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"listening on https://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
