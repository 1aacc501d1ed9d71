"""A certificate set stored in Secrets Manager and rotated by certrotor.

Import this construct into any CDK app: give it the set's configuration,
the CA to issue from and the rotation function, and it creates the set's
secrets and KMS keys, schedules rotation, and grants exactly what rotating
and reading the set needs - nothing account-wide.

Layout of a set named ``N`` (see docs/ARCHITECTURE.md):
- ``N``           manifest, the rotated secret (certificate KMS key)
- ``N/key``       private key alone (its own KMS key)
- ``N/chain-i``   CA chain parts, i = 0 .. chain_parts-1 (certificate KMS key)
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, SecretValue, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagSuppressions
from constructs import Construct, IDependable

from certrotor.config import CertificateSetConfig, template_arn
from certrotor.fleet import DEFAULT_ROTATOR_ID, ROTATOR_TAG
from certrotor_cdk.constants import INITIAL_SECRET_VALUE

# What the rotation function does to each secret of its set: the calls of
# certrotor.services.rotation through certrotor.aws.secrets. It tags the
# manifest but never removes a tag.
ROTATION_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:TagResource",
)
# Secrets Manager encrypts each value under a data key: PutSecretValue needs
# GenerateDataKey, GetSecretValue needs Decrypt. kms:Encrypt is only for
# re-encrypting versions when a secret changes key, which rotation never does.
ROTATION_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
READ_SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
# Reading a value alone (the monitor): no metadata, no versions.
READ_VALUE_ACTIONS = ("secretsmanager:GetSecretValue",)
READ_KMS_ACTIONS = ("kms:Decrypt",)
ISSUE_ACTIONS = ("acm-pca:IssueCertificate",)
CA_READ_ACTIONS = (
    "acm-pca:GetCertificate",
    "acm-pca:DescribeCertificateAuthority",
    "acm-pca:GetCertificateAuthorityCertificate",
)
REDEPLOY_ACTIONS = ("ecs:UpdateService", "ecs:DescribeServices")
TAG_CERTIFICATE_SET = "certrotor:certificate-set"


class RotatingCertificate(Construct):
    """One certificate set: secrets, KMS keys, rotation schedule, grants.

    :param certificate_set: the validated set (``certrotor.config``).
    :param ca_arn: the Private CA that issues the set's certificates.
    :param rotation_function: the certrotor rotation Lambda
        (``certrotor.handlers.rotate.lambda_handler``). It is granted, on
        this set only: the Secrets Manager calls of the four rotation steps
        on the set's secrets; Decrypt/GenerateDataKey on the set's KMS keys
        through Secrets Manager; IssueCertificate with the set's
        template; and UpdateService/DescribeServices on the set's services
        (none for a set whose ``delivery`` is ``reload``: its consumers run
        ``certrotor-fetch --watch`` and nothing is redeployed).
        It must be a function whose role this app can change.
    :param removal_policy: for the secrets and KMS keys when removed from
        the stack. RETAIN by default: a deleted key makes the secrets unreadable.
    :param rotator_id: tagged ``certrotor:rotator`` on the manifest secret, so
        fleet tools (``certrotor status``, ``rekey``) find the set.

    Readers named in the configuration are granted through resource
    policies (secret policy + KMS key policy), so roles from other stacks
    or accounts work; the roles must exist when this deploys.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        certificate_set: CertificateSetConfig,
        ca_arn: str,
        rotation_function: lambda_.IFunction,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        rotator_id: str = DEFAULT_ROTATOR_ID,
    ) -> None:
        super().__init__(scope, construct_id)
        self.certificate_set = certificate_set
        self.ca_arn = ca_arn
        name = certificate_set.name
        stack = Stack.of(self)
        self._via_secrets_manager = {"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}

        self.certificate_key = kms.Key(
            self,
            "CertificateKey",
            description=f"certrotor {name}: manifest and chain parts",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.private_key_key = kms.Key(
            self,
            "PrivateKeyKey",
            description=f"certrotor {name}: private key",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.manifest_secret = self._secret(
            "Manifest",
            name,
            "manifest (rotated secret)",
            self.certificate_key,
            INITIAL_SECRET_VALUE,
            removal_policy,
        )
        self.private_key_secret = self._secret(
            "PrivateKey",
            certificate_set.key_secret_name,
            "private key",
            self.private_key_key,
            INITIAL_SECRET_VALUE,
            removal_policy,
        )
        self.chain_secrets = [
            self._secret(
                f"Chain{index}",
                secret_name,
                f"CA chain part {index}",
                self.certificate_key,
                INITIAL_SECRET_VALUE,
                removal_policy,
            )
            for index, secret_name in enumerate(certificate_set.chain_secret_names)
        ]
        Tags.of(self).add(TAG_CERTIFICATE_SET, name)
        Tags.of(self.manifest_secret).add(ROTATOR_TAG, rotator_id)

        self._grant_rotation(rotation_function)
        self._grant_readers()
        self.rotation_schedule = self._schedule_rotation(rotation_function)
        self._explain_part_secrets_to_nag()

    # ------------------------------------------------------------------
    # Public surface

    @property
    def part_secrets(self) -> list[secretsmanager.Secret]:
        """Every secret of the set except the manifest: key, then chain parts."""
        return [self.private_key_secret, *self.chain_secrets]

    @property
    def secrets(self) -> list[secretsmanager.Secret]:
        """All secrets of the set, manifest first."""
        return [self.manifest_secret, *self.part_secrets]

    @property
    def service_arns(self) -> list[str]:
        """ARNs of the ECS services redeployed after a rotation."""
        stack = Stack.of(self)
        return [
            stack.format_arn(
                service="ecs",
                resource="service",
                resource_name=f"{ref.cluster}/{ref.service}",
            )
            for ref in self.certificate_set.services
        ]

    def grant_manifest_read(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` describe and read the manifest (and decrypt it); nothing else of the set.

        For callers that look at the manifest's versions too (the issuer's
        status and issue-now); a caller that only reads the current value
        takes ``grant_manifest_value_read``.
        """
        self._grant_identity_read(grantee, [self.manifest_secret], self.certificate_key)

    def grant_manifest_value_read(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` get the manifest's value (and decrypt it); not describe it, nothing else."""
        self._grant_identity_read(grantee, [self.manifest_secret], self.certificate_key, READ_VALUE_ACTIONS)

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Let a role of this app read the certificate: manifest and chain parts.

        The identity-policy twin of ``reader_role_arns``. Not the private key:
        see ``grant_private_key_read``.
        """
        self._grant_identity_read(grantee, [self.manifest_secret, *self.chain_secrets], self.certificate_key)

    def grant_private_key_read(self, grantee: iam.IGrantable) -> None:
        """Let a role of this app read the private key (``key_reader_role_arns``' twin)."""
        self._grant_identity_read(grantee, [self.private_key_secret], self.private_key_key)

    def depend_on(self, *dependencies: IDependable) -> None:
        """Schedule rotation only after these exist (e.g. the CA's activation)."""
        self.rotation_schedule.node.add_dependency(*dependencies)

    # ------------------------------------------------------------------
    # Building blocks

    def _secret(
        self,
        construct_id: str,
        secret_name: str,
        what: str,
        key: kms.IKey,
        placeholder: str,
        removal_policy: RemovalPolicy,
    ) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=secret_name,
            description=f"certrotor {self.certificate_set.name}: {what}",
            encryption_key=key,
            # Not a secret: a marker the rotation replaces. Secrets Manager
            # needs some value to create a secret.
            secret_string_value=SecretValue.unsafe_plain_text(placeholder),
            removal_policy=removal_policy,
        )

    def _grant_rotation(self, function: lambda_.IFunction) -> None:
        cert_set = self.certificate_set
        statements = [
            iam.PolicyStatement(
                actions=list(ROTATION_SECRET_ACTIONS),
                resources=[secret.secret_arn for secret in self.secrets],
            ),
            iam.PolicyStatement(
                actions=list(ROTATION_KMS_ACTIONS),
                resources=[self.certificate_key.key_arn, self.private_key_key.key_arn],
                conditions=self._via_secrets_manager,
            ),
            iam.PolicyStatement(
                actions=list(ISSUE_ACTIONS),
                resources=[self.ca_arn],
                # The template fixes what the certificate may be used for;
                # without this condition the role could mint a CA certificate.
                conditions={
                    "StringEquals": {"acm-pca:TemplateArn": template_arn(cert_set.usage, Stack.of(self).partition)}
                },
            ),
            iam.PolicyStatement(actions=list(CA_READ_ACTIONS), resources=[self.ca_arn]),
        ]
        if cert_set.redeploys and cert_set.services:
            statements.append(iam.PolicyStatement(actions=list(REDEPLOY_ACTIONS), resources=self.service_arns))
        for statement in statements:
            function.add_to_role_policy(statement)

    def _grant_readers(self) -> None:
        cert_set = self.certificate_set
        self._allow_read(
            cert_set.reader_role_arns,
            [self.manifest_secret, *self.chain_secrets],
            self.certificate_key,
        )
        self._allow_read(cert_set.key_reader_role_arns, [self.private_key_secret], self.private_key_key)

    def _allow_read(
        self,
        role_arns: Sequence[str],
        secrets: Sequence[secretsmanager.Secret],
        key: kms.Key,
    ) -> None:
        if not role_arns:
            return
        principals = [iam.ArnPrincipal(arn) for arn in role_arns]
        for secret in secrets:
            secret.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=principals,
                    actions=list(READ_SECRET_ACTIONS),
                    # In a secret's resource policy "*" means this secret.
                    resources=["*"],
                )
            )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=principals,
                actions=list(READ_KMS_ACTIONS),
                # In a key policy "*" means this key.
                resources=["*"],
                conditions=self._via_secrets_manager,
            )
        )

    def _grant_identity_read(
        self,
        grantee: iam.IGrantable,
        secrets: Sequence[secretsmanager.Secret],
        key: kms.Key,
        secret_actions: Sequence[str] = READ_SECRET_ACTIONS,
    ) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(secret_actions),
                resources=[secret.secret_arn for secret in secrets],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(READ_KMS_ACTIONS),
                resources=[key.key_arn],
                conditions=self._via_secrets_manager,
            )
        )

    def _schedule_rotation(self, function: lambda_.IFunction) -> secretsmanager.CfnRotationSchedule:
        schedule = self.certificate_set.schedule
        stack = Stack.of(self)
        # Secrets Manager calls the function as itself; SourceAccount keeps
        # another account's secrets from using it. The role policy already
        # limits what an invocation can touch to this deployment's sets.
        invoke = lambda_.CfnPermission(
            self,
            "InvokeBySecretsManager",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="secretsmanager.amazonaws.com",
            source_account=stack.account,
        )
        # The L2 RotationSchedule takes only a Duration (rate in days) and
        # adds GetRandomPassword on "*"; the L1 carries cron(), hour rates
        # and the window as Secrets Manager defines them.
        rotation = secretsmanager.CfnRotationSchedule(
            self,
            "RotationSchedule",
            secret_id=self.manifest_secret.secret_arn,
            rotation_lambda_arn=function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                schedule_expression=schedule.expression,
                duration=schedule.window,
            ),
            rotate_immediately_on_update=schedule.rotate_immediately,
        )
        # Secrets Manager invokes the function while creating the schedule
        # (first rotation, or a test of the configuration): the permission,
        # the part secrets and their policies must exist by then.
        rotation.node.add_dependency(invoke, *self.part_secrets)
        return rotation

    def _explain_part_secrets_to_nag(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.part_secrets,
            [
                {
                    "id": "AwsSolutions-SMG4",
                    "reason": "Part secrets are rotated together with the set: the manifest's "
                    "rotation schedule runs the rotation function, which writes every part "
                    "under the same version id before moving AWSCURRENT.",
                }
            ],
            apply_to_children=True,
        )
