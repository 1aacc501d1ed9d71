"""certrotor's own stack: the ``Certrotor`` construct plus stack outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from certrotor.config import CertrotorConfig
from certrotor_cdk.bundling import BundleTarget, lambda_code
from certrotor_cdk.certrotor_construct import Certrotor
from certrotor_cdk.issuer_api import IssuerApi


class CertrotorStack(Stack):
    """One deployment of certrotor for one configuration.

    :param config: the validated configuration.
    :param skip_bundling: use ``lambdas/`` as the asset without installing
        requirements; fast, for template tests and previews, not for deploys.
    :param architecture: ``arm64`` (default) or ``x86_64``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CertrotorConfig,
        skip_bundling: bool = False,
        architecture: str = "arm64",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="certrotor: private TLS certificates from AWS Private CA, "
            "rotated in Secrets Manager and delivered to ECS",
            **kwargs,
        )
        target = BundleTarget.for_lambda(architecture)
        self.certrotor = Certrotor(
            self,
            "Certrotor",
            config=config,
            code=lambda_code(target, skip_bundling=skip_bundling),
            architecture=target.lambda_architecture,
        )
        # The on-demand issuer exists only where someone may call it.
        self.issuer: IssuerApi | None = None
        if config.issuer_policies:
            self.issuer = IssuerApi(
                self,
                "Issuer",
                config=config,
                function_settings=self.certrotor.function_settings,
                ca_arn=self.certrotor.certificate_authority.arn,
                certificates=self.certrotor.certificates,
                rotation_function=self.certrotor.rotation.function,
                monitoring=self.certrotor.monitoring,
            )
            CfnOutput(
                self,
                "IssuerUrl",
                value=self.issuer.url.url,
                description="On-demand issuer Function URL (AWS_IAM auth): POST /certificates, /sets/{name}/issue",
            )
        CfnOutput(
            self,
            "CertificateAuthorityArn",
            value=self.certrotor.certificate_authority.arn,
            description="The Private CA that issues the certificates",
        )
        CfnOutput(
            self,
            "RotationFunctionName",
            value=self.certrotor.rotation.function.function_name,
            description="The rotation Lambda function",
        )
        CfnOutput(
            self,
            "RekeyStateMachineArn",
            value=self.certrotor.rekey.state_machine.state_machine_arn,
            description="certrotor rekey --state-machine (or CERTROTOR_REKEY_STATE_MACHINE)",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.certrotor.monitoring.topic.topic_arn,
            description="SNS topic that receives certrotor alarms; subscribe on-call here",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=self.certrotor.monitoring.dashboard.dashboard_name,
            description="CloudWatch dashboard of rotations, expiry and alarms",
        )
