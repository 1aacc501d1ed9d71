"""The interfaces the services need, and the values that cross them. The aws
adapters implement them; tests may substitute fakes that mypy checks against
these. Nothing here imports boto3."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from certrotor.record import field, record

if TYPE_CHECKING:
    from certrotor.config import ServiceRef

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
# IssueCertificate's IdempotencyToken: at most 36 characters.
IDEMPOTENCY_TOKEN_LENGTH = 36


def idempotency_token(*parts: str) -> str:
    """A stable IssueCertificate IdempotencyToken from a request's identity."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:IDEMPOTENCY_TOKEN_LENGTH]


def pending_version(versions: Mapping[str, Sequence[str]]) -> str | None:
    """The version staged AWSPENDING that is not AWSCURRENT: a rotation in progress."""
    for version, stages in versions.items():
        if PENDING in stages and CURRENT not in stages:
            return str(version)
    return None


@record
class SecretInfo:
    """DescribeSecret, reduced to what rotation needs."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: dict[str, tuple[str, ...]]
    tags: dict[str, str] = field(default_factory=dict)
    description: str = ""

    def version_with(self, stage: str) -> str | None:
        return next((v for v, stages in self.versions.items() if stage in stages), None)


@record
class SecretValue:
    name: str
    value: str
    version: str
    stages: tuple[str, ...]


@record
class IssuedCertificate:
    arn: str
    certificate_pem: str
    chain_pem: str


class SecretReadPort(Protocol):
    """The reads a consumer of sets makes (SetReader's needs)."""

    def get(self, secret_id: str, version: str | None = None, stage: str | None = None) -> SecretValue: ...
    def find(self, secret_id: str, version: str) -> SecretValue | None: ...
    def get_current_many(self, secret_ids: Sequence[str]) -> dict[str, SecretValue]: ...


class SecretPort(SecretReadPort, Protocol):
    def describe(self, secret_id: str) -> SecretInfo: ...
    def put(
        self,
        secret_id: str,
        value: str,
        version: str,
        stages: Iterable[str] = ...,
        rotation_token: str | None = None,
    ) -> None: ...
    def move_stage(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None: ...
    def remove_stage(self, secret_id: str, stage: str, from_version: str) -> None: ...
    def tag(self, secret_id: str, key: str, value: str) -> None: ...


class CertificateAuthorityPort(Protocol):
    ca_arn: str

    def signing_algorithm(self) -> str: ...
    def ca_certificate_chain(self, refresh: bool = False) -> str: ...
    def issue(self, csr_pem: str, validity_days: int, template_arn: str, token: str) -> str: ...
    def get(self, certificate_arn: str) -> IssuedCertificate: ...
    def wait(self, certificate_arn: str, remaining_seconds: Callable[[], float]) -> IssuedCertificate: ...


class ServicePort(Protocol):
    def redeploy(self, cluster: str, service: str) -> str: ...
    def missing(self, services: Sequence[ServiceRef]) -> list[str]: ...
