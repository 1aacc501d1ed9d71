"""On-demand issuance: a caller's CSR signed under its policy, and "issue
now" for a managed set through the rotation path.

`CertificateIssuer.approve` runs the pure policy (certrotor.pki.policy);
`CertificateIssuer.issue` spends money, so it is built never to pay twice:
the Private CA IdempotencyToken is derived from (principal, CSR digest,
validity), and the certificate ARN is written to the ledger before waiting
for the certificate, so any retry - after throttling, a timeout, or a lost
response - finds that ARN instead of issuing again. The handler adds
Powertools Idempotency on top, which replays the whole response.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives._serialization import Encoding, PublicFormat  # not the package: pki/keys.py

from certrotor.aws.ledger import LedgerEntry
from certrotor.config import CertrotorConfig, IssuerPolicy, template_arn
from certrotor.errors import BundleError, ConfigError, IntegrityError, NotFoundError, NotIssuedError
from certrotor.layout import Manifest
from certrotor.pki.bundle import check_usage, order_bundle, parse_certificates, serial_hex
from certrotor.pki.policy import (
    Caller,
    PolicyDecision,
    RequestRefused,
    Rule,
    caller_from_arn,
    check_set_allowed,
    decide,
    select_policy,
)
from certrotor.ports import CURRENT, CertificateAuthorityPort, SecretPort, idempotency_token, pending_version
from certrotor.spec import managed_set

Clock = Callable[[], dt.datetime]


class LedgerPort(Protocol):
    def record(self, entry: LedgerEntry) -> bool: ...
    def count(self, ca_arn: str) -> int: ...
    def find_request(self, ca_arn: str, token: str) -> str | None: ...
    def remember_request(self, ca_arn: str, token: str, certificate_arn: str, now: dt.datetime) -> str: ...
    def take_rate_slot(self, principal: str, limit: int, now: dt.datetime) -> bool: ...


class RotationTriggerPort(Protocol):
    def start(self, secret_id: str) -> str: ...


@dataclass(frozen=True)
class IssuedResult:
    """What the caller gets back (and what idempotency replays)."""

    certificate: str
    chain: str
    serial: str
    not_after: str
    certificate_arn: str
    newly_recorded: bool
    issued_count: int
    quota: int

    @property
    def quota_used_percent(self) -> float:
        return 100.0 * self.issued_count / self.quota

    def response(self) -> dict[str, str]:
        return {
            "certificate": self.certificate,
            "chain": self.chain,
            "serial": self.serial,
            "not_after": self.not_after,
            "certificate_arn": self.certificate_arn,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _partition(ca_arn: str) -> str:
    """The partition of a Private CA ARN ("arn:PARTITION:acm-pca:..."); the
    config accepts only well-formed ones."""
    return ca_arn.split(":")[1]


class CertificateIssuer:
    """Approves and issues certificates for callers' CSRs."""

    def __init__(
        self,
        config: CertrotorConfig,
        ca: CertificateAuthorityPort,
        ledger: LedgerPort,
        now: Clock = _now,
        logger: logging.Logger | None = None,
        home_account: str | None = None,
    ) -> None:
        self._config = config
        self._ca = ca
        self._ledger = ledger
        self._home_account = home_account
        self._now = now
        self._log = logger or logging.getLogger("certrotor.issuance")
        self._ca_not_after: dt.datetime | None = None

    def approve(self, user_arn: str, csr_pem: object, validity_days: object) -> PolicyDecision:
        """Every policy rule; RequestRefused names the one broken. Costs nothing."""
        caller = caller_from_arn(user_arn)
        policy = select_policy(self._config.issuer_policies, caller, self._home_account)
        return decide(
            policy,
            caller,
            csr_pem,
            validity_days,
            self.ca_not_after(),
            self._now(),
            short_lived_ca=self._config.ca.usage_mode == "SHORT_LIVED_CERTIFICATE",
        )

    def ca_not_after(self) -> dt.datetime:
        """When the issuing CA's own certificate expires (read once)."""
        if self._ca_not_after is None:
            ca_cert = parse_certificates(self._ca.ca_certificate_chain())[0]
            self._ca_not_after = ca_cert.not_valid_after_utc
        return self._ca_not_after

    @staticmethod
    def token(decision: PolicyDecision) -> str:
        """The IssueCertificate IdempotencyToken for an approved request."""
        return idempotency_token(decision.caller.role_arn, decision.csr_sha256, str(decision.validity_days))

    def issue(self, decision: PolicyDecision, request_id: str, remaining_seconds: Callable[[], float]) -> IssuedResult:
        """Issue (or find the one already issued), check it, record it.

        ThrottledError from Private CA propagates before anything is
        recorded; DeadlineError leaves the ARN in the ledger for the retry.
        """
        ca_arn = self._ca.ca_arn
        token = self.token(decision)
        certificate_arn = self._ledger.find_request(ca_arn, token)
        if certificate_arn is None:
            now = self._now()
            if not self._ledger.take_rate_slot(decision.caller.role_arn, decision.policy.rate_per_minute, now):
                raise RequestRefused(
                    Rule.RATE_LIMITED,
                    f"{decision.caller.role_arn} may request {decision.policy.rate_per_minute} certificates a minute",
                    retry_after=60 - now.second,
                )
            certificate_arn = self._ca.issue(
                decision.csr_pem,
                decision.validity_days,
                template_arn(decision.usage, _partition(ca_arn)),
                token,
            )
            certificate_arn = self._ledger.remember_request(ca_arn, token, certificate_arn, now)
            self._log.info("certificate requested", extra={"certificate_arn": certificate_arn})
        issued = self._ca.wait(certificate_arn, remaining_seconds)
        bundle = order_bundle(parse_certificates(issued.certificate_pem + "\n" + issued.chain_pem))
        if _spki(bundle.leaf.public_key()) != _spki(x509.load_pem_x509_csr(decision.csr_pem.encode()).public_key()):
            raise BundleError("Private CA returned a certificate for another key")
        # The template decides what the certificate is for; never hand out one
        # that cannot do what the policy issues it for.
        check_usage(bundle, decision.usage)
        serial = serial_hex(bundle.leaf)
        entry = LedgerEntry(
            ca_arn=ca_arn,
            serial=serial,
            principal=decision.caller.role_arn,
            names=(*decision.names.dns_names, *decision.names.ip_addresses),
            not_after=bundle.leaf.not_valid_after_utc.isoformat(),
            request_id=request_id,
            certificate_arn=certificate_arn,
            issued_at=self._now().isoformat(),
        )
        recorded = self._ledger.record(entry)
        return IssuedResult(
            certificate=bundle.leaf_pem,
            chain=bundle.chain_pem,
            serial=serial,
            not_after=entry.not_after,
            certificate_arn=certificate_arn,
            newly_recorded=recorded,
            issued_count=self._ledger.count(ca_arn),
            quota=self._config.ca.quota,
        )


