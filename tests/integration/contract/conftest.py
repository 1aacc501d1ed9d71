"""Each port's contract runs against the in-memory fake and the real adapter
on the emulator: the same scenario, the same expected (AWS) behaviour."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from certrotor.aws.secrets import SecretStore
from certrotor.local.emulator import Emulator
from certrotor.ports import SecretPort
from tests.unit.rotation.fakes import FakeSecrets


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
