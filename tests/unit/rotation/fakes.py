"""In-memory stand-ins for the ports RotationService uses, for pure unit tests.

FakeSecrets keeps Secrets Manager's version and staging-label rules (the
ones rotation depends on); FakeCA really signs CSRs with a local subordinate
CA; FakeServices records redeploys. `_conforming` makes mypy prove that each
fake satisfies its Protocol.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from certrotor.config import CertrotorConfig, ServiceRef, load_config
from certrotor.errors import AwsError, CertrotorError, IntegrityError, NotFoundError, NotReadyError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.pki.bundle import cert_to_pem
from certrotor.pki.csr import csr_names, csr_public_key, parse_csr
from certrotor.pki.keys import PublicKey
from certrotor.ports import (
    CURRENT,
    PENDING,
    CertificateAuthorityPort,
    IssuedCertificate,
    SecretInfo,
    SecretPort,
    SecretValue,
    ServicePort,
)

PREVIOUS = "AWSPREVIOUS"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
CA_ARN = f"arn:aws:acm-pca:{REGION}:{ACCOUNT}:certificate-authority/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
# Secrets Manager's largest SecretString, and ClientRequestToken's lengths.
MAX_SECRET_STRING = 65536
CLIENT_REQUEST_TOKEN_LENGTH = (32, 64)


@dataclass
class _Version:
    value: str | None
    stages: list[str]


@dataclass
class _Secret:
    name: str
    arn: str
    rotation_enabled: bool
    versions: dict[str, _Version] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def holder_of(self, stage: str) -> str | None:
        return next((v for v, version in self.versions.items() if stage in version.stages), None)

    def detach(self, stage: str) -> None:
        for version in self.versions.values():
            if stage in version.stages:
                version.stages.remove(stage)

    def attach(self, stage: str, version_id: str) -> None:
        """Move `stage` to a version; moving AWSCURRENT labels the version it
        leaves AWSPREVIOUS, as Secrets Manager does."""
        previous = self.holder_of(stage)
        if previous == version_id:
            return
        self.detach(stage)
        self.versions[version_id].stages.append(stage)
        if stage == CURRENT and previous is not None:
            self.detach(PREVIOUS)
            self.versions[previous].stages.append(PREVIOUS)


@dataclass(frozen=True)
class Write:
    """One write call, as the fake received it (values are not kept: keys)."""

    operation: str
    secret: str
    version: str | None = None
    stage: str | None = None
    # PutSecretValue's RotationToken (Secrets Manager checks it is the token
    # of the rotation in progress).
    rotation_token: str | None = None


class FakeSecrets:
    """Secrets Manager in memory, by name or ARN.

    Writes through the SecretPort are recorded in `writes`; setting up the
    world (`create_secret`, `stage_pending`) is not. `before_put(name,
    version)` runs before each put takes effect, so a test can slip in a
    concurrent writer.
    """

    def __init__(self) -> None:
        self._secrets: dict[str, _Secret] = {}
        self.writes: list[Write] = []
        self.before_put: Callable[[str, str], None] | None = None

    # -- setting up the world (not recorded) -----------------------------------

    def create_secret(
        self,
        name: str,
        value: str,
        rotation_enabled: bool = False,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> str:
        """CreateSecret: the value becomes the first version, AWSCURRENT."""
        if name in self._secrets:
            raise AwsError(f"CreateSecret {name}: ResourceExistsException")
        suffix = uuid.uuid4().hex[:6]
        secret = _Secret(
            name,
            f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{suffix}",
            rotation_enabled,
            tags=dict(tags or {}),
            description=description,
        )
        version = str(uuid.uuid4())
        secret.versions[version] = _Version(value, [CURRENT])
        self._secrets[name] = secret
        return version

    def stage_pending(self, secret_id: str, token: str, copy_current: bool = False) -> None:
        """What RotateSecret does before invoking the rotation function: a new
        version labelled AWSPENDING only, without a value, or (as when rotation
        is configured without rotating now) with a copy of AWSCURRENT's."""
        secret = self._secret(secret_id)
        if token in secret.versions:
            raise AwsError(f"RotateSecret {secret.name}: version {token} already exists")
        value = None
        if copy_current:
            current = secret.holder_of(CURRENT)
            value = secret.versions[current].value if current is not None else None
        secret.versions[token] = _Version(value, [])
        secret.attach(PENDING, token)

    def set_rotation_enabled(self, secret_id: str, enabled: bool) -> None:
        self._secret(secret_id).rotation_enabled = enabled

    @property
    def puts(self) -> list[Write]:
        return [w for w in self.writes if w.operation == "put"]

    def arn_of(self, name: str) -> str:
        return self._secret(name).arn

    def stages_of(self, secret_id: str) -> dict[str, tuple[str, ...]]:
        """Every version's labels, deprecated (unlabelled) versions included."""
        return {v: tuple(version.stages) for v, version in self._secret(secret_id).versions.items()}

    # -- SecretPort -------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretInfo:
        secret = self._secret(secret_id)
        return SecretInfo(
            arn=secret.arn,
            name=secret.name,
            rotation_enabled=secret.rotation_enabled,
            # DescribeSecret lists only versions that carry a label.
            versions={v: tuple(version.stages) for v, version in secret.versions.items() if version.stages},
            tags=dict(secret.tags),
            description=secret.description,
        )

    def get(self, secret_id: str, version: str | None = None, stage: str | None = None) -> SecretValue:
        """GetSecretValue: by VersionId, by stage, AWSCURRENT when neither."""
        secret = self._secret(secret_id)
        if version is None:
            version = secret.holder_of(stage or CURRENT)
            if version is None:
                raise NotFoundError(f"GetSecretValue {secret.name}: no version is labelled {stage or CURRENT}")
        found = secret.versions.get(version)
        if found is None:
            raise NotFoundError(f"GetSecretValue {secret.name}: no version {version}")
        if stage is not None and stage not in found.stages:
            # Both given: Secrets Manager checks they agree.
            raise AwsError(
                f"GetSecretValue {secret.name}: version {version} is not labelled {stage} (InvalidRequestException)"
            )
        if found.value is None:
            # RotateSecret's pending version before createSecret stores a value.
            raise NotFoundError(f"GetSecretValue {secret.name}: version {version} has no value")
        return SecretValue(secret.name, found.value, version, tuple(found.stages))

    def find(self, secret_id: str, version: str) -> SecretValue | None:
        try:
            return self.get(secret_id, version=version)
        except NotFoundError:
            return None

    def get_current_many(self, secret_ids: Sequence[str]) -> dict[str, SecretValue]:
        found: dict[str, SecretValue] = {}
        for secret_id in secret_ids:
            value = self.get(secret_id, stage=CURRENT)
            found[value.name] = value
        return found

    def put(
        self,
        secret_id: str,
        value: str,
        version: str,
        stages: Iterable[str] = (PENDING,),
        rotation_token: str | None = None,
    ) -> None:
        """PutSecretValue with ClientRequestToken=version.

        The same value again is a no-op; a different value under an existing
        VersionId is refused (ResourceExistsException, an IntegrityError at the
        port). A version that exists without a value (RotateSecret's pending
        one) takes the value. Each stage given moves here from other versions.
        """
        secret = self._secret(secret_id)
        if self.before_put is not None:
            self.before_put(secret.name, version)
        self.writes.append(Write("put", secret.name, version, rotation_token=rotation_token))
        stages = list(stages)
        if not CLIENT_REQUEST_TOKEN_LENGTH[0] <= len(version) <= CLIENT_REQUEST_TOKEN_LENGTH[1]:
            raise AwsError(f"PutSecretValue {secret.name}: ClientRequestToken must be 32 to 64 characters")
        if not stages:
            # VersionStages has at least one item (without it AWSCURRENT would move here).
            raise AwsError(f"PutSecretValue {secret.name}: VersionStages must not be empty")
        if len(value) > MAX_SECRET_STRING:
            raise AwsError(f"PutSecretValue {secret.name}: SecretString is longer than {MAX_SECRET_STRING}")
        existing = secret.versions.get(version)
        if existing is not None and existing.value is not None:
            if existing.value != value:
                raise IntegrityError(f"{secret.name} already holds a different value for version {version}")
            return
        if existing is None:
            secret.versions[version] = _Version(value, [])
        else:
            existing.value = value
        for stage in stages:
            secret.attach(stage, version)

    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        """UpdateSecretVersionStage with MoveToVersionId: a label attached to
        another version moves only when that version is named as the one to
        remove it from (else InvalidParameterException)."""
        secret = self._secret(secret_id)
        self.writes.append(Write("move_stage", secret.name, to_version, stage))
        if to_version not in secret.versions:
            raise NotFoundError(f"UpdateSecretVersionStage {secret.name}: no version {to_version}")
        holder = secret.holder_of(stage)
        if holder is not None and holder != to_version and holder != from_version:
            raise AwsError(
                f"UpdateSecretVersionStage {secret.name}: {stage} is attached to {holder}, not {from_version} "
                "(InvalidParameterException)"
            )
        if from_version is not None and holder != from_version:
            raise AwsError(
                f"UpdateSecretVersionStage {secret.name}: {stage} is not attached to {from_version} "
                "(InvalidParameterException)"
            )
        secret.attach(stage, to_version)

    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None:
        """UpdateSecretVersionStage without MoveToVersionId; AWSCURRENT can
        only be moved, never removed."""
        secret = self._secret(secret_id)
        self.writes.append(Write("remove_stage", secret.name, from_version, stage))
        if stage == CURRENT:
            raise AwsError(f"UpdateSecretVersionStage {secret.name}: AWSCURRENT cannot be removed, only moved")
        version = secret.versions.get(from_version)
        if version is None or stage not in version.stages:
            raise AwsError(
                f"UpdateSecretVersionStage {secret.name}: {stage} is not attached to {from_version} "
                "(InvalidParameterException)"
            )
        version.stages.remove(stage)

    def tag(self, secret_id: str, key: str, value: str) -> None:
        secret = self._secret(secret_id)
        self.writes.append(Write("tag", secret.name, stage=key))
        secret.tags[key] = value

    def _secret(self, secret_id: str) -> _Secret:
        secret = self._secrets.get(secret_id) or next((s for s in self._secrets.values() if s.arn == secret_id), None)
        if secret is None:
            raise NotFoundError(f"secret {secret_id} not found (ResourceNotFoundException)")
        return secret


