"""A CA rotation asked for by the deploy (CertificateRotator's ca_rotation,
or ca.rotation in the config): the synthesized template gives the monitor
what it needs to begin and advance it, and nothing more."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from certrotor.config import CaRotationTarget, load_config, load_config_json
from certrotor.errors import ConfigError
from certrotor_cdk import CertificateRotator
from certrotor_cdk.certrotor_construct import Certrotor

CA_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555"
NEW_ARN = "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/99999999-2222-3333-4444-555555555555"
CODE = lambda_.Code.from_inline("def handler(event, context):\n    return None\n")


def synth(**props: Any) -> tuple[CertificateRotator, dict[str, Any]]:
    stack = Stack(App(), "Rotation")
    rotator = CertificateRotator(stack, "Rotator", certificate_authority=CA_ARN, code=CODE, **props)
    return rotator, dict(Template.from_stack(stack).to_json())


def monitor_config(rotator: CertificateRotator, template: dict[str, Any]) -> Any:
    logical = Stack.of(rotator).get_logical_id(rotator.monitor.function.node.default_child)  # type: ignore[arg-type]
    variables = template["Resources"][logical]["Properties"]["Environment"]["Variables"]
    return load_config_json(variables["CERTROTOR_CONFIG"], require_sets=False)


def statements(template: dict[str, Any], sid_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            found += [
                s
                for s in resource["Properties"]["PolicyDocument"]["Statement"]
                if s.get("Sid", "").startswith(sid_prefix)
            ]
    return found


def test_the_prop_reaches_the_monitor_and_grants_it_rotate_and_the_ca_tag_only() -> None:
    rotator, template = synth(ca_rotation=CaRotationTarget(NEW_ARN, until="prune"))
    config = monitor_config(rotator, template)
    assert config.ca.rotation == CaRotationTarget(NEW_ARN, "prune")
    # The target is the CA the sets may issue from next
    assert config.ca.next_arn == NEW_ARN and NEW_ARN in rotator.certificate_authority_arns
    rotate, tag = statements(template, "CaRotation")
    assert sorted(rotate["Action"]) == ["secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"]
    assert rotate["Condition"] == {"StringEquals": {"aws:ResourceTag/certrotor:rotator": "certrotor"}}
    assert tag["Action"] == "secretsmanager:TagResource"
    assert tag["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["certrotor:ca"]}


def test_without_the_prop_the_monitor_may_not_rotate() -> None:
    rotator, template = synth()
    assert monitor_config(rotator, template).ca.rotation is None
    assert statements(template, "CaRotation") == []


def test_the_config_form_reaches_the_monitor_too() -> None:
    stack = Stack(App(), "FromConfig")
    config = load_config(
        {
            "ca": {"arn": CA_ARN, "rotation": {"to_arn": NEW_ARN}},
            "sets": [{"name": "tls/x", "dns_names": ["x.internal"]}],
        }
    )
    certrotor = Certrotor(stack, "Certrotor", config=config, code=CODE)
    assert monitor_config(certrotor, dict(Template.from_stack(stack).to_json())).ca.rotation == CaRotationTarget(
        NEW_ARN
    )


@pytest.mark.parametrize(
    ("rotation", "message"),
    [
        ({"to_arn": "nope"}, "is not a Private CA ARN"),
        ({"to_arn": CA_ARN}, r"must differ from ca\.arn"),
        ({"to_arn": NEW_ARN, "until": "disable"}, "one of move, prune"),
        ({"to_arn": NEW_ARN, "stage": "x"}, "unknown keys"),
    ],
)
def test_a_bad_rotation_is_one_clear_error(rotation: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"ca": {"arn": CA_ARN, "rotation": rotation}, "sets": [{"name": "tls/x", "dns_names": ["x.in"]}]})


def test_a_prop_target_other_than_next_arn_is_refused() -> None:
    from certrotor.config import CaConfig

    other = NEW_ARN.replace("9999", "8888")
    with pytest.raises(ConfigError, match=r"differs from ca\.next_arn"):
        CertificateRotator(
            Stack(App(), "Refused"),
            "Rotator",
            certificate_authority=CaConfig(arn=CA_ARN, next_arn=other),
            code=CODE,
            ca_rotation=CaRotationTarget(NEW_ARN),
        )
