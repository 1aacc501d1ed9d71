"""``CertificateRotator``: the central part that serves every set naming it.

One rotator per account, region and id: the rotation function, the hourly
expiry monitor, the alarm topic and alarms, and (opt-in) the on-demand
issuer. Sets (``RotatingCertificate``) live in any stack of the same account
and region, usually their service's own, and refer to the rotator by
reference or through ``CertificateRotator.from_rotator_attributes``. Adding
or changing a set never changes the rotator's stack:

- a set's spec is its manifest secret's description (``certrotor.spec``);
- the rotator's access is by tag (ABAC): its role may touch the secrets,
  KMS keys and ECS services tagged ``certrotor:rotator`` (or, for a set's
  key and chain parts, ``certrotor:part-of``) = its id;
- Secrets Manager may invoke the function for secrets of this account and
  region (``SourceAccount`` and ``SourceArn``); the function serves only
  manifests tagged with its id.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Token
from aws_cdk import aws_acmpca as acmpca
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from cdk_nag import NagSuppressions
from constructs import Construct, IConstruct

from certrotor.config import (
    CA_ROTATION_STOPS,
    DEFAULT_ROTATOR_ID,
    CaConfig,
    CaRotationTarget,
    CertrotorConfig,
    IssuerPolicy,
    Usage,
    check_rotator_id,
    template_arn,
)
from certrotor.errors import ConfigError
from certrotor.services.rotation import TAG_CA, TAG_ISSUING, TAG_REDEPLOYED
from certrotor.services.supersede import SUPERSEDED_TAG_KEYS
from certrotor.spec import PART_TAG, ROTATOR_TAG
from certrotor_cdk.bundling import BundleTarget, lambda_code
from certrotor_cdk.certificate_authority import CertificateAuthority
from certrotor_cdk.compliance import accept_default_policy, accept_inline_policy
from certrotor_cdk.constants import (
    ENV_CA_ARN,
    ENV_CONFIG,
    ISSUER_RESERVED_CONCURRENCY,
    METRIC_DAYS_TO_EXPIRY,
    METRIC_ROTATION_FAILED,
    METRICS_NAMESPACE,
    MONITOR_HANDLER,
    MONITOR_MEMORY_MB,
    MONITOR_RESERVED_CONCURRENCY,
    MONITOR_SCHEDULE_EXPRESSION,
    MONITOR_TIMEOUT,
    ROTATION_HANDLER,
    ROTATION_MEMORY_MB,
    ROTATION_RESERVED_CONCURRENCY,
    ROTATION_TIMEOUT,
    SERVICE_DIMENSION,
    SET_DIMENSION,
)
from certrotor_cdk.lambda_function import CertrotorFunction, FunctionSettings, log_retention
from certrotor_cdk.monitoring import Monitoring
from certrotor_cdk.rekey import RekeyStateMachine
from certrotor_cdk.trust_bundle import TrustBundle

# What the rotation function does to a set's secrets (certrotor.services.rotation
# through certrotor.aws.secrets); TagResource only on the manifest, below.
ROTATION_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
# The tags the rotation writes on a manifest (and nothing else).
ROTATION_TAG_KEYS = (TAG_ISSUING, TAG_REDEPLOYED)
# Secrets Manager encrypts each value under a data key: PutSecretValue needs
# GenerateDataKey, GetSecretValue needs Decrypt.
ROTATION_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
CA_READ_ACTIONS = (
    "acm-pca:GetCertificate",
    "acm-pca:DescribeCertificateAuthority",
    "acm-pca:GetCertificateAuthorityCertificate",
)
REDEPLOY_ACTIONS = ("ecs:UpdateService", "ecs:DescribeServices")
# What CloudWatch Logs does with the key of an encrypted log group.
LOG_KEY_ACTIONS = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# Secrets Manager invokes each rotation step itself and reports a failed
# rotation as a RotationFailed event (alarmed); nothing is left for a DLQ.
ROTATION_NO_DLQ_REASON = (
    "Secrets Manager invokes each rotation step itself and retries the rotation on its schedule; a "
    "failed rotation is reported by the RotationFailed metric and Secrets Manager's RotationFailed "
    "event, both alarmed, so a dead-letter target would hold nothing to act on."
)
# Keys of every rotator's physical resources: unique per account and region,
# so a second deployment with the same id fails instead of sharing alarms.
ROTATION_FUNCTION_NAME = "{rotator_id}-rotation"
# The nag finding of a tag-conditioned statement: a secret, key or service
# name wildcard in this account and region, nothing wider.
TAGGED_RESOURCES_REGEX = (
    "/^Resource::arn:(<AWS::Partition>|aws[a-z-]*):(secretsmanager|kms|ecs):(<AWS::Region>|[a-z0-9-]+):"
    "(<AWS::AccountId>|[0-9]{12}):(secret:|key/|service/)[A-Za-z0-9/_+=.@-]*\\*$/"
)


def ca_region(ca_arn: str) -> str | None:
    """The region of a concrete Private CA ARN; None for a token."""
    if Token.is_unresolved(ca_arn):
        return None
    parts = ca_arn.split(":")
    return parts[3] if len(parts) > 5 else None


def check_same_region(scope: IConstruct, region: str | None, what: str) -> None:
    """A synth error when ``region`` and the stack's region are both known and differ."""
    stack_region = Stack.of(scope).region
    if region is None or Token.is_unresolved(stack_region) or Token.is_unresolved(region):
        return
    if region != stack_region:
        raise ConfigError(f"{what} is in {region}, but stack {Stack.of(scope).stack_name} deploys to {stack_region}")


