"""cdk-nag (AWS Solutions, HIPAA Security, NIST 800-53 rev 5) and cfn-lint
pass on the synthesized templates, and exactly the reviewed findings are
suppressed, each on its own resource (docs/DEPLOY.md lists them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, CfnResource, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from certrotor.config import IssuerPolicy
from certrotor_cdk import CertificateRotator
from certrotor_cdk.compliance import compliance_packs
from certrotor_cdk.constants import ROTATION_RESERVED_CONCURRENCY
from certrotor_cdk.rekey import child_executions_nag
from certrotor_cdk.rotator import TAGGED_RESOURCES_REGEX

PACKS = ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5")
NAG_RULE = Match.string_like_regexp(r"(AwsSolutions|HIPAA\.Security|NIST\.800\.53\.R5)-.*")
# CDK's Function adds DependsOn its role although Role is already a GetAtt;
# harmless, and not ours to change.
CFN_LINT_IGNORED = ["W3005"]
STACKS = ["main", "created_ca", "platform", "default_app"]
CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def shared(*rules: str) -> set[str]:
    """Rules the HIPAA and NIST packs both have, in each."""
    return {f"{pack}-{rule}" for rule in rules for pack in PACKS[1:]}


INLINE = shared("IAMNoInlinePolicy")
NOT_ROTATED = {"AwsSolutions-SMG4", *shared("SecretsManagerRotationEnabled")}
# The findings each certrotor resource accepts, by construct path below the
# certrotor construct; any set's name is [*], any chain part ChainN.
ROTATOR_SUPPRESSIONS = {
    "Rotation/Role/DefaultPolicy/Resource": {"AwsSolutions-IAM5", *INLINE},
    "Rotation/Function/Resource": {"AwsSolutions-L1", *shared("LambdaDLQ", "LambdaInsideVPC")},
    "RotationAccess/Resource": {"AwsSolutions-IAM5", *INLINE},
    "Monitor/Role/DefaultPolicy/Resource": {"AwsSolutions-IAM5", *INLINE},
    # The monitor has a dead-letter topic (the alarm topic).
    "Monitor/Function/Resource": {"AwsSolutions-L1", *shared("LambdaInsideVPC")},
    "MonitorAccess/Resource": {"AwsSolutions-IAM5", *INLINE},
    "MonitorListSecrets/Resource": {"AwsSolutions-IAM5", *INLINE},
    "Rekey/Role/DefaultPolicy/Resource": {"AwsSolutions-IAM5", *INLINE},
    "TrustBundle/Secret/Resource": NOT_ROTATED,
    "CertificateSet[*]/PrivateKey/Resource": NOT_ROTATED,
    "CertificateSet[*]/ChainN/Resource": NOT_ROTATED,
}
ISSUER_SUPPRESSIONS = {
    "Issuer/Issuer/Role/DefaultPolicy/Resource": {"AwsSolutions-IAM5", *INLINE},
    "Issuer/Issuer/Function/Resource": {"AwsSolutions-L1", *shared("LambdaDLQ", "LambdaInsideVPC")},
    "Issuer/ManifestAccess/Resource": {"AwsSolutions-IAM5", *INLINE},
    "Issuer/Ledger/Resource": shared("DynamoDBInBackupPlan"),
    "Issuer/Idempotency/Resource": shared("DynamoDBInBackupPlan"),
}
CRL_BUCKET_SUPPRESSIONS = {
    "CertificateAuthority/CrlBucket/Resource": {
        "AwsSolutions-S1",
        *shared("S3BucketLoggingEnabled", "S3BucketReplicationEnabled", "S3DefaultEncryptionKMS"),
    }
}
EXPECTED_SUPPRESSIONS = {
    "main": ROTATOR_SUPPRESSIONS,
    "created_ca": {**ROTATOR_SUPPRESSIONS, **CRL_BUCKET_SUPPRESSIONS},
    # The app's own task role: CDK's grants to it land in its inline default policy.
    "platform": {**ROTATOR_SUPPRESSIONS, "OrdersTask/DefaultPolicy/Resource": INLINE},
    "default_app": {**ROTATOR_SUPPRESSIONS, **ISSUER_SUPPRESSIONS},
}


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """app.py's app with cdk.json's configuration (issuer included), synthesized."""
    import app as entry_point

    context = {**entry_point._cdk_json_context(), "certrotor:skip_bundling": "true"}
    app, stack = entry_point.build_app(context, outdir=str(tmp_path_factory.mktemp("default.out")))
    app.synth()
    return stack


@pytest.fixture(scope="module", params=["main", "created_ca", "platform"])
def synth(request: pytest.FixtureRequest, infra_app: Any) -> Any:
    """Each stack: ours, with a created CA, and certrotor inside another app's stack."""
    if request.param == "platform":
        return infra_app.platform.synth
    return getattr(infra_app, request.param)


