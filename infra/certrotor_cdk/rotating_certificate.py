"""``RotatingCertificate``: one certificate set, in any stack of the rotator's
account and region (usually its service's own).

Layout of a set named ``N`` (see docs/ARCHITECTURE.md):
- ``N``           manifest, the rotated secret (certificate KMS key); its
                  description is the set's spec, its tag ``certrotor:rotator``
                  names the rotator
- ``N/key``       private key alone (its own KMS key); a resource policy
                  denies its value to everyone but the rotator and key readers
- ``N/chain-i``   CA chain parts, i = 0 .. chain_parts-1 (certificate KMS key)

Creating one changes nothing in the rotator's stack: the rotator reaches the
set by tag, and Secrets Manager invokes it for the set's schedule.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from typing import Any

import jsii
from aws_cdk import Annotations, IStableListProducer, Lazy, RemovalPolicy, SecretValue, Stack, Tags, Token
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from cdk_nag import NagSuppressions
from constructs import Construct, IDependable

from certrotor.config import CertificateSetConfig, ServiceRef, load_set
from certrotor.errors import ConfigError
from certrotor.fleet.spread import deployed_schedule
from certrotor.spec import DESCRIPTION_LIMIT, PART_TAG, ROTATOR_TAG, SET_TAG, SPEC_PREFIX, spec_fields
from certrotor_cdk.constants import INITIAL_SECRET_VALUE, METRIC_DAYS_TO_EXPIRY, METRIC_ROTATION_FAILED
from certrotor_cdk.rotator import CertificateRotator, RotatorRef, check_same_region, register_set_name

READ_SECRET_ACTIONS = ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
READ_KMS_ACTIONS = ("kms:Decrypt",)
# What the key secret's resource policy denies to everyone but the rotator
# and the key readers: its value, read or written, and its stages.
KEY_VALUE_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:BatchGetSecretValue",
)
TAG_CERTIFICATE_SET = SET_TAG
# A deploy-time value is a token at synth; count it at the longest an ECS
# cluster or service name can be.
_TOKEN_LENGTH_ESTIMATE = 255
# Placeholders that let the set's rules check everything concrete when some
# names are deploy-time tokens (they are checked again at run time).
_TOKEN_DNS = "token.invalid"  # noqa: S105 - a DNS name, not a password


class RotatingCertificate(Construct):
    """One certificate set: secrets, KMS keys, schedule, expiry alarm, grants.

    :param rotator: the ``CertificateRotator`` (any stack of this account and
        region) or ``CertificateRotator.from_rotator_attributes(...)``.
    :param set_name: the manifest secret's name ``N``.
    :param dns_names, ip_addresses, common_name, key_algorithm, usage,
        validity_days, chain_parts, value_limit, schedule, redeploy_strict, delivery:
        as in the JSON configuration (docs/DEPLOY.md). A ``rate()`` schedule is
        deployed spread (``deployed_schedule``, kept as ``self.deployed_schedule``):
        a ``cron()`` whose days and hour a hash of the set name picks.
    :param services: ECS services to redeploy after a rotation. A service
        defined in this app is tagged for the rotator; an imported one must
        carry the tag ``certrotor:rotator`` already (an annotation says so).
    :param readers: read the certificate and chain (not the key).
    :param key_readers: read the private key too.
    :param alarm_topic: where the expiry alarm goes; default the rotator's.
    :param removal_policy: secrets and KMS keys (RETAIN by default: a deleted
        key makes the secrets unreadable).
    :param certificate_set: a set from the JSON configuration instead of the
        props above (``reader_role_arns`` become resource-policy grants).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rotator: CertificateRotator | RotatorRef,
        set_name: str | None = None,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        common_name: str | None = None,
        key_algorithm: str = "EC_prime256v1",
        usage: str = "server",
        validity_days: int = 30,
        chain_parts: int = 2,
        value_limit: int = 4096,
        schedule: str | dict[str, Any] = "rate(20 days)",
        redeploy_strict: bool = False,
        delivery: str = "redeploy",
        services: Sequence[ecs.IBaseService] = (),
        readers: Sequence[iam.IGrantable] = (),
        key_readers: Sequence[iam.IGrantable] = (),
        alarm_topic: sns.ITopic | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        certificate_set: CertificateSetConfig | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rotator = rotator.ref_for(self) if isinstance(rotator, CertificateRotator) else rotator
        if certificate_set is None:
            if not set_name:
                raise ConfigError(f"{self.node.path}: set_name is required")
            certificate_set = _set_from_props(
                {
                    "name": set_name,
                    "dns_names": list(dns_names),
                    "ip_addresses": list(ip_addresses),
                    **({"common_name": common_name} if common_name is not None else {}),
                    "key_algorithm": key_algorithm,
                    "usage": usage,
                    "validity_days": validity_days,
                    "chain_parts": chain_parts,
                    "value_limit": value_limit,
                    "schedule": schedule,
                    "redeploy_strict": redeploy_strict,
                    "delivery": delivery,
                    # Checked with the set's rules (a reload set redeploys nothing).
                    "services": [{"cluster": "typed", "service": "typed"} for _ in services],
                }
            )
            certificate_set = dataclasses.replace(certificate_set, services=())
        elif set_name is not None:
            raise ConfigError(f"{self.node.path}: give set_name or certificate_set, not both")
        certificate_set = dataclasses.replace(
            certificate_set,
            services=(
                *certificate_set.services,
                *(ServiceRef(cluster=s.cluster.cluster_name, service=s.service_name) for s in services),
            ),
        )
        self.certificate_set = certificate_set
        self._removal_policy = removal_policy
        name = certificate_set.name
        register_set_name(self, name)
        self._check_environment()
        stack = Stack.of(self)
        self._via_secrets_manager = {"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}
        self._key_reader_arns: list[str] = []

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
        # The manifest's description is the set's spec: the rotation function
        # reads it from the DescribeSecret it makes anyway (certrotor.spec).
        self.manifest_secret = self._secret("Manifest", name, self._spec_description(), self.certificate_key)
        self.private_key_secret = self._secret(
            "PrivateKey", certificate_set.key_secret_name, f"certrotor {name}: private key", self.private_key_key
        )
        self.chain_secrets = [
            self._secret(f"Chain{index}", secret_name, f"certrotor {name}: CA chain part {index}", self.certificate_key)
            for index, secret_name in enumerate(certificate_set.chain_secret_names)
        ]
        rotator_id = self.rotator.rotator_id
        Tags.of(self).add(SET_TAG, name)
        manifest_side: list[Construct] = [self.manifest_secret, self.certificate_key]
        part_side: list[Construct] = [*self.part_secrets, self.private_key_key]
        for tagged in manifest_side:
            Tags.of(tagged).add(ROTATOR_TAG, rotator_id)
        for tagged in part_side:
            Tags.of(tagged).add(PART_TAG, rotator_id)
        self._tag_services(services)
        self._guard_private_key()

        self._allow_read(
            certificate_set.reader_role_arns, [self.manifest_secret, *self.chain_secrets], self.certificate_key
        )
        self._allow_read(certificate_set.key_reader_role_arns, [self.private_key_secret], self.private_key_key)
        self._key_reader_arns.extend(certificate_set.key_reader_role_arns)
        for reader in readers:
            self.grant_read(reader)
        for reader in key_readers:
            self.grant_private_key_read(reader)

        # The set's rate spread by its name's hash, as `certrotor plan` shows it.
        self.deployed_schedule = deployed_schedule(self.certificate_set, self.rotator.expiry_alarm_days)
        self.rotation_schedule = self._schedule_rotation()
        self.expiry_alarm = self._expiry_alarm(alarm_topic or self.rotator.alarm_topic)
        self._explain_to_nag()

    # ------------------------------------------------------------------
    # Public surface

    @property
    def set_name(self) -> str:
        return self.certificate_set.name

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
            stack.format_arn(service="ecs", resource="service", resource_name=f"{ref.cluster}/{ref.service}")
            for ref in self.certificate_set.services
        ]

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the certificate: manifest and chain parts (not the key).

        An identity policy for a role of this account that the app may
        change; a resource policy otherwise (an imported immutable role, another
        account). A grantee whose role is unknown is a synth error.
        """
        grant = self._grant(grantee, [self.manifest_secret, *self.chain_secrets], self.certificate_key)
        rotator = self.rotator
        if rotator.trust_secret_arn is not None and rotator.trust_key_arn is not None:
            # Every manifest names the rotator's trust bundle: readers read it too.
            grant = grant.combine(
                iam.Grant.add_to_principal(
                    grantee=grantee, actions=["secretsmanager:GetSecretValue"], resource_arns=[rotator.trust_secret_arn]
                )
            ).combine(
                iam.Grant.add_to_principal(
                    grantee=grantee,
                    actions=list(READ_KMS_ACTIONS),
                    resource_arns=[rotator.trust_key_arn],
                    conditions=self._via_secrets_manager,
                )
            )
            if not grant.success:
                Annotations.of(self).add_warning_v2(
                    "certrotor:trust-grant",
                    f"{grantee} cannot take an identity policy: add it to the rotator's trust_reader_role_arns "
                    "so it can read the trust bundle",
                )
        return grant

    def grant_private_key_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` read the private key (with ``grant_read`` for the rest)."""
        grant = self._grant(grantee, [self.private_key_secret], self.private_key_key)
        self._key_reader_arns.append(_principal_arn(grantee, self.node.path))
        return grant

    def grant_manifest_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` describe and read the manifest only."""
        return self._grant(grantee, [self.manifest_secret], self.certificate_key)

    def metric_days_to_expiry(self, **props: Any) -> cloudwatch.Metric:
        """Days until the current certificate expires (the monitor, hourly; Minimum)."""
        return self.rotator.metric(METRIC_DAYS_TO_EXPIRY, self.set_name, statistic="Minimum").with_(**props)

    def metric_rotation_failed(self, **props: Any) -> cloudwatch.Metric:
        """Failed rotation steps of this set (Sum per 5 minutes)."""
        return self.rotator.metric(METRIC_ROTATION_FAILED, self.set_name).with_(**props)

    def depend_on(self, *dependencies: IDependable) -> None:
        """Schedule rotation only after these exist (e.g. the CA's activation)."""
        self.rotation_schedule.node.add_dependency(*dependencies)

    # ------------------------------------------------------------------
    # Building blocks

    def _check_environment(self) -> None:
        stack = Stack.of(self)
        check_same_region(self, self.rotator.ca_region, "the rotator's Private CA")
        other = self.rotator.stack
        if other is None:
            return
        for what, mine, theirs in (("account", stack.account, other.account), ("region", stack.region, other.region)):
            if not Token.is_unresolved(mine) and not Token.is_unresolved(theirs) and mine != theirs:
                raise ConfigError(
                    f"{self.node.path}: set {self.set_name!r} is in {what} {mine}, its rotator in {theirs}; "
                    "a rotator serves sets of its own account and region"
                )

    def _spec_description(self) -> str:
        fields = spec_fields(self.certificate_set)
        text = SPEC_PREFIX + json.dumps(fields, sort_keys=True, separators=(",", ":"))
        # Tokens (a service's names from another stack) resolve at deploy time.
        estimate = len(text) + sum(
            _TOKEN_LENGTH_ESTIMATE
            for ref in self.certificate_set.services
            for value in (ref.cluster, ref.service)
            if Token.is_unresolved(value)
        )
        if not any(Token.is_unresolved(v) for ref in self.certificate_set.services for v in (ref.cluster, ref.service)):
            if len(text) > DESCRIPTION_LIMIT:
                raise ConfigError(
                    f"sets[{self.set_name}]: its spec is {len(text):,} characters, over the "
                    f"{DESCRIPTION_LIMIT:,} a secret description holds; use fewer names or services"
                )
        elif estimate > DESCRIPTION_LIMIT:
            Annotations.of(self).add_warning_v2(
                "certrotor:spec-size",
                f"the spec may reach {estimate:,} characters once service names resolve, over the "
                f"{DESCRIPTION_LIMIT:,} a secret description holds; the deploy fails if it does",
            )
        return text

    def _secret(self, construct_id: str, secret_name: str, description: str, key: kms.IKey) -> secretsmanager.Secret:
        return secretsmanager.Secret(
            self,
            construct_id,
            secret_name=secret_name,
            description=description,
            encryption_key=key,
            # Not a secret: a marker the rotation replaces. Secrets Manager
            # needs some value to create a secret.
            secret_string_value=SecretValue.unsafe_plain_text(INITIAL_SECRET_VALUE),
            removal_policy=self._removal_policy,
        )

    def _tag_services(self, services: Sequence[ecs.IBaseService]) -> None:
        """The rotator may redeploy services tagged with its id (ABAC)."""
        for service in services:
            if isinstance(service, ecs.BaseService):
                Tags.of(service).add(ROTATOR_TAG, self.rotator.rotator_id)
            else:
                Annotations.of(self).add_warning_v2(
                    "certrotor:untagged-service",
                    f"service {service.node.path} is imported: tag it {ROTATOR_TAG}={self.rotator.rotator_id} "
                    "(aws ecs tag-resource) or the rotator cannot redeploy it after a rotation",
                )

    def _guard_private_key(self) -> None:
        """Deny the key's value to every principal but the rotator's role and
        the key readers, whatever their identity policies allow. Break-glass:
        a principal that may change this secret's resource policy
        (secretsmanager:PutResourcePolicy/DeleteResourcePolicy, e.g. the
        CloudFormation deploy role) can lift it; docs/DEPLOY.md."""
        self.private_key_secret.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyRotatorAndKeyReaders",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(KEY_VALUE_ACTIONS),
                resources=["*"],
                conditions={
                    "StringNotEquals": {
                        "aws:PrincipalArn": Lazy.list(
                            _ListProducer(
                                lambda: [self.rotator.rotation_role_arn, *dict.fromkeys(self._key_reader_arns)]
                            )
                        )
                    }
                },
            )
        )

    def _allow_read(self, role_arns: Sequence[str], secrets: Sequence[secretsmanager.Secret], key: kms.Key) -> None:
        """Resource-policy grants for role ARNs from the JSON configuration."""
        if not role_arns:
            return
        principals = [iam.ArnPrincipal(arn) for arn in role_arns]
        for secret in secrets:
            secret.add_to_resource_policy(
                iam.PolicyStatement(principals=principals, actions=list(READ_SECRET_ACTIONS), resources=["*"])
            )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=principals,
                actions=list(READ_KMS_ACTIONS),
                resources=["*"],
                conditions=self._via_secrets_manager,
            )
        )

    def _grant(self, grantee: iam.IGrantable, secrets: Sequence[secretsmanager.Secret], key: kms.Key) -> iam.Grant:
        if isinstance(grantee.grant_principal, iam.UnknownPrincipal):
            raise ConfigError(
                f"{self.node.path}: cannot grant {self.set_name!r} to a principal whose role is unknown "
                "(an imported function or resource?); grant its role instead"
            )
        grant: iam.Grant | None = None
        for secret in secrets:
            one = iam.Grant.add_to_principal_or_resource(
                grantee=grantee,
                actions=list(READ_SECRET_ACTIONS),
                resource_arns=[secret.secret_arn],
                resource=secret,
                resource_self_arns=["*"],
            )
            grant = one if grant is None else grant.combine(one)
        decrypt = iam.Grant.add_to_principal_or_resource(
            grantee=grantee,
            actions=list(READ_KMS_ACTIONS),
            resource_arns=[key.key_arn],
            resource=key,
            resource_self_arns=["*"],
            conditions=self._via_secrets_manager,
        )
        assert grant is not None
        grant = grant.combine(decrypt)
        if not grant.success:
            raise ConfigError(f"{self.node.path}: the grant of {self.set_name!r} to {grantee} cannot take effect")
        return grant

    def _schedule_rotation(self) -> secretsmanager.CfnRotationSchedule:
        schedule = self.deployed_schedule
        # The L2 RotationSchedule takes only a Duration (rate in days) and
        # adds GetRandomPassword on "*"; the L1 carries cron(), hour rates
        # and the window as Secrets Manager defines them.
        rotation = secretsmanager.CfnRotationSchedule(
            self,
            "RotationSchedule",
            secret_id=self.manifest_secret.secret_arn,
            rotation_lambda_arn=self.rotator.rotation_function.function_arn,
            rotation_rules=secretsmanager.CfnRotationSchedule.RotationRulesProperty(
                schedule_expression=schedule.expression,
                duration=schedule.window,
            ),
            rotate_immediately_on_update=schedule.rotate_immediately,
        )
        # Secrets Manager invokes the function while creating the schedule:
        # the part secrets, their tags and policies must exist by then.
        rotation.node.add_dependency(*self.part_secrets)
        return rotation

    def _expiry_alarm(self, topic: sns.ITopic | None) -> cloudwatch.Alarm:
        days = self.rotator.expiry_alarm_days
        alarm = cloudwatch.Alarm(
            self,
            "DaysToExpiry",
            metric=self.metric_days_to_expiry(),
            threshold=days,
            comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            # The monitor runs hourly: two silent hours mean it is broken.
            evaluation_periods=2,
            treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            alarm_description=f"The certificate of set {self.set_name} (rotator {self.rotator.rotator_id}) "
            f"expires in less than {days} days, or the monitor stopped reporting it.",
        )
        if topic is not None:
            action = cloudwatch_actions.SnsAction(topic)
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
        return alarm

    def _explain_to_nag(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.part_secrets,
            [
                {
                    "id": rule,
                    "reason": "Part secrets are rotated together with the set: the manifest's "
                    "rotation schedule runs the rotation function, which writes every part "
                    "under the same version id before moving AWSCURRENT.",
                }
                for rule in (
                    "AwsSolutions-SMG4",
                    "HIPAA.Security-SecretsManagerRotationEnabled",
                    "NIST.800.53.R5-SecretsManagerRotationEnabled",
                )
            ],
        )


@jsii.implements(IStableListProducer)
class _ListProducer:
    """A list computed at synth, after every grant was made."""

    def __init__(self, produce: Callable[[], list[str]]) -> None:
        self._produce = produce

    def produce(self) -> list[str]:
        return self._produce()


def _set_from_props(data: dict[str, Any]) -> CertificateSetConfig:
    """Validate typed props with the configuration's rules; tokens are
    checked with placeholders here and for real at run time."""
    real = {key: data[key] for key in ("dns_names", "ip_addresses", "common_name") if key in data}
    checked = dict(data)
    checked["dns_names"] = [_TOKEN_DNS if Token.is_unresolved(v) else v for v in data["dns_names"]]
    if Token.is_unresolved(data.get("common_name") or ""):
        checked["common_name"] = _TOKEN_DNS
    if any(Token.is_unresolved(v) for v in data["ip_addresses"]):
        raise ConfigError(f"sets[{data['name']}].ip_addresses: must be known at synth")
    cert_set = load_set(checked)
    replaced: dict[str, Any] = {"dns_names": tuple(real["dns_names"])}
    if "common_name" in real:
        replaced["common_name"] = real["common_name"]
    elif cert_set.common_name == _TOKEN_DNS:
        replaced["common_name"] = real["dns_names"][0]
    return dataclasses.replace(cert_set, **replaced)


def _principal_arn(grantee: iam.IGrantable, where: str) -> str:
    """The ARN a grantee's requests carry as aws:PrincipalArn (a role's ARN)."""
    principal = grantee.grant_principal
    for attribute in ("role_arn", "arn"):
        value = getattr(principal, attribute, None)
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: a key reader must be an IAM role (or its ARN), not {principal}")