def _spki(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )


# --------------------------------------------------------------------------
# Managed sets: issue now, and status


@dataclass(frozen=True)
class SetStatus:
    """A managed set as GET /sets/{name} reports it."""

    name: str
    version: str | None
    serial: str | None
    not_after: str | None
    rotation_in_progress: bool
    pending_version: str | None
    problem: str | None = None
    """Why serial and not_after are missing: not issued yet, or a current
    manifest that does not parse (a rotation, issue-now, repairs it)."""

    def response(self) -> dict[str, object]:
        body: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "serial": self.serial,
            "not_after": self.not_after,
            "rotation_in_progress": self.rotation_in_progress,
            "pending_version": self.pending_version,
        }
        if self.problem is not None:
            body["problem"] = self.problem
        return body


class ManagedSets:
    """Issue-now and status for the sets in the config, under the callers'
    policies. Reads only the manifest secret: never a key."""

    def __init__(
        self,
        config: CertrotorConfig,
        secrets: SecretPort,
        trigger: RotationTriggerPort,
        home_account: str | None = None,
        ledger: LedgerPort | None = None,
        now: Clock = _now,
    ) -> None:
        self._config = config
        self._secrets = secrets
        self._trigger = trigger
        self._home_account = home_account
        self._ledger = ledger
        self._now = now

    def _authorize(self, user_arn: str, set_name: str) -> tuple[Caller, IssuerPolicy]:
        caller = caller_from_arn(user_arn)
        policy = select_policy(self._config.issuer_policies, caller, self._home_account)
        check_set_allowed(policy, set_name)
        try:
            managed_set(self._config, self._secrets, set_name)
        except (ConfigError, NotFoundError):
            raise RequestRefused(Rule.UNKNOWN_SET, f"no managed set named {set_name!r}") from None
        return caller, policy

    def issue_now(self, user_arn: str, set_name: str) -> str:
        """Start a rotation now; returns its token (the version to wait for).
        RotationInProgressError names the token of one already running.

        Each issue-now pays for a certificate and redeploys services, so it
        counts against the caller's rate like a CSR request does."""
        caller, policy = self._authorize(user_arn, set_name)
        if self._ledger is not None:
            now = self._now()
            if not self._ledger.take_rate_slot(caller.role_arn, policy.rate_per_minute, now):
                raise RequestRefused(
                    Rule.RATE_LIMITED,
                    f"{caller.role_arn} may make {policy.rate_per_minute} requests a minute",
                    retry_after=60 - now.second,
                )
        return self._trigger.start(set_name)

    def status(self, user_arn: str, set_name: str) -> SetStatus:
        self._authorize(user_arn, set_name)
        info = self._secrets.describe(set_name)
        pending = pending_version(dict(info.versions))
        current = self._secrets.get(set_name, stage=CURRENT)
        try:
            manifest = Manifest.from_json(current.value)
        except NotIssuedError:
            return SetStatus(set_name, current.version, None, None, pending is not None, pending)
        except IntegrityError as exc:
            # Still an answer: issue-now follows the rotation that repairs it.
            return SetStatus(set_name, current.version, None, None, pending is not None, pending, str(exc))
        return SetStatus(
            set_name,
            current.version,
            manifest.serial,
            manifest.not_after,
            pending is not None,
            pending,
        )