def _stack(name: str, request: pytest.FixtureRequest) -> Stack:
    if name == "default_app":
        stack: Stack = request.getfixturevalue("default_app")
        return stack
    infra_app = request.getfixturevalue("infra_app")
    synthesized = infra_app.platform.synth if name == "platform" else getattr(infra_app, name)
    return synthesized.stack  # type: ignore[no-any-return]


def suppressed_rules(stack: Stack) -> dict[str, set[str]]:
    """The rule ids suppressed on each resource of ``stack``, by construct path
    below the certrotor construct (set names and chain numbers generalized).
    Every resource one generalized path covers suppresses the same rules."""
    found: dict[str, list[set[str]]] = {}
    for construct in stack.node.find_all():
        metadata = construct.get_metadata("cdk_nag") if isinstance(construct, CfnResource) else None
        if not metadata:
            continue
        path = re.sub(r"^[^/]+/((Certrotor|Certificates)/)?", "", construct.node.path)
        path = re.sub(r"CertificateSet\[[^\]]+\]", "CertificateSet[*]", path)
        path = re.sub(r"/Chain\d+/", "/ChainN/", path)
        found.setdefault(path, []).append({rule["id"] for rule in metadata["rules_to_suppress"]})
    for path, variants in found.items():
        assert all(variant == variants[0] for variant in variants), (path, variants)
    return {path: variants[0] for path, variants in found.items()}


@pytest.mark.parametrize("name", STACKS)
def test_no_pack_reports_an_unsuppressed_error_or_warning(name: str, request: pytest.FixtureRequest) -> None:
    stack = _stack(name, request)
    findings = [
        *Annotations.from_stack(stack).find_error("*", NAG_RULE),
        *Annotations.from_stack(stack).find_warning("*", NAG_RULE),
    ]

    assert [(f.id, f.entry.data) for f in findings] == []


@pytest.mark.parametrize("name", STACKS)
def test_exactly_the_reviewed_findings_are_suppressed_each_on_its_resource(
    name: str, request: pytest.FixtureRequest
) -> None:
    assert suppressed_rules(_stack(name, request)) == EXPECTED_SUPPRESSIONS[name]


def test_app_py_runs_all_three_packs(default_app: Stack) -> None:
    aspects = Aspects.of(default_app.node.root).all
    for pack in (AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks):
        assert [a for a in aspects if isinstance(a, pack)], pack.__name__


def nag_suppressions(synth: Any) -> list[dict[str, Any]]:
    found = []
    for resource in synth.resources.values():
        rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
        found.extend(rules)
    return found


def test_every_suppression_states_its_reason(synth: Any) -> None:
    suppressions = nag_suppressions(synth)

    assert suppressions
    for suppression in suppressions:
        assert len(suppression["reason"]) >= 60, suppression


def test_wildcard_resource_suppression_covers_only_resource_star_or_tagged_names(synth: Any) -> None:
    # Besides Resource::*: names conditioned on the rotator's tag, and the
    # re-key state machine's own child executions.
    children = child_executions_nag(synth.stack, f"{synth.config.service_name}-rekey")
    allowed = (["Resource::*"], [{"regex": TAGGED_RESOURCES_REGEX}], [children])
    for suppression in nag_suppressions(synth):
        if suppression["id"] == "AwsSolutions-IAM5":
            assert suppression["applies_to"] in allowed, suppression


def test_cfn_lint_finds_nothing(infra_app: Any) -> None:
    templates = [str(synth.template_path) for synth in (infra_app.main, infra_app.created_ca, infra_app.platform.synth)]
    cfn_lint = Path(sys.executable).with_name("cfn-lint")

    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--ignore-checks", *CFN_LINT_IGNORED, "--", *templates],
        capture_output=True,
        text=True,
        check=False,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# ---------------------------------------------------------------------------
# The findings fixed rather than accepted


@pytest.mark.parametrize("name", ["main", "created_ca"])
def test_every_log_group_is_encrypted_with_the_rotators_log_key(name: str, request: pytest.FixtureRequest) -> None:
    synth = request.getfixturevalue(name)
    log_key = synth.logical_id(synth.stack.certrotor.log_key)

    groups = synth.resources_of_type("AWS::Logs::LogGroup")

    # Rotation, monitor and re-key.
    assert len(groups) == 3
    assert [g["Properties"].get("KmsKeyId") for g in groups.values()] == [{"Fn::GetAtt": [log_key, "Arn"]}] * 3


def test_the_log_key_serves_only_this_accounts_log_groups_and_outlives_them(main: Any) -> None:
    key = main.resources[main.logical_id(main.stack.certrotor.log_key)]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    for_logs = [s for s in statements if s["Principal"] != {"AWS": {"Fn::Join": ["", ANY_ROOT]}}]

    assert key["DeletionPolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert len(for_logs) == 1
    statement = for_logs[0]
    assert statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    assert sorted(statement["Action"]) == [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:Encrypt",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    ]
    log_groups_here = {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":logs:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                ":log-group:*",
            ],
        ]
    }
    assert statement["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups_here}}


ANY_ROOT = ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]


