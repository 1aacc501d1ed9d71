"""The on-demand issuer: a Lambda Function URL (AWS_IAM), its two DynamoDB
tables, the permissions of the task roles named in config, and the quota alarm.

- ``Ledger`` table: every certificate issued (serial, CA, principal, names,
  not_after, request id), a per-CA count, in-flight request ARNs and the
  per-minute rate counters (TTL ``expires_at``). Point-in-time recovery,
  encrypted, retained: it is the audit record of what was paid for.
- ``Idempotency`` table: Powertools Idempotency records (TTL ``expiration``),
  so a retried request is answered with the same certificate.
- The function may issue from the CA only with the templates the issuer
  policies use; read only the manifest secrets (never a key) and start a
  rotation (RotateSecret) only of sets tagged ``certrotor:rotator`` with its
  rotator's id.
- Invoke permission (InvokeFunctionUrl and InvokeFunction via the URL) only
  for the principals in ``issuer_policies``: a role name becomes that role
  in this account; an exact role ARN is granted as is. A pattern with
  wildcards would match roles anyone allowed to create roles could add later,
  so it is refused unless ``allow_principal_patterns`` is set; then it is
  granted to its account, and the handler's policy match is the fence (those
  roles need an identity policy allowing the call).
- ``QuotaUsedPercent`` (certificates in the ledger / ``ca.quota``) alarms at
  80%.
"""

from __future__ import annotations

import dataclasses

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagSuppressions
from constructs import Construct

from certrotor.config import CertrotorConfig, template_arn
from certrotor.errors import ConfigError
from certrotor.spec import ROTATOR_TAG
from certrotor_cdk.compliance import accept, accept_inline_policy
from certrotor_cdk.constants import ISSUER_RESERVED_CONCURRENCY, METRICS_NAMESPACE, SERVICE_DIMENSION
from certrotor_cdk.lambda_function import CertrotorFunction, FunctionSettings
from certrotor_cdk.monitoring import Monitoring
from certrotor_cdk.rotator import TAGGED_RESOURCES_REGEX, manifest_key_decrypt

ISSUER_HANDLER = "certrotor.handlers.issuer.lambda_handler"
ENV_LEDGER_TABLE = "CERTROTOR_LEDGER_TABLE"
ENV_IDEMPOTENCY_TABLE = "CERTROTOR_IDEMPOTENCY_TABLE"
METRIC_QUOTA_USED = "QuotaUsedPercent"
METRIC_ISSUED = "IssuedCertificates"
QUOTA_ALARM_PERCENT = 80
# Waiting for Private CA (asynchronous issuance) with bounded backoff.
ISSUER_TIMEOUT = Duration.seconds(30)
ISSUER_MEMORY_MB = 256
LEDGER_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
)
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
CA_ACTIONS = (
    "acm-pca:GetCertificate",
    "acm-pca:GetCertificateAuthorityCertificate",
    "acm-pca:DescribeCertificateAuthority",
)
_WILDCARDS = set("*?[")