def _ca_arn(certificate_authority: acmpca.ICertificateAuthority | str) -> str:
    if isinstance(certificate_authority, str):
        return certificate_authority
    return certificate_authority.certificate_authority_arn


@dataclass(frozen=True)
class RotatorRef:
    """What a set needs of its rotator: a ``CertificateRotator`` or one imported
    with ``CertificateRotator.from_rotator_attributes``."""

    rotator_id: str
    rotation_function: lambda_.IFunction
    rotation_role_arn: str
    certificate_authority_arn: str
    alarm_topic: sns.ITopic | None = None
    expiry_alarm_days: int = 7
    stack: Stack | None = None
    ca_region: str | None = None
    """The CA's region when known at synth (checked against the set's stack)."""
    trust_secret_arn: str | None = None
    trust_key_arn: str | None = None
    """The rotator's trust bundle, which every set reader reads too."""

    def metric(self, metric_name: str, set_name: str | None = None, statistic: str = "Sum") -> cloudwatch.Metric:
        """A metric the rotator's functions publish, for this rotator (and one set)."""
        dimensions = {SERVICE_DIMENSION: self.rotator_id}
        if set_name is not None:
            dimensions[SET_DIMENSION] = set_name
        return cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=metric_name,
            dimensions_map=dimensions,
            statistic=statistic,
            period=Duration.hours(1) if metric_name == METRIC_DAYS_TO_EXPIRY else Duration.minutes(5),
        )


# Set names of each app, per account and region: duplicates fail at synth.
_SET_NAMES: weakref.WeakKeyDictionary[IConstruct, dict[tuple[str, str, str], str]] = weakref.WeakKeyDictionary()


def register_set_name(scope: Construct, set_name: str) -> None:
    """Record a set's name in its app; a second set of that name (or one whose
    name collides with its part secrets) in the same stack, or in another
    stack of the same concrete account and region, is a synth error naming
    both construct paths."""
    stack = Stack.of(scope)
    account, region = stack.account, stack.region
    if Token.is_unresolved(account) or Token.is_unresolved(region):
        # An environment-agnostic stack may deploy anywhere: compare its sets
        # with each other only.
        account, region = "stack", stack.node.path
    names = _SET_NAMES.setdefault(scope.node.root, {})
    for (other_account, other_region, other), path in names.items():
        if (other_account, other_region) != (account, region):
            continue
        if other == set_name:
            raise ConfigError(f"set {set_name!r} is declared twice: at {path} and at {scope.node.path}")
        if other.startswith(set_name + "/") or set_name.startswith(other + "/"):
            raise ConfigError(
                f"set {set_name!r} ({scope.node.path}) and {other!r} ({path}) collide: "
                "one's name is a part secret of the other"
            )
    names[(account, region, set_name)] = scope.node.path


