"""Revoke the certificates rotations superseded, once the certificate that
replaced them was delivered and a grace period has passed.

Each manifest lists the certificates the set held before it (`superseded`,
newest first, at most MAX_SUPERSEDED, each with the CA that issued it and
the generation of the manifest that held it), so certificates replaced by
several rotations between two runs are all found. Per set, each run (the
monitor's schedule) reads the AWSCURRENT manifest; its superseded
certificates become candidates only once that version was delivered (its
redeploy recorded for a redeploying set; finished, for a set whose consumers
reload). The grace starts when a run first sees that, never earlier, and is
recorded on the manifest secret as one tag per certificate,
`certrotor:superseded:<generation mod MAX_SUPERSEDED>` = "<serial> <state>
<time> <CA ARN>" with state

    delivered  the grace runs from <time>
    revoking   the revocation was asked for at <time> (intent recorded first)
    revoked    Private CA confirmed it at <time>

so a retried run never revokes twice, a crash between the request and the
record is finished by the next run (a certificate already revoked counts as
done), and operators see the state on the secret. A slot is reused only by
a certificate MAX_SUPERSEDED generations later, and a record not yet revoked
is finished before its slot is reused, never dropped. The serial in service
is never revoked: a list naming it is refused. Each certificate is revoked
by the CA that issued it (not the CA the set uses now). Revocations are
paced (RevokeCertificate allows 20 per second per account; this uses at
most 10) and bounded per run.

Manifests written before the list existed: the AWSPREVIOUS version's
certificate is the one candidate (slot of generation -1).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from certrotor.config import CertificateSetConfig, CertrotorConfig
from certrotor.errors import CertrotorError, IntegrityError, NotIssuedError, RetryableError
from certrotor.layout import Manifest
from certrotor.layout.manifest import MAX_SUPERSEDED, SupersededRef
from certrotor.pki.bundle import colon_serial
from certrotor.ports import CURRENT, SecretPort
from certrotor.services.rotation import TAG_REDEPLOYED

TAG_SUPERSEDED = "certrotor:superseded"
PREVIOUS = "AWSPREVIOUS"
REASON = "SUPERSEDED"
# Half of RevokeCertificate's 20 TPS: room for an operator's revocations.
REVOKE_INTERVAL_SECONDS = 0.1
MAX_REVOCATIONS_PER_RUN = 200
# The slot of a certificate found only as AWSPREVIOUS (manifests before the list).
LEGACY_GENERATION = -1


def slot_tag(generation: int) -> str:
    """The tag that records a superseded certificate of this generation."""
    return f"{TAG_SUPERSEDED}:{generation % MAX_SUPERSEDED}"


# Every key a record may use (the monitor may tag with these only).
SUPERSEDED_TAG_KEYS = [slot_tag(generation) for generation in range(MAX_SUPERSEDED)]


def superseded_records(tags: Mapping[str, str]) -> list[SupersededRecord]:
    """Every superseded record on a manifest secret, oldest state change first."""
    records = [
        SupersededRecord.parse(value)
        for key, value in tags.items()
        if key == TAG_SUPERSEDED or key.startswith(TAG_SUPERSEDED + ":")
    ]
    return sorted((r for r in records if r is not None), key=lambda r: r.at)


class RevokingCA(Protocol):
    ca_arn: str

    def publishes_revocation(self) -> bool: ...
    def revoke(self, certificate_serial: str, reason: str = ...) -> bool | None: ...


@dataclass(frozen=True)
class SupersededRecord:
    """The tag's value: which certificate, which state since when, which CA."""

    serial: str
    state: str
    at: dt.datetime
    ca_arn: str

    def tag_value(self) -> str:
        return f"{self.serial} {self.state} {self.at.isoformat(timespec='seconds')} {self.ca_arn}"

    @classmethod
    def parse(cls, value: str | None) -> SupersededRecord | None:
        if not value:
            return None
        try:
            serial, state, at, ca_arn = value.split(" ")
            return cls(serial, state, dt.datetime.fromisoformat(at), ca_arn)
        except ValueError:
            return None


@dataclass(frozen=True)
class SupersedeOutcome:
    """What a run did for one set, for the monitor's report and logs."""

    name: str
    action: str
    serial: str | None = None


def revocation_enabled(config: CertrotorConfig, ca: RevokingCA) -> tuple[bool, str]:
    """Whether to revoke superseded certificates, and the reason said to operators."""
    mode = config.ca.revoke_superseded
    if mode == "off":
        return False, "revoking superseded certificates is off (ca.revoke_superseded)"
    if mode == "on":
        return True, "revoking superseded certificates (ca.revoke_superseded: on)"
    if ca.publishes_revocation():
        return True, "revoking superseded certificates: the CA publishes a CRL or OCSP"
    return False, (
        f"not revoking superseded certificates: CA {ca.ca_arn} publishes no CRL and no OCSP, so no relying "
        "party could see a revocation; enable either on the CA, or set ca.revoke_superseded to on"
    )


