"""A manifest belongs to its set: one copied into another set's secret (under
the same VersionId, so its parts resolve) must never hand out the other set's
key."""

from __future__ import annotations

import uuid

import pytest

from certrotor.config import load_config
from certrotor.errors import IntegrityError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.ports import CURRENT
from certrotor.services.reader import SetReader
from certrotor.services.rotation import RotationRequest, RotationService
from tests.unit.rotation.fakes import BASE_SET, FakeCA, FakeSecrets, FakeServices


def test_a_manifest_copied_into_another_sets_secret_is_refused(root_ca: LocalCA) -> None:
    # Given two sets, tls/a and tls/b, and a rotation of tls/a
    secrets, ca = FakeSecrets(), FakeCA(root_ca)
    sets = [{**BASE_SET, "name": name} for name in ("tls/a", "tls/b")]
    config = load_config({"ca": {"arn": ca.ca_arn}, "sets": sets})
    for cert_set in config.sets:
        secrets.create_secret(cert_set.name, INITIAL_VALUE, rotation_enabled=True)
        for name in cert_set.part_secret_names:
            secrets.create_secret(name, INITIAL_VALUE)
    token = str(uuid.uuid4())
    secrets.stage_pending("tls/a", token)
    rotation = RotationService(config, secrets, ca, FakeServices())
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        event: dict[str, object] = {"Step": step, "SecretId": "tls/a", "ClientRequestToken": token}
        rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60)
    # When tls/a's manifest is copied into tls/b under the same VersionId and made current
    manifest = secrets.get("tls/a", stage=CURRENT).value
    secrets.put("tls/b", manifest, token, stages=(CURRENT,))
    assert SetReader(secrets).read("tls/a").manifest.set_name == "tls/a"
    # Then reading tls/b is refused: it would hand out tls/a's key
    with pytest.raises(IntegrityError, match="the manifest is for set tls/a, not tls/b"):
        SetReader(secrets).read("tls/b")
    with pytest.raises(IntegrityError, match="not tls/b"):
        SetReader(secrets).read("tls/b", version=token)