# Private CA's end-entity templates: (serverAuth, clientAuth) in the EKU.
TEMPLATE_AUTH = {
    "EndEntityServerAuthCertificate/V1": (True, False),
    "EndEntityClientAuthCertificate/V1": (False, True),
    "EndEntityCertificate/V1": (True, True),
}


@dataclass(frozen=True)
class IssueCall:
    csr_pem: str
    validity_days: int
    template_arn: str
    token: str


class FakeCA:
    """A Private CA whose subordinate is a LocalCA under `root`.

    issue() really signs the CSR (its names, the requested validity) and is
    idempotent per token, as IssueCertificate is. Failures queued in
    `issue_failures` / `wait_failures` are raised one per call first;
    `certify_instead`, when set, is the public key the next certificates are
    made for, whatever the CSR says (a CA answering for another key).
    """

    def __init__(self, root: LocalCA, subordinate: LocalCA | None = None, ca_arn: str = CA_ARN) -> None:
        self.ca_arn = ca_arn
        self.root = root
        self.subordinate = subordinate or root.create_subordinate("certrotor fake Private CA")
        self.calls: list[IssueCall] = []
        self.issue_failures: list[CertrotorError] = []
        self.wait_failures: list[CertrotorError] = []
        self.certify_instead: PublicKey | None = None
        self._issued: dict[str, x509.Certificate] = {}
        self._by_token: dict[str, str] = {}

    @property
    def issue_count(self) -> int:
        return len(self.calls)

    @property
    def certificates(self) -> int:
        """How many certificates were issued (paid for), retries excluded."""
        return len(self._issued)

    def signing_algorithm(self) -> str:
        return "SHA256WITHRSA" if isinstance(self.subordinate.key, rsa.RSAPrivateKey) else "SHA256WITHECDSA"

    def ca_certificate_chain(self, refresh: bool = False) -> str:
        """GetCertificateAuthorityCertificate: the CA's certificate, then its chain."""
        return self.subordinate.pem + self.root.pem

    def issue(self, csr_pem: str, validity_days: int, template_arn: str, token: str) -> str:
        self.calls.append(IssueCall(csr_pem, validity_days, template_arn, token))
        if self.issue_failures:
            raise self.issue_failures.pop(0)
        if token in self._by_token:
            return self._by_token[token]
        csr = parse_csr(csr_pem)
        if not csr.is_signature_valid:
            raise AwsError("IssueCertificate: MalformedCSRException")
        names = csr_names(csr)
        public_key = self.certify_instead or csr_public_key(csr)
        leaf = self.subordinate.issue_leaf(
            public_key,
            names.common_name,
            names.dns_names,
            names.ip_addresses,
            days=validity_days,
            server_auth=TEMPLATE_AUTH[template_arn.rsplit("template/", 1)[-1]][0],
            client_auth=TEMPLATE_AUTH[template_arn.rsplit("template/", 1)[-1]][1],
        )
        arn = f"{self.ca_arn}/certificate/{uuid.uuid4().hex}"
        self._issued[arn] = leaf
        self._by_token[token] = arn
        return arn

    def get(self, certificate_arn: str) -> IssuedCertificate:
        leaf = self._issued.get(certificate_arn)
        if leaf is None:
            raise NotFoundError(f"GetCertificate {certificate_arn}: ResourceNotFoundException")
        # GetCertificate's CertificateChain: the issuing CA's certificate and its chain.
        return IssuedCertificate(certificate_arn, cert_to_pem(leaf), self.subordinate.pem + self.root.pem)

    def wait(self, certificate_arn: str, remaining_seconds: Callable[[], float]) -> IssuedCertificate:
        if self.wait_failures:
            raise self.wait_failures.pop(0)
        if remaining_seconds() <= 0:
            raise NotReadyError(f"certificate {certificate_arn} not issued within the time left")
        return self.get(certificate_arn)


