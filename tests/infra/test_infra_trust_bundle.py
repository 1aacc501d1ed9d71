"""The rotator's trust bundle secret: named for the rotator, its own key,
readable by every set's readers and by roles granted in code."""

from __future__ import annotations

from typing import Any

from certrotor.services.trust import trust_secret_name

from .conftest import LEDGER_READER, ORDERS_READER


def test_the_trust_secret_is_named_for_the_rotator_with_its_own_rotating_key(main: Any) -> None:
    trust = main.stack.certrotor.trust
    secret = main.resources[main.logical_id(trust.secret)]
    key = main.resources[main.logical_id(trust.key)]
    assert secret["Properties"]["Name"] == trust_secret_name(main.config.service_name)
    assert secret["Properties"]["KmsKeyId"] == main.resolve(trust.key.key_arn)
    assert key["Properties"]["EnableKeyRotation"] is True


def test_every_configured_reader_may_read_the_trust_secret_and_decrypt_it(main: Any) -> None:
    trust = main.stack.certrotor.trust
    policies = [
        s
        for logical_id, kind, s in main.policy_statements()
        if kind == "AWS::SecretsManager::ResourcePolicy"
        and main.resources[logical_id]["Properties"]["SecretId"] == main.resolve(trust.secret.secret_arn)
    ]
    (statement,) = policies
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]
    assert sorted(statement["Principal"]["AWS"]) == sorted([LEDGER_READER, ORDERS_READER])
    key_policy = main.resources[main.logical_id(trust.key)]["Properties"]["KeyPolicy"]["Statement"]
    decrypt = [s for s in key_policy if s.get("Action") == "kms:Decrypt"]
    assert decrypt and sorted(decrypt[0]["Principal"]["AWS"]) == sorted([LEDGER_READER, ORDERS_READER])


def test_a_role_granted_in_code_may_read_the_trust_secret(platform: Any) -> None:
    statements = platform.synth.role_statements(platform.task_role)
    trust_secret = platform.synth.resolve(platform.certrotor.trust.secret.secret_arn)
    assert any(s["Action"] == ["secretsmanager:GetSecretValue"] and s["Resource"] == [trust_secret] for s in statements)
