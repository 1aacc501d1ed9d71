"""The trust bundle of a rotator: the CA certificates its consumers accept.

One secret per rotator, `<rotator>/trust`, holds a JSON document:

- `anchors`: the certificates a consumer verifies against (each CA's root,
  the top of its chain) with the CAs that chain to them;
- `cas`: every CA this rotator knows, with its status (`active` issues,
  `incoming` is trusted ahead of a CA rotation, `retired` is no longer
  trusted unless another CA shares its root);
- `ca_rotation`: the staged CA rotation in progress, if any (see
  services/ca_rotation.py).

Every set's manifest names this secret (`trust`), so `certrotor-fetch` reads
it in the same BatchGetSecretValue as the set's parts and writes trust.pem.
The document is written whole, as a new version, only when it changed, and
only on top of the version the change was computed from (TrustStore.update).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography import x509

from certrotor.bounded_json import JsonRefused, parse_json_object
from certrotor.errors import AwsError, BundleError, CertrotorError, IntegrityError, NotFoundError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.pki.bundle import cert_to_pem, fingerprint, parse_certificates
from certrotor.ports import CURRENT, SecretPort
from certrotor.record import field, record, replace

if TYPE_CHECKING:  # the container client reads trust bundles without the configuration model
    from certrotor.config import CertrotorConfig

TRUST_FORMAT = "certrotor-trust/1"


def _new_version() -> str:
    """A new version id (uuid is imported here: a container reading a trust bundle never writes one)."""
    import uuid

    return str(uuid.uuid4())


# Checked before parsing: an object of lists of objects, with small maps
# inside. The size bound is against runaway values, well above Secrets
# Manager's own 64 KiB (an emulator does not enforce that one).
MAX_TRUST_DEPTH = 6
MAX_TRUST_CHARS = 1024 * 1024
TRUST_FILE = "trust.pem"


class CaStatus:
    ACTIVE = "active"
    INCOMING = "incoming"
    RETIRED = "retired"


def rotator_id(config: CertrotorConfig) -> str:
    """The rotator's id: the name shared by its functions and sets' tags."""
    return config.rotator_id


def trust_secret_name(rotator: str) -> str:
    """Where a rotator publishes its trust bundle."""
    return f"{rotator}/trust"


def anchor_of(ca_chain_pem: str) -> x509.Certificate:
    """The certificate consumers pin for a CA: the self-issued root of its
    chain, else the chain's last certificate."""
    certs = parse_certificates(ca_chain_pem)
    roots = [c for c in certs if c.issuer == c.subject]
    return roots[0] if roots else certs[-1]


@record
class Anchor:
    """One trusted certificate and the CAs (by ARN) that chain to it."""

    pem: str
    fingerprint: str
    subject: str
    not_after: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> Anchor:
        return cls(
            cert_to_pem(cert), fingerprint(cert), cert.subject.rfc4514_string(), cert.not_valid_after_utc.isoformat()
        )


@record
class KnownCa:
    """A CA the rotator issues from, or has, or will."""

    arn: str
    status: str
    anchor: str  # the fingerprint of its anchor


