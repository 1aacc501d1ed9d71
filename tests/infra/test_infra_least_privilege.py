"""Every grant is exactly what the runtime contract needs, on exactly its resources."""

from __future__ import annotations

import json
from typing import Any

import pytest

from certrotor_cdk.rotating_certificate import RotatingCertificate

SECRET_ACTIONS = {
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:TagResource",
}
KMS_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
CA_READ_ACTIONS = {
    "acm-pca:GetCertificate",
    "acm-pca:DescribeCertificateAuthority",
    "acm-pca:GetCertificateAuthorityCertificate",
}
VIA_SECRETS_MANAGER = {
    "StringEquals": {
        "kms:ViaService": {"Fn::Join": ["", ["secretsmanager.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
}
TRACING_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
LOG_ACTIONS = {"logs:CreateLogStream", "logs:PutLogEvents"}


def certificate(synth: Any, name: str) -> RotatingCertificate:
    return next(c for c in synth.stack.certrotor.certificates if c.certificate_set.name == name)


def key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def grants(statements: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(action, resource, condition) triples: order and grouping do not matter."""
    return {
        (action, key(resource), key(statement.get("Condition")))
        for statement in statements
        for action in statement["Action"]
        for resource in statement["Resource"]
    }


def template_arn(synth: Any, template: str) -> Any:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":acm-pca:::template/{template}"]]}


def service_arn(cluster: str, service: str) -> Any:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":ecs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":service/{cluster}/{service}",
            ],
        ]
    }


def tagged(service: str, resource: str) -> Any:
    """Every resource of a kind in the stack's account and region, as the tag-conditioned statements name them."""
    separator = ":" if service == "secretsmanager" else "/"
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                f":{service}:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{resource}{separator}*",
            ],
        ]
    }


ROTATOR = {"aws:ResourceTag/certrotor:rotator": "certrotor"}
PART = {"aws:ResourceTag/certrotor:part-of": "certrotor"}
VIA = VIA_SECRETS_MANAGER["StringEquals"]


def expected_rotation_grants(synth: Any) -> set[tuple[str, str, str]]:
    """The runtime contract of the rotation function, written out by hand:
    every set's resources reached by tag, so no statement names a set."""
    ca = synth.config.ca.arn
    secrets, keys = key(tagged("secretsmanager", "secret")), key(tagged("kms", "key"))
    manifest_actions = SECRET_ACTIONS - {"secretsmanager:TagResource"}
    expected = set()
    for tag in (ROTATOR, PART):
        expected |= {(a, secrets, key({"StringEquals": tag})) for a in manifest_actions}
        expected |= {(a, keys, key({"StringEquals": {**tag, **VIA}})) for a in KMS_ACTIONS}
    tag_keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ["certrotor:issuing", "certrotor:redeployed"]}}
    expected.add(("secretsmanager:TagResource", secrets, key({"StringEquals": ROTATOR, **tag_keys})))
    templates = [
        template_arn(synth, t)
        for t in ("EndEntityServerAuthCertificate/V1", "EndEntityClientAuthCertificate/V1", "EndEntityCertificate/V1")
    ]
    expected.add(("acm-pca:IssueCertificate", key(ca), key({"StringEquals": {"acm-pca:TemplateArn": templates}})))
    expected |= {(a, key(ca), key(None)) for a in CA_READ_ACTIONS}
    expected |= {
        (a, key(tagged("ecs", "service")), key({"StringEquals": ROTATOR}))
        for a in ("ecs:UpdateService", "ecs:DescribeServices")
    }
    # Services named in the JSON configuration are granted by ARN as well.
    for cluster, service in (("main", "orders"), ("main", "ledger"), ("batch", "ledger-worker")):
        arn = service_arn(cluster, service)
        expected |= {(a, key(arn), key(None)) for a in ("ecs:UpdateService", "ecs:DescribeServices")}
    rotation = synth.stack.certrotor.rotation
    log_group = synth.resolve(rotation.log_group.log_group_arn)
    expected |= {(a, key(log_group), key(None)) for a in LOG_ACTIONS}
    expected |= {(a, key("*"), key(None)) for a in TRACING_ACTIONS}
    return expected