class CertificateRotator(Construct):
    # A subclass that adds its own sets draws the alarm overview itself.
    _sets_in_same_construct = False

    """The rotation function, the monitor, alarms and (opt-in) the issuer.

    :param certificate_authority: the Private CA, as an ``ICertificateAuthority``
        or its ARN (a token allowed; a concrete ARN must be in the stack's region),
        or a ``CaConfig`` with ``create=True`` for a root CA made by this stack.
    :param rotator_id: the tag value sets name; unique per account and region
        (1-32 lowercase letters, digits, inner hyphens). Also the metrics'
        ``service`` dimension and the rotation function's name prefix.
    :param code: the Lambda asset; default bundled from the installed
        ``certrotor`` package (``certrotor_cdk.bundling.lambda_code``).
    :param alarm_topic: an existing topic for alarms; default a new encrypted one.
    :param issuer_policies: callers of the on-demand issuer; the issuer (a
        Function URL and two DynamoDB tables) exists only when given.
    :param allow_issuer_principal_patterns: opt-in for issuer principals with
        wildcards, which match roles created later by anyone who may create roles.
    :param ca_rotation: run a staged CA rotation to ``to_arn`` from this deploy:
        the rotation function may issue from it (as ``ca.next_arn``) and the
        monitor begins the rotation and advances it on every run, stopping
        before ``until`` ("move" or "prune") when given. ``certrotor ca
        status`` shows it; ``certrotor ca pause`` / ``rollback`` still apply.
    :param vpc: run the functions in this VPC (opt-in; default outside any
        VPC). Its subnets need a route to the AWS APIs the functions call
        (NAT, or interface endpoints: docs/DEPLOY.md lists them).
    :param vpc_subnets: the subnets of ``vpc`` (default its private subnets).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        certificate_authority: acmpca.ICertificateAuthority | str | CaConfig,
        rotator_id: str = DEFAULT_ROTATOR_ID,
        code: lambda_.Code | None = None,
        architecture: str = "arm64",
        skip_bundling: bool = False,
        log_level: str = "INFO",
        log_retention_days: int = 30,
        expiry_alarm_days: int = 7,
        alarm_topic: sns.ITopic | None = None,
        alarm_email: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        rotation_reserved_concurrency: int = ROTATION_RESERVED_CONCURRENCY,
        issuer_reserved_concurrency: int = ISSUER_RESERVED_CONCURRENCY,
        issuer_policies: Sequence[IssuerPolicy] = (),
        allow_issuer_principal_patterns: bool = False,
        ca_usage_mode: str = "GENERAL_PURPOSE",
        ca_quota: int | None = None,
        revoke_superseded: str = "auto",
        trust_reader_role_arns: Sequence[str] = (),
        set_name_prefix: str = "",
        ca_rotation: CaRotationTarget | None = None,
        vpc: ec2.IVpc | None = None,
        vpc_subnets: ec2.SubnetSelection | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        check_rotator_id(rotator_id)
        stack = Stack.of(self)
        self.rotator_id = rotator_id
        self.set_name_prefix = set_name_prefix
        # A CaConfig with create: a root CA of this stack, activated by it.
        self.certificate_authority: CertificateAuthority | None = None
        ca_settings = CaConfig(arn="", usage_mode=ca_usage_mode, revoke_superseded=revoke_superseded)
        if ca_quota is not None:
            ca_settings = dataclasses.replace(ca_settings, quota=ca_quota)
        if isinstance(certificate_authority, CaConfig):
            ca_settings = certificate_authority
            if certificate_authority.create:
                self.certificate_authority = CertificateAuthority(
                    self, "CertificateAuthority", ca=certificate_authority, removal_policy=removal_policy
                )
                self.certificate_authority_arn = self.certificate_authority.arn
            else:
                assert certificate_authority.arn is not None
                self.certificate_authority_arn = certificate_authority.arn
        else:
            self.certificate_authority_arn = _ca_arn(certificate_authority)
        check_same_region(self, ca_region(self.certificate_authority_arn), "the Private CA")
        if ca_rotation is not None:
            ca_settings = with_ca_rotation(ca_settings, ca_rotation)
        self.expiry_alarm_days = expiry_alarm_days
        # A CA rotation's target (ca.next_arn): issued from and read like the CA.
        self.certificate_authority_arns = [
            self.certificate_authority_arn,
            *([ca_settings.next_arn] if ca_settings.next_arn else []),
        ]
        # The functions' settings: this rotator's, never a set's. The CA's ARN
        # travels in CERTROTOR_CA_ARN (a token until deploy).
        self.config = CertrotorConfig(
            ca=dataclasses.replace(ca_settings, arn=None, create=True),
            sets=(),
            issuer_policies=tuple(issuer_policies),
            service_name=rotator_id,
            log_level=log_level,
            log_retention_days=log_retention_days,
            expiry_alarm_days=expiry_alarm_days,
            alarm_email=alarm_email,
        )
        target = BundleTarget.for_lambda(architecture)
        self.log_key = self._log_key(stack, rotator_id)
        self.function_settings = FunctionSettings(
            code=code or lambda_code(target, skip_bundling=skip_bundling),
            architecture=target.lambda_architecture,
            service_name=rotator_id,
            log_level=log_level,
            log_retention=log_retention(log_retention_days),
            environment={ENV_CONFIG: _settings_json(self.config), ENV_CA_ARN: self.certificate_authority_arn},
            log_key=self.log_key,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
        )
        # Before the functions: the monitor's failed runs go to the alarm topic.
        self.monitoring = Monitoring(self, "Monitoring", config=self.config, topic=alarm_topic)
        self.alarm_topic: sns.ITopic = self.monitoring.topic
        self.rotation = CertrotorFunction(
            self,
            "Rotation",
            settings=self.function_settings,
            handler=ROTATION_HANDLER,
            description=f"certrotor {rotator_id}: rotates the certificate sets tagged {ROTATOR_TAG}={rotator_id}",
            timeout=ROTATION_TIMEOUT,
            memory_size=ROTATION_MEMORY_MB,
            reserved_concurrency=rotation_reserved_concurrency,
            dead_letter=ROTATION_NO_DLQ_REASON,
            function_name=ROTATION_FUNCTION_NAME.format(rotator_id=rotator_id),
        )
        self.rotation_function: lambda_.IFunction = self.rotation.function
        self.rotation_role_arn = self.rotation.role.role_arn
        self._grant_rotation(stack)
        self._allow_secrets_manager(stack)

        self.monitor = CertrotorFunction(
            self,
            "Monitor",
            settings=self.function_settings,
            handler=MONITOR_HANDLER,
            description=f"certrotor {rotator_id}: publishes DaysToExpiry for every set tagged with it",
            timeout=MONITOR_TIMEOUT,
            memory_size=MONITOR_MEMORY_MB,
            reserved_concurrency=MONITOR_RESERVED_CONCURRENCY,
            # EventBridge invokes it asynchronously: after Lambda's retries,
            # the failed hourly event reaches the people the alarms reach.
            dead_letter=self.alarm_topic,
        )
        if self.monitoring.topic_key is not None:
            self.monitor.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[self.monitoring.topic_key.key_arn]
                )
            )
        # Every manifest names the trust bundle: set readers read it too
        # (RotatingCertificate.grant_read grants it with the set).
        self.trust = TrustBundle(
            self,
            "TrustBundle",
            rotator=rotator_id,
            reader_role_arns=trust_reader_role_arns,
            removal_policy=removal_policy,
        )
        self.trust.grant_write(self.monitor.function)
        self._grant_monitor(stack)
        events.Rule(
            self,
            "MonitorSchedule",
            description=f"certrotor {rotator_id}: hourly expiry check",
            schedule=events.Schedule.expression(MONITOR_SCHEDULE_EXPRESSION),
            targets=[events_targets.LambdaFunction(self.monitor.function)],
        )

        # certrotor rekey: RotateSecret for many sets, paced under the quotas;
        # the sets it may rotate are this rotator's, by tag.
        self.rekey = RekeyStateMachine(
            self,
            "Rekey",
            rotator_id=rotator_id,
            manifest_secret_arns=[_secret_arn(stack, set_name_prefix)],
            manifest_conditions={"StringEquals": {"aws:ResourceTag/" + ROTATOR_TAG: rotator_id}},
            log_retention=log_retention(log_retention_days),
            log_key=self.log_key,
            removal_policy=removal_policy,
        )
        accept_default_policy(self.rekey.role)
        NagSuppressions.add_resource_suppressions(
            self.rekey.role.node.find_child("DefaultPolicy"),
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": f"Access by tag: the re-key describes and rotates only manifests tagged {ROTATOR_TAG} = "
                    f"{rotator_id}; the wildcard is the secret name, the statement carries the tag condition.",
                    "appliesTo": [{"regex": TAGGED_RESOURCES_REGEX}],
                }
            ],
        )

        self.monitoring.watch_function("Rotation", self.rotation, alarm_on_throttles=True)
        self.monitoring.watch_function("Monitor", self.monitor)
        self.monitoring.watch_rotation_metrics()
        if set_name_prefix:
            self.monitoring.watch_secrets_manager_rotations([_secret_arn(stack, set_name_prefix)], prefix_match=True)

        self.issuer = None
        if issuer_policies:
            from certrotor_cdk.issuer_api import IssuerApi

            self.issuer = IssuerApi(
                self,
                "Issuer",
                config=self.config,
                function_settings=self.function_settings,
                ca_arn=self.certificate_authority_arn,
                rotator_id=rotator_id,
                rotation_function=self.rotation.function,
                monitoring=self.monitoring,
                allow_principal_patterns=allow_issuer_principal_patterns,
                reserved_concurrency=issuer_reserved_concurrency,
            )
        if not self._sets_in_same_construct:
            self.monitoring.add_alarm_overview()
        for attribute, value in (
            ("rotation-function-arn", self.rotation.function.function_arn),
            ("rotation-role-arn", self.rotation_role_arn),
            ("ca-arn", self.certificate_authority_arn),
            ("alarm-topic-arn", self.alarm_topic.topic_arn),
            ("trust-secret-arn", self.trust.secret.secret_arn),
            ("trust-key-arn", self.trust.key.key_arn),
        ):
            CfnOutput(
                self,
                f"Export[{attribute}]",
                value=value,
                export_name=self.export_name(attribute),
                description=f"certrotor {rotator_id}: {attribute} for sets in other stacks",
            )

    # ------------------------------------------------------------------
    # The reference sets take

    @property
    def rotation_function_arn(self) -> str:
        return self.rotation.function.function_arn

    def export_name(self, attribute: str) -> str:
        """The CloudFormation export of one of the rotator's attributes."""
        return f"certrotor-{self.rotator_id}-{attribute}"

    def ref_for(self, scope: Construct) -> RotatorRef:
        """The reference a set in ``scope`` uses: direct in the rotator's stack;
        elsewhere, the rotator's fixed exports (so a new set never adds an
        export, and the rotator's template never changes for it)."""
        stack = Stack.of(scope)
        mine = Stack.of(self)
        if stack is mine:
            return self.ref
        stack.add_stack_dependency(mine, f"certificate sets need their rotator {self.rotator_id}")
        holder = Construct(scope, f"Rotator[{self.rotator_id}]")
        function = lambda_.Function.from_function_attributes(
            holder,
            "Rotation",
            function_arn=Fn.import_value(self.export_name("rotation-function-arn")),
            same_environment=True,
            skip_permissions=True,
        )
        return RotatorRef(
            rotator_id=self.rotator_id,
            rotation_function=function,
            rotation_role_arn=Fn.import_value(self.export_name("rotation-role-arn")),
            certificate_authority_arn=Fn.import_value(self.export_name("ca-arn")),
            alarm_topic=sns.Topic.from_topic_arn(
                holder, "AlarmTopic", Fn.import_value(self.export_name("alarm-topic-arn"))
            ),
            expiry_alarm_days=self.expiry_alarm_days,
            stack=mine,
            ca_region=ca_region(self.certificate_authority_arn),
            trust_secret_arn=Fn.import_value(self.export_name("trust-secret-arn")),
            trust_key_arn=Fn.import_value(self.export_name("trust-key-arn")),
        )

    @property
    def ref(self) -> RotatorRef:
        return RotatorRef(
            rotator_id=self.rotator_id,
            rotation_function=self.rotation.function,
            rotation_role_arn=self.rotation_role_arn,
            certificate_authority_arn=self.certificate_authority_arn,
            alarm_topic=self.alarm_topic,
            expiry_alarm_days=self.expiry_alarm_days,
            stack=Stack.of(self),
        )

    @staticmethod
    def from_rotator_attributes(
        scope: Construct,
        construct_id: str,
        *,
        rotator_id: str,
        rotation_function_arn: str,
        rotation_role_arn: str,
        certificate_authority_arn: str,
        alarm_topic_arn: str | None = None,
        expiry_alarm_days: int = 7,
        trust_secret_arn: str | None = None,
        trust_key_arn: str | None = None,
    ) -> RotatorRef:
        """A rotator deployed elsewhere (another stack or app), by its attributes.

        The stack's outputs (``CertrotorStack``) or SSM parameters carry them;
        tokens are fine.
        """
        check_rotator_id(rotator_id)
        holder = Construct(scope, construct_id)
        function = lambda_.Function.from_function_attributes(
            holder, "Rotation", function_arn=rotation_function_arn, same_environment=True, skip_permissions=True
        )
        topic = sns.Topic.from_topic_arn(holder, "AlarmTopic", alarm_topic_arn) if alarm_topic_arn else None
        return RotatorRef(
            rotator_id=rotator_id,
            rotation_function=function,
            rotation_role_arn=rotation_role_arn,
            certificate_authority_arn=certificate_authority_arn,
            alarm_topic=topic,
            expiry_alarm_days=expiry_alarm_days,
            stack=None,
            ca_region=ca_region(certificate_authority_arn),
            trust_secret_arn=trust_secret_arn,
            trust_key_arn=trust_key_arn,
        )

    def metric_rotation_failed(self) -> cloudwatch.Metric:
        """Failed rotation steps of every set of this rotator (Sum per 5 minutes)."""
        return self.ref.metric(METRIC_ROTATION_FAILED)

    # ------------------------------------------------------------------
    # Grants, all by tag: adding a set changes nothing here

    def _grant_rotation(self, stack: Stack) -> None:
        role = self.rotation.role
        rotator = {"aws:ResourceTag/" + ROTATOR_TAG: self.rotator_id}
        part = {"aws:ResourceTag/" + PART_TAG: self.rotator_id}
        secrets = [_secret_arn(stack, self.set_name_prefix)]
        keys = [stack.format_arn(service="kms", resource="key", resource_name="*")]
        via_secrets_manager = {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}
        statements = [
            iam.PolicyStatement(
                sid="SetManifests",
                actions=list(ROTATION_SECRET_ACTIONS),
                resources=secrets,
                conditions={"StringEquals": rotator},
            ),
            iam.PolicyStatement(
                sid="SetParts",
                actions=list(ROTATION_SECRET_ACTIONS),
                resources=secrets,
                conditions={"StringEquals": part},
            ),
            iam.PolicyStatement(
                sid="TagManifests",
                actions=["secretsmanager:TagResource"],
                resources=secrets,
                conditions={
                    "StringEquals": rotator,
                    "ForAllValues:StringEquals": {"aws:TagKeys": list(ROTATION_TAG_KEYS)},
                },
            ),
            iam.PolicyStatement(
                sid="ManifestKeys",
                actions=list(ROTATION_KMS_ACTIONS),
                resources=keys,
                conditions={"StringEquals": {**rotator, **via_secrets_manager}},
            ),
            iam.PolicyStatement(
                sid="PartKeys",
                actions=list(ROTATION_KMS_ACTIONS),
                resources=keys,
                conditions={"StringEquals": {**part, **via_secrets_manager}},
            ),
            iam.PolicyStatement(
                sid="Issue",
                actions=["acm-pca:IssueCertificate"],
                resources=self.certificate_authority_arns,
                # End-entity templates only: the role can never mint a CA certificate.
                conditions={"StringEquals": {"acm-pca:TemplateArn": [template_arn(u, stack.partition) for u in Usage]}},
            ),
            iam.PolicyStatement(sid="ReadCa", actions=list(CA_READ_ACTIONS), resources=self.certificate_authority_arns),
            iam.PolicyStatement(
                sid="Redeploy",
                actions=list(REDEPLOY_ACTIONS),
                resources=[stack.format_arn(service="ecs", resource="service", resource_name="*")],
                conditions={"StringEquals": rotator},
            ),
        ]
        policy = iam.Policy(self, "RotationAccess", roles=[role], statements=statements)
        accept_inline_policy(policy)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": f"Access by tag: secrets, KMS keys and ECS services tagged {ROTATOR_TAG} "
                    f"(or {PART_TAG}) = {self.rotator_id}, so sets added in other stacks need no "
                    "change here; the wildcard is the resource name, every statement carries the tag condition.",
                    "appliesTo": [{"regex": TAGGED_RESOURCES_REGEX}],
                }
            ],
        )

    def _log_key(self, stack: Stack, rotator_id: str) -> kms.Key:
        """The key of every log group of this rotator (functions, re-key).

        Retained whatever the removal policy: the log groups outlive the
        stack, and without their key their events could not be read.
        """
        key = kms.Key(
            self,
            "LogKey",
            description=f"certrotor {rotator_id}: log groups",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch Logs uses it for this account's log groups in this
        # region only (the encryption context names the log group).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=list(LOG_KEY_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        return key

    def _allow_secrets_manager(self, stack: Stack) -> None:
        # One permission for the whole fleet: Lambda caps a function's policy
        # at 20 KB (about 45 per-set statements). SourceAccount and SourceArn
        # hold it to this account's secrets in this region (under the name
        # prefix, when set); the function serves only manifests tagged with
        # its id (certrotor.spec.set_spec) and its role touches nothing else.
        lambda_.CfnPermission(
            self,
            "InvokeBySecretsManager",
            action="lambda:InvokeFunction",
            function_name=self.rotation.function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=stack.account,
            source_arn=_secret_arn(stack, self.set_name_prefix),
        )

    def _grant_monitor(self, stack: Stack) -> None:
        rotator = {"aws:ResourceTag/" + ROTATOR_TAG: self.rotator_id}
        policy = iam.Policy(
            self,
            "MonitorAccess",
            roles=[self.monitor.role],
            statements=[
                iam.PolicyStatement(
                    sid="ManifestValues",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[_secret_arn(stack, self.set_name_prefix)],
                    conditions={"StringEquals": rotator},
                ),
                manifest_key_decrypt(stack, rotator),
            ],
        )
        accept_inline_policy(policy)
        NagSuppressions.add_resource_suppressions(
            policy,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": f"Access by tag: only manifests and their KMS keys tagged {ROTATOR_TAG} = "
                    f"{self.rotator_id}; the wildcard is the resource name, each statement carries the tag condition.",
                    "appliesTo": [{"regex": TAGGED_RESOURCES_REGEX}],
                }
            ],
        )
        # The monitor reads the CA's chain (trust bundle) and, unless
        # revoke_superseded is off, revokes superseded certificates: it reads
        # the CA's revocation configuration, describes each manifest (versions,
        # tags) and tags it with the records, those tag keys only.
        ca_actions = ["acm-pca:GetCertificateAuthorityCertificate"]
        if self.config.ca.revoke_superseded != "off":
            ca_actions += ["acm-pca:DescribeCertificateAuthority", "acm-pca:RevokeCertificate"]
            policy.add_statements(
                iam.PolicyStatement(
                    sid="DescribeManifests",
                    actions=["secretsmanager:DescribeSecret"],
                    resources=[_secret_arn(stack, self.set_name_prefix)],
                    conditions={"StringEquals": rotator},
                ),
                iam.PolicyStatement(
                    sid="RecordSuperseded",
                    actions=["secretsmanager:TagResource"],
                    resources=[_secret_arn(stack, self.set_name_prefix)],
                    conditions={
                        "StringEquals": rotator,
                        "ForAllValues:StringEquals": {"aws:TagKeys": SUPERSEDED_TAG_KEYS},
                    },
                ),
            )
        policy.add_statements(
            iam.PolicyStatement(sid="Ca", actions=ca_actions, resources=self.certificate_authority_arns)
        )
        if self.config.ca.rotation is not None:
            # A deploy-driven CA rotation: the monitor starts rotations
            # (RotateSecret, as certrotor ca rotate does) and points each set
            # at the new CA (that tag key only).
            policy.add_statements(
                iam.PolicyStatement(
                    sid="CaRotationRotate",
                    actions=["secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"],
                    resources=[_secret_arn(stack, self.set_name_prefix)],
                    conditions={"StringEquals": rotator},
                ),
                iam.PolicyStatement(
                    sid="CaRotationTag",
                    actions=["secretsmanager:TagResource"],
                    resources=[_secret_arn(stack, self.set_name_prefix)],
                    conditions={"StringEquals": rotator, "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_CA]}},
                ),
            )
        if self.config.ca.revoke_superseded != "off" and self.config.ca.previous_arns:
            # The old CAs of finished CA rotations: their certificates still
            # in grace are revoked by the CA that issued them; nothing else.
            policy.add_statements(
                iam.PolicyStatement(
                    sid="RevokeOnPreviousCas",
                    actions=["acm-pca:DescribeCertificateAuthority", "acm-pca:RevokeCertificate"],
                    resources=list(self.config.ca.previous_arns),
                )
            )
        # It finds the sets by their rotator tag; ListSecrets takes no resource.
        list_secrets = iam.Policy(
            self,
            "MonitorListSecrets",
            roles=[self.monitor.role],
            statements=[iam.PolicyStatement(actions=["secretsmanager:ListSecrets"], resources=["*"])],
        )
        accept_inline_policy(list_secrets)
        NagSuppressions.add_resource_suppressions(
            list_secrets,
            [
                {
                    "id": "AwsSolutions-IAM5",
                    "reason": "secretsmanager:ListSecrets supports no resource-level permission; the monitor "
                    "lists secrets (names, descriptions, tags; no values) to find its sets by rotator tag.",
                    "appliesTo": ["Resource::*"],
                }
            ],
        )


def manifest_key_decrypt(stack: Stack, rotator: dict[str, str]) -> iam.PolicyStatement:
    """kms:Decrypt of the keys tagged with the rotator, through Secrets Manager
    only: what a reader of manifest values needs of KMS."""
    return iam.PolicyStatement(
        sid="ManifestKeys",
        actions=["kms:Decrypt"],
        resources=[stack.format_arn(service="kms", resource="key", resource_name="*")],
        conditions={"StringEquals": {**rotator, "kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
    )


def with_ca_rotation(ca: CaConfig, target: CaRotationTarget) -> CaConfig:
    """The CA settings with a deploy-driven CA rotation to `target.to_arn`
    (which becomes ca.next_arn, the CA the sets may issue from)."""
    if ca.next_arn is not None and ca.next_arn != target.to_arn:
        raise ConfigError(f"ca_rotation: to_arn {target.to_arn} differs from ca.next_arn {ca.next_arn}")
    if target.until is not None and target.until not in CA_ROTATION_STOPS:
        raise ConfigError(f"ca_rotation: until must be one of {', '.join(CA_ROTATION_STOPS)}")
    return dataclasses.replace(ca, next_arn=target.to_arn, rotation=target)


def _secret_arn(stack: Stack, prefix: str) -> str:
    """Secrets of this account and region whose name starts with ``prefix``."""
    return stack.format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=f"{prefix}*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def _settings_json(config: CertrotorConfig) -> str:
    """The functions' CERTROTOR_CONFIG: the rotator's settings, no set."""
    return config.to_json()
