"""Create in the emulator what the CDK stack creates in AWS, from the same
typed config: a Private CA subordinate signed by a local root, the KMS keys,
the set's secrets with rotation enabled, and the ECS services to redeploy."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from certrotor.config import CaConfig, CertrotorConfig, load_config
from certrotor.errors import IntegrityError
from certrotor.fleet.spread import deployed_schedule
from certrotor.layout.manifest import INITIAL_VALUE
from certrotor.local.ca import LocalCA
from certrotor.local.emulator import ACCOUNT, Emulator
from certrotor.pki.bundle import cert_to_pem
from certrotor.services.trust import CaStatus, TrustDocument, TrustStore, rotator_id
from certrotor.spec import PART_TAG, ROTATOR_TAG, SET_TAG, spec_description

ROTATION_FUNCTION = "certrotor-rotate"

# The local role (the emulator's credentials) may request certificates for
# these names and issue-now the demo sets.
DEMO_ISSUER_POLICY: dict[str, Any] = {
    "principal": "certrotor-local-task",
    "allowed_dns": ["localhost", "*.svc.internal"],
    "allowed_ips": ["127.0.0.1/32"],
    "max_validity_days": 30,
    "usage": "server",
    "rate_per_minute": 600,
    "sets": ["demo/*"],
}

DEFAULT_CONFIG: dict[str, Any] = {
    "ca": {"create": True, "common_name": "certrotor demo subordinate CA"},
    "sets": [
        {
            "name": "demo/web",
            "common_name": "localhost",
            "dns_names": ["localhost"],
            "ip_addresses": ["127.0.0.1"],
            "key_algorithm": "EC_prime256v1",
            "validity_days": 30,
            "chain_parts": 2,
            "schedule": {"expression": "rate(20 days)", "window": "4h"},
            "services": [{"cluster": "demo", "service": "web"}],
        }
    ],
    "issuer_policies": [DEMO_ISSUER_POLICY],
}


@dataclass(frozen=True)
class LocalEnvironment:
    """What provisioning made: the config (with the CA's ARN), the root."""

    emulator: Emulator
    config: CertrotorConfig
    root: LocalCA
    ca_arn: str

    @property
    def rotation_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.emulator.region}:{ACCOUNT}:function:{ROTATION_FUNCTION}"

    def lambda_env(self) -> dict[str, str]:
        """The rotation function's environment, as the stack sets it: the
        rotator's settings without the sets (their specs live on their manifests)."""
        return {
            "CERTROTOR_CONFIG": replace(self.config, sets=()).to_json(),
            "CERTROTOR_CA_ARN": self.ca_arn,
            "POWERTOOLS_SERVICE_NAME": self.config.service_name,
            "POWERTOOLS_METRICS_NAMESPACE": "certrotor",
        }


def create_private_ca(
    emulator: Emulator,
    root: LocalCA,
    common_name: str,
    key_algorithm: str = "RSA_2048",
    intermediates: tuple[LocalCA, ...] = (),
) -> str:
    """A subordinate CA in the emulated Private CA, its CSR signed offline.

    The signer is the last of `intermediates` (each signed by the one before,
    the first by `root`), or `root` itself; the imported chain runs from the
    signer up to the root, as Private CA requires.
    """
    pca = emulator.client("acm-pca")
    signing = "SHA256WITHRSA" if key_algorithm.startswith("RSA") else "SHA256WITHECDSA"
    arn = pca.create_certificate_authority(
        CertificateAuthorityConfiguration={
            "KeyAlgorithm": key_algorithm,
            "SigningAlgorithm": signing,
            "Subject": {"CommonName": common_name, "Organization": "certrotor local"},
        },
        CertificateAuthorityType="SUBORDINATE",
    )["CertificateAuthorityArn"]
    csr = pca.get_certificate_authority_csr(CertificateAuthorityArn=arn)["Csr"]
    signer = intermediates[-1] if intermediates else root
    subordinate = signer.sign_subordinate_csr(csr)
    chain = "".join(ca.pem for ca in reversed(intermediates)) + root.pem
    pca.import_certificate_authority_certificate(
        CertificateAuthorityArn=arn,
        Certificate=cert_to_pem(subordinate).encode("ascii"),
        CertificateChain=chain.encode("ascii"),
    )
    return str(arn)


