"""One rotator, sets declared in the services' own stacks: typed props, tokens,
imported rotators, grants, metrics, and the checks made at synth."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, CfnElement, Environment, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Annotations, Match, Template

from certrotor.errors import ConfigError
from certrotor.spec import ROTATOR_TAG, SPEC_PREFIX
from certrotor_cdk import CertificateRotator, RotatingCertificate

ACCOUNT = "123456789012"
ENV = Environment(account=ACCOUNT, region="eu-west-1")
CA_ARN = f"arn:aws:acm-pca:eu-west-1:{ACCOUNT}:certificate-authority/11111111-2222-3333-4444-555555555555"
CODE = lambda_.Code.from_inline("# template tests only")


def rotator_stack(app: App, rotator_id: str = "platform", region: str = "eu-west-1") -> CertificateRotator:
    stack = Stack(app, f"Rotator-{rotator_id}", env=Environment(account=ACCOUNT, region=region))
    ca = CA_ARN.replace("eu-west-1", region)
    return CertificateRotator(stack, "Rotator", certificate_authority=ca, rotator_id=rotator_id, code=CODE)


def service_stack(app: App, name: str = "Orders") -> tuple[Stack, ecs.IBaseService, iam.IRole]:
    stack = Stack(app, name, env=ENV)
    service = ecs.FargateService.from_service_arn_with_cluster(
        stack, "Service", f"arn:aws:ecs:eu-west-1:{ACCOUNT}:service/main/{name.lower()}"
    )
    role = iam.Role.from_role_arn(stack, "TaskRole", f"arn:aws:iam::{ACCOUNT}:role/{name.lower()}-task")
    return stack, service, role


def rotator_template(with_service_set: bool) -> dict[str, Any]:
    app = App()
    rotator = rotator_stack(app)
    if with_service_set:
        stack, service, _ = service_stack(app)
        RotatingCertificate(
            stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"], services=[service]
        )
    return dict(Template.from_stack(Stack.of(rotator)).to_json())


def test_a_set_added_in_a_service_stack_leaves_the_rotators_template_unchanged() -> None:
    assert rotator_template(with_service_set=True) == rotator_template(with_service_set=False)


def test_a_service_stack_set_carries_its_spec_tag_schedule_and_alarm() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, service, role = service_stack(app)
    cert = RotatingCertificate(
        stack,
        "Tls",
        rotator=rotator,
        set_name="tls/orders",
        dns_names=["orders.internal"],
        schedule={"expression": "rate(10 days)", "window": "2h"},
        validity_days=20,
        services=[service],
        readers=[role],
    )
    template = Template.from_stack(stack)
    manifest_child = cert.manifest_secret.node.default_child
    assert isinstance(manifest_child, CfnElement)
    manifest = template.to_json()["Resources"][stack.get_logical_id(manifest_child)]
    description = manifest["Properties"]["Description"]
    assert description.startswith(SPEC_PREFIX)
    spec = json.loads(description[len(SPEC_PREFIX) :])
    assert spec["services"] == [{"cluster": "main", "service": "orders"}]
    assert spec["validity_days"] == 20
    assert {"Key": ROTATOR_TAG, "Value": "platform"} in manifest["Properties"]["Tags"]
    # The schedule names the rotator's function across stacks.
    schedule = template.find_resources("AWS::SecretsManager::RotationSchedule")
    (props,) = [r["Properties"] for r in schedule.values()]
    assert props["RotationLambdaARN"] == {"Fn::ImportValue": "certrotor-platform-rotation-function-arn"}
    # rate(10 days) spread by the set's name: three days 10 apart, its own hour.
    assert props["RotationRules"] == {"ScheduleExpression": "cron(0 10 5,15,25 * ? *)", "Duration": "2h"}
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "DaysToExpiry",
            "Dimensions": Match.array_with([{"Name": "service", "Value": "platform"}]),
            "Threshold": 7,
        },
    )


def test_an_imported_rotator_with_token_attributes_serves_a_set() -> None:
    # Given a rotator known only by attributes, read from SSM parameters (tokens)
    app = App()
    stack, _, role = service_stack(app)

    def parameter(name: str) -> str:
        return ssm.StringParameter.value_for_string_parameter(stack, f"/certrotor/platform/{name}")

    rotator = CertificateRotator.from_rotator_attributes(
        stack,
        "Rotator",
        rotator_id="platform",
        rotation_function_arn=parameter("rotation-function-arn"),
        rotation_role_arn=parameter("rotation-role-arn"),
        certificate_authority_arn=parameter("ca-arn"),
    )
    # When a set names it
    cert = RotatingCertificate(stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"])
    grant = cert.grant_read(role)
    # Then the template synthesizes with the tokens as parameters
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    assert isinstance(grant, iam.Grant) and grant.success
    assert "AWS::SSM::Parameter::Value<String>" in json.dumps(template.to_json()["Parameters"])


def test_grants_return_a_grant_and_reach_an_immutable_role_through_resource_policies() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, _, _ = service_stack(app)
    immutable = iam.Role.from_role_arn(stack, "Immutable", f"arn:aws:iam::{ACCOUNT}:role/fixed", mutable=False)
    cert = RotatingCertificate(stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"])

    grant = cert.grant_private_key_read(immutable)

    assert isinstance(grant, iam.Grant) and grant.success
    policies = Template.from_stack(stack).find_resources("AWS::SecretsManager::ResourcePolicy")
    text = json.dumps(policies)
    assert "role/fixed" in text
    # The key's deny names the rotation role and this key reader only.
    (deny,) = [
        s for p in policies.values() for s in p["Properties"]["ResourcePolicy"]["Statement"] if s["Effect"] == "Deny"
    ]
    allowed = json.dumps(deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"])
    assert "role/fixed" in allowed and "Fn::ImportValue" in allowed


def test_a_grant_to_a_principal_whose_role_is_unknown_is_an_error() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, _, _ = service_stack(app)
    function = lambda_.Function.from_function_arn(stack, "Fn", f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:x")
    cert = RotatingCertificate(stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"])

    with pytest.raises(ConfigError, match="role is unknown"):
        cert.grant_read(function)


def test_metrics_are_cloudwatch_metrics_of_this_rotator_and_set() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, _, _ = service_stack(app)
    cert = RotatingCertificate(stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"])

    expiry, failed = cert.metric_days_to_expiry(), cert.metric_rotation_failed()

    assert isinstance(expiry, cloudwatch.Metric) and isinstance(failed, cloudwatch.Metric)
    assert expiry.dimensions == {"service": "platform", "CertificateSet": "tls/orders"}
    assert (expiry.metric_name, failed.metric_name) == ("DaysToExpiry", "RotationFailed")
    assert isinstance(rotator.metric_rotation_failed(), cloudwatch.Metric)


def test_two_rotators_in_one_account_never_share_a_metric_or_a_function_name() -> None:
    app = App()
    first, second = rotator_stack(app, "team-a"), rotator_stack(app, "team-b")
    stack, _, _ = service_stack(app)
    a = RotatingCertificate(stack, "A", rotator=first, set_name="tls/a", dns_names=["a.internal"])
    b = RotatingCertificate(stack, "B", rotator=second, set_name="tls/b", dns_names=["b.internal"])
    assert a.metric_days_to_expiry().dimensions != b.metric_days_to_expiry().dimensions
    names = [
        Template.from_stack(Stack.of(r)).find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": n}})
        for r, n in ((first, "team-a-rotation"), (second, "team-b-rotation"))
    ]
    assert all(len(found) == 1 for found in names)


def test_an_owned_service_is_tagged_for_the_rotator_and_an_imported_one_is_flagged() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, imported, _ = service_stack(app)
    cluster = ecs.Cluster(stack, "Own")
    task = ecs.FargateTaskDefinition(stack, "Task")
    task.add_container("web", image=ecs.ContainerImage.from_registry("public.ecr.aws/nginx/nginx"))
    owned = ecs.FargateService(stack, "OwnService", cluster=cluster, task_definition=task)
    RotatingCertificate(
        stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"], services=[owned, imported]
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ECS::Service", {"Tags": Match.array_with([{"Key": ROTATOR_TAG, "Value": "platform"}])}
    )
    warnings = Annotations.from_stack(stack).find_warning("*", Match.string_like_regexp(".*is imported: tag it.*"))
    assert len(warnings) == 1


def test_the_same_set_name_twice_in_one_account_and_region_is_a_synth_error() -> None:
    app = App()
    rotator = rotator_stack(app)
    first, _, _ = service_stack(app, "Orders")
    second, _, _ = service_stack(app, "Billing")
    RotatingCertificate(first, "Tls", rotator=rotator, set_name="tls/shared", dns_names=["a.internal"])
    with pytest.raises(ConfigError, match=r"'tls/shared' is declared twice: at Orders/Tls and at Billing/Tls"):
        RotatingCertificate(second, "Tls", rotator=rotator, set_name="tls/shared", dns_names=["b.internal"])
    with pytest.raises(ConfigError, match="collide"):
        RotatingCertificate(second, "Key", rotator=rotator, set_name="tls/shared/key", dns_names=["b.internal"])


def test_a_ca_in_another_region_is_a_synth_error_and_a_token_ca_is_checked_at_run_time() -> None:
    app = App()
    stack = Stack(app, "Rotator", env=ENV)
    with pytest.raises(ConfigError, match=r"Private CA is in us-east-1.*eu-west-1"):
        CertificateRotator(stack, "Rotator", certificate_authority=CA_ARN.replace("eu-west-1", "us-east-1"), code=CODE)
    token_ca = ssm.StringParameter.value_for_string_parameter(stack, "/pki/ca-arn")
    CertificateRotator(stack, "FromParameter", certificate_authority=token_ca, code=CODE)


def test_a_set_in_another_region_than_its_rotator_is_a_synth_error() -> None:
    app = App()
    rotator = rotator_stack(app, region="us-east-1")
    stack, _, _ = service_stack(app)
    with pytest.raises(ConfigError, match="us-east-1"):
        RotatingCertificate(stack, "Tls", rotator=rotator, set_name="tls/orders", dns_names=["orders.internal"])


def test_typed_props_are_validated_like_the_configuration() -> None:
    app = App()
    rotator = rotator_stack(app)
    stack, _, _ = service_stack(app)
    with pytest.raises(ConfigError, match="key_algorithm"):
        RotatingCertificate(
            stack, "Weak", rotator=rotator, set_name="tls/weak", dns_names=["a.internal"], key_algorithm="RSA_1024"
        )
    with pytest.raises(ConfigError, match="dns_names"):
        RotatingCertificate(stack, "Bad", rotator=rotator, set_name="tls/bad", dns_names=["not a name"])
