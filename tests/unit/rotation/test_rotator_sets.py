"""Rotation of a set whose spec lives on its manifest (a rotator's config
lists no sets): the spec comes from the DescribeSecret each step makes
anyway, and setSecret makes no call at all."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import pytest

from certrotor.config import load_config
from certrotor.errors import RotationError
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.services.rotation import RotationRequest, RotationService, Step, StepResult
from certrotor.spec import ROTATOR_TAG, spec_description
from tests.unit.rotation.fakes import BASE_SET, FakeCA, FakeSecrets, FakeServices, stage

ROTATOR = "team-a"


def _calls(secrets: FakeSecrets, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts DescribeSecret and GetSecretValue calls (find included)."""
    calls: Counter[str] = Counter()
    for operation in ("describe", "get"):
        original = getattr(secrets, operation)

        def counted(*args: Any, _original: Any = original, _operation: str = operation, **kwargs: Any) -> Any:
            calls[_operation] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(secrets, operation, counted)
    return calls


def test_a_rotators_set_rotates_with_one_describe_per_step_and_none_at_setsecret(
    root_ca: LocalCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a rotator whose config lists no sets, and a set whose manifest
    # carries its spec and the rotator's tag
    secrets, ca = FakeSecrets(), FakeCA(root_ca)
    cert_set = load_config({"ca": {"arn": ca.ca_arn}, "sets": [BASE_SET]}).sets[0]
    config = load_config({"ca": {"arn": ca.ca_arn}, "service_name": ROTATOR}, require_sets=False)
    secrets.create_secret(
        cert_set.name,
        INITIAL_VALUE,
        rotation_enabled=True,
        description=spec_description(cert_set),
        tags={ROTATOR_TAG: ROTATOR},
    )
    for name in cert_set.part_secret_names:
        secrets.create_secret(name, INITIAL_VALUE)
    rotation = RotationService(config, secrets, ca, FakeServices())
    token = str(uuid.uuid4())
    stage(secrets, cert_set.name, token)
    arn = secrets.arn_of(cert_set.name)
    # When each step runs, counting its reads
    describes = []
    results = []
    for step in Step:
        calls = _calls(secrets, monkeypatch)
        event = {"Step": step.value, "SecretId": arn, "ClientRequestToken": token}
        results.append(rotation.run(RotationRequest.parse(event), remaining_seconds=lambda: 60))
        describes.append(calls["describe"])
        if step is Step.SET:
            assert calls == Counter()
    # Then every step took the spec from the one DescribeSecret of the manifest
    # it makes anyway (setSecret made none); finishSecret of a first rotation
    # also looks at each part, whose initial version is not the manifest's
    assert [r.action for r in results] == ["created", "nothing to set", "verified", "finished"]
    assert results[1] == StepResult(Step.SET, cert_set.name, "nothing to set")
    assert describes == [1, 0, 1, 1 + len(cert_set.part_secret_names)]


def test_a_secret_without_the_rotators_tag_is_refused(root_ca: LocalCA) -> None:
    secrets, ca = FakeSecrets(), FakeCA(root_ca)
    config = load_config({"ca": {"arn": ca.ca_arn}, "service_name": ROTATOR}, require_sets=False)
    secrets.create_secret("tls/other", INITIAL_VALUE, rotation_enabled=True)
    token = str(uuid.uuid4())
    stage(secrets, "tls/other", token)
    event = {"Step": "createSecret", "SecretId": "tls/other", "ClientRequestToken": token}
    with pytest.raises(RotationError) as refused:
        RotationService(config, secrets, ca, FakeServices()).run(
            RotationRequest.parse(event), remaining_seconds=lambda: 60
        )
    assert str(refused.value) == (
        "tls/other is not a certificate set this function manages: "
        f"tls/other: not a certrotor set (no {ROTATOR_TAG} tag)"
    )
