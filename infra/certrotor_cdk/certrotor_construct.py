"""Everything certrotor deploys for one configuration, as one construct.

``Certrotor`` builds the CA reference (or the CA), the shared rotation
function, one ``RotatingCertificate`` per configured set, the hourly
expiry monitor, and the alarms and dashboard. It needs no particular
stack: add it to any stack of an existing app.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from certrotor.config import CertrotorConfig, template_arn
from certrotor.services.supersede import TAG_SUPERSEDED
from certrotor.services.trust import rotator_id
from certrotor_cdk.certificate_authority import CertificateAuthority
from certrotor_cdk.constants import (
    ENV_CA_ARN,
    ENV_CONFIG,
    MONITOR_HANDLER,
    MONITOR_MEMORY_MB,
    MONITOR_SCHEDULE_EXPRESSION,
    MONITOR_TIMEOUT,
    ROTATION_HANDLER,
    ROTATION_MEMORY_MB,
    ROTATION_RESERVED_CONCURRENCY,
    ROTATION_TIMEOUT,
)
from certrotor_cdk.lambda_function import CertrotorFunction, FunctionSettings
from certrotor_cdk.monitoring import Monitoring
from certrotor_cdk.rekey import RekeyStateMachine
from certrotor_cdk.rotating_certificate import CA_READ_ACTIONS, ISSUE_ACTIONS, RotatingCertificate
from certrotor_cdk.trust_bundle import TrustBundle

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


class Certrotor(Construct):
    """certrotor for one configuration.

    :param config: the validated configuration (``certrotor.config.load_config``).
    :param code: the Lambda asset, usually ``certrotor_cdk.bundling.lambda_code(...)``;
        one asset serves every function.
    :param architecture: must match the platform ``code`` was bundled for.
    :param removal_policy: for the secrets, their KMS keys and a created CA.
    :param rotation_reserved_concurrency: how many rotations may run at once.

    Attributes for extending the deployment (the on-demand issuer adds a
    function with ``function_settings`` and watches it with ``monitoring``):
    ``certificate_authority``, ``function_settings``, ``rotation``,
    ``monitor``, ``certificates``, ``trust``, ``rekey`` (the re-key state machine),
    ``monitoring``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CertrotorConfig,
        code: lambda_.Code,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        rotation_reserved_concurrency: int = ROTATION_RESERVED_CONCURRENCY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.certificate_authority = CertificateAuthority(
            self, "CertificateAuthority", ca=config.ca, removal_policy=removal_policy
        )
        self.function_settings = FunctionSettings(
            code=code,
            architecture=architecture,
            service_name=config.service_name,
            log_level=config.log_level,
            log_retention=log_retention(config.log_retention_days),
            environment={
                ENV_CONFIG: config.to_json(),
                ENV_CA_ARN: self.certificate_authority.arn,
            },
        )
        self.rotation = CertrotorFunction(
            self,
            "Rotation",
            settings=self.function_settings,
            handler=ROTATION_HANDLER,
            description="certrotor: rotates certificate sets (Secrets Manager rotation steps)",
            timeout=ROTATION_TIMEOUT,
            memory_size=ROTATION_MEMORY_MB,
            reserved_concurrency=rotation_reserved_concurrency,
        )
        self.certificates = [
            RotatingCertificate(
                self,
                f"CertificateSet[{cert_set.name.replace('/', ':')}]",
                certificate_set=cert_set,
                ca_arn=self.certificate_authority.arn,
                rotation_function=self.rotation.function,
                removal_policy=removal_policy,
                rotator_id=config.service_name,
            )
            for cert_set in config.sets
        ]
        if self.certificate_authority.activation is not None:
            for certificate in self.certificates:
                certificate.depend_on(self.certificate_authority.activation)

        self.monitor = CertrotorFunction(
            self,
            "Monitor",
            settings=self.function_settings,
            handler=MONITOR_HANDLER,
            description="certrotor: publishes DaysToExpiry for every certificate set",
            timeout=MONITOR_TIMEOUT,
            memory_size=MONITOR_MEMORY_MB,
        )
        for certificate in self.certificates:
            # The monitor only gets each manifest's current value (services.expiry).
            certificate.grant_manifest_value_read(self.monitor.function)
        # Every manifest names the trust bundle, so every set reader reads it;
        # roles granted in code with a set's grant_read need trust.grant_read too.
        self.trust = TrustBundle(
            self,
            "TrustBundle",
            rotator=rotator_id(config),
            reader_role_arns=[arn for cert_set in config.sets for arn in cert_set.reader_role_arns],
            removal_policy=removal_policy,
        )
        self.trust.grant_write(self.monitor.function)
        self._grant_monitor_ca(config)
        events.Rule(
            self,
            "MonitorSchedule",
            description="certrotor: hourly expiry check",
            schedule=events.Schedule.expression(MONITOR_SCHEDULE_EXPRESSION),
            targets=[events_targets.LambdaFunction(self.monitor.function)],
        )

        # certrotor rekey: RotateSecret for many sets, paced under the quotas.
        self.rekey = RekeyStateMachine(
            self,
            "Rekey",
            rotator_id=config.service_name,
            manifest_secret_arns=[certificate.manifest_secret.secret_arn for certificate in self.certificates],
            log_retention=log_retention(config.log_retention_days),
            removal_policy=removal_policy,
        )

        self.monitoring = Monitoring(self, "Monitoring", config=config)
        self.monitoring.watch_function("Rotation", self.rotation, alarm_on_throttles=True)
        self.monitoring.watch_function("Monitor", self.monitor)
        self.monitoring.watch_rotation_metrics()
        self.monitoring.watch_secrets_manager_rotations(
            [certificate.manifest_secret.secret_arn for certificate in self.certificates]
        )
        # Two sets may redeploy the same service; one rule entry is enough.
        service_arns = dict.fromkeys(arn for certificate in self.certificates for arn in certificate.service_arns)
        self.monitoring.watch_deployments(list(service_arns))
        self.monitoring.watch_expiry([cert_set.name for cert_set in config.sets])
        self.monitoring.add_alarm_overview()

    def _grant_monitor_ca(self, config: CertrotorConfig) -> None:
        """The monitor reads the CA's chain (trust bundle) and, unless
        revoke_superseded is off, revokes superseded certificates: it reads
        the CA's revocation configuration, describes each manifest (versions,
        tags) and tags it with the record, that tag key only."""
        ca_actions = ["acm-pca:GetCertificateAuthorityCertificate"]
        if config.ca.revoke_superseded != "off":
            ca_actions += ["acm-pca:DescribeCertificateAuthority", "acm-pca:RevokeCertificate"]
            manifests = [certificate.manifest_secret.secret_arn for certificate in self.certificates]
            self.monitor.function.add_to_role_policy(
                iam.PolicyStatement(actions=["secretsmanager:DescribeSecret"], resources=manifests)
            )
            self.monitor.function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:TagResource"],
                    resources=manifests,
                    conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_SUPERSEDED]}},
                )
            )
        cas = [self.certificate_authority.arn, *([config.ca.next_arn] if config.ca.next_arn else [])]
        self.monitor.function.add_to_role_policy(iam.PolicyStatement(actions=ca_actions, resources=cas))
        self._grant_next_ca(config)

    def _grant_next_ca(self, config: CertrotorConfig) -> None:
        """With ``ca.next_arn``, the rotation function may issue from that CA
        (for the usages the sets have) and read it, as from its own: what
        ``certrotor ca rotate --to`` needs before it moves any set."""
        arn = config.ca.next_arn
        if arn is None:
            return
        partition = Stack.of(self).partition
        templates = sorted({template_arn(cert_set.usage, partition) for cert_set in config.sets})
        self.rotation.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(ISSUE_ACTIONS),
                resources=[arn],
                conditions={"StringEquals": {"acm-pca:TemplateArn": templates}},
            )
        )
        self.rotation.function.add_to_role_policy(iam.PolicyStatement(actions=list(CA_READ_ACTIONS), resources=[arn]))


def log_retention(days: int) -> logs.RetentionDays:
    """The shortest retention CloudWatch Logs accepts that keeps at least ``days``."""
    for allowed, retention in _RETENTION_DAYS:
        if days <= allowed:
            return retention
    return logs.RetentionDays.TEN_YEARS
