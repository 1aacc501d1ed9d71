"""Alarms, the alarm topic, event rules and the dashboard of a deployment.

What raises an alarm:
- a certrotor function failing (Lambda Errors) or the rotation function
  being throttled (its reserved concurrency allows the quota bound, no more);
- Secrets Manager reporting a failed rotation (``RotationFailed`` event);
- the rotation function's own RotationFailed / RedeployFailed metrics;
- a set whose certificate expires within ``expiry_alarm_days``, or whose
  DaysToExpiry figure stopped arriving;
- ECS reporting a failed (or rolled back) deployment of a configured service.

Events also go to the topic as a message naming the secret or service, so
a failure arrives with its reason, followed by the alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk.interfaces import aws_events as events_refs
from constructs import Construct

from certrotor.config import CertrotorConfig
from certrotor_cdk.constants import (
    METRIC_REDEPLOY_FAILED,
    METRIC_ROTATION_FAILED,
    METRIC_ROTATION_SUCCEEDED,
    METRICS_NAMESPACE,
    SERVICE_DIMENSION,
)
from certrotor_cdk.lambda_function import CertrotorFunction

FAILURE_PERIOD = Duration.minutes(5)
EXPIRY_PERIOD = Duration.hours(1)
# The monitor runs hourly: two silent hours mean it is broken, which is
# as bad as a certificate about to expire.
EXPIRY_EVALUATION_PERIODS = 2
ECS_FAILED_DEPLOYMENT = "SERVICE_DEPLOYMENT_FAILED"
ECS_DEPLOYMENT_IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"
# A circuit-breaker rollback starts as a new deployment whose reason says so.
ECS_ROLLBACK_REASONS = ("*rolling back*", "*rollback*")
CLOUDWATCH = "cloudwatch.amazonaws.com"
EVENTBRIDGE = "events.amazonaws.com"
# What a publisher needs of the topic's key: SNS encrypts each message under
# a data key and decrypts it for delivery.
TOPIC_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey*")


class Monitoring(Construct):
    """The alarm topic, and ``watch_*`` methods that add alarms and widgets.

    Every alarm notifies ``topic`` (KMS-encrypted, TLS only, with an email
    subscription when ``alarm_email`` is configured).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, config: CertrotorConfig, topic: sns.ITopic | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.alarms: list[cloudwatch.Alarm] = []
        stack = Stack.of(self)
        self._account = stack.account
        self._eventbridge_allowed = False
        self.topic_key: kms.Key | None = None
        if topic is not None:
            # An existing topic: its owner grants CloudWatch and EventBridge.
            self.topic: sns.ITopic = topic
        else:
            self.topic = self._own_topic(stack)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            default_interval=Duration.days(7),
        )

    def _own_topic(self, stack: Stack) -> sns.Topic:
        config = self.config
        self.topic_key = kms.Key(
            self,
            "AlarmTopicKey",
            description="certrotor alarm topic",
            enable_key_rotation=True,
            # Holds no data at rest beyond undelivered notifications.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # CloudWatch alarms publish to an encrypted topic only when the key
        # lets them encrypt for it. SourceAccount/SourceArn keep another
        # account's alarms from using the key (confused deputy).
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(CLOUDWATCH)],
                actions=list(TOPIC_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                },
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            # SNS display names are at most 100 characters.
            display_name=f"{config.service_name} alarms"[:100],
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        if config.alarm_email:
            topic.add_subscription(sns_subscriptions.EmailSubscription(config.alarm_email))
        return topic

    # ------------------------------------------------------------------
    # What to watch

    def watch_function(self, name: str, function: CertrotorFunction, *, alarm_on_throttles: bool = False) -> None:
        """Alarm when the function fails (and, if asked, is throttled)."""
        fn = function.function
        self._alarm(
            f"{name}Errors",
            fn.metric_errors(period=FAILURE_PERIOD, statistic="Sum"),
            f"The certrotor {name.lower()} function failed at least once in 5 minutes.",
        )
        if alarm_on_throttles:
            self._alarm(
                f"{name}Throttles",
                fn.metric_throttles(period=FAILURE_PERIOD, statistic="Sum"),
                f"The certrotor {name.lower()} function was throttled: more rotations at "
                "once than its reserved concurrency, which allows the account's quota bound.",
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title=f"{name} function",
                left=[
                    fn.metric_invocations(statistic="Sum"),
                    fn.metric_errors(statistic="Sum"),
                    fn.metric_throttles(statistic="Sum"),
                ],
                right=[fn.metric_duration(statistic="Maximum")],
                width=12,
            )
        )

    def watch_rotation_metrics(self) -> None:
        """Alarm on the rotation function's own failure metrics (EMF)."""
        failed = self._service_metric(METRIC_ROTATION_FAILED)
        redeploy_failed = self._service_metric(METRIC_REDEPLOY_FAILED)
        self._alarm(
            "RotationFailedMetric",
            failed,
            "The rotation function reported a failed rotation step.",
        )
        self._alarm(
            "RedeployFailedMetric",
            redeploy_failed,
            "A rotation completed but redeploying an ECS service failed; running tasks "
            "keep the previous certificate until they restart.",
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Rotations",
                left=[self._service_metric(METRIC_ROTATION_SUCCEEDED), failed, redeploy_failed],
                period=Duration.days(1),
                width=12,
            )
        )

    def graph_expiry(self, metrics: Sequence[tuple[str, cloudwatch.Metric]]) -> None:
        """A dashboard graph of DaysToExpiry for these sets (their alarms are theirs)."""
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Days to expiry",
                left=[metric.with_(label=name) for name, metric in metrics],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(value=self.config.expiry_alarm_days, label="alarm below")
                ],
                width=24,
            )
        )

    def add_alarm(self, alarm: cloudwatch.Alarm) -> None:
        """Show an alarm made elsewhere (a set's expiry alarm) in the overview."""
        self.alarms.append(alarm)

    def watch_secrets_manager_rotations(
        self, manifest_secret_arns: Sequence[str], *, prefix_match: bool = False
    ) -> None:
        """Alarm when Secrets Manager reports RotationFailed for one of these
        secrets (or, with ``prefix_match``, for secrets whose ARN starts so)."""
        secret_ids: list[Any] = (
            [{"prefix": arn.rstrip("*")} for arn in manifest_secret_arns]
            if prefix_match
            else list(manifest_secret_arns)
        )
        rule = events.Rule(
            self,
            "RotationFailedRule",
            description="Secrets Manager could not rotate a certrotor certificate set",
            event_pattern=events.EventPattern(
                source=["aws.secretsmanager"],
                detail_type=["AWS Service Event via CloudTrail"],
                detail={
                    "eventSource": ["secretsmanager.amazonaws.com"],
                    "eventName": ["RotationFailed"],
                    "additionalEventData": {"SecretId": secret_ids},
                },
            ),
        )
        rule.add_target(
            self._topic_target(
                events.RuleTargetInput.from_text(
                    f"certrotor: rotation of {_field('$.detail.additionalEventData.SecretId')} "
                    f"failed: {_field('$.detail.errorMessage')}"
                ),
            )
        )
        self._alarm(
            "RotationFailedEvents",
            _rule_matches(rule),
            "Secrets Manager reported a failed rotation of a certrotor set (RotationFailed).",
        )

    def watch_deployments(self, service_arns: Sequence[str]) -> None:
        """Alarm when ECS fails (or rolls back) a deployment of these services."""
        if not service_arns:
            return
        rule = events.Rule(
            self,
            "DeploymentFailedRule",
            description="ECS failed or rolled back a deployment of a service certrotor redeploys",
            event_pattern=events.EventPattern(
                source=["aws.ecs"],
                detail_type=["ECS Deployment State Change"],
                resources=list(service_arns),
                detail={
                    "$or": [
                        {"eventName": [ECS_FAILED_DEPLOYMENT]},
                        {
                            "eventName": [ECS_DEPLOYMENT_IN_PROGRESS],
                            "reason": [{"wildcard": pattern} for pattern in ECS_ROLLBACK_REASONS],
                        },
                    ]
                },
            ),
        )
        rule.add_target(
            self._topic_target(
                events.RuleTargetInput.from_text(
                    f"certrotor: ECS deployment {_field('$.detail.deploymentId')} "
                    f"of {_field('$.resources[0]')}: {_field('$.detail.eventName')} "
                    f"({_field('$.detail.reason')})"
                ),
            )
        )
        self._alarm(
            "DeploymentFailedEvents",
            _rule_matches(rule),
            "ECS failed or rolled back a deployment of a service that uses a certrotor set.",
        )

    def add_alarm_overview(self) -> None:
        """A dashboard row with the state of every alarm; call after all watch_*."""
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(alarms=list(self.alarms), title="certrotor alarms", width=24)
        )

    # ------------------------------------------------------------------

    def _topic_target(self, message: events.RuleTargetInput) -> events.IRuleTarget:
        """The alarm topic as an EventBridge target, EventBridge allowed once."""
        if not self._eventbridge_allowed:
            self._allow_eventbridge()
            self._eventbridge_allowed = True
        return _TopicTarget(self.topic, message)

    def _allow_eventbridge(self) -> None:
        # The topic policy is where EventBridge is held to this account: a
        # rule of another account cannot publish, so cannot use the key.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(EVENTBRIDGE)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self._account}},
            )
        )
        # No SourceAccount/SourceArn here: Amazon SNS documents that these
        # keys are not supported in a key policy for EventBridge-to-encrypted-
        # topic delivery; with them every event notification would be dropped.
        if self.topic_key is None:
            return
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(EVENTBRIDGE)],
                actions=list(TOPIC_KEY_ACTIONS),
                resources=["*"],
            )
        )

    def _service_metric(self, metric_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map={SERVICE_DIMENSION: self.config.service_name},
            statistic="Sum",
            period=FAILURE_PERIOD,
        )

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        """At least one occurrence in the period; no data means nothing happened."""
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self._notify(alarm)

    def _notify(self, alarm: cloudwatch.Alarm) -> None:
        action = cloudwatch_actions.SnsAction(self.topic)
        alarm.add_alarm_action(action)
        alarm.add_ok_action(action)
        self.alarms.append(alarm)


@jsii.implements(events.IRuleTarget)
class _TopicTarget:
    """An SNS topic as a rule target, without the grant ``SnsTopic`` adds.

    ``aws_events_targets.SnsTopic`` allows ``events.amazonaws.com`` to
    publish with no condition; ``Monitoring`` grants it with SourceAccount.
    """

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic = topic
        self._message = message

    def bind(self, rule: events_refs.IRuleRef, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message, target_resource=self._topic)


def _rule_matches(rule: events.Rule) -> cloudwatch.Metric:
    """How many events the rule matched (AWS/Events TriggeredRules)."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="TriggeredRules",
        dimensions_map={"RuleName": rule.rule_name},
        statistic="Sum",
        period=FAILURE_PERIOD,
    )


def _field(path: str) -> str:
    """A value of the matched event, placed into a notification's text."""
    return events.EventField.from_path(path)
