"""createSecret against what a retry may find: byte-identical requests to
Private CA, and a value at the token that is not this rotation's set."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from certrotor.config import KeyAlgorithm
from certrotor.errors import IntegrityError, ThrottledError
from certrotor.local.ca import LocalCA
from certrotor.pki.keys import generate_key, key_to_pem
from certrotor.services.rotation import RotationRequest, RotationService
from tests.unit.rotation.fakes import FakeCA, FakeSecrets, FakeServices, provision, stage


def _event(secrets: FakeSecrets, name: str, step: str, token: str) -> RotationRequest:
    return RotationRequest.parse(
        {"Step": step, "SecretId": secrets.arn_of(name), "ClientRequestToken": token, "RotationToken": "r"}
    )


@pytest.fixture
def build(root_ca: LocalCA) -> Callable[..., tuple[FakeSecrets, FakeCA, RotationService, str]]:
    def make(**overrides: object) -> tuple[FakeSecrets, FakeCA, RotationService, str]:
        secrets = FakeSecrets()
        ca = FakeCA(root_ca)
        config = provision(secrets, ca.ca_arn, **overrides)
        return secrets, ca, RotationService(config, secrets, ca, FakeServices()), config.sets[0].name

    return make


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_2048])
def test_a_retried_createsecret_sends_byte_identical_issue_requests(
    build: Callable[..., tuple[FakeSecrets, FakeCA, RotationService, str]], algorithm: KeyAlgorithm
) -> None:
    # Given a createSecret whose IssueCertificate was throttled
    secrets, ca, rotation, name = build(key_algorithm=algorithm.value)
    token = str(uuid.uuid4())
    stage(secrets, name, token)
    ca.issue_failures.append(ThrottledError("IssueCertificate: throttled"))
    with pytest.raises(ThrottledError):
        rotation.run(_event(secrets, name, "createSecret", token), remaining_seconds=lambda: 60)
    # When Secrets Manager retries it
    rotation.run(_event(secrets, name, "createSecret", token), remaining_seconds=lambda: 60)
    # Then both requests carried the same token and the very same CSR bytes
    first, second = ca.calls
    assert first.token == second.token
    assert first.csr_pem == second.csr_pem


@pytest.mark.parametrize(
    "garbage",
    [
        "not a manifest",
        '{"certrotor":"no certificate issued yet"}',
        "[" * 5000 + "]" * 5000,
        '{"format": 1}',
    ],
    ids=["text", "initial-value", "deeply-nested", "incomplete-object"],
)
def test_a_value_at_the_token_that_is_not_this_rotations_set_fails_createsecret_with_what_to_do(
    build: Callable[..., tuple[FakeSecrets, FakeCA, RotationService, str]], garbage: str
) -> None:
    # Given a token whose key an earlier attempt stored, and whose manifest holds something else
    secrets, ca, rotation, name = build()
    token = str(uuid.uuid4())
    stage(secrets, name, token)
    secrets.put(f"{name}/key", key_to_pem(generate_key(KeyAlgorithm.EC_P256)), token)
    secrets.put(name, garbage, token)
    # When createSecret runs for that token
    with pytest.raises(IntegrityError, match="cancel this rotation") as refused:
        rotation.run(_event(secrets, name, "createSecret", token), remaining_seconds=lambda: 60)
    # Then it is refused there (not reported "already created"), and nothing more is stored or issued
    assert "\n" not in str(refused.value)
    assert all(secrets.find(f"{name}/chain-{i}", token) is None for i in range(2))
    assert secrets.find(name, token).value == garbage  # type: ignore[union-attr]
    assert ca.issue_count == 0


def test_a_complete_set_at_the_token_is_already_created(
    build: Callable[..., tuple[FakeSecrets, FakeCA, RotationService, str]],
) -> None:
    # Given a createSecret that completed
    secrets, ca, rotation, name = build()
    token = str(uuid.uuid4())
    stage(secrets, name, token)
    rotation.run(_event(secrets, name, "createSecret", token), remaining_seconds=lambda: 60)
    # When it is retried
    result = rotation.run(_event(secrets, name, "createSecret", token), remaining_seconds=lambda: 60)
    # Then it finds the set whole and does nothing
    assert result.action == "already created"
    assert ca.issue_count == 1