def _function(synth: Any, function: Any) -> dict[str, Any]:
    return dict(synth.resources[synth.logical_id(function)]["Properties"])


def test_the_monitors_failed_runs_go_to_the_alarm_topic(main: Any) -> None:
    certrotor = main.stack.certrotor
    monitor = _function(main, certrotor.monitor.function)

    assert monitor["DeadLetterConfig"] == {"TargetArn": main.resolve(certrotor.alarm_topic.topic_arn)}
    # Secrets Manager and Function URL callers invoke synchronously: no DLQ.
    assert "DeadLetterConfig" not in _function(main, certrotor.rotation.function)


def test_every_function_has_reserved_concurrency(main: Any, default_app: Stack) -> None:
    certrotor = main.stack.certrotor

    # The rotation's is derived from the quotas: a fleet re-key runs through it.
    rotation = _function(main, certrotor.rotation.function)["ReservedConcurrentExecutions"]
    assert rotation == ROTATION_RESERVED_CONCURRENCY
    # One hourly run at a time.
    assert _function(main, certrotor.monitor.function)["ReservedConcurrentExecutions"] == 1
    # About Private CA's 25 IssueCertificate TPS at the issuer's latency.
    issuer = default_app.certrotor.issuer.function  # type: ignore[attr-defined]
    assert issuer.node.default_child.reserved_concurrent_executions == 10


@pytest.fixture(scope="module")
def in_vpc(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """A rotator whose functions run in an (imported) VPC, with the issuer."""
    app = App(outdir=str(tmp_path_factory.mktemp("vpc.out")))
    stack = Stack(app, "InVpc", env=Environment(account="123456789012", region="us-east-1"))
    vpc = ec2.Vpc.from_vpc_attributes(
        stack,
        "Vpc",
        vpc_id="vpc-0123456789abcdef0",
        availability_zones=["us-east-1a", "us-east-1b"],
        private_subnet_ids=["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
    )
    CertificateRotator(
        stack,
        "Certificates",
        certificate_authority=CA_ARN,
        skip_bundling=True,
        vpc=vpc,
        issuer_policies=[IssuerPolicy(principal="arn:aws:iam::123456789012:role/batch-task", allowed_dns=("*.batch",))],
    )
    for pack in compliance_packs():
        Aspects.of(app).add(pack)
    app.synth()
    return stack


def test_functions_placed_in_a_vpc_pass_every_pack_without_the_vpc_suppression(in_vpc: Stack) -> None:
    findings = [
        *Annotations.from_stack(in_vpc).find_error("*", NAG_RULE),
        *Annotations.from_stack(in_vpc).find_warning("*", NAG_RULE),
    ]
    suppressed = suppressed_rules(in_vpc)
    vpc_access = {"AwsSolutions-IAM5", *INLINE}
    for_vpc = {
        **ROTATOR_SUPPRESSIONS,
        **ISSUER_SUPPRESSIONS,
        "Rotation/Function/Resource": {"AwsSolutions-L1", *shared("LambdaDLQ")},
        "Monitor/Function/Resource": {"AwsSolutions-L1"},
        "Issuer/Issuer/Function/Resource": {"AwsSolutions-L1", *shared("LambdaDLQ")},
        "Rotation/VpcAccess/Resource": vpc_access,
        "Monitor/VpcAccess/Resource": vpc_access,
        "Issuer/Issuer/VpcAccess/Resource": vpc_access,
    }
    del for_vpc["CertificateSet[*]/PrivateKey/Resource"], for_vpc["CertificateSet[*]/ChainN/Resource"]

    assert [(f.id, f.entry.data) for f in findings] == []
    assert suppressed == for_vpc


def test_functions_in_a_vpc_may_place_themselves_before_they_are_created(in_vpc: Stack) -> None:
    template = Template.from_stack(in_vpc).to_json()["Resources"]
    functions = {k: v for k, v in template.items() if v["Type"] == "AWS::Lambda::Function"}
    policies = {k: v for k, v in template.items() if v["Type"] == "AWS::IAM::Policy" and "VpcAccess" in k}

    assert len(functions) == 3
    for function in functions.values():
        config = function["Properties"]["VpcConfig"]
        assert config["SubnetIds"] == ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
        assert len(config["SecurityGroupIds"]) == 1
        assert [p for p in function["DependsOn"] if p in policies]
    assert len(policies) == 3
    for policy in policies.values():
        assert policy["Properties"]["PolicyDocument"]["Statement"] == [
            {
                "Action": [
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                "Effect": "Allow",
                "Resource": "*",
            }
        ]