@record
class TrustDocument:
    """The trust secret's value. `revision` grows whenever the anchors change."""

    rotator: str
    revision: int = 0
    updated: str = ""
    anchors: tuple[Anchor, ...] = ()
    cas: tuple[KnownCa, ...] = ()
    ca_rotation: Mapping[str, Any] | None = None
    revoke: Mapping[str, Any] = field(default_factory=dict)

    # -- reading ----------------------------------------------------------------

    @property
    def pem(self) -> str:
        """The anchors as one PEM file (trust.pem)."""
        return "".join(a.pem for a in self.anchors)

    def ca(self, arn: str) -> KnownCa | None:
        return next((c for c in self.cas if c.arn == arn), None)

    def trusts(self, arn: str) -> bool:
        known = self.ca(arn)
        return known is not None and any(a.fingerprint == known.anchor for a in self.anchors)

    # -- changing (each returns a new document) ------------------------------

    def with_ca(self, arn: str, ca_chain_pem: str, status: str, now: dt.datetime) -> TrustDocument:
        """Add or update a CA and make its anchor trusted."""
        anchor = Anchor.of(anchor_of(ca_chain_pem))
        cas = [c for c in self.cas if c.arn != arn]
        cas.append(KnownCa(arn, status, anchor.fingerprint))
        anchors = list(self.anchors)
        if all(a.fingerprint != anchor.fingerprint for a in anchors):
            anchors.append(anchor)
        return self._changed(tuple(anchors), tuple(cas), now)

    def with_status(self, arn: str, status: str, now: dt.datetime) -> TrustDocument:
        """Set a CA's status; a retired CA's anchor stays only while a CA
        not retired shares it."""
        known = self.ca(arn)
        if known is None:
            raise NotFoundError(f"{arn} is not a CA of rotator {self.rotator}")
        cas = tuple(replace(c, status=status) if c.arn == arn else c for c in self.cas)
        kept = {c.anchor for c in cas if c.status != CaStatus.RETIRED}
        anchors = tuple(a for a in self.anchors if a.fingerprint in kept)
        return self._changed(anchors, cas, now)

    def with_rotation(self, state: Mapping[str, Any] | None) -> TrustDocument:
        return replace(self, ca_rotation=dict(state) if state is not None else None)

    def with_revoke(self, state: Mapping[str, Any]) -> TrustDocument:
        return replace(self, revoke=dict(state))

    def _changed(self, anchors: tuple[Anchor, ...], cas: tuple[KnownCa, ...], now: dt.datetime) -> TrustDocument:
        moved = {a.fingerprint for a in anchors} != {a.fingerprint for a in self.anchors}
        return replace(
            self,
            anchors=anchors,
            cas=cas,
            revision=self.revision + 1 if moved else self.revision,
            updated=now.isoformat() if moved else self.updated,
        )

    # -- serialization ------------------------------------------------------------

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "format": TRUST_FORMAT,
            "rotator": self.rotator,
            "revision": self.revision,
            "updated": self.updated,
            "anchors": [
                {"pem": a.pem, "fingerprint_sha256": a.fingerprint, "subject": a.subject, "not_after": a.not_after}
                for a in self.anchors
            ],
            # Only what identifies each CA: the document must stay small (one
            # secret value) however many CAs a rotator has known.
            "cas": [{"arn": c.arn, "status": c.status, "anchor": c.anchor} for c in self.cas],
        }
        if self.ca_rotation is not None:
            data["ca_rotation"] = dict(self.ca_rotation)
        if self.revoke:
            data["revoke"] = dict(self.revoke)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, rotator: str) -> TrustDocument:
        """Parse the secret's value; the stack's initial value is an empty bundle."""
        if text == INITIAL_VALUE:
            return cls(rotator=rotator)
        try:
            data = parse_json_object(text, max_chars=MAX_TRUST_CHARS, max_depth=MAX_TRUST_DEPTH, what="trust bundle")
        except JsonRefused as exc:
            raise IntegrityError(f"trust bundle is malformed: {exc}") from None
        try:
            if data.get("format") != TRUST_FORMAT:
                raise IntegrityError(f"trust bundle format {data.get('format')!r} is not {TRUST_FORMAT}")
            anchors = tuple(
                Anchor(str(a["pem"]), str(a["fingerprint_sha256"]), str(a["subject"]), str(a["not_after"]))
                for a in data["anchors"]
            )
            cas = tuple(KnownCa(str(c["arn"]), str(c["status"]), str(c["anchor"])) for c in data["cas"])
            document = cls(
                rotator=str(data["rotator"]),
                revision=int(data["revision"]),
                updated=str(data.get("updated", "")),
                anchors=anchors,
                cas=cas,
                ca_rotation=data.get("ca_rotation"),
                revoke=data.get("revoke") or {},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise IntegrityError(f"trust bundle is malformed: {type(exc).__name__}") from None
        for anchor in document.anchors:
            try:
                (cert,) = parse_certificates(anchor.pem)
            except (BundleError, ValueError):
                raise IntegrityError("trust bundle holds an anchor that is not one PEM certificate") from None
            if fingerprint(cert) != anchor.fingerprint:
                raise IntegrityError(f"trust bundle anchor {anchor.subject} does not match its fingerprint")
        return document


def trust_pem_of(value: str) -> str:
    """The anchors of a trust secret's value as PEM ("" before it is published)."""
    if value == INITIAL_VALUE:
        return ""
    data = TrustDocument.from_json(value, rotator="")
    return data.pem


class TrustConflict(CertrotorError):
    """Other writers kept changing the trust document; nothing was lost, try again."""


class TrustStore:
    """Reads and writes one rotator's trust secret.

    Writers (the monitor, an operator's `certrotor ca`) change the document
    through `update`, a compare-and-swap: the new version is put under its
    own label, then AWSCURRENT is moved to it from the version the change
    was computed on (UpdateSecretVersionStage fails when RemoveFromVersionId
    no longer holds AWSCURRENT). On a conflict the change is applied again
    to the document another writer made, so neither drops the other's CA.
    """

    ATTEMPTS = 6
    CANDIDATE_STAGE = "CERTROTOR_CANDIDATE"

    def __init__(self, secrets: SecretPort, rotator: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._secrets = secrets
        self.rotator = rotator
        self.name = trust_secret_name(rotator)
        self._sleep = sleep
        self.conflicts = 0

    def load(self) -> TrustDocument:
        return TrustDocument.from_json(self._secrets.get(self.name, stage=CURRENT).value, self.rotator)

    def update(self, change: Callable[[TrustDocument], TrustDocument]) -> tuple[TrustDocument, bool]:
        """Apply `change` to the current document and write the result as
        AWSCURRENT unless it changed nothing; True when a version was
        written. Retried on a concurrent write (TrustConflict after ATTEMPTS)."""
        for attempt in range(self.ATTEMPTS):
            current = self._secrets.get(self.name, stage=CURRENT)
            before = TrustDocument.from_json(current.value, self.rotator)
            after = change(before)
            value = after.to_json()
            if value == before.to_json():
                return before, False
            token = _new_version()
            self._secrets.put(self.name, value, token, stages=(self.CANDIDATE_STAGE,))
            try:
                self._secrets.move_stage(self.name, CURRENT, token, current.version)
            except AwsError:
                now = self._secrets.get(self.name, stage=CURRENT).version
                if now == current.version:
                    raise  # not a concurrent write
                self.conflicts += 1
                self._sleep(random.uniform(0, 0.05 * 2**attempt))  # jitter, not security
                continue
            return after, True
        raise TrustConflict(
            f"{self.name} changed under every one of {self.ATTEMPTS} attempts to write it; run the command again"
        )

    def save(self, document: TrustDocument, before: TrustDocument | None = None) -> bool:
        """Write the document whole as the new AWSCURRENT unless it equals
        `before` (last writer wins: local provisioning and tests; concurrent
        writers use `update`). True when a version was written."""
        value = document.to_json()
        if before is not None and before.to_json() == value:
            return False
        # A fresh version each time: a document equal to an older version (a
        # pause undone) must still become AWSCURRENT, which reusing that
        # version's token would not do.
        self._secrets.put(self.name, value, _new_version(), stages=(CURRENT,))
        return True


def ensure_ca(
    store: TrustStore, arn: str, ca_chain_pem: str, now: dt.datetime, status: str = CaStatus.ACTIVE
) -> tuple[TrustDocument, bool]:
    """The CA is listed and its anchor trusted (unless the document marks it
    retired: a CA rotation removed it on purpose). Returns the document and
    whether it was written. Writes only when something changed, and only on
    top of the version it read (TrustStore.update)."""

    def change(before: TrustDocument) -> TrustDocument:
        known = before.ca(arn)
        if known is not None and (
            known.status == CaStatus.RETIRED
            or (known.anchor == fingerprint(anchor_of(ca_chain_pem)) and before.trusts(arn))
        ):
            return before
        keep = known.status if known is not None else status
        return before.with_ca(arn, ca_chain_pem, keep, now)

    return store.update(change)
