"""Secrets Manager's four rotation steps for a certificate set.

Each step is idempotent: Secrets Manager may call any of them again, and a
retry after a crash at any point converges on the same result, with the same
key and one certificate.

The steps make as few AWS calls as these guarantees allow (writes share
Secrets Manager's 50 TPS bucket with every other rotation in the account):
the happy path assumes no earlier attempt and checks only when a write says
otherwise, and values this function instance stored at the token are not read
back (see `KnownVersions`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from certrotor.config import CertificateSetConfig, CertrotorConfig, KeyAlgorithm, template_arn
from certrotor.errors import (
    AwsError,
    BundleError,
    CertrotorError,
    ConfigError,
    IntegrityError,
    NotIssuedError,
    RetryableError,
    RotationError,
)
from certrotor.layout import LayoutSpec, Manifest, split_bundle
from certrotor.layout.manifest import INITIAL_VALUE, history_after
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
    SecretValue,
    ServicePort,
    idempotency_token,
)
from certrotor.services.reader import SetReader
from certrotor.services.trust import rotator_id, trust_secret_name
from certrotor.services.verify import VerifiedSet, trust_anchor, verify_set
from certrotor.spec import set_spec

# Tags on the manifest secret that make retries safe across invocations.
TAG_ISSUING = "certrotor:issuing"  # "<token> <certificate ARN>" once issued
TAG_CA = "certrotor:ca"  # set by a CA rotation: the CA to issue from
TAG_REDEPLOYED = "certrotor:redeployed"  # the token whose redeploy was done
_TOKEN = re.compile(r"^[\x21-\x7e]+$")
# A pending certificate must stay valid at least this long to be promoted.
MIN_REMAINING = dt.timedelta(hours=1)
# The name inside a Secrets Manager ARN: "...:secret:NAME-AbCdEf".
_ARN_NAME = re.compile(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


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
    def parse(cls, event: object) -> RotationRequest:
        """Validate the event; a bad one is refused before anything is read.

        Secrets Manager's rules: SecretId a name or ARN of at most 2048
        characters, ClientRequestToken 32-64 printable characters; the
        RotationToken, when present, is text."""
        if not isinstance(event, dict):
            raise RotationError(f"the rotation event is not an object but {type(event).__name__}")
        step, secret_id, token = event.get("Step"), event.get("SecretId"), event.get("ClientRequestToken")
        try:
            parsed = Step(str(step))
        except ValueError:
            raise RotationError(f"unknown rotation step {repr(step)[:60]}") from None
        if not isinstance(secret_id, str) or not 0 < len(secret_id) <= 2048 or not secret_id.isprintable():
            raise RotationError("event has no SecretId of 1-2048 printable characters")
        if not isinstance(token, str) or not 32 <= len(token) <= 64 or not _TOKEN.match(token):
            raise RotationError("event has no valid ClientRequestToken")
        rotation_token = event.get("RotationToken")
        if rotation_token is not None and (not isinstance(rotation_token, str) or len(rotation_token) > 4096):
            raise RotationError("event's RotationToken is not text")
        return cls(parsed, secret_id, token, rotation_token or None)


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


class KnownVersions:
    """Values this function instance stored or read at a rotation's token.

    In Secrets Manager a version that holds a value is immutable: a value
    stored (or read) at a VersionId is what that version holds for as long as
    it exists. The later steps of the same rotation, which Secrets Manager
    usually sends to the same warm instance, use these instead of reading them
    back. Only a confirmed write or read is recorded, only the latest token of
    each set is kept, and finishSecret drops its set's values.
    """

    def __init__(self) -> None:
        self._sets: dict[str, tuple[str, dict[str, str]]] = {}

    def remember(self, set_name: str, token: str, secret_name: str, value: str) -> None:
        held = self._sets.get(set_name)
        if held is None or held[0] != token:
            held = (token, {})
            self._sets[set_name] = held
        held[1][secret_name] = value

    def values(self, set_name: str, token: str) -> dict[str, str]:
        """Secret name to value, for the secrets of `set_name` known at `token`."""
        held = self._sets.get(set_name)
        return dict(held[1]) if held is not None and held[0] == token else {}

    def forget(self, set_name: str) -> None:
        self._sets.pop(set_name, None)


class RotationService:
    """Runs rotation steps for the sets in a config.

    Adapters, clock and key generator are injected so tests can drive every
    branch; `remaining_seconds` bounds the wait for Private CA. A handler
    passes one `KnownVersions` for the life of its function instance.
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
        known: KnownVersions | None = None,
        ca_for: Callable[[str], CertificateAuthorityPort] | None = None,
    ) -> None:
        self._config = config
        self._secrets = secrets
        self._ca = ca
        self._services = services
        self._now = now
        self._new_key = new_key
        self._log = logger or logging.getLogger("certrotor.rotation")
        self._known = known if known is not None else KnownVersions()
        self._ca_for = ca_for

    # -- entry point --------------------------------------------------------

    def run(self, request: RotationRequest, remaining_seconds: Callable[[], float]) -> StepResult:
        if request.step is Step.SET:
            # Nothing to set: certificates are not installed into a service.
            # No spec needed: the set is checked at createSecret and testSecret.
            return StepResult(request.step, self._set_name_for_id(request.secret_id), "nothing to set")
        if request.step is Step.TEST:
            return self._run_test(request)
        info = self._secrets.describe(request.secret_id)
        cert_set = self._set_for(info.name, info)
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
        return self.finish(cert_set, info, request.token)

    def _run_test(self, request: RotationRequest) -> StepResult:
        """testSecret reads the pending manifest, whose stages stand in for
        DescribeSecret's."""
        pending = self._secrets.find(request.secret_id, request.token)
        if pending is None:
            name = self._set_name_for_id(request.secret_id)
            raise RotationError(f"{name} has no value at version {request.token}; createSecret did not complete")
        cert_set = self._set_for(pending.name)
        if CURRENT in pending.stages:
            return StepResult(request.step, cert_set.name, "already current")
        if PENDING not in pending.stages:
            raise RotationError(f"version {request.token} of {pending.name} is not staged AWSPENDING")
        verified = self.test(cert_set, pending)
        if verified is None:
            return StepResult(request.step, cert_set.name, "nothing issued yet to test")
        return StepResult(
            request.step, cert_set.name, "verified", verified.manifest.serial, verified.manifest.not_after
        )

    def _set_for(self, name: str, info: SecretInfo | None = None) -> CertificateSetConfig:
        """The set's spec: from the config when it lists the sets, else from the
        manifest's description and rotator tag (certrotor.spec), taken from
        ``info`` when the step described the manifest already, else read with
        one DescribeSecret (testSecret only)."""
        try:
            if self._config.sets:
                return self._config.set_named(name)
            return set_spec(info if info is not None else self._secrets.describe(name), self._config.rotator_id)
        except ConfigError as exc:
            raise RotationError(f"{name} is not a certificate set this function manages: {exc}") from None

    def _set_name_for_id(self, secret_id: str) -> str:
        """The set name a SecretId names (Secrets Manager sends the ARN), without
        a call: checked against the config when it lists the sets; a rotator's
        sets are checked by the steps that read their spec."""
        match = _ARN_NAME.match(secret_id)
        name = match.group("name") if match else secret_id
        return self._set_for(name).name if self._config.sets else name

    # -- createSecret ---------------------------------------------------------

    def create(
        self,
        cert_set: CertificateSetConfig,
        info: SecretInfo,
        request: RotationRequest,
        remaining_seconds: Callable[[], float],
    ) -> StepResult:
        token = request.token
        ca = self._ca_of(info.tags.get(TAG_CA))
        spec = LayoutSpec(cert_set.name, cert_set.chain_parts, cert_set.value_limit)
        key = self._new_key(cert_set.key_algorithm)
        if not self._store_key(cert_set, token, spec, key, ca):
            # A key is stored at the token already: an earlier attempt (or one
            # running now) got at least that far. Look before going on.
            info = self._secrets.describe(cert_set.name)
            existing = self._secrets.find(cert_set.name, token)
            if existing is not None:
                self._check_created(cert_set, token, existing)
                return StepResult(Step.CREATE, cert_set.name, "already created")
            stored = self._secrets.find(cert_set.key_secret_name, token)
            if stored is None:
                raise IntegrityError(f"{cert_set.key_secret_name} refused a key at {token} but holds none")
            key = key_from_pem(stored.value)
            self._known.remember(cert_set.name, token, cert_set.key_secret_name, stored.value)
        certificate_arn = self._issue(cert_set, info, token, key, ca)
        issued = ca.wait(certificate_arn, remaining_seconds)
        try:
            bundle = self._bundle(ca, issued.certificate_pem, issued.chain_pem, refresh=False)
        except BundleError:
            # The CA's certificate may have been renewed since this function
            # instance cached it: read it again once.
            bundle = self._bundle(ca, issued.certificate_pem, issued.chain_pem, refresh=True)
        # Never pair this rotation's key with a certificate for another key.
        check_key_matches(bundle, key)
        generation, superseded = history_after(self._current_manifest(cert_set))
        layout = split_bundle(
            spec,
            token,
            key_to_pem(key),
            bundle,
            trust=trust_secret_name(rotator_id(self._config)),
            ca_arn=ca.ca_arn,
            generation=generation,
            superseded=superseded,
        )
        for name in cert_set.chain_secret_names:
            self._secrets.put(name, layout.parts[name], token)
            self._known.remember(cert_set.name, token, name, layout.parts[name])
        # The manifest last: its presence at the token means "complete".
        self._secrets.put(cert_set.name, layout.manifest_value, token, rotation_token=request.rotation_token)
        self._known.remember(cert_set.name, token, cert_set.name, layout.manifest_value)
        self._log.info(
            "pending set stored",
            extra={"set": cert_set.name, "serial": layout.manifest.serial, "not_after": layout.manifest.not_after},
        )
        return StepResult(Step.CREATE, cert_set.name, "created", layout.manifest.serial, layout.manifest.not_after)

    def _current_manifest(self, cert_set: CertificateSetConfig) -> Manifest | None:
        """The manifest in service (the one this rotation supersedes), or None
        before the first certificate; an unreadable one never stops the
        rotation that replaces it (its certificate is then not revoked)."""
        try:
            return Manifest.from_json(self._secrets.get(cert_set.name, stage=CURRENT).value)
        except NotIssuedError:
            return None
        except IntegrityError as exc:
            self._log.warning(
                "current manifest unreadable; its certificate is not recorded as superseded",
                extra={"set": cert_set.name, "error": str(exc)},
            )
            return None

    def _check_created(self, cert_set: CertificateSetConfig, token: str, existing: SecretValue) -> None:
        """A value at the token is "already created" only if it is this
        token's manifest and every part it names is there at the token.

        A version's value cannot be replaced, so anything else there fails
        here, at createSecret, with what to do, not later at testSecret."""
        try:
            if Manifest.from_json(existing.value).version != token:
                raise IntegrityError("it names another version")
            SetReader(self._secrets).read(
                cert_set.name, version=token, provisioned_chain_parts=cert_set.chain_parts, manifest_value=existing
            )
        except IntegrityError as exc:
            raise IntegrityError(
                f"{cert_set.name} already holds a value at version {token} that is not this rotation's "
                f"complete set ({exc}); a version's value cannot be replaced: cancel this rotation "
                "(cancel-rotate-secret) and rotate again"
            ) from None

    def _store_key(
        self,
        cert_set: CertificateSetConfig,
        token: str,
        spec: LayoutSpec,
        key: PrivateKey,
        ca: CertificateAuthorityPort,
    ) -> bool:
        """Store a fresh key at the token before issuing, so retries reuse it;
        False when the token already holds another key (a retry).

        The capacity the key and the CA chain need is checked first, so a set
        that cannot fit its parts stores nothing and pays for no certificate.
        """
        pem = key_to_pem(key)
        check_capacity(spec, pem, parse_certificates(ca.ca_certificate_chain()))
        try:
            self._secrets.put(cert_set.key_secret_name, pem, token)
        except IntegrityError:
            return False
        self._known.remember(cert_set.name, token, cert_set.key_secret_name, pem)
        return True

    def _issue(
        self,
        cert_set: CertificateSetConfig,
        info: SecretInfo,
        token: str,
        key: PrivateKey,
        ca: CertificateAuthorityPort,
    ) -> str:
        """IssueCertificate once per token; the ARN is recorded on the secret
        so a retry after the idempotency window still finds the same one."""
        recorded = info.tags.get(TAG_ISSUING, "").split(" ")
        if len(recorded) == 2 and recorded[0] == token:
            return recorded[1]
        csr = build_csr(key, cert_set.common_name, cert_set.dns_names, cert_set.ip_addresses)
        arn = ca.issue(
            csr,
            cert_set.validity_days,
            template_arn(cert_set.usage, _partition(ca.ca_arn)),
            idempotency_token(info.arn, token),
        )
        self._secrets.tag(cert_set.name, TAG_ISSUING, f"{token} {arn}")
        self._log.info("certificate requested", extra={"set": cert_set.name, "certificate_arn": arn})
        return arn

    # -- testSecret -----------------------------------------------------------

    def test(self, cert_set: CertificateSetConfig, pending: SecretValue) -> VerifiedSet | None:
        """Assemble the pending set by version and prove it, handshake included.

        When rotation is configured without rotating now, Secrets Manager runs
        testSecret alone on a pending copy of the current value: then the set
        that copy names is proved (or nothing, before the first issuance).
        """
        token = pending.version
        if pending.value == INITIAL_VALUE:
            return None
        named = Manifest.from_json(pending.value)
        version = named.version
        if version == token:
            assembled = SetReader(self._secrets).read(
                cert_set.name,
                version=token,
                provisioned_chain_parts=cert_set.chain_parts,
                manifest_value=pending,
                known_parts=self._known.values(cert_set.name, token),
            )
            self._known.remember(cert_set.name, token, cert_set.name, pending.value)
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
            # The CA the manifest says issued it (a CA rotation moves sets).
            anchor=trust_anchor(self._ca_of(named.ca).ca_certificate_chain()),
            expected=cert_set,
            handshake=True,
            min_remaining=MIN_REMAINING,
        )

    def _ca_of(self, arn: str | None) -> CertificateAuthorityPort:
        """The configured CA, or the one a CA rotation tagged the set with
        (certrotor:ca, read from the DescribeSecret createSecret makes anyway)."""
        if not arn or arn == self._ca.ca_arn:
            return self._ca
        if self._ca_for is None:
            raise RotationError(f"the set is tagged for CA {arn}, but this function can only issue from its own CA")
        return self._ca_for(arn)

    def _bundle(self, ca: CertificateAuthorityPort, certificate_pem: str, chain_pem: str, refresh: bool) -> Bundle:
        """Leaf and chain in order; Private CA's chain may stop below the root,
        so the CA's own chain completes it (order_bundle drops duplicates)."""
        pem = "\n".join((certificate_pem, chain_pem, ca.ca_certificate_chain(refresh=refresh)))
        return order_bundle(parse_certificates(pem))

    # -- finishSecret ---------------------------------------------------------

    def finish(self, cert_set: CertificateSetConfig, info: SecretInfo, token: str) -> StepResult:
        """AWSCURRENT to the token on every part, then the manifest; then
        redeploy the set's services once per token (not for delivery
        'reload': consumers watching the set pick it up).

        The set is checked complete before any stage moves (the manifest is
        written last, so its value at the token means every part has one): a
        set that createSecret did not complete is refused with nothing changed.
        AWSPENDING stays where it is: the next rotation's writes move it from
        the parts, and Secrets Manager accepts it on the manifest's current
        version.
        """
        if cert_set.redeploys and cert_set.redeploy_strict and info.tags.get(TAG_REDEPLOYED) != token:
            self._check_services_exist(cert_set)
        current = info.version_with(CURRENT)
        if current != token:
            known = cert_set.name in self._known.values(cert_set.name, token)
            if not known and self._secrets.find(cert_set.name, token) is None:
                raise IntegrityError(
                    f"{cert_set.name} has no complete set at version {token}; createSecret did not complete"
                )
            # In the steady state every part is current at the manifest's
            # current version; a part that is not is looked at only then.
            for name in cert_set.part_secret_names:
                self._promote(name, token, expected=current)
            self._secrets.move_stage(cert_set.name, CURRENT, token, current)
        else:
            # A retry after the manifest moved: the parts moved before it, but
            # make sure (this path is rare, so it may look at every part).
            for name in cert_set.part_secret_names:
                self._promote(name, token, expected=None)
        self._known.forget(cert_set.name)
        result = StepResult(Step.FINISH, cert_set.name, "finished")
        if not cert_set.redeploys:
            result.action = "finished; delivery is reload, no redeploy"
            return result
        if info.tags.get(TAG_REDEPLOYED) == token:
            result.action = "finished; services already redeployed"
            return result
        self._redeploy(cert_set, result)
        if result.redeploy_failures and cert_set.redeploy_strict:
            # Not recorded as done: the retry Secrets Manager makes tries again.
            raise AwsError(f"redeploy failed for {', '.join(result.redeploy_failures)} (redeploy_strict is set)")
        self._secrets.tag(cert_set.name, TAG_REDEPLOYED, token)
        return result

    def _promote(self, name: str, token: str, expected: str | None) -> None:
        """AWSCURRENT of part `name` to the token. With `expected`, one move
        from that version, looking at the part only if the move is refused."""
        if expected is not None:
            try:
                self._secrets.move_stage(name, CURRENT, token, expected)
                return
            except RetryableError:
                raise
            except AwsError:
                pass  # AWSCURRENT is elsewhere (already moved, or never at `expected`)
        part = self._secrets.describe(name)
        if token not in part.versions:
            raise IntegrityError(f"{name} has no version {token}; createSecret did not complete")
        holder = part.version_with(CURRENT)
        if holder != token:
            self._secrets.move_stage(name, CURRENT, token, holder)

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


def _partition(ca_arn: str) -> str:
    """The partition of a Private CA ARN ("arn:PARTITION:acm-pca:..."); the
    config and a CA rotation accept only well-formed ones."""
    return ca_arn.split(":")[1]
