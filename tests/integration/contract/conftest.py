"""Each port's contract runs against the in-memory fake and the real adapter
on the emulator: the same scenario, the same expected (AWS) behaviour."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509

from certrotor.aws.ecs import EcsServices
from certrotor.aws.ledger import Ledger, ledger_table_definition
from certrotor.aws.pca import PrivateCA
from certrotor.aws.secrets import SecretStore
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import Emulator
from certrotor.ports import SecretPort
from tests.unit.issuer.test_issuer_service import FakeLedger
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices


@dataclass
class SecretBackend:
    """A SecretPort and the world-setup calls only Secrets Manager itself makes."""

    kind: str
    port: SecretPort
    create: Callable[[str, str], str]  # CreateSecret: returns the first VersionId
    stage_pending: Callable[[str, str], None]  # RotateSecret's empty AWSPENDING version

    def name(self) -> str:
        return f"contract/{uuid.uuid4().hex[:10]}"


def _emulated(emulator: Emulator) -> SecretBackend:
    client = emulator.client("secretsmanager")

    def create(name: str, value: str) -> str:
        return str(client.create_secret(Name=name, SecretString=value)["VersionId"])

    return SecretBackend("emulator", SecretStore(client), create, emulator.stage_pending)


def _fake() -> SecretBackend:
    fake = FakeSecrets()
    return SecretBackend("fake", fake, lambda n, v: fake.create_secret(n, v), fake.stage_pending)


@pytest.fixture(params=["fake", "emulator"])
def secrets(request: pytest.FixtureRequest) -> SecretBackend:
    if request.param == "fake":
        return _fake()
    emulator: Any = request.getfixturevalue("emulator")
    return _emulated(emulator)


# -- ECS -------------------------------------------------------------------------


@dataclass
class ServiceBackend:
    kind: str
    port: Any  # ServicePort
    create: Callable[[str, str], None]  # an ACTIVE service in a cluster


@pytest.fixture(params=["fake", "emulator"])
def services(request: pytest.FixtureRequest) -> ServiceBackend:
    if request.param == "fake":
        fake = FakeServices(existing=set())

        def add(cluster: str, service: str) -> None:
            assert fake.existing is not None
            fake.existing.add(f"{cluster}/{service}")

        return ServiceBackend("fake", fake, add)
    emulator: Any = request.getfixturevalue("emulator")
    ecs = emulator.client("ecs")

    def create(cluster: str, service: str) -> None:
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family=service, containerDefinitions=[{"name": service, "image": "certrotor/demo", "memory": 128}]
        )
        ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=1)

    return ServiceBackend("emulator", EcsServices(ecs), create)


# -- Private CA ------------------------------------------------------------------


@dataclass
class AuthorityBackend:
    kind: str
    port: Any  # CertificateAuthorityPort
    anchor: x509.Certificate  # the root the CA's chain leads to


@pytest.fixture(params=["fake", "emulator"])
def authority(request: pytest.FixtureRequest, root_ca: LocalCA) -> AuthorityBackend:
    if request.param == "fake":
        return AuthorityBackend("fake", FakeCA(root_ca), root_ca.certificate)
    make_env: Any = request.getfixturevalue("make_env")
    env = make_env()
    return AuthorityBackend("emulator", PrivateCA(env.ca_arn, env.emulator.client("acm-pca")), env.root.certificate)


# -- the issuer's ledger ---------------------------------------------------------


@pytest.fixture(params=["fake", "emulator"])
def ledger(request: pytest.FixtureRequest) -> Any:  # LedgerPort
    if request.param == "fake":
        return FakeLedger()
    emulator: Any = request.getfixturevalue("emulator")
    table = f"contract-ledger-{uuid.uuid4().hex[:8]}"
    emulator.client("dynamodb").create_table(**ledger_table_definition(table))
    return Ledger(table, emulator.client("dynamodb"))
