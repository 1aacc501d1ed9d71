"""`certrotor request`: a certificate for a key that never leaves the container.

    certrotor request --url URL --name svc.internal [--ip 10.0.0.5] --out DIR
                      [--validity-days 7] [--key-algorithm EC_prime256v1]
                      [--deadline 60] [--ca-file root.pem] [-- COMMAND ...]

The key is generated here, the CSR built here, and the request to the
issuer's Function URL is SigV4-signed (service "lambda") with the task
role's credentials through botocore. A 429 (rate limit, Private CA
throttling) or 409 (the same request in flight) is retried with the same CSR
after Retry-After, within the deadline: the issuer's idempotency answers a
retry with the same certificate, so a retry never pays twice. The files are
written as certrotor-fetch writes them, then COMMAND is exec'd.

`FunctionUrlClient` is also what `certrotor issue-now` uses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import Session as BotocoreSession

from certrotor.bounded_json import JsonRefused, parse_json
from certrotor.config import KeyAlgorithm
from certrotor.errors import AwsError, BundleError, CertrotorError, PolicyError
from certrotor.pki.bundle import (
    Bundle,
    check_chain,
    check_key_matches,
    check_names,
    check_validity,
    parse_bundle,
    parse_certificates,
    serial_hex,
)
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import generate_key, key_to_pem
from certrotor.quiet_logs import keep_secrets_out_of_logs

PROG = "certrotor request"
URL_ENV = "CERTROTOR_ISSUER_URL"
DEFAULT_DEADLINE = 60.0
DEFAULT_VALIDITY_DAYS = 7
# Function URL hosts are <id>.lambda-url.<region>.on.aws.
_URL_REGION = re.compile(r"\.lambda-url\.([a-z0-9-]+)\.on\.aws$")
_RETRY_STATUSES = {409, 429, 502, 503, 504}
EXIT_REFUSED = 2
EXIT_UNAVAILABLE = 3
EXIT_FILES = 4
EXIT_USAGE = 64


class IssuerHttpError(CertrotorError):
    """The issuer answered with an error status: `error` is its rule name."""

    def __init__(self, status: int, error: str, message: str, retry_after: float | None) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        if self.status == 409:
            return self.error == "in_progress"
        return self.status in _RETRY_STATUSES


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]


def region_for(url: str, default: str | None = None) -> str:
    """The signing region: from a Function URL's host, else the given one,
    else the environment (AWS_REGION), else us-east-1."""
    host = urlsplit(url).hostname or ""
    match = _URL_REGION.search(host)
    if match:
        return match.group(1)
    return default or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def default_credentials() -> Credentials:
    """The task role's credentials through botocore's provider chain."""
    keep_secrets_out_of_logs()
    credentials = BotocoreSession().get_credentials()
    if credentials is None:
        raise AwsError("no AWS credentials found (task role, environment or profile)")
    frozen = credentials.get_frozen_credentials()
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def check_issuer_url(url: object) -> str:
    """An issuer URL: https with a host, or http to a loopback host (local
    mode). Anything else is refused (ValueError) before a request is signed."""
    if not isinstance(url, str) or not url.strip():
        raise ValueError("--url: the issuer's Function URL is empty")
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"--url: {url[:80]!r} is not an https:// URL with a host")
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS:
        raise ValueError(f"--url: {url[:80]!r} is plain http to another host; use https")
    return url.strip()


class FunctionUrlClient:
    """JSON over HTTPS to a Function URL with AWS_IAM auth (SigV4, "lambda")."""

    def __init__(
        self,
        url: str,
        credentials: Credentials | Callable[[], Credentials] = default_credentials,
        region: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = check_issuer_url(url).rstrip("/")
        self._credentials = credentials
        self.region = region_for(url, region)
        self._timeout = timeout

    def _current_credentials(self) -> Credentials:
        return self._credentials() if callable(self._credentials) else self._credentials

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> HttpAnswer:
        """One signed request; an error status raises IssuerHttpError."""
        data = json.dumps(body).encode() if body is not None else b""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        request = AWSRequest(method=method, url=self.url + path, data=data, headers=headers)
        SigV4Auth(self._current_credentials(), "lambda", self.region).add_auth(request)
        prepared = urllib.request.Request(  # noqa: S310 - the URL is the issuer's, http(s) only
            self.url + path, data=data or None, method=method, headers=dict(request.headers.items())
        )
        try:
            with urllib.request.urlopen(prepared, timeout=self._timeout) as response:  # noqa: S310
                return HttpAnswer(response.status, _json(response.read()))
        except urllib.error.HTTPError as exc:
            answer = _json(exc.read())
            retry_after = exc.headers.get("Retry-After")
            raise IssuerHttpError(
                exc.code,
                str(answer.get("error", "http_error")),
                str(answer.get("message", exc.reason)),
                float(retry_after) if retry_after and retry_after.isdigit() else None,
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IssuerHttpError(503, "unreachable", f"cannot reach {self.url}: {reason}", None) from None


# The issuer's answers are small flat objects (a certificate and chain).
MAX_ANSWER_BYTES = 256 * 1024
MAX_ANSWER_DEPTH = 4


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = parse_json(data or b"{}", max_chars=MAX_ANSWER_BYTES, max_depth=MAX_ANSWER_DEPTH, what="the answer")
    except JsonRefused:
        return {"message": data[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"value": value}


def set_path(name: str) -> str:
    """A set's URL path segment: set names hold "/", sent encoded."""
    return quote(name, safe="")


