"""Everything certrotor deploys for one JSON configuration, as one construct.

``Certrotor`` is a ``CertificateRotator`` (CA reference or a created CA, the
rotation function, the hourly expiry monitor, alarms, dashboard and, with
issuer policies, the on-demand issuer) plus one ``RotatingCertificate`` per
configured set, in one stack. Sets of other stacks can name the same
rotator (``RotatingCertificate(rotator=certrotor, ...)``).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from certrotor.config import CertrotorConfig
from certrotor_cdk.constants import ROTATION_RESERVED_CONCURRENCY
from certrotor_cdk.lambda_function import log_retention
from certrotor_cdk.rotating_certificate import RotatingCertificate
from certrotor_cdk.rotator import REDEPLOY_ACTIONS, CertificateRotator

__all__ = ["Certrotor", "log_retention"]


class Certrotor(CertificateRotator):
    """certrotor for one configuration: the rotator and the configured sets.

    :param config: the validated configuration (``certrotor.config.load_config``).
    :param code: the Lambda asset (``certrotor_cdk.bundling.lambda_code(...)``);
        one asset serves every function.
    :param architecture: must match the platform ``code`` was bundled for.
    :param removal_policy: for the secrets, their KMS keys and a created CA.
    :param rotation_reserved_concurrency: how many rotations may run at once.
    :param allow_issuer_principal_patterns: opt-in for issuer principals with wildcards.
    """

    _sets_in_same_construct = True

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
        allow_issuer_principal_patterns: bool = False,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            certificate_authority=config.ca,
            rotator_id=config.rotator_id,
            code=code,
            architecture="x86_64" if architecture.name == lambda_.Architecture.X86_64.name else "arm64",
            log_level=config.log_level,
            log_retention_days=config.log_retention_days,
            expiry_alarm_days=config.expiry_alarm_days,
            alarm_email=config.alarm_email,
            removal_policy=removal_policy,
            rotation_reserved_concurrency=rotation_reserved_concurrency,
            issuer_policies=config.issuer_policies,
            allow_issuer_principal_patterns=allow_issuer_principal_patterns,
            trust_reader_role_arns=sorted({arn for cert_set in config.sets for arn in cert_set.reader_role_arns}),
        )
        self.certificates = [
            RotatingCertificate(
                self,
                f"CertificateSet[{cert_set.name.replace('/', ':')}]",
                rotator=self,
                certificate_set=cert_set,
                removal_policy=removal_policy,
            )
            for cert_set in config.sets
        ]
        activation = self.certificate_authority.activation if self.certificate_authority else None
        for certificate in self.certificates:
            if activation is not None:
                certificate.depend_on(activation)
            self.monitoring.add_alarm(certificate.expiry_alarm)
        # Two sets may redeploy the same service; one rule entry is enough.
        service_arns = dict.fromkeys(arn for certificate in self.certificates for arn in certificate.service_arns)
        service_arns = dict.fromkeys(
            arn
            for certificate in self.certificates
            if certificate.certificate_set.redeploys
            for arn in certificate.service_arns
        )
        if service_arns:
            # Services named by cluster and service in the JSON configuration
            # are not this app's to tag: granted by ARN, in this stack.
            self.rotation.add_to_policy(
                iam.PolicyStatement(actions=list(REDEPLOY_ACTIONS), resources=list(service_arns))
            )
        self.monitoring.watch_deployments(list(service_arns))
        self.monitoring.watch_secrets_manager_rotations(
            [certificate.manifest_secret.secret_arn for certificate in self.certificates]
        )
        self.monitoring.graph_expiry([(c.set_name, c.metric_days_to_expiry()) for c in self.certificates])
        self.monitoring.add_alarm_overview()