class FakeServices:
    """ECS services by "cluster/service": all exist unless listed in `gone`;
    those in `failing` refuse to redeploy. `redeployed` lists successes,
    `attempts` every call."""

    def __init__(self, failing: Iterable[str] = (), gone: Iterable[str] = (), existing: set[str] | None = None) -> None:
        self.failing = set(failing)
        self.gone = set(gone)
        # When given, only these services exist (as in ECS); else all but `gone`.
        self.existing = existing
        self.redeployed: list[str] = []
        self.attempts: list[str] = []

    def redeploy(self, cluster: str, service: str) -> str:
        label = f"{cluster}/{service}"
        self.attempts.append(label)
        if not self._exists(label):
            raise NotFoundError(f"UpdateService {label}: ServiceNotFoundException")
        if label in self.failing:
            raise AwsError(f"UpdateService {label}: AccessDeniedException")
        self.redeployed.append(label)
        return f"ecs-svc/{len(self.redeployed)}"

    def missing(self, services: Sequence[ServiceRef]) -> list[str]:
        return [f"{ref.cluster}/{ref.service}" for ref in services if not self._exists(f"{ref.cluster}/{ref.service}")]

    def _exists(self, label: str) -> bool:
        return label not in self.gone and (self.existing is None or label in self.existing)


