"""certrotor's own stack: the ``Certrotor`` construct plus stack outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, CfnResource, Stack
from constructs import Construct

from certrotor.config import CertrotorConfig
from certrotor_cdk.bundling import BundleTarget, lambda_code
from certrotor_cdk.certrotor_construct import Certrotor
from certrotor_cdk.issuer_api import IssuerApi

# IssuerApi's tables in this stack before the issuer moved into the rotator
# (CDK's logical IDs of the paths Issuer/Ledger and Issuer/Idempotency).
LEGACY_ISSUER_TABLE_IDS = {"ledger": "IssuerLedger70DF343A", "idempotency": "IssuerIdempotency89BCA6D1"}


class CertrotorStack(Stack):
    """One deployment of certrotor for one configuration.

    :param config: the validated configuration.
    :param skip_bundling: use ``lambdas/`` as the asset without installing
        requirements; fast, for template tests and previews, not for deploys.
    :param architecture: ``arm64`` (default) or ``x86_64``.
    :param allow_issuer_principal_patterns: opt-in for issuer principals with
        wildcards (they match roles created later; docs/ISSUER.md).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: CertrotorConfig,
        skip_bundling: bool = False,
        architecture: str = "arm64",
        allow_issuer_principal_patterns: bool = False,
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
            allow_issuer_principal_patterns=allow_issuer_principal_patterns,
        )
        # The on-demand issuer exists only where someone may call it.
        self.issuer: IssuerApi | None = self.certrotor.issuer
        if self.issuer is not None:
            self._keep_issuer_table_ids(self.issuer)
            CfnOutput(
                self,
                "IssuerUrl",
                value=self.issuer.url.url,
                description="On-demand issuer Function URL (AWS_IAM auth): POST /certificates, /sets/{name}/issue",
            )
        # What a service stack needs to import this rotator
        # (CertificateRotator.from_rotator_attributes).
        CfnOutput(self, "RotatorId", value=self.certrotor.rotator_id, description="certrotor:rotator tag value")
        CfnOutput(
            self,
            "RotationFunctionArn",
            value=self.certrotor.rotation.function.function_arn,
            description="The rotation Lambda sets name in their rotation schedule",
        )
        CfnOutput(
            self,
            "RotationRoleArn",
            value=self.certrotor.rotation_role_arn,
            description="The rotation function's role (the only non-reader allowed a set's private key)",
        )
        CfnOutput(
            self,
            "CertificateAuthorityArn",
            value=self.certrotor.certificate_authority_arn,
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

    @staticmethod
    def _keep_issuer_table_ids(issuer: IssuerApi) -> None:
        """The issuer's tables keep the logical IDs they had when the issuer
        sat directly in this stack (``Issuer/Ledger``), so an upgraded stack
        keeps its ledger (issued certificates, CA counts) and idempotency
        records instead of replacing them with empty tables.
        """
        for table, logical_id in LEGACY_ISSUER_TABLE_IDS.items():
            cfn_table = getattr(issuer, table).node.default_child
            assert isinstance(cfn_table, CfnResource)
            cfn_table.override_logical_id(logical_id)
