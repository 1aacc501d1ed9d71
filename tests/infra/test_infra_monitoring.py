"""Alarms, event rules, the alarm topic and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match


def alarms(synth: Any) -> dict[str, Any]:
    return synth.resources_of_type("AWS::CloudWatch::Alarm")


def alarms_on(synth: Any, namespace: str, metric_name: str) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in alarms(synth).values()
        if a["Properties"].get("Namespace") == namespace and a["Properties"].get("MetricName") == metric_name
    ]


def dimensions(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_monitor_runs_every_hour(main: Any) -> None:
    monitor = main.stack.certrotor.monitor.function

    main.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 hour)",
            "Targets": [Match.object_like({"Arn": main.resolve(monitor.function_arn)})],
        },
    )


def test_each_set_has_a_days_to_expiry_alarm_below_the_configured_days(main: Any) -> None:
    expiry = alarms_on(main, "certrotor", "DaysToExpiry")

    assert sorted(dimensions(a)["CertificateSet"] for a in expiry) == sorted(s.name for s in main.config.sets)
    for alarm in expiry:
        assert dimensions(alarm)["service"] == "certrotor"
        assert alarm["Threshold"] == 10
        assert alarm["ComparisonOperator"] == "LessThanThreshold"
        assert alarm["Statistic"] == "Minimum"
        # No figure for two hours means the monitor is broken: alarm too.
        assert alarm["TreatMissingData"] == "breaching"


@pytest.mark.parametrize("metric", ["RotationFailed", "RedeployFailed"])
def test_rotation_metrics_raise_an_alarm_on_the_first_failure(main: Any, metric: str) -> None:
    [alarm] = alarms_on(main, "certrotor", metric)

    assert dimensions(alarm) == {"service": "certrotor"}
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_both_functions_raise_an_alarm_on_errors(main: Any) -> None:
    certrotor = main.stack.certrotor
    functions = {
        json.dumps(main.resolve(f.function.function_name), sort_keys=True)
        for f in (certrotor.rotation, certrotor.monitor)
    }

    watched = {
        json.dumps(dimensions(a)["FunctionName"], sort_keys=True) for a in alarms_on(main, "AWS/Lambda", "Errors")
    }

    assert watched == functions


def test_rotation_throttling_raises_an_alarm(main: Any) -> None:
    [alarm] = alarms_on(main, "AWS/Lambda", "Throttles")

    assert dimensions(alarm)["FunctionName"] == main.resolve(main.stack.certrotor.rotation.function.function_name)


def test_secrets_manager_rotation_failures_of_the_manifests_are_matched(main: Any) -> None:
    manifests = [main.resolve(c.manifest_secret.secret_arn) for c in main.stack.certrotor.certificates]

    main.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.secretsmanager"],
                "detail-type": ["AWS Service Event via CloudTrail"],
                "detail": {
                    "eventSource": ["secretsmanager.amazonaws.com"],
                    "eventName": ["RotationFailed"],
                    "additionalEventData": {"SecretId": manifests},
                },
            }
        },
    )


def test_ecs_deployment_failures_of_the_configured_services_are_matched(main: Any) -> None:
    rules = main.resources_of_type("AWS::Events::Rule").values()
    [pattern] = [
        r["Properties"]["EventPattern"]
        for r in rules
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ecs"]
    ]

    assert pattern["detail-type"] == ["ECS Deployment State Change"]
    assert [r["Fn::Join"][1][-1] for r in pattern["resources"]] == [
        ":service/main/orders",
        ":service/main/ledger",
        ":service/batch/ledger-worker",
    ]
    failed, rolled_back = pattern["detail"]["$or"]
    assert failed == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    assert rolled_back["eventName"] == ["SERVICE_DEPLOYMENT_IN_PROGRESS"]


def test_no_ecs_rule_when_no_set_redeploys_a_service(created_ca: Any) -> None:
    rules = created_ca.resources_of_type("AWS::Events::Rule").values()

    assert not [r for r in rules if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ecs"]]


@pytest.mark.parametrize("rule_id", ["RotationFailedRule", "DeploymentFailedRule"])
def test_matched_events_raise_an_alarm_and_reach_the_topic(main: Any, rule_id: str) -> None:
    monitoring = main.stack.certrotor.monitoring
    rule = monitoring.node.find_child(rule_id)
    topic = main.resolve(monitoring.topic.topic_arn)

    [alarm] = [
        a
        for a in alarms_on(main, "AWS/Events", "TriggeredRules")
        if dimensions(a)["RuleName"] == main.resolve(rule.rule_name)
    ]
    targets = main.resources[main.logical_id(rule)]["Properties"]["Targets"]

    assert alarm["Threshold"] == 1
    assert [t["Arn"] for t in targets] == [topic]


def test_every_alarm_notifies_the_alarm_topic(main: Any) -> None:
    topic = main.resolve(main.stack.certrotor.monitoring.topic.topic_arn)

    for alarm in alarms(main).values():
        assert alarm["Properties"]["AlarmActions"] == [topic]
        assert alarm["Properties"]["OKActions"] == [topic]


def test_alarm_topic_is_encrypted_with_a_customer_managed_key(main: Any) -> None:
    monitoring = main.stack.certrotor.monitoring

    main.template.has_resource_properties(
        "AWS::SNS::Topic",
        {"KmsMasterKeyId": main.resolve(monitoring.topic_key.key_arn)},
    )


def test_alarm_topic_refuses_publishing_without_tls(main: Any) -> None:
    main.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "sns:Publish",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )


ACCOUNT = {"Ref": "AWS::AccountId"}
ALARMS_OF_THIS_ACCOUNT = {
    "Fn::Join": [
        "",
        ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"}, ":", ACCOUNT, ":alarm:*"],
    ]
}


def topic_key_statements(synth: Any, service: str) -> list[dict[str, Any]]:
    key = synth.resources[synth.logical_id(synth.stack.certrotor.monitoring.topic_key)]
    return [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": service}]


def topic_policy_statements(synth: Any, service: str) -> list[dict[str, Any]]:
    [policy] = synth.resources_of_type("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    return [s for s in statements if s.get("Principal") == {"Service": service}]


@pytest.mark.parametrize("synth_name", ["main", "created_ca"])
def test_cloudwatch_may_encrypt_for_the_alarm_topic_only_for_alarms_of_this_account(
    synth_name: str, request: Any
) -> None:
    synth = request.getfixturevalue(synth_name)

    statements = topic_key_statements(synth, "cloudwatch.amazonaws.com")

    assert statements == [
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": ALARMS_OF_THIS_ACCOUNT},
            },
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Resource": "*",
        }
    ]


def test_eventbridge_may_publish_to_the_alarm_topic_only_for_rules_of_this_account(main: Any) -> None:
    main.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "events.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                            }
                        )
                    ]
                )
            }
        },
    )
    # One grant only: an unconditioned second one (SnsTopic's) would undo it.
    assert len(topic_policy_statements(main, "events.amazonaws.com")) == 1


def test_eventbridge_may_encrypt_for_the_alarm_topic(main: Any) -> None:
    # Amazon SNS does not support SourceAccount/SourceArn in the key policy for
    # EventBridge-to-encrypted-topic delivery: the topic policy holds EventBridge
    # to this account, the key statement must stay unconditioned to deliver.
    statements = topic_key_statements(main, "events.amazonaws.com")

    assert statements == [
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": "*",
        }
    ]


@pytest.mark.parametrize("synth_name", ["main", "created_ca"])
def test_no_service_may_publish_to_the_alarm_topic_for_another_account(synth_name: str, request: Any) -> None:
    synth = request.getfixturevalue(synth_name)
    [policy] = synth.resources_of_type("AWS::SNS::TopicPolicy").values()

    allowed_services = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and "Service" in s.get("Principal", {})
    ]

    assert allowed_services
    assert all(s["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT for s in allowed_services)


def test_alarm_email_is_subscribed_when_configured(created_ca: Any) -> None:
    created_ca.template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"}
    )


def test_no_subscription_without_an_alarm_email(main: Any) -> None:
    main.template.resource_count_is("AWS::SNS::Subscription", 0)


def test_dashboard_shows_expiry_rotations_functions_and_alarms(main: Any) -> None:
    [dashboard] = main.resources_of_type("AWS::CloudWatch::Dashboard").values()

    body = json.dumps(dashboard["Properties"]["DashboardBody"])

    for title in ("Days to expiry", "Rotations", "Rotation function", "Monitor function"):
        assert title in body
    assert "certrotor alarms" in body
