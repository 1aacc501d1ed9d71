"""One certrotor Lambda function: code, role, log group, tracing, settings.

Every certrotor function (rotation, monitor, and later the on-demand
issuer) is built the same way, so the shared wiring lives here once:
Python 3.13, arm64 by default, X-Ray active tracing, a log group with a
retention, Powertools settings from the configuration, and a role that
starts with nothing but writing to its own log group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from cdk_nag import NagSuppressions
from constructs import Construct

from certrotor.errors import ConfigError
from certrotor_cdk.compliance import accept, accept_default_policy, accept_inline_policy
from certrotor_cdk.constants import (
    ENV_LOG_LEVEL,
    ENV_METRICS_NAMESPACE,
    ENV_SERVICE_NAME,
    LAMBDA_ENVIRONMENT_LIMIT_BYTES,
    METRICS_NAMESPACE,
)

RUNTIME = lambda_.Runtime.PYTHON_3_13
# A deploy-time value (a CA ARN from a Ref) is a token at synth time; count
# it at the longest such ARN can be.
_TOKEN_SIZE_ESTIMATE = 160


@dataclass(frozen=True)
class FunctionSettings:
    """What all certrotor functions of one deployment share."""

    code: lambda_.Code
    architecture: lambda_.Architecture
    service_name: str
    log_level: str
    log_retention: logs.RetentionDays
    environment: Mapping[str, str] = field(default_factory=dict)
    """Variables every function gets (configuration, CA ARN). Never key material."""
    log_key: kms.IKey | None = None
    """The KMS key that encrypts the functions' log groups (the rotator's log key)."""
    vpc: ec2.IVpc | None = None
    """Where the functions run (opt-in); they need a route to the AWS APIs they call."""
    vpc_subnets: ec2.SubnetSelection | None = None
    """The subnets of ``vpc`` (default: its private subnets)."""


# Why no certrotor function runs in a VPC (HIPAA/NIST LambdaInsideVPC).
NOT_IN_VPC_REASON = (
    "The function calls only AWS service APIs (Secrets Manager, KMS, Private CA, ECS, CloudWatch, "
    "X-Ray, DynamoDB) over TLS with SigV4 and reaches nothing in a customer network; a VPC would add "
    "NAT or one interface endpoint per service without narrowing what it can reach, which its IAM "
    "policy already limits. Placement in a VPC is opt-in (the rotator's vpc prop)."
)
# What Lambda does with the function's role to place it in a VPC (the
# actions of AWSLambdaVPCAccessExecutionRole, without its log statements).
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)


class CertrotorFunction(Construct):
    """A Lambda function with its own role and log group.

    The role has no managed policy: it may write to this function's log
    group and send X-Ray traces, and gets everything else from explicit
    grants (``add_to_policy``) by the constructs that use the function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: FunctionSettings,
        handler: str,
        description: str,
        timeout: Duration,
        memory_size: int,
        reserved_concurrency: int,
        dead_letter: sns.ITopic | str,
        function_name: str | None = None,
    ) -> None:
        """:param reserved_concurrency: how many invocations may run at once.
        :param dead_letter: the topic that receives failed asynchronous
            invocations, or (a string) why the function has none.
        """
        super().__init__(scope, construct_id)
        environment = {
            **settings.environment,
            ENV_SERVICE_NAME: settings.service_name,
            ENV_LOG_LEVEL: settings.log_level,
            ENV_METRICS_NAMESPACE: METRICS_NAMESPACE,
        }
        _check_environment_size(environment, construct_id)

        self.log_group = logs.LogGroup(self, "Logs", retention=settings.log_retention, encryption_key=settings.log_key)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"certrotor {construct_id} function",
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            code=settings.code,
            handler=handler,
            runtime=RUNTIME,
            architecture=settings.architecture,
            role=self.role,
            function_name=function_name,
            description=description,
            timeout=timeout,
            memory_size=memory_size,
            reserved_concurrent_executions=reserved_concurrency,
            dead_letter_topic=None if isinstance(dead_letter, str) else dead_letter,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            environment=environment,
            vpc=settings.vpc,
            vpc_subnets=settings.vpc_subnets,
        )
        if settings.vpc is not None:
            self._allow_vpc_placement()
        NagSuppressions.add_resource_suppressions(
            self.role.node.find_child("DefaultPolicy"),
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "X-Ray PutTraceSegments and PutTelemetryRecords support no "
                    "resource-level permissions; AWS requires Resource '*' for them.",
                    "appliesTo": ["Resource::*"],
                }
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.function,
            [
                {
                    "id": "AwsSolutions-L1",
                    "reason": "Python 3.13 is the runtime the asset's wheels are built for "
                    "(cp313, see infra/bundling.py); moving to a newer runtime is a "
                    "deliberate change of the bundle target, not a drift.",
                }
            ],
        )
        if settings.vpc is None:
            accept(self.function, ["LambdaInsideVPC"], NOT_IN_VPC_REASON)
        if isinstance(dead_letter, str):
            accept(self.function, ["LambdaDLQ"], dead_letter)
        accept_default_policy(self.role)

    def _allow_vpc_placement(self) -> None:
        """The network-interface actions Lambda takes with the role, in a
        policy of their own (their ``*`` is no other statement's), in place
        before the function."""
        policy = iam.Policy(
            self,
            "VpcAccess",
            roles=[self.role],
            statements=[iam.PolicyStatement(actions=list(VPC_ACCESS_ACTIONS), resources=["*"])],
        )
        self.function.node.add_dependency(policy)
        accept_inline_policy(policy)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "Lambda creates, describes and deletes the function's network interfaces in the "
                    "configured subnets with the role; the EC2 Describe actions support no resource-level "
                    "permission, and the interfaces do not exist before Lambda creates them.",
                    "appliesTo": ["Resource::*"],
                }
            ],
        )

    def add_to_policy(self, statement: iam.PolicyStatement) -> None:
        """Allow the function one more thing (identity policy on its role)."""
        self.role.add_to_principal_policy(statement)


