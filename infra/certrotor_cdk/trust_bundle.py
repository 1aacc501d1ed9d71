"""The rotator's trust bundle: one secret every consumer of its sets reads.

``<service_name>/trust`` holds the CA certificates consumers accept (see
certrotor.services.trust). It is created with the stack's placeholder value;
the monitor function publishes the CA's root into it on its first run and
keeps it current. It has its own KMS key, so readers in other accounts can
be granted through the key policy.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagSuppressions
from constructs import Construct

from certrotor.services.trust import trust_secret_name
from certrotor_cdk.constants import INITIAL_SECRET_VALUE

READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# The monitor reads the bundle and writes a new version when the CA's root
# is missing; nothing else (no tags, no delete). A write is a compare-and-
# swap: put a candidate version, then move AWSCURRENT to it from the version
# it was computed on (TrustStore.update), so an operator's write is kept.
WRITE_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)


class TrustBundle(Construct):
    """The trust secret and its KMS key.

    :param rotator: the rotator's id (``config.service_name``).
    :param reader_role_arns: roles (any account) that read the bundle: every
        set's readers, since every manifest names this secret.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rotator: str,
        reader_role_arns: Sequence[str] = (),
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"certrotor {rotator}: trust bundle",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.secret = secretsmanager.Secret(
            self,
            "Secret",
            secret_name=trust_secret_name(rotator),
            description=f"certrotor {rotator}: CA certificates consumers accept",
            encryption_key=self.key,
            # Not a secret: the monitor replaces it with the CA's root.
            secret_string_value=SecretValue.unsafe_plain_text(INITIAL_SECRET_VALUE),
            removal_policy=removal_policy,
        )
        self._via_secrets_manager = {
            "StringEquals": {"kms:ViaService": f"secretsmanager.{self.secret.stack.region}.amazonaws.com"}
        }
        roles = sorted(set(reader_role_arns))
        if roles:
            principals = [iam.ArnPrincipal(arn) for arn in roles]
            self.secret.add_to_resource_policy(
                # In a secret's resource policy "*" means this secret.
                iam.PolicyStatement(principals=principals, actions=list(READ_ACTIONS), resources=["*"])
            )
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=principals,
                    actions=["kms:Decrypt"],
                    resources=["*"],
                    conditions=self._via_secrets_manager,
                )
            )
        NagSuppressions.add_resource_suppressions(
            self.secret,
            [
                {
                    "id": rule,
                    "reason": "The trust bundle holds public CA certificates, not a credential: there is "
                    "nothing to rotate; the monitor and certrotor ca rotate write new versions.",
                }
                for rule in (
                    "AwsSolutions-SMG4",
                    "HIPAA.Security-SecretsManagerRotationEnabled",
                    "NIST.800.53.R5-SecretsManagerRotationEnabled",
                )
            ],
        )

    def grant_read(self, grantee: iam.IGrantable) -> None:
        """Let a role of this app read the bundle (every set reader needs it)."""
        self._grant(grantee, READ_ACTIONS, ("kms:Decrypt",))

    def grant_write(self, grantee: iam.IGrantable) -> None:
        """Let the monitor read the bundle and write new versions of it."""
        self._grant(grantee, WRITE_ACTIONS, ("kms:Decrypt", "kms:GenerateDataKey"))

    def _grant(self, grantee: iam.IGrantable, secret_actions: Sequence[str], key_actions: Sequence[str]) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(secret_actions), resources=[self.secret.secret_arn])
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(key_actions), resources=[self.key.key_arn], conditions=self._via_secrets_manager
            )
        )