class SupersededRevoker:
    """Runs the revocation of superseded certificates over a config's sets."""

    def __init__(
        self,
        config: CertrotorConfig,
        secrets: SecretPort,
        ca_for: Callable[[str], RevokingCA],
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self._config = config
        self._secrets = secrets
        self._ca_for = ca_for
        self._now = now
        self._sleep = sleep
        self._clock = clock
        self._log = logger or logging.getLogger("certrotor.supersede")
        self._grace = dt.timedelta(hours=config.ca.revoke_grace_hours)
        self._last_revoke: float | None = None
        self.revocations = 0

    def run(self) -> list[SupersedeOutcome]:
        outcomes = []
        for cert_set in self._config.sets:
            try:
                outcomes.extend(self.check(cert_set))
            except RetryableError:
                raise
            except CertrotorError as exc:
                self._log.error("superseded certificate not handled", extra={"set": cert_set.name, "error": str(exc)})
                outcomes.append(SupersedeOutcome(cert_set.name, f"failed: {exc}"))
        return outcomes

    def check(self, cert_set: CertificateSetConfig) -> list[SupersedeOutcome]:
        """One set: for each certificate it superseded, record the delivery,
        or revoke after the grace, or nothing (one outcome each)."""
        name = cert_set.name
        info = self._secrets.describe(name)
        current_token = info.version_with(CURRENT)
        if current_token is None:
            return [SupersedeOutcome(name, "nothing superseded yet")]
        try:
            current = Manifest.from_json(self._secrets.get(name, version=current_token).value)
        except NotIssuedError:
            return [SupersedeOutcome(name, "nothing superseded yet")]
        entries = current.superseded or self._legacy_previous(name, info.version_with(PREVIOUS))
        if not entries:
            return [SupersedeOutcome(name, "nothing superseded yet")]
        if not current.superseded and entries[0].serial == current.serial:
            return [SupersedeOutcome(name, "the previous version holds the current certificate")]
        if any(entry.serial == current.serial for entry in entries):
            raise IntegrityError(
                f"{name}: the superseded list names the current serial {current.serial}; not revoking it"
            )
        delivered = not cert_set.redeploys or info.tags.get(TAG_REDEPLOYED) == current_token
        outcomes = []
        for entry in reversed(entries):  # oldest first
            key = slot_tag(entry.generation)
            record = SupersededRecord.parse(info.tags.get(key))
            if record is not None and record.serial == entry.serial:
                outcomes.append(self._advance(name, key, record))
                continue
            if record is not None and record.state != "revoked":
                # The slot's earlier certificate is not revoked yet: finish it
                # first, never drop it.
                if record.serial == current.serial:
                    raise IntegrityError(f"{name}: a record names the current serial {record.serial}; not revoking it")
                finished = self._advance(name, key, record)
                if finished.action != "revoked":
                    outcomes.append(finished)
                    continue
            if not delivered:
                outcomes.append(SupersedeOutcome(name, "waiting: the current version is not delivered yet"))
                continue
            started = SupersededRecord(entry.serial, "delivered", self._now(), self._ca_arn_of(entry.ca))
            self._secrets.tag(name, key, started.tag_value())
            self._log.info("superseded certificate's grace started", extra={"set": name, "serial": entry.serial})
            outcomes.append(SupersedeOutcome(name, "grace started", entry.serial))
        return outcomes

    def _legacy_previous(self, name: str, previous_token: str | None) -> tuple[SupersededRef, ...]:
        """A manifest without a superseded list: the AWSPREVIOUS certificate."""
        if previous_token is None:
            return ()
        try:
            previous = Manifest.from_json(self._secrets.get(name, version=previous_token).value)
        except NotIssuedError:
            return ()
        return (SupersededRef(previous.serial, previous.ca, LEGACY_GENERATION),)

    def _ca_arn_of(self, ca_arn: str | None) -> str:
        if ca_arn:
            return ca_arn
        if self._config.ca.arn is None:
            raise IntegrityError("the config names no CA ARN")
        return self._config.ca.arn

    def _advance(self, name: str, key: str, record: SupersededRecord) -> SupersedeOutcome:
        if record.state == "revoked":
            return SupersedeOutcome(name, "already revoked", record.serial)
        if record.state == "delivered" and self._now() < record.at + self._grace:
            left = record.at + self._grace - self._now()
            return SupersedeOutcome(name, f"in grace, {left.total_seconds() / 3600:.1f} h left", record.serial)
        if self.revocations >= MAX_REVOCATIONS_PER_RUN:
            return SupersedeOutcome(name, "deferred to the next run (per-run limit)", record.serial)
        ca = self._ca_for(record.ca_arn)  # the CA that issued it, checked before the intent
        intent = replace(record, state="revoking", at=self._now())
        self._secrets.tag(name, key, intent.tag_value())
        self._pace()
        # False when the CA had revoked it already (a run that crashed before
        # recording it): done either way.
        ca.revoke(colon_serial(record.serial), REASON)
        self.revocations += 1
        done = replace(record, state="revoked", at=self._now())
        self._secrets.tag(name, key, done.tag_value())
        self._log.info(
            "superseded certificate revoked", extra={"set": name, "serial": record.serial, "ca": record.ca_arn}
        )
        return SupersedeOutcome(name, "revoked", record.serial)

    def _pace(self) -> None:
        if self._last_revoke is not None:
            wait = REVOKE_INTERVAL_SECONDS - (self._clock() - self._last_revoke)
            if wait > 0:
                self._sleep(wait)
        self._last_revoke = self._clock()