def create_sets(emulator: Emulator, config: CertrotorConfig, rotation_function_arn: str) -> None:
    """The secrets (manifest, key, chain parts) and KMS keys of every set,
    rotation enabled on each manifest, and the ECS services named."""
    secrets = emulator.client("secretsmanager")
    kms = emulator.client("kms")
    for cert_set in config.sets:
        set_key = kms.create_key(Description=f"certrotor {cert_set.name}")["KeyMetadata"]["KeyId"]
        key_key = kms.create_key(Description=f"certrotor {cert_set.name} private key")["KeyMetadata"]["KeyId"]
        # The manifest carries the set's spec and the rotator tag, as
        # RotatingCertificate deploys it (certrotor.spec).
        set_tag = {"Key": SET_TAG, "Value": cert_set.name}
        part_tags = [{"Key": PART_TAG, "Value": config.rotator_id}, set_tag]
        for name, kms_key, description, tags in (
            (
                cert_set.name,
                set_key,
                spec_description(cert_set),
                [{"Key": ROTATOR_TAG, "Value": config.rotator_id}, set_tag],
            ),
            (cert_set.key_secret_name, key_key, "certrotor private key", part_tags),
            *((name, set_key, "certrotor chain part", part_tags) for name in cert_set.chain_secret_names),
        ):
            secrets.create_secret(
                Name=name, KmsKeyId=kms_key, Description=description, SecretString=INITIAL_VALUE, Tags=tags
            )
        # The schedule RotatingCertificate deploys: the rate spread by the name.
        rules = deployed_schedule(cert_set, config.expiry_alarm_days).rotation_rules()
        days = max(1, (cert_set.schedule.rate_hours() or 24 * 30) // 24)
        emulator.enable_rotation(cert_set.name, rotation_function_arn, days, rules)
    ecs = emulator.client("ecs")
    for cert_set in config.sets:
        for ref in cert_set.services:
            ecs.create_cluster(clusterName=ref.cluster)
            ecs.register_task_definition(
                family=ref.service,
                containerDefinitions=[{"name": ref.service, "image": "certrotor/demo", "memory": 128}],
            )
            ecs.create_service(cluster=ref.cluster, serviceName=ref.service, taskDefinition=ref.service, desiredCount=1)


def provision(
    emulator: Emulator, config: CertrotorConfig | None = None, root: LocalCA | None = None
) -> LocalEnvironment:
    """Everything the stack would create, in the emulator."""
    config = config or load_config(DEFAULT_CONFIG)
    root = root or LocalCA.create_root()
    ca_arn = config.ca.arn if config.ca.arn and not config.ca.create else None
    if ca_arn is None:
        ca_arn = create_private_ca(emulator, root, config.ca.common_name)
        config = replace(config, ca=replace(config.ca, arn=ca_arn, create=False, common_name=CaConfig.common_name))
    environment = LocalEnvironment(emulator=emulator, config=config, root=root, ca_arn=ca_arn)
    create_trust(emulator, config, ca_arn)
    create_sets(emulator, config, environment.rotation_function_arn)
    return environment


def trust_store(emulator: Emulator, config: CertrotorConfig) -> TrustStore:
    """The rotator's trust secret in the emulator."""
    from certrotor.aws.secrets import SecretStore

    return TrustStore(SecretStore(emulator.client("secretsmanager")), rotator_id(config))


def create_trust(emulator: Emulator, config: CertrotorConfig, ca_arn: str) -> None:
    """The rotator's trust secret, holding the CA's root, as the stack and the
    monitor leave it."""
    from certrotor.aws.pca import PrivateCA

    store = trust_store(emulator, config)
    secrets = emulator.client("secretsmanager")
    with contextlib.suppress(secrets.exceptions.ResourceExistsException):
        secrets.create_secret(Name=store.name, Description="certrotor trust bundle", SecretString=INITIAL_VALUE)
    chain = PrivateCA(ca_arn, emulator.client("acm-pca")).ca_certificate_chain()
    # A provisioning stands for a new stack: its trust secret holds this CA
    # alone, so provisioning again into one emulator never grows the document.
    try:
        before: TrustDocument | None = store.load()
    except IntegrityError:
        before = None
    fresh = TrustDocument(rotator=store.rotator, revision=before.revision if before else 0)
    store.save(fresh.with_ca(ca_arn, chain, CaStatus.ACTIVE, dt.datetime.now(dt.UTC)), before)
