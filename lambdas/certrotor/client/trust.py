"""The client side of the trust bundle: read it with the set, verify the set
against it, and hand its PEM on to be written as trust.pem.

A set whose manifest names a trust secret is verified against the anchors
that secret publishes (any one of them), unless --ca-file names the CA to
trust instead. A trust secret that is named but cannot be read fails the
fetch when no --ca-file is given: falling back to a weaker check because a
read failed would let whoever can break the read choose the check.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from certrotor.client.fetch import utc_now, verify_fetched
from certrotor.errors import AwsError, BundleError
from certrotor.layout import AssembledSet
from certrotor.pki.bundle import cert_to_pem, parse_certificates
from certrotor.record import record
from certrotor.services.verify import VerifiedSet

if TYPE_CHECKING:
    from certrotor.ports import SecretValue
    from certrotor.services.reader import SetReader


@record
class TrustedFetch:
    """A verified set, the trust bundle read with it, and what was checked."""

    verified: VerifiedSet
    trust_pem: str | None
    checked_against: str


def verify_with_anchors(
    assembled: AssembledSet,
    name: str,
    anchors_pem: str,
    *,
    now: dt.datetime,
    min_remaining: dt.timedelta = dt.timedelta(0),
) -> VerifiedSet:
    """The set verifies to one of the anchors, or BundleError naming them."""
    anchors = parse_certificates(anchors_pem)
    last: BundleError | None = None
    for anchor in anchors:
        try:
            return verify_fetched(assembled, name, anchor_pem=cert_to_pem(anchor), now=now, min_remaining=min_remaining)
        except BundleError as exc:
            last = exc
    subjects = "; ".join(a.subject.rfc4514_string() for a in anchors)
    raise BundleError(f"the set does not verify to any CA of its trust bundle ({subjects}): {last}")


def fetch_trusted(
    reader: SetReader,
    name: str,
    *,
    anchor_pem: str | None = None,
    now: dt.datetime | None = None,
    min_remaining: dt.timedelta = dt.timedelta(0),
    manifest_value: SecretValue | None = None,
) -> TrustedFetch:
    """Read the set and its trust bundle, and verify: to `anchor_pem` if
    given, else to the trust bundle, else (no bundle published) to the
    chain's own top certificate."""
    from certrotor.services.trust import trust_pem_of  # AWS mode only: env mode needs none of it at start

    at = now or utc_now()
    assembled = reader.read(name, manifest_value=manifest_value, with_trust=True)
    trust_name = assembled.manifest.trust
    trust_pem = trust_pem_of(reader.trust.value) if reader.trust is not None else None
    if reader.trust_error is not None and anchor_pem is None:
        raise AwsError(
            f"the set's trust bundle {trust_name} could not be read ({reader.trust_error}); "
            "grant secretsmanager:GetSecretValue on it, or give --ca-file"
        )
    if anchor_pem is not None:
        verified = verify_fetched(assembled, name, anchor_pem=anchor_pem, now=at, min_remaining=min_remaining)
        return TrustedFetch(verified, trust_pem or None, "--ca-file")
    if trust_pem:
        verified = verify_with_anchors(assembled, name, trust_pem, now=at, min_remaining=min_remaining)
        return TrustedFetch(verified, trust_pem, f"trust bundle {trust_name}")
    verified = verify_fetched(assembled, name, now=at, min_remaining=min_remaining)
    return TrustedFetch(verified, None, "the chain's own top certificate")