class IssuerApi(Construct):
    """The issuer function, its URL, tables, grants and quota alarm.

    :param config: the validated configuration; ``issuer_policies`` name the
        callers, ``ca.quota`` the alarm's 100%.
    :param function_settings: shared settings of certrotor functions
        (``Certrotor.function_settings``: code, architecture, CERTROTOR_CONFIG
        and CERTROTOR_CA_ARN).
    :param ca_arn: the Private CA to issue from.
    :param rotator_id: the sets it serves (GET /sets, issue-now) carry the tag
        ``certrotor:rotator`` with this id.
    :param rotation_function: the rotation Lambda RotateSecret invokes.
    :param allow_principal_patterns: opt-in for principals with wildcards.
    :param monitoring: where to add the function's and the quota's alarms.
    :param removal_policy: for the ledger (RETAIN by default).
    :param reserved_concurrency: how many requests the issuer serves at once;
        more are throttled (429).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CertrotorConfig,
        function_settings: FunctionSettings,
        ca_arn: str,
        rotator_id: str,
        rotation_function: lambda_.IFunction,
        monitoring: Monitoring | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        allow_principal_patterns: bool = False,
        reserved_concurrency: int = ISSUER_RESERVED_CONCURRENCY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.rotator_id = rotator_id
        self.allow_principal_patterns = allow_principal_patterns
        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=removal_policy,
        )
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expiration",
            # Records expire within a day; nothing to keep.
            removal_policy=RemovalPolicy.DESTROY,
        )
        accept(
            self.ledger,
            ["DynamoDBInBackupPlan"],
            "Point-in-time recovery is on (any second of the last 35 days) and the ledger is retained with the "
            "stack; longer retention belongs to the account's own AWS Backup plan (selecting by tag), not to a "
            "plan per rotator. Private CA's audit report lists every certificate issued to check it against.",
        )
        accept(
            self.idempotency,
            ["DynamoDBInBackupPlan"],
            "Idempotency records expire within a day (TTL) and are rebuilt by the next request; point-in-time "
            "recovery is on, and a backup plan would keep nothing a restore could use.",
        )
        settings = dataclasses.replace(
            function_settings,
            environment={
                **function_settings.environment,
                ENV_LEDGER_TABLE: self.ledger.table_name,
                ENV_IDEMPOTENCY_TABLE: self.idempotency.table_name,
            },
        )
        self.issuer = CertrotorFunction(
            self,
            "Issuer",
            settings=settings,
            handler=ISSUER_HANDLER,
            description="certrotor: issues certificates for callers' CSRs; issue-now for managed sets",
            timeout=ISSUER_TIMEOUT,
            memory_size=ISSUER_MEMORY_MB,
            reserved_concurrency=reserved_concurrency,
            dead_letter="Callers invoke the issuer synchronously through its Function URL and get every "
            "failure as the HTTP response; Lambda sends only failed asynchronous events to a dead-letter "
            "target, and the issuer has none.",
        )
        self.function = self.issuer.function
        self._grant(ca_arn, rotation_function)
        self.url = self.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.AWS_IAM)
        for index, principal in enumerate(self.invoke_principals()):
            self._allow_invoke(index, principal)
        self.quota_alarm = self._quota_alarm(monitoring)
        if monitoring is not None:
            monitoring.watch_function("Issuer", self.issuer)

    # ------------------------------------------------------------------

    def invoke_principals(self) -> list[iam.IPrincipal]:
        """Who may call the URL, from ``issuer_policies`` (see the module doc)."""
        stack = Stack.of(self)
        principals: dict[str, iam.IPrincipal] = {}
        for policy in self.config.issuer_policies:
            pattern = policy.principal
            if _WILDCARDS & set(pattern) and not self.allow_principal_patterns:
                raise ConfigError(
                    f"issuer_policies: {pattern!r} has wildcards, so it matches roles created later by anyone who "
                    "may create roles; name the roles, or set allow_issuer_principal_patterns (docs/ISSUER.md)"
                )
            if pattern.startswith("arn:"):
                parts = pattern.split(":")
                account = parts[4] if len(parts) > 5 else ""
                if not _WILDCARDS & set(pattern):
                    principals[pattern] = iam.ArnPrincipal(pattern)
                elif account.isdigit() and len(account) == 12:
                    principals[f"account:{account}"] = iam.AccountPrincipal(account)
                else:
                    raise ConfigError(f"issuer_policies: {pattern!r} needs a literal 12-digit account to grant invoke")
            elif _WILDCARDS & set(pattern):
                principals["account:self"] = iam.AccountPrincipal(stack.account)
            else:
                arn = f"arn:{stack.partition}:iam::{stack.account}:role/{pattern}"
                principals[arn] = iam.ArnPrincipal(arn)
        return list(principals.values())

    def _allow_invoke(self, index: int, principal: iam.IPrincipal) -> None:
        # A Function URL with AWS_IAM needs both actions for the caller
        # (lambda:InvokeFunction only when invoked through the URL).
        self.function.add_permission(
            f"InvokeUrl{index}",
            principal=principal,
            action="lambda:InvokeFunctionUrl",
            function_url_auth_type=lambda_.FunctionUrlAuthType.AWS_IAM,
        )
        self.function.add_permission(
            f"InvokeViaUrl{index}",
            principal=principal,
            action="lambda:InvokeFunction",
            invoked_via_function_url=True,
        )

    def _grant(self, ca_arn: str, rotation_function: lambda_.IFunction) -> None:
        role = self.issuer.role
        self.ledger.grant(role, *LEDGER_ACTIONS)
        self.idempotency.grant(role, *IDEMPOTENCY_ACTIONS)
        partition = Stack.of(self).partition
        templates = sorted({template_arn(policy.usage, partition) for policy in self.config.issuer_policies})
        if templates:
            self.issuer.add_to_policy(
                iam.PolicyStatement(
                    actions=["acm-pca:IssueCertificate"],
                    resources=[ca_arn],
                    conditions={"StringEquals": {"acm-pca:TemplateArn": templates}},
                )
            )
        self.issuer.add_to_policy(iam.PolicyStatement(actions=list(CA_ACTIONS), resources=[ca_arn]))
        # Status and issue-now describe the manifest (its pending version),
        # read its value and start a rotation: on this rotator's sets only.
        stack = Stack.of(self)
        rotator = {"aws:ResourceTag/" + ROTATOR_TAG: self.rotator_id}
        manifests = iam.Policy(
            self,
            "ManifestAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="Manifests",
                    actions=[
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:RotateSecret",
                    ],
                    resources=[
                        stack.format_arn(
                            service="secretsmanager",
                            resource="secret",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                    conditions={"StringEquals": rotator},
                ),
                manifest_key_decrypt(stack, rotator),
                # RotateSecret invokes the rotation function as the caller.
                iam.PolicyStatement(
                    sid="InvokeRotation", actions=["lambda:InvokeFunction"], resources=[rotation_function.function_arn]
                ),
            ],
        )
        accept_inline_policy(manifests)
        NagSuppressions.add_resource_suppressions(
            manifests,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": f"Access by tag: only manifests and their KMS keys tagged {ROTATOR_TAG} = "
                    f"{self.rotator_id}; the wildcard is the resource name, each statement carries the tag condition.",
                    "appliesTo": [{"regex": TAGGED_RESOURCES_REGEX}],
                }
            ],
        )

    def _quota_alarm(self, monitoring: Monitoring | None) -> cloudwatch.Alarm:
        metric = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=METRIC_QUOTA_USED,
            dimensions_map={SERVICE_DIMENSION: self.config.service_name},
            statistic="Maximum",
            period=Duration.hours(1),
        )
        alarm = cloudwatch.Alarm(
            self,
            "QuotaUsed",
            metric=metric,
            threshold=QUOTA_ALARM_PERCENT,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"The ledger holds {QUOTA_ALARM_PERCENT}% or more of the Private CA's "
            f"certificate quota ({self.config.ca.quota:,}); ask for a quota increase or a new CA.",
        )
        if monitoring is not None:
            action = cloudwatch_actions.SnsAction(monitoring.topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            monitoring.alarms.append(alarm)
        return alarm