def _conforming(
    secrets: FakeSecrets, ca: FakeCA, services: FakeServices
) -> tuple[SecretPort, CertificateAuthorityPort, ServicePort]:
    """Never called: mypy checks here that each fake satisfies its port."""
    return secrets, ca, services


SET_NAME = "tls/web"
BASE_SET: dict[str, Any] = {
    "name": SET_NAME,
    "common_name": "web.svc.internal",
    "dns_names": ["web.svc.internal"],
    "ip_addresses": ["127.0.0.1"],
    "key_algorithm": "EC_prime256v1",
    "validity_days": 30,
    "chain_parts": 2,
    "services": [{"cluster": "apps", "service": "web"}],
}


def provision(secrets: FakeSecrets, ca_arn: str = CA_ARN, **set_overrides: Any) -> CertrotorConfig:
    """A one-set config (BASE_SET with overrides) and its secrets, as the
    stack creates them: every secret holds INITIAL_VALUE at AWSCURRENT and
    rotation is enabled on the manifest."""
    data = copy.deepcopy(BASE_SET)
    data.update(set_overrides)
    config = load_config({"ca": {"arn": ca_arn}, "sets": [data]})
    cert_set = config.sets[0]
    secrets.create_secret(cert_set.name, INITIAL_VALUE, rotation_enabled=True)
    for name in cert_set.part_secret_names:
        secrets.create_secret(name, INITIAL_VALUE)
    return config


def stage(fake: FakeSecrets, name: str, token: str, copy_current: bool = False) -> None:
    """Stage AWSPENDING on a new version of `name`, as RotateSecret does."""
    fake.stage_pending(name, token, copy_current)
