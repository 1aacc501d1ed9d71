"""Each certificate set becomes its secrets, KMS keys and rotation schedule."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from certrotor.fleet.plan import deployed_schedules
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor_cdk.rotating_certificate import RotatingCertificate

SET_NAMES = ["tls/orders", "tls/payments", "mtls/ledger"]


def certificate(synth: Any, name: str) -> RotatingCertificate:
    return next(c for c in synth.stack.certrotor.certificates if c.certificate_set.name == name)


def secret_resource(synth: Any, secret: Any) -> dict[str, Any]:
    return synth.resources[synth.logical_id(secret)]


@pytest.mark.parametrize("name", SET_NAMES)
def test_each_set_has_a_manifest_a_key_and_its_chain_part_secrets(main: Any, name: str) -> None:
    cert = certificate(main, name)
    expected = [
        name,
        f"{name}/key",
        *(f"{name}/chain-{i}" for i in range(cert.certificate_set.chain_parts)),
    ]

    names = [secret_resource(main, s)["Properties"]["Name"] for s in cert.secrets]

    assert names == expected


def test_the_stack_creates_exactly_the_configured_secrets(main: Any) -> None:
    # Each set's manifest, key and chain parts, and the rotator's trust bundle.
    expected = sum(2 + s.chain_parts for s in main.config.sets) + 1

    main.template.resource_count_is("AWS::SecretsManager::Secret", expected)


@pytest.mark.parametrize("name", SET_NAMES)
def test_manifest_and_chain_parts_are_encrypted_with_the_certificate_key(main: Any, name: str) -> None:
    cert = certificate(main, name)
    key_ref = main.resolve(cert.certificate_key.key_arn)

    for secret in [cert.manifest_secret, *cert.chain_secrets]:
        assert secret_resource(main, secret)["Properties"]["KmsKeyId"] == key_ref


@pytest.mark.parametrize("name", SET_NAMES)
def test_private_key_secret_has_its_own_kms_key(main: Any, name: str) -> None:
    cert = certificate(main, name)

    key_id = secret_resource(main, cert.private_key_secret)["Properties"]["KmsKeyId"]

    assert key_id == main.resolve(cert.private_key_key.key_arn)
    assert key_id != main.resolve(cert.certificate_key.key_arn)


def test_every_kms_key_is_customer_managed_with_rotation_enabled(main: Any) -> None:
    keys = main.resources_of_type("AWS::KMS::Key")

    # Two per set, one each for the alarm topic, the trust bundle and the log groups.
    assert len(keys) == 2 * len(SET_NAMES) + 3
    assert all(key["Properties"]["EnableKeyRotation"] is True for key in keys.values())


def test_secrets_and_their_keys_are_retained_when_removed_from_the_stack(main: Any) -> None:
    cert = certificate(main, "tls/orders")

    for construct in [*cert.secrets, cert.certificate_key, cert.private_key_key]:
        assert main.resources[main.logical_id(construct)]["DeletionPolicy"] == "Retain"


def test_secrets_hold_only_a_placeholder_until_the_first_rotation(main: Any) -> None:
    for secret in main.resources_of_type("AWS::SecretsManager::Secret").values():
        assert secret["Properties"]["SecretString"] == INITIAL_VALUE


def test_only_the_manifest_secrets_have_a_rotation_schedule(main: Any) -> None:
    schedules = main.resources_of_type("AWS::SecretsManager::RotationSchedule")

    rotated = [schedule["Properties"]["SecretId"] for schedule in schedules.values()]

    assert sorted(map(str, rotated)) == sorted(
        str(main.resolve(certificate(main, name).manifest_secret.secret_arn)) for name in SET_NAMES
    )


@pytest.mark.parametrize(
    ("name", "rules", "immediately"),
    [
        # Rates are deployed spread: a cron whose days and hour SHA-256 of the
        # set's name picks (rate(14 days): two days 14 apart, the month's end
        # within validity less the 10 alarm days); the user's cron as written.
        ("tls/orders", {"ScheduleExpression": "cron(0 20 2,16 * ? *)", "Duration": "4h"}, True),
        ("tls/payments", {"ScheduleExpression": "cron(0 12 6,26 * ? *)", "Duration": "4h"}, True),
        ("mtls/ledger", {"ScheduleExpression": "cron(0 4 ? * MON *)", "Duration": "2h"}, False),
    ],
)
def test_rotation_schedule_carries_the_configured_expression_window_and_immediacy(
    main: Any, name: str, rules: dict[str, str], immediately: bool
) -> None:
    schedule = main.resources[main.stack.get_logical_id(certificate(main, name).rotation_schedule)]

    assert schedule["Properties"]["RotationRules"] == rules
    assert schedule["Properties"]["RotateImmediatelyOnUpdate"] is immediately
    assert schedule["Properties"]["RotationLambdaARN"] == main.resolve(
        main.stack.certrotor.rotation.function.function_arn
    )


def test_every_set_is_deployed_with_the_schedule_the_plan_shows(main: Any) -> None:
    planned = deployed_schedules(main.config)

    for cert in main.stack.certrotor.certificates:
        schedule = main.resources[main.stack.get_logical_id(cert.rotation_schedule)]
        rules = planned[cert.certificate_set.name].rotation_rules()
        assert schedule["Properties"]["RotationRules"] == rules


def test_rotation_schedule_waits_for_the_part_secrets(main: Any) -> None:
    cert = certificate(main, "mtls/ledger")
    schedule = main.resources[main.stack.get_logical_id(cert.rotation_schedule)]

    depends_on = set(schedule["DependsOn"])

    assert {main.logical_id(s) for s in cert.part_secrets} <= depends_on


def test_secrets_manager_may_invoke_the_rotation_function_for_this_accounts_secrets_only(main: Any) -> None:
    # One permission for the fleet (a function policy holds about 45 per-set
    # statements); the function serves only manifests tagged with its id.
    main.template.resource_properties_count_is(
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "Principal": "secretsmanager.amazonaws.com",
            "FunctionName": main.resolve(main.stack.certrotor.rotation.function.function_arn),
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {
                "Fn::Join": [
                    "",
                    [
                        "arn:",
                        {"Ref": "AWS::Partition"},
                        ":secretsmanager:",
                        {"Ref": "AWS::Region"},
                        ":",
                        {"Ref": "AWS::AccountId"},
                        ":secret:*",
                    ],
                ]
            },
        },
        1,
    )


def test_secrets_are_tagged_with_their_set(main: Any) -> None:
    cert = certificate(main, "tls/orders")

    tags = secret_resource(main, cert.private_key_secret)["Properties"]["Tags"]

    assert {"Key": "certrotor:certificate-set", "Value": "tls/orders"} in tags


def test_rotation_function_runs_python_3_13_on_arm64_with_time_for_private_ca(main: Any) -> None:
    main.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "certrotor.handlers.rotate.lambda_handler",
            "Runtime": "python3.13",
            "Architectures": ["arm64"],
            "Timeout": 300,
            # 6.25 rotations/s at the quota bound x 6 s a rotation.
            "ReservedConcurrentExecutions": 38,
            "TracingConfig": {"Mode": "Active"},
        },
    )


def test_rotation_function_environment_is_settings_only(main: Any) -> None:
    function = main.resources[main.logical_id(main.stack.certrotor.rotation.function)]

    variables = function["Properties"]["Environment"]["Variables"]

    assert variables == {
        # The rotator's settings; each set's spec is on its manifest.
        "CERTROTOR_CONFIG": main.stack.certrotor.config.to_json(),
        "CERTROTOR_CA_ARN": main.config.ca.arn,
        "POWERTOOLS_SERVICE_NAME": "certrotor",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_METRICS_NAMESPACE": "certrotor",
    }


def test_functions_log_to_their_own_group_with_the_configured_retention(main: Any) -> None:
    rotation = main.stack.certrotor.rotation

    function = main.resources[main.logical_id(rotation.function)]

    assert function["Properties"]["LoggingConfig"]["LogGroup"] == main.resolve(rotation.log_group.log_group_name)
    # 45 days configured; CloudWatch Logs offers 60 as the next period
    # (rotation, monitor and the re-key state machine).
    main.template.resource_properties_count_is("AWS::Logs::LogGroup", {"RetentionInDays": 60}, 3)


def test_monitor_function_runs_the_monitor_handler(main: Any) -> None:
    main.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "certrotor.handlers.monitor.lambda_handler",
            "Runtime": "python3.13",
            "TracingConfig": {"Mode": "Active"},
            "Environment": {"Variables": Match.object_like({"POWERTOOLS_METRICS_NAMESPACE": "certrotor"})},
        },
    )
