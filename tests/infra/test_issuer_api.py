"""The IssuerApi construct, synthesized next to the Certrotor construct:
the URL's auth, the tables, who may invoke, what the function may do, the
quota alarm, and cdk-nag."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, CfnResource, Stack
from aws_cdk.assertions import Annotations, Match, Template
from constructs import Construct

from certrotor.config import load_config
from certrotor.errors import ConfigError
from certrotor_cdk.compliance import compliance_packs
from certrotor_cdk.issuer_api import IssuerApi
from certrotor_cdk.stack import CertrotorStack

from .conftest import MAIN_CONFIG

ACCOUNT = "123456789012"
POLICIES = [
    {"principal": "orders-task", "allowed_dns": ["*.svc.internal"], "sets": ["tls/orders"]},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/billing-*", "allowed_dns": ["billing.internal"], "usage": "both"},
    {"principal": "arn:aws:iam::210987654321:role/ledger-task", "allowed_dns": ["ledger.internal"]},
]


@pytest.fixture(scope="module")
def issuer_stack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, Template]:
    app = App(outdir=str(tmp_path_factory.mktemp("issuer.out")))
    # Our own stack adds the issuer when the config has issuer policies.
    config = load_config({**copy.deepcopy(MAIN_CONFIG), "issuer_policies": POLICIES})
    stack = CertrotorStack(
        app,
        "Issuer",
        config=config,
        skip_bundling=True,
        env={"account": ACCOUNT, "region": "us-east-1"},
        allow_issuer_principal_patterns=True,
    )
    assert isinstance(stack.issuer, IssuerApi)
    for pack in compliance_packs():
        Aspects.of(app).add(pack)
    assembly = app.synth()
    template = json.loads(Path(assembly.get_stack_artifact(stack.artifact_id).template_full_path).read_text())
    return stack, Template.from_json(template)


def test_a_principal_pattern_needs_the_opt_in() -> None:
    # A pattern matches roles anyone allowed to create roles could add later.
    config = load_config({**copy.deepcopy(MAIN_CONFIG), "issuer_policies": POLICIES})
    with pytest.raises(ConfigError, match=r"billing-\*.*allow_issuer_principal_patterns"):
        CertrotorStack(App(), "NoOptIn", config=config, skip_bundling=True)


def resources(template: Template, kind: str) -> list[dict[str, Any]]:
    return [r for r in template.to_json()["Resources"].values() if r["Type"] == kind]


def issuer_statements(template: Template) -> list[dict[str, Any]]:
    found = []
    for policy in resources(template, "AWS::IAM::Policy"):
        if any("IssuerRole" in str(role) for role in policy["Properties"]["Roles"]):
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def test_the_function_url_requires_iam_auth(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "AWS_IAM"})


def test_both_tables_have_point_in_time_recovery_and_encryption(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    tables = resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 2
    for table in tables:
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"]["SSEEnabled"] is True


def _flat(value: Any) -> str:
    """A template value with Fn::Join of the partition spelled out."""
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join("aws" if part == {"Ref": "AWS::Partition"} else str(part) for part in value["Fn::Join"][1])
    return str(value)


def test_only_the_configured_task_roles_may_invoke(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    url_permissions = [
        p["Properties"]
        for p in resources(template, "AWS::Lambda::Permission")
        if p["Properties"]["Action"] == "lambda:InvokeFunctionUrl"
    ]
    assert sorted(_flat(p["Principal"]) for p in url_permissions) == sorted(
        [f"arn:aws:iam::{ACCOUNT}:role/orders-task", ACCOUNT, "arn:aws:iam::210987654321:role/ledger-task"]
    )
    assert all(p["FunctionUrlAuthType"] == "AWS_IAM" for p in url_permissions)


def test_the_function_issues_only_with_the_policies_templates(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    issue = [s for s in issuer_statements(template) if s["Action"] == "acm-pca:IssueCertificate"]
    assert len(issue) == 1
    templates = [_flat(t) for t in issue[0]["Condition"]["StringEquals"]["acm-pca:TemplateArn"]]
    assert templates == [
        "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
        "arn:aws:acm-pca:::template/EndEntityServerAuthCertificate/V1",
    ]


def test_the_function_reads_only_secrets_tagged_as_its_rotators_manifests(
    issuer_stack: tuple[Stack, Template],
) -> None:
    # Private keys carry certrotor:part-of, never certrotor:rotator, and
    # their resource policy denies everyone but the rotation role.
    _, template = issuer_stack
    reads = [s for s in issuer_statements(template) if any(a.startswith("secretsmanager:") for a in s["Action"])]
    assert reads
    for statement in reads:
        assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/certrotor:rotator": "certrotor"}}


def test_the_function_may_describe_read_and_rotate_the_manifests_it_reports_on(
    issuer_stack: tuple[Stack, Template],
) -> None:
    _, template = issuer_stack
    # Status reads the pending version (DescribeSecret) and the current
    # manifest; issue-now starts a rotation.
    reads = [s for s in issuer_statements(template) if "secretsmanager:GetSecretValue" in s["Action"]]

    assert reads
    for statement in reads:
        assert sorted(statement["Action"]) == [
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue",
            "secretsmanager:RotateSecret",
        ]


def test_quota_use_alarms_at_eighty_percent(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {"MetricName": "QuotaUsedPercent", "Threshold": 80, "ComparisonOperator": "GreaterThanOrEqualToThreshold"},
    )


def test_cdk_nag_reports_no_unsuppressed_findings(issuer_stack: tuple[Stack, Template]) -> None:
    stack, _ = issuer_stack
    rule = Match.string_like_regexp(r"(AwsSolutions|HIPAA\.Security|NIST\.800\.53\.R5)-.*")
    findings = [
        *Annotations.from_stack(stack).find_error("*", rule),
        *Annotations.from_stack(stack).find_warning("*", rule),
    ]
    assert [(f.id, f.entry.data) for f in findings] == []


def test_our_stack_publishes_the_issuer_url(issuer_stack: tuple[Stack, Template]) -> None:
    _, template = issuer_stack
    assert "IssuerUrl" in template.to_json()["Outputs"]


def test_a_stack_without_issuer_policies_has_no_function_url(main: Any) -> None:
    assert main.resources_of_type("AWS::Lambda::Url") == {}


def test_an_upgraded_stack_keeps_its_issuer_tables(issuer_stack: tuple[Stack, Template]) -> None:
    # Where the issuer sat directly in the stack, its tables' paths were
    # Issuer/Ledger and Issuer/Idempotency: the same logical IDs keep the
    # deployed tables (no replacement by empty ones).
    previous = Stack(App(), "Previous")
    issuer = Construct(previous, "Issuer")
    expected = {
        previous.resolve(
            previous.get_logical_id(CfnResource(Construct(issuer, name), "Resource", type="AWS::DynamoDB::Table"))
        )
        for name in ("Ledger", "Idempotency")
    }
    _, template = issuer_stack

    tables = {k for k, v in template.to_json()["Resources"].items() if v["Type"] == "AWS::DynamoDB::Table"}

    assert tables == expected
