"""Secrets Manager's four rotation steps for a certificate set.

Each step is idempotent: Secrets Manager may call any of them again, and a
retry after a crash at any point converges on the same result, with the same
key and one certificate.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from certrotor.config import CertificateSetConfig, CertrotorConfig, KeyAlgorithm, template_arn
from certrotor.errors import AwsError, BundleError, CertrotorError, ConfigError, IntegrityError, RotationError
from certrotor.layout import LayoutSpec, Manifest, split_bundle
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.layout.split import check_capacity
from certrotor.pki.bundle import Bundle, check_key_matches, order_bundle, parse_certificates
from certrotor.pki.csr import build_csr
from certrotor.pki.keys import PrivateKey, generate_key, key_from_pem, key_to_pem
from certrotor.ports import (
    CURRENT,
    PENDING,
    CertificateAuthorityPort,
    SecretInfo,
    SecretPort,
    ServicePort,
    idempotency_token,
)
from certrotor.services.reader import SetReader
from certrotor.services.verify import VerifiedSet, trust_anchor, verify_set

# Tags on the manifest secret that make retries safe across invocations.
TAG_ISSUING = "certrotor:issuing"  # "<token> <certificate ARN>" once issued
TAG_REDEPLOYED = "certrotor:redeployed"  # the token whose redeploy was done
# A pending certificate must stay valid at least this long to be promoted.
MIN_REMAINING = dt.timedelta(hours=1)


class Step(StrEnum):
    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


@dataclass(frozen=True)
class RotationRequest:
    """One step of one rotation, as Secrets Manager sends it."""

    step: Step
    secret_id: str
    token: str
    rotation_token: str | None = None

    @classmethod
    def parse(cls, event: dict[str, object]) -> RotationRequest:
        """Validate the event; a bad one is refused before anything is read."""
        if not isinstance(event, dict):
            raise RotationError("the rotation event is not an object")
        step, secret_id, token = event.get("Step"), event.get("SecretId"), event.get("ClientRequestToken")
        try:
            parsed = Step(str(step))
        except ValueError:
            raise RotationError(f"unknown rotation step {step!r}") from None
        if not isinstance(secret_id, str) or not secret_id:
            raise RotationError("event has no SecretId")
        if not isinstance(token, str) or not 32 <= len(token) <= 64:
            raise RotationError("event has no valid ClientRequestToken")
        rotation_token = event.get("RotationToken")
        return cls(parsed, secret_id, token, str(rotation_token) if rotation_token else None)


@dataclass
class StepResult:
    """What a step did, for logs and metrics (never key material)."""

    step: Step
    set_name: str
    action: str
    serial: str | None = None
    not_after: str | None = None
    redeployed: list[str] = field(default_factory=list)
    redeploy_failures: list[str] = field(default_factory=list)


class RotationService:
    """Runs rotation steps for the sets in a config.

    Adapters, clock and key generator are injected so tests can drive every
    branch; `remaining_seconds` bounds the wait for Private CA.
    """

    def __init__(
        self,
        config: CertrotorConfig,
        secrets: SecretPort,
        ca: CertificateAuthorityPort,
        services: ServicePort,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        new_key: Callable[[KeyAlgorithm], PrivateKey] = generate_key,
        logger: logging.Logger | None = None,
    ) -> None:
        self._config = config
        self._secrets = secrets
        self._ca = ca
        self._services = services
        self._now = now
        self._new_key = new_key
        self._log = logger or logging.getLogger("certrotor.rotation")

    # -- entry point --------------------------------------------------------

    def run(self, request: RotationRequest, remaining_seconds: Callable[[], float]) -> StepResult:
        info = self._secrets.describe(request.secret_id)
        cert_set = self._set_for(info)
        if not info.rotation_enabled:
            raise RotationError(f"rotation is not enabled for {info.name}")
        stages = info.versions.get(request.token)
        if stages is None:
            raise RotationError(f"version {request.token} is not a version of {info.name}")
        if CURRENT in stages and request.step is not Step.FINISH:
            return StepResult(request.step, cert_set.name, "already current")
        if CURRENT not in stages and PENDING not in stages:
            raise RotationError(f"version {request.token} of {info.name} is not staged AWSPENDING")
        if request.step is Step.CREATE:
            return self.create(cert_set, info, request, remaining_seconds)
        if request.step is Step.SET:
            return StepResult(request.step, cert_set.name, "nothing to set")
        if request.step is Step.TEST:
            verified = self.test(cert_set, request.token)
            if verified is None:
                return StepResult(request.step, cert_set.name, "nothing issued yet to test")
            return StepResult(
                request.step, cert_set.name, "verified", verified.manifest.serial, verified.manifest.not_after
            )
        return self.finish(cert_set, info, request.token)

    def _set_for(self, info: SecretInfo) -> CertificateSetConfig:
        try:
            return self._config.set_named(info.name)
        except ConfigError:
            raise RotationError(f"{info.name} is not a certificate set this function manages") from None

    # -- createSecret ---------------------------------------------------------

    def create(
        self,
        cert_set: CertificateSetConfig,
        info: SecretInfo,
        request: RotationRequest,
        remaining_seconds: Callable[[], float],
    ) -> StepResult:
        token = request.token
        if self._secrets.find(cert_set.name, token) is not None:
            return StepResult(Step.CREATE, cert_set.name, "already created")
        spec = LayoutSpec(cert_set.name, cert_set.chain_parts, cert_set.value_limit)
        key = self._pending_key(cert_set, token, spec)
        certificate_arn = self._issue(cert_set, info, token, key)
        issued = self._ca.wait(certificate_arn, remaining_seconds)
        try:
            bundle = self._bundle(issued.certificate_pem, issued.chain_pem, refresh=False)
        except BundleError:
            # The CA's certificate may have been renewed since this function
            # instance cached it: read it again once.
            bundle = self._bundle(issued.certificate_pem, issued.chain_pem, refresh=True)
        # Never pair this rotation's key with a certificate for another key.
        check_key_matches(bundle, key)
        layout = split_bundle(spec, token, key_to_pem(key), bundle)
        for name in cert_set.chain_secret_names:
            self._secrets.put(name, layout.parts[name], token)
        # The manifest last: its presence at the token means "complete".
        self._secrets.put(cert_set.name, layout.manifest_value, token, rotation_token=request.rotation_token)
        self._log.info(
            "pending set stored",
            extra={"set": cert_set.name, "serial": layout.manifest.serial, "not_after": layout.manifest.not_after},
        )
        return StepResult(Step.CREATE, cert_set.name, "created", layout.manifest.serial, layout.manifest.not_after)

    def _pending_key(self, cert_set: CertificateSetConfig, token: str, spec: LayoutSpec) -> PrivateKey:
        """The key for this token: stored before issuing, so retries reuse it.

        The capacity the key and the CA chain need is checked first, so a set
        that cannot fit its parts stores nothing and pays for no certificate.
        """
        stored = self._secrets.find(cert_set.key_secret_name, token)
        key = key_from_pem(stored.value) if stored is not None else self._new_key(cert_set.key_algorithm)
        check_capacity(spec, key_to_pem(key), parse_certificates(self._ca_chain_pem()))
        if stored is None:
            self._secrets.put(cert_set.key_secret_name, key_to_pem(key), token)
        return key

    def _issue(self, cert_set: CertificateSetConfig, info: SecretInfo, token: str, key: PrivateKey) -> str:
        """IssueCertificate once per token; the ARN is recorded on the secret
        so a retry after the idempotency window still finds the same one."""
        recorded = info.tags.get(TAG_ISSUING, "").split(" ")
        if len(recorded) == 2 and recorded[0] == token:
            return recorded[1]
        csr = build_csr(key, cert_set.common_name, cert_set.dns_names, cert_set.ip_addresses)
        arn = self._ca.issue(
            csr,
            cert_set.validity_days,
            template_arn(cert_set.usage, _partition(self._ca.ca_arn)),
            idempotency_token(info.arn, token),
        )
        self._secrets.tag(cert_set.name, TAG_ISSUING, f"{token} {arn}")
        self._log.info("certificate requested", extra={"set": cert_set.name, "certificate_arn": arn})
        return arn

    # -- testSecret -----------------------------------------------------------

    def test(self, cert_set: CertificateSetConfig, token: str) -> VerifiedSet | None:
        """Assemble the pending set by version and prove it, handshake included.

        When rotation is configured without rotating now, Secrets Manager runs
        testSecret alone on a pending copy of the current value: then the set
        that copy names is proved (or nothing, before the first issuance).
        """
        pending = self._secrets.find(cert_set.name, token)
        if pending is None:
            raise RotationError(f"{cert_set.name} has no value at version {token}; createSecret did not complete")
        if pending.value == INITIAL_VALUE:
            return None
        version = Manifest.from_json(pending.value).version
        if version == token:
            assembled = SetReader(self._secrets).read(
                cert_set.name, version=token, provisioned_chain_parts=cert_set.chain_parts, manifest_value=pending
            )
        elif pending.value == self._secrets.get(cert_set.name, stage=CURRENT).value:
            # Secrets Manager's copy of the current value: prove the set it names.
            assembled = SetReader(self._secrets).read(
                cert_set.name, version=version, provisioned_chain_parts=cert_set.chain_parts
            )
        else:
            raise IntegrityError(f"the pending manifest of {cert_set.name} names version {version}, not {token}")
        return verify_set(
            assembled,
            now=self._now(),
            anchor=trust_anchor(self._ca_chain_pem()),
            expected=cert_set,
            handshake=True,
            min_remaining=MIN_REMAINING,
        )

    def _ca_chain_pem(self, refresh: bool = False) -> str:
        return self._ca.ca_certificate_chain(refresh=refresh)

    def _bundle(self, certificate_pem: str, chain_pem: str, refresh: bool) -> Bundle:
        """Leaf and chain in order; Private CA's chain may stop below the root,
        so the CA's own chain completes it (order_bundle drops duplicates)."""
        pem = "\n".join((certificate_pem, chain_pem, self._ca_chain_pem(refresh)))
        return order_bundle(parse_certificates(pem))

    # -- finishSecret ---------------------------------------------------------

    def finish(self, cert_set: CertificateSetConfig, info: SecretInfo, token: str) -> StepResult:
        """AWSCURRENT to the token on every part, then the manifest; drop
        AWSPENDING; then redeploy the set's services once per token.

        Everything is checked before any stage moves: a set that createSecret
        did not complete is refused with nothing changed.
        """
        if cert_set.redeploy_strict and info.tags.get(TAG_REDEPLOYED) != token:
            self._check_services_exist(cert_set)
        parts = [self._secrets.describe(name) for name in cert_set.part_secret_names]
        unfinished = [part.name for part in parts if token not in part.versions]
        if unfinished or self._secrets.find(cert_set.name, token) is None:
            raise IntegrityError(
                f"{cert_set.name} has no complete set at version {token}; createSecret did not complete"
            )
        for part in parts:
            self._promote(part, token)
        self._promote(info, token)
        result = StepResult(Step.FINISH, cert_set.name, "finished")
        if info.tags.get(TAG_REDEPLOYED) == token:
            result.action = "finished; services already redeployed"
            return result
        self._redeploy(cert_set, result)
        if result.redeploy_failures and cert_set.redeploy_strict:
            # Not recorded as done: the retry Secrets Manager makes tries again.
            raise AwsError(f"redeploy failed for {', '.join(result.redeploy_failures)} (redeploy_strict is set)")
        self._secrets.tag(cert_set.name, TAG_REDEPLOYED, token)
        return result

    def _promote(self, info: SecretInfo, token: str) -> None:
        current = info.version_with(CURRENT)
        if current != token:
            self._secrets.move_stage(info.name, CURRENT, token, current)
        if PENDING in info.versions[token]:
            self._secrets.remove_stage(info.name, PENDING, token)

    def _redeploy(self, cert_set: CertificateSetConfig, result: StepResult) -> None:
        for ref in cert_set.services:
            label = f"{ref.cluster}/{ref.service}"
            try:
                self._services.redeploy(ref.cluster, ref.service)
                result.redeployed.append(label)
            except CertrotorError as exc:
                # The new set is already current; a failed redeploy is reported,
                # not undone (tasks started from now on get the new set anyway).
                result.redeploy_failures.append(label)
                self._log.error("redeploy failed", extra={"set": cert_set.name, "service": label, "error": str(exc)})

    def _check_services_exist(self, cert_set: CertificateSetConfig) -> None:
        missing = self._services.missing(cert_set.services)
        if missing:
            raise RotationError(f"services not found: {', '.join(missing)} (redeploy_strict is set)")


def _partition(arn: str) -> str:
    parts = arn.split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"
