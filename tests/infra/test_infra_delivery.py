"""A set's delivery mode reaches the construct: a set whose consumers reload
gives the rotation function no permission on its services, and is not tagged
onto any."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from certrotor.config import Delivery, load_config
from certrotor.errors import ConfigError
from certrotor_cdk import CertificateRotator, RotatingCertificate
from certrotor_cdk.certrotor_construct import Certrotor

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
CODE = lambda_.Code.from_inline("def handler(event, context):\n    return None\n")


def rotation_policies(**set_fields: Any) -> tuple[Certrotor, str]:
    stack = Stack(App(), "Consumer")
    config = load_config(
        {"ca": {"arn": CA_ARN}, "sets": [{"name": "tls/live", "dns_names": ["live.internal"], **set_fields}]}
    )
    certrotor = Certrotor(stack, "Certrotor", config=config, code=CODE)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return certrotor, json.dumps(policies)


def test_a_reload_set_gives_the_rotation_function_no_permission_on_services() -> None:
    certrotor, policies = rotation_policies(delivery="reload")
    assert certrotor.certificates[0].certificate_set.delivery is Delivery.RELOAD
    assert ":service/" not in policies.replace(":service/*", "")
    # while the same set delivered by both still redeploys its service
    _, both = rotation_policies(delivery="both", services=[{"cluster": "main", "service": "live"}])
    assert ":service/main/live" in both


def test_a_typed_reload_set_with_services_is_refused() -> None:
    app = App()
    stack = Stack(app, "Service")
    rotator = CertificateRotator(stack, "Rotator", certificate_authority=CA_ARN, code=CODE)
    service = ecs.FargateService.from_service_arn_with_cluster(
        stack, "Svc", "arn:aws:ecs:us-east-1:123456789012:service/main/live"
    )
    with pytest.raises(ConfigError, match="delivery 'reload' redeploys nothing"):
        RotatingCertificate(
            stack,
            "Live",
            rotator=rotator,
            set_name="tls/live",
            dns_names=["live.internal"],
            delivery="reload",
            services=[service],
        )