def test_rotation_role_has_exactly_the_runtime_contract(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    assert grants(statements) == expected_rotation_grants(main)


def test_the_rotation_role_does_not_grow_with_the_sets(main: Any, created_ca: Any) -> None:
    # Three sets and one set: the same tag-based statements (services aside)
    def shape(synth: Any) -> set[tuple[str, str]]:
        statements = synth.role_statements(synth.stack.certrotor.rotation.role)
        return {(a, c) for a, r, c in grants(statements) if not a.startswith("ecs:") and not a.startswith("logs:")}

    assert {a for a, _ in shape(main)} == {a for a, _ in shape(created_ca)}


def test_tag_resource_is_only_for_manifests_and_the_keys_the_rotation_writes(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    (tagging,) = [s for s in statements if "secretsmanager:TagResource" in s["Action"]]

    assert tagging["Action"] == ["secretsmanager:TagResource"]
    assert tagging["Condition"]["StringEquals"] == ROTATOR
    assert tagging["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] == [
        "certrotor:issuing",
        "certrotor:redeployed",
    ]


def test_rotation_role_may_not_remove_tags_from_secrets(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    untagging = [s for s in statements if "secretsmanager:UntagResource" in s["Action"]]

    assert untagging == []


def test_rotation_role_uses_the_set_keys_only_to_generate_data_keys_and_decrypt(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    kms = [s for s in statements if any(a.startswith("kms:") for a in s["Action"])]

    assert kms
    assert {a for s in kms for a in s["Action"]} == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert all(s["Condition"]["StringEquals"]["kms:ViaService"] == VIA["kms:ViaService"] for s in kms)


def test_issue_certificate_is_always_conditioned_on_a_template(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    issuing = [s for s in statements if "acm-pca:IssueCertificate" in s["Action"]]

    assert issuing
    assert all("acm-pca:TemplateArn" in s["Condition"]["StringEquals"] for s in issuing)
    assert all(s["Action"] == ["acm-pca:IssueCertificate"] for s in issuing)


def test_redeploy_is_limited_to_tagged_and_configured_services(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.rotation.role)

    ecs = [s for s in statements if "ecs:UpdateService" in s["Action"]]

    tagged_statements = [s for s in ecs if s.get("Condition")]
    assert [s["Condition"] for s in tagged_statements] == [{"StringEquals": ROTATOR}]
    by_arn = {key(r) for s in ecs if not s.get("Condition") for r in s["Resource"]}
    assert by_arn == {
        key(service_arn("main", "orders")),
        key(service_arn("main", "ledger")),
        key(service_arn("batch", "ledger-worker")),
    }


def test_monitor_role_gets_only_the_manifest_values_and_decrypts_only_their_key(main: Any) -> None:
    monitor = main.stack.certrotor.monitor
    secrets = key(tagged("secretsmanager", "secret"))
    expected = {
        ("secretsmanager:GetSecretValue", secrets, key({"StringEquals": ROTATOR})),
        ("kms:Decrypt", key(tagged("kms", "key")), key({"StringEquals": {**ROTATOR, **VIA}})),
    }
    trust = main.stack.certrotor.trust
    trust_secret = key(main.resolve(trust.secret.secret_arn))
    expected |= {
        (a, trust_secret, key(None))
        for a in (
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:UpdateSecretVersionStage",
        )
    }
    expected |= {(a, key(main.resolve(trust.key.key_arn)), key(VIA_SECRETS_MANAGER)) for a in KMS_ACTIONS}
    # Revoking superseded certificates (ca.revoke_superseded is "auto" here).
    ca_arn = key(main.config.ca.arn)
    expected |= {
        (a, ca_arn, key(None))
        for a in (
            "acm-pca:GetCertificateAuthorityCertificate",
            "acm-pca:DescribeCertificateAuthority",
            "acm-pca:RevokeCertificate",
        )
    }
    only_record = {"ForAllValues:StringEquals": {"aws:TagKeys": [f"certrotor:superseded:{i}" for i in range(8)]}}
    expected |= {
        ("secretsmanager:DescribeSecret", secrets, key({"StringEquals": ROTATOR})),
        ("secretsmanager:TagResource", secrets, key({"StringEquals": ROTATOR, **only_record})),
    }
    expected |= {(a, key(main.resolve(monitor.log_group.log_group_arn)), key(None)) for a in LOG_ACTIONS}
    expected |= {(a, key("*"), key(None)) for a in TRACING_ACTIONS}
    # It finds its sets by tag: ListSecrets supports no resource-level permission.
    expected |= {("secretsmanager:ListSecrets", key("*"), key(None))}
    # Its failed hourly runs go to the alarm topic (dead-letter), encrypted
    # with the topic's key: publishing needs GenerateDataKey and Decrypt.
    monitoring = main.stack.certrotor.monitoring
    expected.add(("sns:Publish", key(main.resolve(monitoring.topic.topic_arn)), key(None)))
    expected |= {(a, key(main.resolve(monitoring.topic_key.key_arn)), key(None)) for a in KMS_ACTIONS}

    assert grants(main.role_statements(monitor.role)) == expected


def test_monitor_role_writes_only_the_trust_bundle_and_tags_only_the_superseded_record(main: Any) -> None:
    statements = main.role_statements(main.stack.certrotor.monitor.role)
    trust_secret = main.resolve(main.stack.certrotor.trust.secret.secret_arn)

    writes = [s for s in statements if "secretsmanager:PutSecretValue" in s["Action"]]
    tags = [s for s in statements if "secretsmanager:TagResource" in s["Action"]]

    assert [s["Resource"] for s in writes] == [[trust_secret]]
    assert [s["Condition"]["ForAllValues:StringEquals"] for s in tags] == [
        {"aws:TagKeys": [f"certrotor:superseded:{i}" for i in range(8)]}
    ]


def test_only_manifests_and_their_key_carry_the_rotator_tag(main: Any) -> None:
    cert = certificate(main, "mtls/ledger")
    resources = main.resources

    def tags(construct: Any) -> dict[str, str]:
        found = resources[main.logical_id(construct)]["Properties"].get("Tags", [])
        return {t["Key"]: t["Value"] for t in found}

    assert tags(cert.manifest_secret)["certrotor:rotator"] == "certrotor"
    assert tags(cert.certificate_key)["certrotor:rotator"] == "certrotor"
    for part in (*cert.part_secrets, cert.private_key_key):
        assert "certrotor:rotator" not in tags(part)
        assert tags(part)["certrotor:part-of"] == "certrotor"


def test_function_roles_have_no_managed_policies(main: Any) -> None:
    for role in main.resources_of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("synth_name", ["main", "created_ca"])
def test_identity_and_resource_policies_grant_no_wildcard_actions(synth_name: str, request: Any) -> None:
    synth = request.getfixturevalue(synth_name)

    for logical_id, resource_type, statement in synth.policy_statements():
        if resource_type != "AWS::KMS::Key":
            assert not [a for a in statement["Action"] if "*" in a], logical_id


@pytest.mark.parametrize("synth_name", ["main", "created_ca"])
def test_key_policies_use_wildcard_actions_only_where_kms_defines_them(synth_name: str, request: Any) -> None:
    synth = request.getfixturevalue(synth_name)
    # kms:* for the account root is what makes IAM policies apply to the key
    # at all; GenerateDataKey*/ReEncrypt* are how KMS names those families.
    family_actions = {"kms:GenerateDataKey*", "kms:ReEncrypt*"}

    for logical_id, resource_type, statement in synth.policy_statements():
        if resource_type != "AWS::KMS::Key":
            continue
        for action in (a for a in statement["Action"] if "*" in a):
            if action == "kms:*":
                assert statement["Principal"]["AWS"]["Fn::Join"][1][-1] == ":root", logical_id
                assert "Condition" not in statement
            else:
                assert action in family_actions, (logical_id, action)


REKEY_LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


@pytest.mark.parametrize("synth_name", ["main", "created_ca"])
def test_identity_policies_use_resource_star_only_for_x_ray(synth_name: str, request: Any) -> None:
    synth = request.getfixturevalue(synth_name)
    # Besides X-Ray: the re-key state machine lists secrets (no resource-level
    # permission), delivers its logs (CloudWatch Logs' delivery actions) and
    # traces with Step Functions' X-Ray actions (sampling rules included).
    star_actions = [
        TRACING_ACTIONS,
        {"secretsmanager:ListSecrets"},
        REKEY_LOG_DELIVERY_ACTIONS,
        {*TRACING_ACTIONS, "xray:GetSamplingRules", "xray:GetSamplingTargets"},
    ]

    for logical_id, resource_type, statement in synth.policy_statements():
        if resource_type == "AWS::IAM::Policy" and "*" in statement["Resource"]:
            assert set(statement["Action"]) in star_actions, logical_id


def test_readers_may_read_the_manifest_and_chain_parts_but_not_the_key(main: Any) -> None:
    cert = certificate(main, "tls/orders")
    policies = main.resources_of_type("AWS::SecretsManager::ResourcePolicy")
    readable = {
        key(p["Properties"]["SecretId"])
        for p in policies.values()
        if "orders-task" in json.dumps(p["Properties"]["ResourcePolicy"])
    }

    trust = main.stack.certrotor.trust
    assert readable == {
        key(main.resolve(s.secret_arn)) for s in [cert.manifest_secret, *cert.chain_secrets, trust.secret]
    }


def test_reader_resource_policy_grants_get_and_describe_only(main: Any) -> None:
    trust = {"Ref": main.logical_id(main.stack.certrotor.trust.secret)}
    for logical_id, resource_type, statement in main.policy_statements():
        if resource_type == "AWS::SecretsManager::ResourcePolicy" and statement["Effect"] == "Allow":
            # The trust bundle's readers only get its value.
            on_trust = main.resources[logical_id]["Properties"]["SecretId"] == trust
            allowed = {"secretsmanager:GetSecretValue"} | (set() if on_trust else {"secretsmanager:DescribeSecret"})
            assert set(statement["Action"]) == allowed


def test_the_private_key_is_denied_to_all_but_the_rotation_role_and_key_readers(main: Any) -> None:
    for name, readers in (
        ("tls/payments", []),
        ("mtls/ledger", ["arn:aws:iam::210987654321:role/ledger-tls-terminator"]),
    ):
        cert = certificate(main, name)
        policies = main.resources_of_type("AWS::SecretsManager::ResourcePolicy")
        (policy,) = [
            p
            for p in policies.values()
            if key(p["Properties"]["SecretId"]) == key(main.resolve(cert.private_key_secret.secret_arn))
        ]
        (deny,) = [s for s in policy["Properties"]["ResourcePolicy"]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Principal"] == {"AWS": "*"}
        assert "secretsmanager:GetSecretValue" in deny["Action"]
        allowed = deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"]
        assert allowed == [main.resolve(main.stack.certrotor.rotation_role_arn), *readers]


def test_key_readers_may_read_only_the_private_key_secret(main: Any) -> None:
    cert = certificate(main, "mtls/ledger")
    policies = main.resources_of_type("AWS::SecretsManager::ResourcePolicy")

    readable = {
        key(p["Properties"]["SecretId"])
        for p in policies.values()
        if "ledger-tls-terminator" in json.dumps(p["Properties"]["ResourcePolicy"])
    }

    assert readable == {key(main.resolve(cert.private_key_secret.secret_arn))}


def key_policy_grants_to(synth: Any, kms_key: Any, role_arn: str) -> list[dict[str, Any]]:
    policy = synth.resources[synth.logical_id(kms_key)]["Properties"]["KeyPolicy"]
    return [s for s in policy["Statement"] if s.get("Principal") == {"AWS": role_arn}]


def test_readers_may_decrypt_through_secrets_manager_with_the_certificate_key_only(
    main: Any,
) -> None:
    cert = certificate(main, "mtls/ledger")
    reader = "arn:aws:iam::210987654321:role/ledger-task"

    on_certificate_key = key_policy_grants_to(main, cert.certificate_key, reader)
    on_private_key_key = key_policy_grants_to(main, cert.private_key_key, reader)

    assert [(s["Action"], s.get("Condition")) for s in on_certificate_key] == [("kms:Decrypt", VIA_SECRETS_MANAGER)]
    assert on_private_key_key == []


def test_key_readers_may_decrypt_with_the_private_key_key_only(main: Any) -> None:
    cert = certificate(main, "mtls/ledger")
    key_reader = "arn:aws:iam::210987654321:role/ledger-tls-terminator"

    on_private_key_key = key_policy_grants_to(main, cert.private_key_key, key_reader)
    on_certificate_key = key_policy_grants_to(main, cert.certificate_key, key_reader)

    assert [(s["Action"], s.get("Condition")) for s in on_private_key_key] == [("kms:Decrypt", VIA_SECRETS_MANAGER)]
    assert on_certificate_key == []


def test_sets_without_readers_get_a_resource_policy_only_on_the_key(main: Any) -> None:
    cert = certificate(main, "tls/payments")
    secret_ids = {key(main.resolve(s.secret_arn)) for s in cert.secrets}

    policies = main.resources_of_type("AWS::SecretsManager::ResourcePolicy")

    with_policy = {key(p["Properties"]["SecretId"]) for p in policies.values()} & secret_ids
    assert with_policy == {key(main.resolve(cert.private_key_secret.secret_arn))}