def _check_environment_size(environment: Mapping[str, str], where: str) -> None:
    size = sum(
        len(name) + (_TOKEN_SIZE_ESTIMATE if Token.is_unresolved(value) else len(value.encode()))
        for name, value in environment.items()
    )
    if size > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
        raise ConfigError(
            f"{where}: the Lambda environment would be about {size:,} bytes, over Lambda's "
            f"{LAMBDA_ENVIRONMENT_LIMIT_BYTES:,}-byte limit; the configuration "
            "(CERTROTOR_CONFIG) is too large for one deployment - split the certificate "
            "sets across stacks"
        )


# The retention periods CloudWatch Logs accepts.
_RETENTION_DAYS: tuple[tuple[int, logs.RetentionDays], ...] = (
    (1, logs.RetentionDays.ONE_DAY),
    (3, logs.RetentionDays.THREE_DAYS),
    (5, logs.RetentionDays.FIVE_DAYS),
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (60, logs.RetentionDays.TWO_MONTHS),
    (90, logs.RetentionDays.THREE_MONTHS),
    (120, logs.RetentionDays.FOUR_MONTHS),
    (150, logs.RetentionDays.FIVE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (400, logs.RetentionDays.THIRTEEN_MONTHS),
    (545, logs.RetentionDays.EIGHTEEN_MONTHS),
    (731, logs.RetentionDays.TWO_YEARS),
    (1096, logs.RetentionDays.THREE_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (2192, logs.RetentionDays.SIX_YEARS),
    (2557, logs.RetentionDays.SEVEN_YEARS),
    (2922, logs.RetentionDays.EIGHT_YEARS),
    (3288, logs.RetentionDays.NINE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
)


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest retention CloudWatch Logs accepts that keeps at least ``days``."""
    for allowed, retention in _RETENTION_DAYS:
        if days <= allowed:
            return retention
    return logs.RetentionDays.TEN_YEARS
