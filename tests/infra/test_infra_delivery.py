"""A set's delivery mode reaches the construct: a set whose consumers reload
gives the rotation function no ECS permission at all."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from certrotor.config import Delivery, load_config
from certrotor_cdk.rotating_certificate import RotatingCertificate

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"


def rotation_policies(**set_fields: Any) -> tuple[RotatingCertificate, str]:
    app = App()
    stack = Stack(app, "Consumer")
    function = lambda_.Function(
        stack,
        "Rotate",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return None\n"),
    )
    cert_set = load_config(
        {"ca": {"arn": CA_ARN}, "sets": [{"name": "tls/live", "dns_names": ["live.internal"], **set_fields}]}
    ).sets[0]
    construct = RotatingCertificate(stack, "Live", certificate_set=cert_set, ca_arn=CA_ARN, rotation_function=function)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    return construct, json.dumps(policies)


def test_a_reload_set_gives_the_rotation_function_no_ecs_permission() -> None:
    construct, policies = rotation_policies(delivery="reload")
    assert construct.certificate_set.delivery is Delivery.RELOAD
    assert "ecs:" not in policies
    # while the same set delivered by both still redeploys its service
    _, both = rotation_policies(delivery="both", services=[{"cluster": "main", "service": "live"}])
    assert "ecs:UpdateService" in both
