"""certrotor's constructs work inside another app's stack, as docs/DEPLOY.md shows."""

from __future__ import annotations

import json
from typing import Any

VIA_SECRETS_MANAGER = {
    "StringEquals": {
        "kms:ViaService": {"Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
}


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (action, json.dumps(resource, sort_keys=True), json.dumps(s.get("Condition"), sort_keys=True))
        for s in statements
        for action in s["Action"]
        for resource in s["Resource"]
    }


def test_a_plain_stack_gets_the_whole_deployment(platform: Any) -> None:
    template = platform.synth.template

    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    template.resource_count_is("AWS::Lambda::Function", 2)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_a_task_role_granted_in_code_reads_the_set_its_key_and_the_trust_bundle_only(platform: Any) -> None:
    synth = platform.synth
    cert = platform.certrotor.certificates[0]
    trust = platform.certrotor.trust
    secrets = [cert.manifest_secret, *cert.chain_secrets, cert.private_key_secret]
    expected = {
        (action, json.dumps(synth.resolve(s.secret_arn), sort_keys=True), "null")
        for s in secrets
        for action in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
    } | {
        (
            "kms:Decrypt",
            json.dumps(synth.resolve(k.key_arn), sort_keys=True),
            json.dumps(VIA_SECRETS_MANAGER, sort_keys=True),
        )
        for k in (cert.certificate_key, cert.private_key_key, trust.key)
    }
    expected.add(
        ("secretsmanager:GetSecretValue", json.dumps(synth.resolve(trust.secret.secret_arn), sort_keys=True), "null")
    )

    assert grants(synth.role_statements(platform.task_role)) == expected
