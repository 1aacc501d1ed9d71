"""Operator commands: issue a managed set now, show a set, revoke a certificate.

    certrotor issue-now NAME [--url URL] [--timeout 300]
    certrotor set-status NAME [--url URL]
    certrotor revoke --serial HEX --reason REASON [--table T] [--ca-arn ARN]

issue-now and set-status go through the issuer's Function URL (SigV4), so
they need the same IAM permission and issuer policy as any caller; issue-now
prints progress lines until the new version is current. revoke calls
Private CA RevokeCertificate with the operator's own credentials and records
the revocation in the ledger.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

from certrotor.client.request import URL_ENV, FunctionUrlClient, IssuerHttpError, set_path
from certrotor.errors import CertrotorError

REVOCATION_REASONS = (
    "UNSPECIFIED",
    "KEY_COMPROMISE",
    "CERTIFICATE_AUTHORITY_COMPROMISE",
    "AFFILIATION_CHANGED",
    "SUPERSEDED",
    "CESSATION_OF_OPERATION",
    "PRIVILEGE_WITHDRAWN",
    "A_A_COMPROMISE",
)
_HEX = re.compile(r"^[0-9a-f]+$")
EXIT_FAILED = 1
EXIT_TIMEOUT = 3
EXIT_USAGE = 64


def _say(line: str) -> None:
    print(line, flush=True)


def _complain(command: str, reason: str) -> None:
    print(f"certrotor {command}: {' '.join(reason.split())}", file=sys.stderr, flush=True)


def normalize_serial(text: str) -> str:
    """ "0A:1b:.." or "0a1b.." -> "a1b..": lowercase hex without colons or
    leading zeros, as the ledger records serials."""
    compact = text.strip().lower().replace(":", "")
    if not compact or not _HEX.match(compact):
        raise ValueError(f"{text!r} is not a hexadecimal serial number")
    return format(int(compact, 16), "x")


def colon_serial(serial: str) -> str:
    """The serial as Private CA documents it: colon-separated byte pairs."""
    padded = serial if len(serial) % 2 == 0 else "0" + serial
    return ":".join(padded[i : i + 2] for i in range(0, len(padded), 2))


# --------------------------------------------------------------------------
# issue-now


def issue_now(
    client: FunctionUrlClient,
    name: str,
    timeout: float,
    say: Callable[[str], None] = _say,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    interval: float = 1.0,
) -> dict[str, Any]:
    """Start a rotation (or follow the one in progress) and wait until its
    version is current; returns the final status."""
    try:
        token = str(client.call("POST", f"/sets/{set_path(name)}/issue").body["version"])
        say(f"{name}: rotation started, version {token}")
    except IssuerHttpError as exc:
        if exc.error != "rotation_in_progress":
            raise
        status = client.call("GET", f"/sets/{set_path(name)}").body
        token = str(status.get("pending_version") or "")
        say(f"{name}: a rotation is already in progress, version {token}; following it")
    give_up = clock() + timeout
    last = ""
    while True:
        status = client.call("GET", f"/sets/{set_path(name)}").body
        if status.get("version") == token and not status.get("rotation_in_progress"):
            say(
                f"{name}: version {token} is current: serial {status.get('serial')}, "
                f"valid until {status.get('not_after')}"
            )
            return status
        line = "rotating" if status.get("rotation_in_progress") else "waiting for the rotation to start"
        if line != last:
            say(f"{name}: {line} (current version {status.get('version')})")
            last = line
        if clock() >= give_up:
            raise TimeoutError(f"version {token} of {name} not current after {timeout:.0f}s")
        sleep(interval)


def _run_issue_now(args: argparse.Namespace) -> int:
    if not args.url:
        _complain("issue-now", f"--url is required (or set {URL_ENV})")
        return EXIT_USAGE
    try:
        issue_now(FunctionUrlClient(args.url, region=args.region), args.name, args.timeout)
    except IssuerHttpError as exc:
        _complain("issue-now", str(exc))
        return EXIT_FAILED
    except TimeoutError as exc:
        _complain("issue-now", str(exc))
        return EXIT_TIMEOUT
    except CertrotorError as exc:
        _complain("issue-now", str(exc))
        return EXIT_FAILED
    return 0


def _run_status(args: argparse.Namespace) -> int:
    if not args.url:
        _complain("set-status", f"--url is required (or set {URL_ENV})")
        return EXIT_USAGE
    try:
        status = FunctionUrlClient(args.url, region=args.region).call("GET", f"/sets/{set_path(args.name)}").body
    except CertrotorError as exc:
        _complain("set-status", str(exc))
        return EXIT_FAILED
    for key in ("name", "version", "serial", "not_after", "rotation_in_progress", "pending_version"):
        _say(f"{key}: {status.get(key)}")
    return 0


# --------------------------------------------------------------------------
# revoke


def revoke(ca: Any, ledger: Any, serial: str, reason: str, now: dt.datetime) -> None:
    """RevokeCertificate, then record it; a refused revocation records nothing."""
    if reason not in REVOCATION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
    ca.revoke(colon_serial(serial), reason)
    ledger.mark_revoked(ca.ca_arn, serial, reason, now)


def _run_revoke(args: argparse.Namespace) -> int:
    from certrotor.aws.ledger import Ledger
    from certrotor.aws.pca import PrivateCA

    if not args.table or not args.ca_arn:
        _complain("revoke", "--table and --ca-arn are required (or CERTROTOR_LEDGER_TABLE, CERTROTOR_CA_ARN)")
        return EXIT_USAGE
    try:
        serial = normalize_serial(args.serial)
        revoke(PrivateCA(args.ca_arn), Ledger(args.table), serial, args.reason, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        _complain("revoke", str(exc))
        return EXIT_USAGE
    except CertrotorError as exc:
        _complain("revoke", str(exc))
        return EXIT_FAILED
    _say(f"revoked {serial} ({args.reason}) and recorded it in {args.table}")
    return 0


def register(subparsers: Any) -> None:
    url_help = f"the issuer's Function URL (or ${URL_ENV})"
    now = subparsers.add_parser("issue-now", help="rotate a managed set now and wait until it is current")
    now.add_argument("name", help="the set's name")
    now.add_argument("--url", default=os.environ.get(URL_ENV), help=url_help)
    now.add_argument("--region", help="signing region (default: from the URL or AWS_REGION)")
    now.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (default 300)")
    now.set_defaults(run=_run_issue_now)

    status = subparsers.add_parser("set-status", help="a managed set's version, serial and expiry")
    status.add_argument("name")
    status.add_argument("--url", default=os.environ.get(URL_ENV), help=url_help)
    status.add_argument("--region")
    status.set_defaults(run=_run_status)

    revoke_parser = subparsers.add_parser("revoke", help="revoke a certificate by serial and record it")
    revoke_parser.add_argument("--serial", required=True, help="hex, with or without colons")
    revoke_parser.add_argument("--reason", default="UNSPECIFIED", choices=REVOCATION_REASONS)
    revoke_parser.add_argument("--table", default=os.environ.get("CERTROTOR_LEDGER_TABLE"))
    revoke_parser.add_argument("--ca-arn", default=os.environ.get("CERTROTOR_CA_ARN"))
    revoke_parser.set_defaults(run=_run_revoke)
