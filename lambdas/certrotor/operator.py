"""Operator commands: issue a managed set now, show a set, revoke a certificate.

    certrotor issue-now NAME [--url URL] [--timeout 300]
    certrotor set-status NAME [--url URL]
    certrotor revoke --serial HEX --reason REASON [--table T] [--ca-arn ARN] [--force]

issue-now and set-status go through the issuer's Function URL (SigV4), so
they need the same IAM permission and issuer policy as any caller; issue-now
prints progress lines until the new version is current. revoke calls
Private CA RevokeCertificate with the operator's own credentials, for a
serial the ledger lists (or any with --force), and records the revocation in
the ledger: intent first, then the CA, then the confirmation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from certrotor.cli_arguments import positive_seconds
from certrotor.client.request import URL_ENV, FunctionUrlClient, IssuerHttpError, check_issuer_url, set_path
from certrotor.errors import CertrotorError
from certrotor.pki.bundle import colon_serial

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
# RFC 5280 section 4.1.2.2: a serial is a positive integer of at most 20
# octets (DER: at most 159 bits, the top bit of 20 octets being the sign).
MAX_SERIAL_BITS = 159
MAX_SERIAL_TEXT = 64  # 20 octets as colon-separated pairs, with room to spare
EXIT_FAILED = 1
EXIT_REFUSED = 2
EXIT_TIMEOUT = 3
EXIT_USAGE = 64


class RevocationRefused(CertrotorError):
    """The revocation was not attempted: nothing changed at the CA or in the ledger."""


def _say(line: str) -> None:
    print(line, flush=True)


def _complain(command: str, reason: str) -> None:
    print(f"certrotor {command}: {' '.join(reason.split())}", file=sys.stderr, flush=True)


def normalize_serial(text: str) -> str:
    """ "0A:1b:.." or "0a1b.." -> "a1b..": lowercase hex without colons or
    leading zeros, as the ledger records serials. Refuses anything that is
    not a serial RFC 5280 allows: zero, negative, over 20 octets."""
    stripped = text.strip()
    if len(stripped) > MAX_SERIAL_TEXT:
        raise ValueError(
            f"a serial number is at most 20 octets (RFC 5280 section 4.1.2.2); got {len(stripped)} characters"
        )
    compact = stripped.lower().replace(":", "")
    if not compact or not _HEX.match(compact):
        raise ValueError(f"{stripped!r} is not a hexadecimal serial number (such as 0a:1b:2c or 0a1b2c)")
    value = int(compact, 16)
    if value == 0:
        raise ValueError("a serial number is a positive integer (RFC 5280 section 4.1.2.2); 0 is not one")
    if value.bit_length() > MAX_SERIAL_BITS:
        raise ValueError(f"{stripped!r} is longer than the 20 octets RFC 5280 section 4.1.2.2 allows")
    return format(value, "x")


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
        check_issuer_url(args.url)
    except ValueError as exc:
        _complain("issue-now", str(exc))
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
        check_issuer_url(args.url)
    except ValueError as exc:
        _complain("set-status", str(exc))
        return EXIT_USAGE
    try:
        status = FunctionUrlClient(args.url, region=args.region).call("GET", f"/sets/{set_path(args.name)}").body
    except CertrotorError as exc:
        _complain("set-status", str(exc))
        return EXIT_FAILED
    for key in ("name", "version", "serial", "not_after", "rotation_in_progress", "pending_version", "problem"):
        if key == "problem" and key not in status:
            continue
        _say(f"{key}: {status.get(key)}")
    return 0


# --------------------------------------------------------------------------
# revoke


@dataclass(frozen=True)
class Revocation:
    """What `revoke` did: `newly` is False when the CA had revoked it before."""

    serial: str
    newly: bool
    in_ledger: bool


def revoke(ca: Any, ledger: Any, serial: str, reason: str, now: dt.datetime, *, force: bool = False) -> Revocation:
    """Record the intent, RevokeCertificate, then confirm it in the ledger,
    so the CA and the ledger never disagree: a refused revocation leaves no
    record, and one the CA made is on record even if the confirmation fails
    (running the same command again confirms it).

    Only a serial this deployment's issuer recorded is revoked, unless
    `force` (a certificate a rotation issued is not in the ledger)."""
    if reason not in REVOCATION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(REVOCATION_REASONS)}")
    entry = ledger.get(ca.ca_arn, serial)
    if entry is None and not force:
        raise RevocationRefused(
            f"serial {serial} is not in the ledger {ledger.table_name}: this deployment's issuer did not issue it "
            "(a rotation's certificate is not in the ledger: check the serial with certrotor set-status, then "
            "pass --force)"
        )
    ledger.record_revocation_intent(ca.ca_arn, serial, reason, now)
    try:
        newly = ca.revoke(colon_serial(serial), reason)
    except CertrotorError:
        ledger.withdraw_revocation_intent(ca.ca_arn, serial)
        raise
    try:
        ledger.mark_revoked(ca.ca_arn, serial, reason, now)
    except CertrotorError as exc:
        raise CertrotorError(
            f"Private CA revoked {serial}, but the ledger could not confirm it ({exc}); the intent is recorded: "
            "run the same command again to confirm"
        ) from None
    return Revocation(serial, newly, entry is not None)


def _run_revoke(args: argparse.Namespace) -> int:
    from certrotor.aws.ledger import Ledger
    from certrotor.aws.pca import PrivateCA

    if not args.table or not args.ca_arn:
        _complain("revoke", "--table and --ca-arn are required (or CERTROTOR_LEDGER_TABLE, CERTROTOR_CA_ARN)")
        return EXIT_USAGE
    try:
        serial = normalize_serial(args.serial)
        done = revoke(
            PrivateCA(args.ca_arn),
            Ledger(args.table),
            serial,
            args.reason,
            dt.datetime.now(dt.UTC),
            force=args.force,
        )
    except ValueError as exc:
        _complain("revoke", str(exc))
        return EXIT_USAGE
    except RevocationRefused as exc:
        _complain("revoke", str(exc))
        return EXIT_REFUSED
    except CertrotorError as exc:
        _complain("revoke", str(exc))
        return EXIT_FAILED
    already = "" if done.newly else " (Private CA had already revoked it)"
    _say(f"revoked {serial} ({args.reason}){already} and recorded it in {args.table}")
    return 0


def register(subparsers: Any) -> None:
    url_help = f"the issuer's Function URL (or ${URL_ENV})"
    now = subparsers.add_parser("issue-now", help="rotate a managed set now and wait until it is current")
    now.add_argument("name", help="the set's name")
    now.add_argument("--url", default=os.environ.get(URL_ENV), help=url_help)
    now.add_argument("--region", help="signing region (default: from the URL or AWS_REGION)")
    now.add_argument("--timeout", type=positive_seconds, default=300.0, help="seconds to wait (default 300)")
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
    revoke_parser.add_argument(
        "--force",
        action="store_true",
        help="revoke a serial the ledger does not list (a certificate a rotation issued)",
    )
    revoke_parser.set_defaults(run=_run_revoke)
