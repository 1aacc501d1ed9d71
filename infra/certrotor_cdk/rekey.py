"""The re-key state machine: RotateSecret for many sets, paced under the
account's quotas (``certrotor rekey``; definition in
``certrotor.fleet.state_machine``, the same one the emulator runs).

Its role may list secrets (ListSecrets has no resource-level permission),
describe and rotate the rotator's manifest secrets only, and run its own
Distributed Map children; it reads no secret value and decrypts nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagSuppressions
from constructs import Construct

from certrotor.fleet.state_machine import definition_json

REKEY_SECRET_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:RotateSecret")
# A Distributed Map starts, watches and stops child executions of its own state machine.
CHILD_EXECUTION_ACTIONS = ("states:DescribeExecution", "states:StopExecution")
# How cdk-nag names that wildcard resource.
CHILD_EXECUTIONS_NAG = "Resource::arn:{partition}:states:{region}:{account}:execution:{name}/*"


def child_executions_nag(stack: Stack, name: str) -> str:
    """cdk-nag's name for the child-executions resource: the stack's
    partition, region and account as written (a known region fixes the
    partition, as under the cdk CLI), or their pseudo parameters."""
    partition = "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition
    region = "<AWS::Region>" if Token.is_unresolved(stack.region) else stack.region
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    return CHILD_EXECUTIONS_NAG.format(partition=partition, region=region, account=account, name=name)


class RekeyStateMachine(Construct):
    """The re-key state machine of one rotator.

    :param rotator_id: the rotator's id; the state machine is named
        ``<rotator_id>-rekey`` (unique per account and region, as the id is).
    :param manifest_secret_arns: the sets it may rotate.
    :param manifest_conditions: conditions on them (a rotator's tag, when
        the ARNs are a name pattern).
    :param log_retention: of its execution log group.
    :param log_key: the KMS key of its execution log group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rotator_id: str,
        manifest_secret_arns: Sequence[str],
        manifest_conditions: Mapping[str, Any] | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        log_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.name = f"{rotator_id}-rekey"
        self.arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.name}/*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, encryption_key=log_key, removal_policy=removal_policy
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description=f"certrotor {rotator_id}: re-key state machine",
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["secretsmanager:ListSecrets"], resources=["*"]))
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=list(REKEY_SECRET_ACTIONS), resources=list(manifest_secret_arns), conditions=manifest_conditions
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.arn]))
        self.role.add_to_policy(iam.PolicyStatement(actions=list(CHILD_EXECUTION_ACTIONS), resources=[executions]))
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.name,
            definition_body=sfn.DefinitionBody.from_string(definition_json()),
            role=self.role,
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            comment="certrotor: re-key sets through RotateSecret, paced under the account's quotas",
        )
        NagSuppressions.add_resource_suppressions(
            self.role.node.find_child("DefaultPolicy"),
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "ListSecrets, the CloudWatch Logs delivery actions and X-Ray's "
                    "PutTraceSegments support no resource-level permissions; AWS requires Resource '*'. "
                    "Secrets are described and rotated only by ARN.",
                    "appliesTo": ["Resource::*"],
                },
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "A Distributed Map's child executions are named by Step Functions at run time; "
                    "the role may describe and stop only the executions of this state machine.",
                    "appliesTo": [child_executions_nag(stack, self.name)],
                },
            ],
        )