def with_retries(
    call: Callable[[], HttpAnswer],
    deadline: float,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> HttpAnswer:
    """Repeat the same call while the issuer says "later", within `deadline` seconds."""
    give_up = clock() + deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except IssuerHttpError as exc:
            left = give_up - clock()
            if not exc.retryable or left <= 0:
                raise
            delay = min(exc.retry_after if exc.retry_after is not None else min(2.0**attempt, 8.0), left)
            say(f"{exc.error}; retrying in {delay:.0f}s")
            sleep(delay)


@dataclass(frozen=True)
class RequestedCertificate:
    key_pem: str
    bundle: Bundle
    serial: str
    not_after: str


def request_certificate(
    client: FunctionUrlClient,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str] = (),
    validity_days: int = DEFAULT_VALIDITY_DAYS,
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
    deadline: float = DEFAULT_DEADLINE,
    anchor_pem: str | None = None,
    say: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> RequestedCertificate:
    """Make a key, ask for its certificate, and check what comes back:
    the certificate is for our key, carries our names, is valid now, and its
    chain verifies (to `anchor_pem` when given)."""
    if not dns_names and not ip_addresses:
        raise ValueError("at least one --name or --ip is needed")
    key = generate_key(algorithm)
    common_name = (list(dns_names) or list(ip_addresses))[0]
    csr = build_csr(key, common_name, dns_names, ip_addresses)
    say(f"requesting a certificate for {', '.join([*dns_names, *ip_addresses])}")
    answer = with_retries(
        lambda: client.call("POST", "/certificates", {"csr": csr, "validity_days": validity_days}),
        deadline,
        say,
        sleep,
    )
    body = answer.body
    bundle = parse_bundle(str(body.get("certificate", "")) + str(body.get("chain", "")))
    now = dt.datetime.now(dt.UTC)
    check_key_matches(bundle, key)
    check_names(bundle, dns_names, ip_addresses)
    check_validity(bundle, now)
    anchor = parse_certificates(anchor_pem)[0] if anchor_pem else (bundle.chain or (bundle.leaf,))[-1]
    check_chain(bundle, anchor, now)
    return RequestedCertificate(
        key_to_pem(key), bundle, serial_hex(bundle.leaf), bundle.leaf.not_valid_after_utc.isoformat()
    )


# --------------------------------------------------------------------------
# Command line


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "request",
        help="generate a key, get its certificate from the issuer, write files, exec a command",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--url", default=os.environ.get(URL_ENV), help=f"the issuer's Function URL (or ${URL_ENV})")
    parser.add_argument("--name", action="append", default=[], dest="names", help="a DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], dest="ips", help="an IP address (repeatable)")
    parser.add_argument("--out", required=True, help="directory for the files (0700; key 0400)")
    parser.add_argument("--validity-days", type=int, default=DEFAULT_VALIDITY_DAYS)
    parser.add_argument("--key-algorithm", default=KeyAlgorithm.EC_P256.value, choices=[k.value for k in KeyAlgorithm])
    parser.add_argument("--region", help="signing region (default: from the URL or AWS_REGION)")
    parser.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, help="seconds to keep retrying")
    parser.add_argument("--ca-file", help="PEM of the CA to trust (default: the returned chain's top)")
    parser.add_argument("--combined", action="store_true", help="also write combined.pem")
    parser.add_argument("-v", "--verbose", action="store_true", help="progress lines on stderr")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...] to exec")
    parser.set_defaults(run=run)


def _complain(reason: str) -> None:
    print(f"{PROG}: {' '.join(reason.split())}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    command = [c for c in args.command if c != "--"] if args.command[:1] == ["--"] else list(args.command)
    if not args.url:
        _complain(f"--url is required (or set {URL_ENV})")
        return EXIT_USAGE
    if not args.names and not args.ips:
        _complain("at least one --name or --ip is required")
        return EXIT_USAGE
    try:
        check_issuer_url(args.url)
        if not str(args.out).strip():
            raise ValueError("--out is empty; name the directory for the key material")
        if not 1 <= args.validity_days <= 3650:
            raise ValueError(f"--validity-days: {args.validity_days} is not 1-3650")
        if not 0 < args.deadline <= 3600:
            raise ValueError(f"--deadline: {args.deadline} must be more than 0 and at most 3600 seconds")
    except ValueError as exc:
        _complain(str(exc))
        return EXIT_USAGE

    def say(line: str) -> None:
        if args.verbose:
            print(f"{PROG}: {line}", file=sys.stderr, flush=True)

    try:
        anchor = open(args.ca_file, encoding="ascii").read() if args.ca_file else None  # noqa: SIM115
        client = FunctionUrlClient(args.url, region=args.region)
        requested = request_certificate(
            client,
            args.names,
            args.ips,
            args.validity_days,
            KeyAlgorithm(args.key_algorithm),
            args.deadline,
            anchor,
            say,
        )
    except OSError as exc:
        _complain(f"cannot read {args.ca_file}: {exc.strerror}")
        return EXIT_USAGE
    except IssuerHttpError as exc:
        _complain(str(exc))
        return EXIT_UNAVAILABLE if exc.retryable else EXIT_REFUSED
    except (BundleError, PolicyError) as exc:
        _complain(f"the issued certificate does not check out: {exc}")
        return EXIT_REFUSED
    except AwsError as exc:
        _complain(str(exc))
        return EXIT_UNAVAILABLE
    from certrotor.client.entrypoint import exec_command
    from certrotor.client.files import write_material

    try:
        written = write_material(args.out, requested.key_pem, requested.bundle, combined=args.combined)
    except (OSError, CertrotorError) as exc:
        _complain(f"cannot write the files: {exc}")
        return EXIT_FILES
    say(f"serial {requested.serial}, valid until {requested.not_after}, written to {written.directory}")
    if not command:
        return 0
    return exec_command(command, None)
