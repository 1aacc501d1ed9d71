"""Refusals of the rotation steps, with the exact message an operator reads:
a token that holds another rotation's manifest, and a strict finish whose
services are gone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from certrotor.errors import IntegrityError, RotationError
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT
from certrotor.services.rotation import RotationRequest, RotationService
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices, provision, stage

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture(scope="module")
def authority(root_ca: LocalCA) -> LocalCA:
    return root_ca.create_subordinate("certrotor refusals test CA")


class Rig:
    def __init__(self, root: LocalCA, authority: LocalCA, fake_services: FakeServices, **overrides: Any) -> None:
        self.secrets = FakeSecrets()
        ca = FakeCA(root, authority)
        self.config = provision(self.secrets, ca.ca_arn, **overrides)
        self.name = self.config.sets[0].name
        self.rotation = RotationService(self.config, self.secrets, ca, fake_services)

    def run(self, step: str, token: str) -> Any:
        event = {"Step": step, "SecretId": self.secrets.arn_of(self.name), "ClientRequestToken": token}
        return self.rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)

    def start(self) -> str:
        token = str(uuid.uuid4())
        stage(self.secrets, self.name, token)
        return token


def test_a_token_holding_another_rotations_manifest_is_refused_at_create(root_ca: LocalCA, authority: LocalCA) -> None:
    rig = Rig(root_ca, authority, FakeServices())
    first = rig.start()
    for step in STEPS:
        rig.run(step, first)
    token = rig.start()
    # A key and the first rotation's manifest at the new token, as a copy made by hand would leave them.
    key_name = rig.config.sets[0].key_secret_name
    rig.secrets.put(key_name, rig.secrets.get(key_name, version=first).value, token)
    rig.secrets.put(rig.name, rig.secrets.get(rig.name, version=first).value, token)
    writes = len(rig.secrets.writes)
    with pytest.raises(IntegrityError) as refused:
        rig.run("createSecret", token)
    assert str(refused.value) == (
        f"{rig.name} already holds a value at version {token} that is not this rotation's complete set "
        "(it names another version); a version's value cannot be replaced: cancel this rotation "
        "(cancel-rotate-secret) and rotate again"
    )
    # Only the refused attempt to store a new key: nothing else was written.
    assert [(w.operation, w.secret) for w in rig.secrets.writes[writes:]] == [("put", key_name)]


def test_a_strict_finish_whose_services_are_gone_promotes_nothing(root_ca: LocalCA, authority: LocalCA) -> None:
    services = FakeServices(gone={"apps/web"})
    rig = Rig(
        root_ca,
        authority,
        services,
        redeploy_strict=True,
        services=[{"cluster": "apps", "service": "web"}, {"cluster": "apps", "service": "api"}],
    )
    before = rig.secrets.describe(rig.name).version_with(CURRENT)
    token = rig.start()
    for step in STEPS[:3]:
        rig.run(step, token)
    with pytest.raises(RotationError) as refused:
        rig.run("finishSecret", token)
    assert str(refused.value) == "services not found: apps/web (redeploy_strict is set)"
    assert rig.secrets.describe(rig.name).version_with(CURRENT) == before
    assert services.attempts == []
